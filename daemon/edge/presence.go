package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
type presence struct {
	topics   wire.Topics
	version  string
	cfg      *atomic.Pointer[config.Edge]
	st       *store.Store
	stations *stationSet
	versions func() (v, g, n int64) // the config versions that run (fleet)

	echo chan int64 // epochs of our own births, as the broker delivers them

	mu    sync.Mutex
	epoch int64
}

func newPresence(topics wire.Topics, version string, cfg *atomic.Pointer[config.Edge], st *store.Store, stations *stationSet, versions func() (v, g, n int64)) *presence {
	return &presence{topics: topics, version: version, cfg: cfg, st: st, stations: stations, versions: versions, echo: make(chan int64, 1)}
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

// onState sees the node's own state topic; it keeps the newest online
// epoch so that a stale retained birth cannot crowd out the one birth
// waits for.
func (p *presence) onState(_ *link.Conn, m paho.Message) {
	defer m.Ack()
	var st wire.State
	if json.Unmarshal(m.Payload(), &st) == nil && st.Online {
		select {
		case <-p.echo:
		default:
		}
		p.echo <- st.Epoch
	}
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
