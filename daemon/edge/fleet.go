package edge

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.yaml.in/yaml/v3"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// DefaultConfigTrial is how long a changed mqtt section has to bring the
// link back before the previous one is restored.
const DefaultConfigTrial = 60 * time.Second

// fleet applies configuration changes: desired configs from MQTT (group
// and node) and reloads of the local file. One goroutine decides them in
// turn, so two changes never race; the swap itself runs on the engine.
type fleet struct {
	log   *slog.Logger
	cfg   *atomic.Pointer[config.Edge] // the running configuration (load sets it; the engine swaps it)
	path  string                       // the local file ("" = base, rendered as YAML)
	base  *config.Edge                 // the configuration the daemon was given
	trial time.Duration
	wake  chan struct{}
	st    *store.Store // set by load
	io    fleetIO      // set by run; used only on its goroutine

	mu      sync.Mutex
	running bool              // run accepts reloads
	offers  map[string][]byte // source -> newest payload not yet decided
	reloads []chan error
	// Written by the deciding goroutine (and load, before it starts);
	// read by others under mu.
	fc      store.FleetConfig // what runs over the file, as persisted
	file    []byte            // the local file's bytes now in effect
	prov    config.Provenance
	refused map[string][32]byte  // source -> digest of the last payload that was not even a document
	applied *wire.ReportedConfig // the last applied report, resent when waiting stations change
	waiting []string             // stations whose change waits for their session to end
	waitNew bool                 // waiting changed since the last report
}

// maxUnsent bounds the reports kept for a broker that is away: the newest
// matter, older ones are in the history.
const maxUnsent = 16

// fleetIO is what the deciding goroutine acts through. run receives it
// because the link and the engine are built after the fleet: the link
// needs the fleet's handlers, the engine the configuration load decided.
type fleetIO struct {
	link     *link.Link
	exec     func(context.Context, func(*engine)) error // runs on the engine goroutine
	waiting  <-chan []string                            // station changes still waiting (from the engine)
	rebirth  func()                                     // republish the state with the new versions
	reported string                                     // the config/reported topic
}

// newFleet makes the fleet for a daemon started with base (read from
// path, if set). A decision is ended without being recorded when the
// engine is gone (errShutdown): the retained desired config is offered
// again next time.
func newFleet(log *slog.Logger, cfg *atomic.Pointer[config.Edge], path string, base *config.Edge, trial time.Duration) *fleet {
	if trial <= 0 {
		trial = DefaultConfigTrial
	}
	return &fleet{log: log, cfg: cfg, path: path, base: base, trial: trial, wake: make(chan struct{}, 1),
		offers: map[string][]byte{}, refused: map[string][32]byte{}}
}

func (f *fleet) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// baseFile is the local layer: the file the daemon was started with, or,
// for a configuration built in code, its YAML rendering.
func (f *fleet) baseFile() ([]byte, error) {
	if f.path != "" {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		return b, nil
	}
	return yaml.Marshal(f.base)
}

// load puts the persisted fleet configuration over the file at start-up,
// before the stations open. A layer that no longer fits the file (edited
// since) is dropped, recorded and reported, and forgotten as decided: the
// broker's retained copy is then decided again against the new file.
func (f *fleet) load(st *store.Store) error {
	f.st = st
	file, err := f.baseFile()
	if err != nil {
		return err
	}
	fc, err := st.FleetConfig()
	if err != nil {
		return err
	}
	cfg, prov, err := config.ParseLayers(config.Layers{File: file})
	if err != nil {
		// Options.Config passed validation; a file changed between the
		// caller's read and ours is judged by what the caller read.
		cfg, prov = f.cfg.Load(), config.Provenance{}
	}
	f.fc, f.file, f.prov = fc, file, prov
	if fc.Group == nil && fc.Node == nil {
		return nil
	}
	type try struct{ g, n *store.Desired }
	tries := []try{{fc.Group, fc.Node}}
	if fc.Group != nil && fc.Node != nil {
		tries = append(tries, try{fc.Group, nil}, try{nil, fc.Node})
	}
	var why error
	chosen := try{}
	for _, t := range tries {
		merged, mprov, err := config.ParseLayers(layers(file, t.g, t.n))
		if err == nil && len(config.Diff(cfg, merged).Restart) > 0 {
			err = errors.New("changes keys only the file may set")
		}
		if err != nil {
			if why == nil {
				why = err
			}
			continue
		}
		chosen, cfg, f.prov = t, merged, mprov
		break
	}
	f.cfg.Store(cfg)
	if chosen.g == fc.Group && chosen.n == fc.Node {
		f.log.Info("fleet configuration applied over the file", "group_version", version(fc.Group), "node_version", version(fc.Node))
		return nil
	}
	next := fc
	next.Decided = maps.Clone(fc.Decided)
	next.Group, next.Node = chosen.g, chosen.n
	next.Version = max(version(chosen.g), version(chosen.n))
	for _, d := range []struct {
		src      string
		had, has *store.Desired
	}{{config.SourceGroup, fc.Group, chosen.g}, {config.SourceNode, fc.Node, chosen.n}} {
		if d.had == nil || d.has != nil {
			continue
		}
		msg := "no longer fits the local file, dropped at start-up: " + oneLine(why)
		f.log.Error("fleet configuration dropped", "source", d.src, "version", d.had.Version, "err", oneLine(why))
		delete(next.Decided, d.src)
		f.commit(next, &store.ConfigRecord{Source: d.src, Version: d.had.Version, Error: msg},
			&wire.ReportedConfig{Version: d.had.Version, Error: msg, Source: d.src})
		next = f.fc
	}
	return nil
}

