package edge

import (
	"fmt"
	"io"
	"time"

	"github.com/sitelink/sitelink/daemon/guard"
	"github.com/sitelink/sitelink/daemon/metrics"
	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/store"
)

// cpStates are the control pilot states written one-hot per station;
// an unknown state leaves them all 0.
var cpStates = []hal.CPState{hal.CPA, hal.CPB, hal.CPC, hal.CPD, hal.CPE, hal.CPF}

// Metrics renders the daemon's state as Prometheus text. It is computed
// at scrape time from the store and the stations, so it costs nothing
// between scrapes; the latency histograms (b.timings) and the process_
// and go_ metrics are written with it.
func (b backend) Metrics(w io.Writer) error {
	var s metrics.Set
	s.Gauge("sitelink_build_info", "Always 1; the version is the label.", 1, "version", b.version)
	s.Gauge("sitelink_connected", "1 while the MQTT link to the broker is up.", metrics.Bool(b.link.Connected()))
	s.Gauge("sitelink_epoch", "Connect epoch of the current (or last) broker connection.", float64(b.pres.Epoch()))
	cf, conflicts := b.pres.Conflict()
	s.Gauge("sitelink_node_id_conflict", "1 while another daemon uses this node id (a cloned SD card): the two keep dropping each other off the broker, so the link reconnects only every few minutes.", metrics.Bool(cf.Active))
	s.Set("sitelink_node_id_conflicts_total", "Conflicts over this node id (another daemon under it) detected since the daemon started.", metrics.Counter, float64(conflicts))

	depth, err := b.st.OutboxLen()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	s.Gauge("sitelink_outbox_depth", "Events waiting for the broker's acknowledgement.", float64(depth))
	head, err := b.st.OutboxHead(1)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	age := 0.0
	if len(head) > 0 {
		age = max(time.Since(head[0].CreatedAt).Seconds(), 0)
	}
	s.Gauge("sitelink_outbox_oldest_age_seconds", "Age of the oldest undelivered event (0 when the outbox is empty).", age)
	if w := b.relays; w != nil {
		s.Gauge("sitelink_relays_online", "Relay replicas announcing themselves online (P/relays/+).", float64(w.online.Load()))
		s.Set("sitelink_relay_resends_total", "Times a relay coming online made the site send again the requests awaiting Nayax's answer.", metrics.Counter, float64(w.resends.Load()))
		s.Set("sitelink_relay_presence_refused_total", "Relay presence messages refused (unreadable, or past the bound on replicas).", metrics.Counter, float64(w.refused.Load()))
	}
	s.Set("sitelink_events_published_total", "Events the broker acknowledged since the daemon started.", metrics.Counter, float64(b.pump.published.Load()))
	if b.noops != nil {
		noops := b.noops.Totals()
		for _, r := range noopReasons {
			s.Set("sitelink_commands_noop_total", "Commands answered without acting (unknown transaction, repeat, refusal, replay), by type; kept out of the ledger, logged once per interval.",
				metrics.Counter, float64(noops[r]), "reason", r)
		}
	}
	if b.refused != nil {
		s.Set("sitelink_metrics_refused_total", "Connections to node.metrics_listen refused over its cap, by reason.",
			metrics.Counter, float64(b.refused.Totals()[guard.ReasonConnections]), "reason", guard.ReasonConnections)
	}
	if c := b.cortinaRefused; c != nil {
		const help = "Cortina Cancel/Void refused since the daemon started: the transaction id named a session, this field of the cancel did not agree with it."
		s.Set("sitelink_cortina_cancels_refused_total", help, metrics.Counter, float64(c.machine.Load()), "mismatch", mismatchMachine)
		s.Set("sitelink_cortina_cancels_refused_total", help, metrics.Counter, float64(c.site.Load()), "mismatch", mismatchSite)
		s.Set("sitelink_cortina_cancels_refused_total", help, metrics.Counter, float64(c.amount.Load()), "mismatch", mismatchAmount)
	}

	l, err := b.st.LedgerStats()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	s.Gauge("sitelink_ledger_bytes", "Size of the ledger file (sitelink.db).", float64(l.FileBytes))
	s.Gauge("sitelink_ledger_free_bytes", "Free space inside the ledger file: reused by new records, given back to the disk only by a compaction at start.", float64(l.FreeBytes))
	s.Set("sitelink_sessions_archived_total", "Sessions moved from the ledger to the archive (storage.retention), over the ledger's life.", metrics.Counter, float64(l.Archived))
	s.Set("sitelink_ledger_compactions_total", "Times the ledger file was compacted at start, over its life.", metrics.Counter, float64(l.Compactions))

	counts, err := b.st.Counts()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	for _, st := range store.States() {
		s.Gauge("sitelink_sessions", "Sessions in the ledger by state.", float64(counts[st]), "state", string(st))
	}
	for st, n := range counts {
		s.Gauge("sitelink_sessions", "Sessions in the ledger by state.", float64(n), "state", string(st))
	}

	order, sts := b.stations.list()
	for _, n := range order {
		r := sts[n].Read()
		s.Gauge("sitelink_station_contactor", "1 while the station's contactor is confirmed closed.", metrics.Bool(r.Contactor), "station", n)
		s.Gauge("sitelink_station_fault", "1 while the station is faulted (meter, Modbus or driver error).", metrics.Bool(r.Fault != ""), "station", n)
		// Base units: the meter's Wh register in joules (exact: ×3600),
		// a counter since the register only grows.
		s.Set("sitelink_station_energy_joules_total", "The station meter's imported energy register, in joules (Wh × 3600).", metrics.Counter, r.EnergyWh*3600, "station", n)
		s.Gauge("sitelink_station_power_watts", "The station's instantaneous active power, in watts.", r.PowerW, "station", n)
		for _, cp := range cpStates {
			s.Gauge("sitelink_station_cp_state", "1 for the station's current IEC 61851 control pilot state.", metrics.Bool(r.CP == cp), "station", n, "state", string(cp))
		}
	}

	for _, bs := range b.stations.busStats() {
		s.Gauge("sitelink_bus_up", "1 while the serial bus's port is open; 0 while it is missing (its stations are faulted) and being retried.", metrics.Bool(bs.Up), "bus", bs.name)
		s.Set("sitelink_bus_reopen_attempts_total", "Attempts to open a missing serial port again, since the bus was opened.", metrics.Counter, float64(bs.ReopenAttempts), "bus", bs.name)
		s.Set("sitelink_bus_reopen_failures_total", "Attempts to open a missing serial port again that failed, since the bus was opened.", metrics.Counter, float64(bs.ReopenFailures), "bus", bs.name)
	}

	b.answers.each(func(call, outcome, code string, at time.Time) {
		s.Gauge("sitelink_nayax_last_answer_timestamp_seconds",
			"When Nayax last gave this answer, among the recent sessions (unix seconds).",
			float64(at.UnixMilli())/1e3, "call", call, "outcome", outcome, "code", code)
	})
	return metrics.Write(w, &s, b.timings)
}
