package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// presence owns what the node says about itself on its retained state
// topic: the connect epoch, the birth (online) and the will (offline). A
// birth must come back to the node before the link counts as up: a broker
// ACL that does not match the node's identity accepts the connection and
// then silently drops everything, and a node deaf to its commands must not
// claim to be connected.
//
// It also tells when a second daemon uses this node's id (a cloned SD
// card): every state the node writes carries its instance, a random id
// drawn at start, and a state with another instance on the node's own
// topic, written after this daemon started and seen after its own birth
// came back, can only come from another daemon that is on the broker
// under this id. Two such daemons kick each other off the broker at
// every reconnect (one connection per client id), which the log showed
// as nothing but "connection lost: EOF". The conflict is logged once,
// counted, shown in the state, status and metrics, and the link backs
// off for minutes (link.Contested) so the two do not fight; it ends when
// a connection lasted conflictClear without any sign of the other.
type presence struct {
	topics   wire.Topics
	version  string
	cfg      *atomic.Pointer[config.Edge]
	st       *store.Store
	stations *stationSet
	versions func() (v, g, n int64) // the config versions that run (fleet)
	log      *slog.Logger
	// contested is the link's Contested, set before the link runs.
	contested func(bool)

	instance string    // random, drawn at start: this daemon's and no other's
	started  time.Time // states written before it are a previous daemon's
	born     atomic.Bool
	echo     chan int64 // epochs of our own births, as the broker delivers them

	mu       sync.Mutex
	epoch    int64
	conflict idConflict
	// conflicts counts detections (episodes) since start.
	conflicts atomic.Int64
}

// idConflict is what the node knows of a second daemon under its id.
type idConflict struct {
	Active bool
	Since  time.Time  // this episode's first sign
	Last   time.Time  // its latest sign
	Other  wire.State // the other daemon's latest state
}

// conflictClear is how long a connection must last without a sign of the
// other daemon for a conflict to be over; longer than the other's longest
// wait (conflictMax), so that a conflict that goes on never looks over.
// conflictMin and conflictMax are the link's conflict backoff. Variables
// so tests can shorten them (set before the daemon starts).
var (
	conflictMin   = 2 * time.Minute
	conflictMax   = 15 * time.Minute
	conflictClear = 20 * time.Minute
)

func newPresence(topics wire.Topics, version string, cfg *atomic.Pointer[config.Edge], st *store.Store, stations *stationSet, versions func() (v, g, n int64), log *slog.Logger) *presence {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &presence{topics: topics, version: version, cfg: cfg, st: st, stations: stations, versions: versions, log: log,
		contested: func(bool) {}, instance: hex.EncodeToString(b[:]), started: time.Now(), echo: make(chan int64, 1)}
}

// Epoch is the connect epoch of the current (or last) connection.
func (p *presence) Epoch() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epoch
}

// will takes the next connect epoch from the ledger and returns the
// offline state the broker publishes if the connection dies.
func (p *presence) will() (string, []byte, error) {
	e, err := p.st.NextEpoch()
	if err != nil {
		return "", nil, err
	}
	p.mu.Lock()
	p.epoch = e
	p.mu.Unlock()
	return p.topics.State(), p.payload(false), nil
}

// onState sees the node's own state topic. It keeps the newest online
// epoch of this daemon's births, so that a stale retained birth cannot
// crowd out the one birth waits for; a state of another instance is a
// sign of a second daemon (see presence). It runs on paho's router: it
// does not block.
func (p *presence) onState(c *link.Conn, m paho.Message) {
	defer m.Ack()
	st, err := wire.DecodeState(m.Payload())
	if err != nil || len(m.Payload()) == 0 {
		return
	}
	if st.Instance == p.instance {
		if st.Online {
			select {
			case <-p.echo:
			default:
			}
			p.echo <- st.Epoch
		}
		return
	}
	// Before our first birth the topic may hold what a previous daemon
	// (this one's predecessor, or an older release without an instance)
	// left; after it, only another daemon can have written there. The
	// time guards against a broker that restarted from an old snapshot.
	if p.born.Load() && st.At.After(p.started) {
		p.sawOther(c, st)
	}
}

