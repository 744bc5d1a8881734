package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/guard"
	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/metrics"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// apiServer serves the local API socket and, if configured, /metrics on
// a TCP address.
type apiServer struct {
	l, ml   net.Listener
	srv, ms *http.Server
}

// HTTPTimeouts bound how long one client may hold a connection of an HTTP
// server, so that idle or slow clients cannot pile up connections (each a
// file descriptor, which the MQTT link and the API socket need too); zero
// fields take DefaultMetricsTimeouts'.
type HTTPTimeouts struct {
	ReadHeader time.Duration // from accepting, or from the end of the last response, to a request's headers
	Read       time.Duration // a whole request
	Write      time.Duration // from a request's headers to the end of its response
	Idle       time.Duration // a kept-alive connection waiting for its next request
}

// DefaultMetricsTimeouts are node.metrics_listen's: a scrape is one small
// GET; Prometheus keeps its connection across scrapes (15 s apart by
// default), so Idle stays above that.
var DefaultMetricsTimeouts = HTTPTimeouts{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 30 * time.Second, Idle: 60 * time.Second}

// apiTimeouts are the API socket's: only the service's user and group
// reach it, and a self-test switches a contactor twice before answering.
var apiTimeouts = HTTPTimeouts{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 2 * time.Minute, Idle: 60 * time.Second}

// metricsConnections caps node.metrics_listen's connections: a scraper
// needs one or two, and on a board whose LimitNOFILE is a few thousand a
// LAN neighbour must not take them all.
const metricsConnections = 16

// newServer is an HTTP server with every timeout set (zero fields of t
// from def) and a bound on request headers.
func newServer(h http.Handler, t, def HTTPTimeouts) *http.Server {
	or := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: or(t.ReadHeader, def.ReadHeader), ReadTimeout: or(t.Read, def.Read),
		WriteTimeout: or(t.Write, def.Write), IdleTimeout: or(t.Idle, def.Idle), MaxHeaderBytes: 16 << 10}
}

// listenAPI opens the API socket and node.metrics_listen (timeouts t);
// connections over the metrics listener's cap are counted in refused.
func listenAPI(node config.Node, b backend, t HTTPTimeouts, refused *guard.Refusals, log *slog.Logger) (*apiServer, error) {
	l, err := localapi.Listen(node.APISocket)
	if err != nil {
		return nil, err
	}
	a := &apiServer{l: l, srv: newServer(localapi.Handler(b), apiTimeouts, apiTimeouts)}
	if addr := node.MetricsListen; addr != "" {
		// Only /metrics: the API socket's other endpoints control
		// stations and must stay local.
		ml, err := net.Listen("tcp", addr)
		if err != nil {
			_ = l.Close()
			return nil, fmt.Errorf("node.metrics_listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", metrics.ContentType)
			if err := b.Metrics(w); err != nil {
				log.Warn("metrics", "err", err)
			}
		})
		a.ml = guard.Listen(ml, metricsConnections, func() { refused.Refuse(guard.ReasonConnections) })
		a.ms = newServer(mux, t, DefaultMetricsTimeouts)
	}
	return a, nil
}

// metricsAddr is the TCP address /metrics is served on ("" if none).
func (a *apiServer) metricsAddr() string {
	if a.ml == nil {
		return ""
	}
	return a.ml.Addr().String()
}

func (a *apiServer) serve(ctx context.Context) {
	go func() {
		<-ctx.Done()
		a.close()
	}()
	if a.ms != nil {
		go func() { _ = a.ms.Serve(a.ml) }()
	}
	if err := a.srv.Serve(a.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = err
	}
}

func (a *apiServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
	if a.ms != nil {
		_ = a.ms.Shutdown(ctx)
	}
}

// backend serves the local API (localapi.Backend) from the pieces that
// own the answers; anything that changes a session runs on the engine
// (exec).
type backend struct {
	st       *store.Store
	stations *stationSet
	cfg      *atomic.Pointer[config.Edge]
	link     *link.Link
	pres     *presence
	pump     *pump
	fleet    *fleet
	exec     func(context.Context, func(*engine)) error
	version  string
	relays   *relayWatch
	// noops and refused count what the daemon answered without acting
	// and the metrics connections it turned away, for /metrics.
	noops, refused *guard.Refusals
	cortinaRefused *cortinaRefusals
	answers        *lastAnswers // Nayax's last answers by kind, noted by the engine
	timings        *metrics.Set // latencies the engine records
}

var _ localapi.Backend = backend{}