func layers(file []byte, g, n *store.Desired) config.Layers {
	l := config.Layers{File: file}
	if g != nil {
		l.Group = &config.Desired{Version: g.Version, Config: g.Config}
	}
	if n != nil {
		l.Node = &config.Desired{Version: n.Version, Config: n.Config}
	}
	return l
}

func version(d *store.Desired) int64 {
	if d == nil {
		return 0
	}
	return d.Version
}

// handler receives a desired config; it only hands the payload over (the
// newest per source wins), so the link's goroutine never waits.
func (f *fleet) handler(src string) link.Handler {
	return func(_ *link.Conn, m paho.Message) {
		defer m.Ack()
		if len(m.Payload()) == 0 {
			// A cleared retained message: the fleet stopped publishing
			// this source. What runs stays; a new version replaces it.
			f.log.Info("desired config cleared on the broker; keeping the applied one", "source", src)
			return
		}
		f.mu.Lock()
		f.offers[src] = append([]byte(nil), m.Payload()...)
		f.mu.Unlock()
		f.poke()
	}
}

// Reload reads the local file again and applies it, with the fleet's
// layers over it, as a desired config would be: validated first, a bad
// file refused and the running configuration kept (SIGHUP).
func (d *Daemon) Reload(ctx context.Context) error {
	f := d.fleet
	if f.path == "" {
		return errors.New("reload: the daemon was not started from a file")
	}
	done := make(chan error, 1)
	f.mu.Lock()
	if !f.running {
		f.mu.Unlock()
		return errors.New("reload: the daemon is not running (starting or stopping); try again")
	}
	f.reloads = append(f.reloads, done)
	f.mu.Unlock()
	f.poke()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run decides offers and reloads one at a time until ctx ends.
func (f *fleet) run(ctx context.Context, io fleetIO) {
	f.io = io
	f.mu.Lock()
	f.running = true
	f.mu.Unlock()
	f.poke() // reports left unsent by the last run
	for {
		// Unsent reports wait for the link: OnUp pokes, but it runs
		// before the link hands out its connection, so look again.
		var retry <-chan time.Time
		f.mu.Lock()
		if len(f.fc.Unsent) > 0 {
			retry = time.After(time.Second)
		}
		f.mu.Unlock()
		select {
		case <-retry:
		case <-ctx.Done():
			f.mu.Lock()
			f.running = false
			for _, r := range f.reloads {
				r <- errors.New("reload: " + errShutdown.Error())
			}
			f.reloads = nil
			f.mu.Unlock()
			return
		case w := <-io.waiting:
			f.stationsChanged(w)
		case <-f.wake:
		}
		for {
			f.mu.Lock()
			var reload chan error
			var src string
			var payload []byte
			if len(f.reloads) > 0 {
				reload, f.reloads = f.reloads[0], f.reloads[1:]
			} else {
				for _, s := range []string{config.SourceGroup, config.SourceNode} {
					if p, ok := f.offers[s]; ok {
						src, payload = s, p
						delete(f.offers, s)
						break
					}
				}
			}
			f.mu.Unlock()
			if reload != nil {
				reload <- f.reload(ctx)
				continue
			}
			if src == "" {
				break
			}
			f.decide(ctx, src, payload)
		}
		f.reportWaiting()
		f.publishReports(ctx)
	}
}

// decide handles one desired config from MQTT.
func (f *fleet) decide(ctx context.Context, src string, payload []byte) {
	f.mu.Lock()
	fc := f.fc
	file := f.file
	f.mu.Unlock()
	des, err := config.ParseDesired(payload)
	if err != nil {
		// Not a document at all: no version to remember, so the same
		// payload redelivered on every connection is refused once.
		sum := sha256.Sum256(payload)
		if f.refused[src] == sum {
			return
		}
		f.refused[src] = sum
		f.log.Warn("desired config refused", "source", src, "err", err)
		f.commit(fc, &store.ConfigRecord{Source: src, Error: err.Error()},
			&wire.ReportedConfig{Error: err.Error(), Source: src})
		return
	}
	delete(f.refused, src)
	if seen := fc.Decided[src]; des.Version <= seen {
		f.log.Debug("desired config already decided", "source", src, "version", des.Version, "decided", seen)
		return
	}
	sd := &store.Desired{Version: des.Version, Config: des.Config}
	next := fc
	next.Decided = maps.Clone(fc.Decided)
	if next.Decided == nil {
		next.Decided = map[string]int64{}
	}
	next.Decided[src] = des.Version
	g, n := fc.Group, fc.Node
	if src == config.SourceGroup {
		g = sd
	} else {
		n = sd
	}
	prov, err := f.apply(ctx, layers(file, g, n))
	if errors.Is(err, errShutdown) {
		return
	}
	rec := &store.ConfigRecord{Source: src, Version: des.Version, Applied: err == nil}
	rep := &wire.ReportedConfig{Version: des.Version, Applied: err == nil, Source: src}
	if err != nil {
		f.log.Warn("desired config not applied", "source", src, "version", des.Version, "err", oneLine(err))
		rec.Error, rep.Error = oneLine(err), oneLine(err)
		f.commit(next, rec, rep)
		return
	}
	next.Group, next.Node, next.Version = g, n, des.Version
	rec.Config = des.Config
	f.mu.Lock()
	f.prov = prov
	f.applied = rep
	f.mu.Unlock()
	f.log.Info("desired config applied", "source", src, "version", des.Version)
	f.commit(next, rec, rep)
	f.io.rebirth()
}

// reload applies the local file again under the fleet's layers.
func (f *fleet) reload(ctx context.Context) error {
	file, err := f.baseFile()
	if err != nil {
		f.log.Error("reload refused", "err", err)
		return err
	}
	f.mu.Lock()
	fc := f.fc
	f.mu.Unlock()
	// The files the new file names (secrets, certificates) are checked as
	// at start: a reload that names a missing key file would run until the
	// next restart and then fail it, a restart loop far from the edit.
	var prov config.Provenance
	if _, err = config.LoadEdgeChecked(f.path); err == nil {
		prov, err = f.apply(ctx, layers(file, fc.Group, fc.Node))
	}
	if errors.Is(err, errShutdown) {
		return err
	}
	if err != nil {
		f.log.Error("reload refused; the running configuration stays", "file", f.path, "err", oneLine(err))
		f.commit(fc, &store.ConfigRecord{Source: config.SourceFile, Error: oneLine(err)}, nil)
		return fmt.Errorf("reload %s refused:\n%w", f.path, err)
	}
	f.mu.Lock()
	f.file, f.prov = file, prov
	f.mu.Unlock()
	f.log.Info("configuration reloaded", "file", f.path)
	f.commit(fc, &store.ConfigRecord{Source: config.SourceFile, Applied: true}, nil)
	f.io.rebirth()
	return nil
}

// commit makes next the fleet state and persists it, with the history
// record (if any) and the report queued for the broker, in one
// transaction: a decision is on disk before the fleet hears of it. A
// failed write is logged; the state in memory still follows what runs.
func (f *fleet) commit(next store.FleetConfig, rec *store.ConfigRecord, rep *wire.ReportedConfig) {
	now := time.Now().UTC()
	next.At = now
	if rep != nil {
		f.mu.Lock()
		rep.At, rep.GroupVersion, rep.NodeVersion = now, version(next.Group), version(next.Node)
		if rep.Applied {
			rep.Waiting, f.waitNew = f.waiting, false
		}
		f.mu.Unlock()
		if b, err := json.Marshal(rep); err == nil {
			next.Unsent = append(slices.Clone(next.Unsent), b)
			if n := len(next.Unsent); n > maxUnsent {
				next.Unsent = next.Unsent[n-maxUnsent:]
			}
		}
	}
	var err error
	if rec != nil {
		rec.At = now
		err = f.st.RecordConfig(&next, *rec)
	} else {
		err = f.st.PutFleetConfig(next)
	}
	if err != nil {
		f.log.Error("persist config decision", "err", err)
	}
	f.mu.Lock()
	f.fc = next
	f.mu.Unlock()
}

// apply validates the layered configuration and makes it the running one:
// first a changed mqtt section on trial (rolled back if the link does not
// come back in time), then everything else at once on the engine, with
// station changes waiting for their sessions to end.
func (f *fleet) apply(ctx context.Context, l config.Layers) (config.Provenance, error) {
	next, prov, err := config.ParseLayers(l)
	if err != nil {
		return nil, err
	}
	cur := f.cfg.Load()
	ch := config.Diff(cur, next)
	if len(ch.Restart) > 0 {
		return nil, fmt.Errorf("%s: cannot change while running; restart the daemon (systemctl restart sitelink)", strings.Join(ch.Restart, ", "))
	}
	prev := f.io.link.Options()
	if ch.MQTT {
		if err := f.tryLink(ctx, prev, cur, next); err != nil {
			return nil, err
		}
	}
	err = f.io.exec(ctx, func(e *engine) { e.reconfigure(next, ch.Stations, time.Now()) })
	if err != nil {
		if ch.MQTT {
			f.io.link.Reconfigure(prev)
		}
		return nil, errShutdown
	}
	// The engine said which station changes wait before exec returned:
	// the report of this decision carries them.
	select {
	case w := <-f.io.waiting:
		f.stationsChanged(w)
	default:
	}
	return prov, nil
}

// tryLink reconnects with next's mqtt section and waits for the link;
// without it in time, the link's previous settings (prev) are restored.
func (f *fleet) tryLink(ctx context.Context, prev link.Options, cur, next *config.Edge) error {
	keys := changedKeys("mqtt", cur.MQTT, next.MQTT)
	lo, err := next.MQTT.LinkOptions()
	if err != nil {
		return err
	}
	f.log.Info("trying new mqtt settings", "keys", keys, "rollback_after", f.trial)
	gen := f.io.link.Reconfigure(lo)
	tctx, cancel := context.WithTimeout(ctx, f.trial)
	err = f.io.link.WaitGen(tctx, gen)
	cancel()
	if err == nil {
		return nil
	}
	f.io.link.Reconfigure(prev)
	if ctx.Err() != nil {
		return errShutdown
	}
	f.log.Error("new mqtt settings did not bring the link back; rolled back", "keys", keys, "after", f.trial)
	return fmt.Errorf("%s: the link did not come back within %s with the new settings; rolled back to the previous ones", strings.Join(keys, ", "), f.trial)
}

// changedKeys lists the yaml keys of two structs' differing fields.
func changedKeys(prefix string, a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			name, _, _ := strings.Cut(va.Type().Field(i).Tag.Get("yaml"), ",")
			out = append(out, prefix+"."+name)
		}
	}
	if len(out) == 0 {
		out = []string{prefix}
	}
	return out
}