// sawOther records a sign of another daemon under this node's id; the
// first of an episode is logged, counted, published and slows the link.
func (p *presence) sawOther(c *link.Conn, other wire.State) {
	now := time.Now()
	p.mu.Lock()
	first := !p.conflict.Active
	if first {
		p.conflict.Active, p.conflict.Since = true, now
	}
	p.conflict.Last, p.conflict.Other = now, other
	p.mu.Unlock()
	if !first {
		return
	}
	p.conflicts.Add(1)
	p.log.Error("node.id conflict: another sitelink daemon is connected under this node id (a cloned SD card?); "+
		"the broker keeps one connection per node id, so the two keep dropping each other: reconnecting only every few minutes until it is gone. "+
		"Give one of them its own node.id (and its own certificate and ledger)",
		"node", p.topics.Node, "instance", p.instance, "other_instance", other.Instance, "other_version", other.Version,
		"other_online", other.Online, "other_at", other.At)
	p.contested(true)
	go func() {
		// Say so in the retained state, on the connection the sign came
		// on; watch for the end of the conflict while it lasts.
		if !c.Dead() {
			c.Publish(p.topics.State(), true, p.payload(true))
		}
		p.watchConflict(c)
	}()
}

// watchConflict ends the conflict once c has lasted conflictClear with
// no sign of the other daemon; it returns when c is lost or the conflict
// is over.
func (p *presence) watchConflict(c *link.Conn) {
	start := time.Now()
	for {
		p.mu.Lock()
		active, last := p.conflict.Active, p.conflict.Last
		p.mu.Unlock()
		if !active {
			return
		}
		wait := time.Until(maxTime(start, last).Add(conflictClear))
		if wait <= 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.Done():
			t.Stop()
			return
		}
	}
	p.mu.Lock()
	if !p.conflict.Active {
		p.mu.Unlock()
		return
	}
	p.conflict.Active = false
	since := p.conflict.Since
	p.mu.Unlock()
	p.log.Warn("node.id conflict over: no sign of another daemon under this node id", "node", p.topics.Node,
		"quiet_for", conflictClear, "conflict_since", since)
	p.contested(false)
	if !c.Dead() {
		c.Publish(p.topics.State(), true, p.payload(true))
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Conflict returns the node.id conflict as it stands (Active false if
// none) and the number of conflicts detected since start.
func (p *presence) Conflict() (idConflict, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conflict, p.conflicts.Load()
}

// birth publishes the online state and waits until the broker delivers it
// back to this node, or timeout.
func (p *presence) birth(c *link.Conn, timeout time.Duration) error {
	epoch := p.Epoch()
	select {
	case <-p.echo:
	default:
	}
	if err := c.PublishWait(context.Background(), p.topics.State(), true, p.payload(true)); err != nil {
		return fmt.Errorf("birth: %w", err)
	}
	deadline := time.After(timeout)
	for {
		select {
		case e := <-p.echo:
			if e == epoch {
				p.born.Store(true)
				if cf, _ := p.Conflict(); cf.Active {
					go p.watchConflict(c)
				}
				return nil
			}
		case <-c.Done():
			return errors.New("connection lost before the birth came back")
		case <-deadline:
			return errors.New("the broker accepted the connection but does not deliver this node's own messages: check its ACL and that the username or certificate identity is the node id")
		}
	}
}

// rebirth republishes the retained online state (a new config version).
func (p *presence) rebirth(l *link.Link) {
	if c := l.Conn(); c != nil {
		c.Publish(p.topics.State(), true, p.payload(true))
	}
}

// payload is the node's state message.
func (p *presence) payload(online bool) []byte {
	s := wire.State{
		Online:   online,
		Epoch:    p.Epoch(),
		Version:  p.version,
		Stations: []string{},
		At:       time.Now().UTC(),
		Machines: []wire.Machine{},
		Instance: p.instance,
	}
	if cf, _ := p.Conflict(); cf.Active {
		s.NodeIDConflict = true
	}
	if p.stations != nil {
		s.Stations, _ = p.stations.list()
	}
	if p.versions != nil {
		s.ConfigVersion, s.GroupConfigVersion, s.NodeConfigVersion = p.versions()
	}
	if p.st != nil {
		s.OutboxDepth, _ = p.st.OutboxLen()
	}
	for _, t := range p.cfg.Load().Terminals {
		s.Machines = append(s.Machines, wire.Machine{MachineID: t.MachineID, HwSerial: t.HwSerial})
	}
	b, _ := json.Marshal(s)
	return b
}