func (b backend) Status() (localapi.Status, error) {
	n, err := b.st.OutboxLen()
	if err != nil {
		return localapi.Status{}, err
	}
	cf, conflicts := b.pres.Conflict()
	s := localapi.Status{
		Node:            b.cfg.Load().Node.ID,
		Connected:       b.link.Connected(),
		Epoch:           b.pres.Epoch(),
		OutboxDepth:     n,
		Version:         b.version,
		Stations:        b.stations.count(),
		Published:       b.pump.published.Load(),
		Instance:        b.pres.instance,
		NodeIDConflicts: conflicts,
	}
	if cf.Active {
		s.NodeIDConflict = &localapi.NodeIDConflict{Since: cf.Since, LastSeen: cf.Last,
			OtherInstance: cf.Other.Instance, OtherVersion: cf.Other.Version, OtherOnline: cf.Other.Online}
	}
	return s, nil
}

func (b backend) Config() (localapi.ConfigView, error) { return b.fleet.view(), nil }

func (b backend) Stations() ([]localapi.Station, error) {
	active := map[string]string{}
	err := b.st.View(func(tx *store.Tx) error {
		open, err := tx.ActiveSessions()
		for _, s := range open {
			if s.State.Active() {
				active[s.Station] = s.SparkTransactionID
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	order, sts := b.stations.list()
	out := make([]localapi.Station, 0, len(order))
	for _, n := range order {
		r := sts[n].Read()
		out = append(out, localapi.Station{
			Number: n, Driver: b.stations.driver(n), Contactor: r.Contactor, CPState: string(r.CP),
			EnergyWh: r.EnergyWh, PowerW: r.PowerW, Fault: r.Fault, Session: active[n],
		})
	}
	return out, nil
}

func (b backend) Sessions(limit int) ([]localapi.Session, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []localapi.Session
	err := b.st.View(func(tx *store.Tx) error {
		return tx.Sessions(limit, func(s store.Session) bool {
			out = append(out, SessionView(s, b.cfg.Load().Tariff))
			return true
		})
	})
	if out == nil {
		out = []localapi.Session{}
	}
	return out, err
}

// SessionView is a ledger session as the local API shows it (`sitelink
// sessions`), also for sessions read back from the archive. conf prices a
// session recorded before sessions kept their tariff.
func SessionView(s store.Session, conf config.Tariff) localapi.Session {
	answers := make([]localapi.Answer, 0, len(s.Answers))
	for _, a := range s.Answers {
		answers = append(answers, localapi.Answer(a))
	}
	v := localapi.Session{
		Answers:            answers,
		SparkTransactionID: s.SparkTransactionID, NayaxTransactionID: s.NayaxTransactionID,
		Station: s.Station, State: string(s.State), Origin: s.Origin, EnergyWh: s.EnergyWh, StopReason: s.StopReason,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, Request: requestView(s.Request), LastAnswer: (*localapi.Answer)(s.LastAnswer),
		Payment: (*localapi.PaymentRecord)(s.Payment),
	}
	setMoney(&v, s, conf)
	return v
}

// setMoney fills a session view's money from the ledger's minor units:
// the decimals operators and scripts read (authorized_amount, amount, as
// before the ledger kept integers) and the integers with their scale.
// conf prices a session recorded before sessions kept their tariff.
func setMoney(v *localapi.Session, s store.Session, conf config.Tariff) {
	cur, dp := conf.Currency, conf.DecimalPlace
	if s.Tariff != nil {
		cur, dp = s.Tariff.Currency, s.Tariff.DecimalPlace
	}
	v.Currency, v.DecimalPlace = cur, dp
	v.AuthorizedMinor, v.AmountMinor = s.AuthorizedMinor, s.AmountMinor
	v.AuthorizedAmount = localapi.Decimal(store.FormatDecimal(s.AuthorizedMinor, dp))
	v.Amount = localapi.Decimal(store.FormatDecimal(s.AmountMinor, dp))
}

func (b backend) Outbox(limit int) ([]localapi.OutboxEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	es, err := b.st.OutboxHead(limit)
	if err != nil {
		return nil, err
	}
	out := make([]localapi.OutboxEntry, 0, len(es))
	for _, e := range es {
		out = append(out, localapi.OutboxEntry{ID: e.ID, Type: e.Type, Seq: e.Seq, CreatedAt: e.CreatedAt, Attempts: e.Attempts, Status: "queued"})
	}
	// Requests published but not yet answered by Nayax.
	err = b.st.View(func(tx *store.Tx) error {
		open, err := tx.OpenSessions()
		for _, s := range open {
			if r := s.Request; r != nil && len(r.EventIDs) > 0 {
				out = append(out, localapi.OutboxEntry{ID: r.EventIDs[len(r.EventIDs)-1], Type: requestEvent[r.Kind], CreatedAt: r.FirstAt,
					Attempts: r.Attempts, Status: "awaiting-answer", Session: s.SparkTransactionID})
			}
		}
		return err
	})
	return out, err
}

func requestView(r *store.Request) *localapi.Request {
	if r == nil {
		return nil
	}
	v := &localapi.Request{Kind: r.Kind, Call: r.Call, Attempts: r.Attempts, FirstAt: r.FirstAt, NextAt: r.NextAt}
	if n := len(r.EventIDs); n > 0 {
		v.EventID = r.EventIDs[n-1]
	}
	return v
}

func (b backend) Stop(ctx context.Context, station string) error {
	var serr error
	if err := b.exec(ctx, func(e *engine) { serr = e.stopStation(station, time.Now()) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("%w: %v", localapi.ErrBadRequest, serr)
	}
	return nil
}

func (b backend) Resolve(ctx context.Context, r localapi.ResolveRequest) (localapi.Session, error) {
	var s store.Session
	var serr error
	var tariff config.Tariff
	if err := b.exec(ctx, func(e *engine) {
		s, serr = e.resolve(wire.Resolve{SparkTransactionId: r.SparkTransactionID, Note: r.Note, By: r.By}, time.Now())
		tariff = e.conf().Tariff
	}); err != nil {
		return localapi.Session{}, err
	}
	if errors.Is(serr, errNoResolve) {
		return localapi.Session{}, fmt.Errorf("%w: %v", localapi.ErrBadRequest, serr)
	}
	if serr != nil {
		return localapi.Session{}, serr
	}
	return SessionView(s, tariff), nil
}

func (b backend) SelfTest(ctx context.Context, station string) (string, error) {
	var rep string
	var serr error
	if err := b.exec(ctx, func(e *engine) { rep, serr = e.selfTest(station) }); err != nil {
		return "", err
	}
	return rep, serr
}

func (b backend) Start(ctx context.Context, r localapi.StartRequest) (localapi.StartResult, error) {
	var s store.Session
	var serr error
	amount := "" // the policy's
	if r.Amount != 0 {
		amount = store.FloatDecimal(r.Amount) // as the operator wrote it
	}
	if err := b.exec(ctx, func(e *engine) { s, serr = e.startSession(r.Station, amount, time.Now()) }); err != nil {
		return localapi.StartResult{}, err
	}
	if serr != nil {
		return localapi.StartResult{}, fmt.Errorf("%w: %v", localapi.ErrBadRequest, serr)
	}
	return localapi.StartResult{SparkTransactionID: s.SparkTransactionID, Station: s.Station}, nil
}

func (b backend) Sim(r localapi.SimRequest) error {
	s, exists := b.stations.sim(r.Station)
	if s == nil {
		if exists {
			return fmt.Errorf("%w: station %q is not simulated", localapi.ErrBadRequest, r.Station)
		}
		return fmt.Errorf("%w: unknown station %q", localapi.ErrBadRequest, r.Station)
	}
	switch r.Action {
	case "plug":
		s.Plug()
	case "unplug":
		s.Unplug()
	case "fault":
		reason := r.Reason
		if reason == "" {
			reason = "simulated fault"
		}
		if n := utf8.RuneCountInString(reason); n > localapi.MaxSimReason || !utf8.ValidString(reason) {
			return fmt.Errorf("%w: fault reason: %d characters, at most %d of valid UTF-8", localapi.ErrBadRequest, n, localapi.MaxSimReason)
		}
		s.Fault(reason)
	case "clear":
		s.Clear()
	case "power":
		// What the station could deliver: a simulated vehicle beyond it
		// would only be metered as implausible.
		limit := b.stations.definition(r.Station).PowerLimitKW()
		if math.IsNaN(r.KW) || r.KW < 0 || r.KW > limit {
			return fmt.Errorf("%w: power %v kW: station %s takes 0 to %v kW (stations[].max_power_kw)", localapi.ErrBadRequest, r.KW, r.Station, limit)
		}
		if err := s.SetPower(r.KW); err != nil {
			return fmt.Errorf("%w: %v", localapi.ErrBadRequest, err)
		}
	case "start":
		// The station's start button: a Remote Start.
		_, err := b.Start(context.Background(), localapi.StartRequest{Station: r.Station})
		return err
	default:
		return fmt.Errorf("%w: unknown sim action %q (plug|unplug|fault|clear|power|start)", localapi.ErrBadRequest, r.Action)
	}
	return nil
}