// stationsChanged notes which station changes still wait, as the engine
// reported them; run then reports the applied version again.
func (f *fleet) stationsChanged(waiting []string) {
	f.mu.Lock()
	if !slices.Equal(f.waiting, waiting) {
		f.waiting, f.waitNew = waiting, true
	}
	f.mu.Unlock()
}

// reportWaiting reports the last applied version again when the stations
// it waits for changed (one is done, or all are).
func (f *fleet) reportWaiting() {
	f.mu.Lock()
	base, dirty, fc := f.applied, f.waitNew, f.fc
	f.mu.Unlock()
	if base == nil || !dirty {
		return
	}
	r := *base
	f.commit(fc, nil, &r)
}

// publishReports sends the unsent reports in order (retained) and drops
// them from the ledger once the broker has them; a down link leaves them
// for the next connection.
func (f *fleet) publishReports(ctx context.Context) {
	f.mu.Lock()
	unsent := slices.Clone(f.fc.Unsent)
	f.mu.Unlock()
	if len(unsent) == 0 {
		return
	}
	c := f.io.link.Conn()
	if c == nil {
		return
	}
	sent := 0
	for _, b := range unsent {
		if err := c.PublishWait(ctx, f.io.reported, true, b); err != nil {
			f.log.Warn("publish config report", "err", err)
			break
		}
		sent++
	}
	if sent == 0 {
		return
	}
	f.mu.Lock()
	next := f.fc
	next.Unsent = slices.Clone(next.Unsent[sent:])
	f.mu.Unlock()
	f.commit(next, nil, nil)
}

// versions returns the config versions that run: the last applied one
// (the state's config_version), the group's and the node's.
func (f *fleet) versions() (v, g, n int64) {
	if f == nil {
		return 0, 0, 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fc.Version, version(f.fc.Group), version(f.fc.Node)
}

// view is the effective configuration with the source of every value, for
// `sitelink config show`.
func (f *fleet) view() localapi.ConfigView {
	f.mu.Lock()
	prov := f.prov
	fc := f.fc
	waiting := append([]string{}, f.waiting...)
	f.mu.Unlock()
	cfg := f.cfg.Load()
	v := localapi.ConfigView{Node: cfg.Node.ID, File: f.path, Version: fc.Version,
		GroupVersion: version(fc.Group), NodeVersion: version(fc.Node), WaitingStations: waiting}
	for _, s := range config.Settings(cfg, prov) {
		v.Settings = append(v.Settings, localapi.Setting{Key: s.Key, Value: s.Value, Source: s.Source})
	}
	return v
}

// oneLine joins a multi-line error (config Problems) with "; ", the form
// config/reported and a log line carry.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
