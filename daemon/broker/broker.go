package broker

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Sentinel errors of the embedded broker.
var (
	// ErrClosed means the broker was closed.
	ErrClosed = errors.New("broker closed")
)

// DefaultAddr is where the broker listens unless told otherwise: loopback
// with a free port, because the broker authenticates nobody.
const DefaultAddr = "127.0.0.1:0"

const listenerID = "tcp"

// Options configure Start.
type Options struct {
	// Addr is the TCP host:port to listen on; empty means DefaultAddr.
	Addr string
	// Logger receives mochi's own logs; nil silences them.
	Logger *slog.Logger
}

// Broker is a running embedded MQTT broker.
type Broker struct {
	srv  *mqtt.Server
	addr string // actual host:port, kept across Suspend/Resume

	mu        sync.Mutex
	suspended bool
	closed    bool
}

// Start starts a broker that allows every client and topic and returns
// once its listener accepts connections.
func Start(o Options) (*Broker, error) {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	caps := mqtt.NewDefaultServerCapabilities()
	// Let a persistent session queue as many QoS 1 messages as mochi can
	// number (the default 8192 drops a long outbox drain to an offline
	// relay), and let a fast publisher run ahead of slow subscribers.
	caps.MaximumInflight = math.MaxUint16
	caps.MaximumClientWritesPending = 64 * 1024
	srv := mqtt.New(&mqtt.Options{
		Capabilities: caps,
		Logger:       o.Logger,
	})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		return nil, fmt.Errorf("start broker: add auth hook: %w", err)
	}
	l := newTCPListener(listenerID, o.Addr)
	if err := srv.AddListener(l); err != nil {
		return nil, fmt.Errorf("start broker: listen on %s: %w", o.Addr, err)
	}
	b := &Broker{srv: srv, addr: l.Address()}
	if err := srv.Serve(); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("start broker: %w", err)
	}
	return b, nil
}

// Addr returns the host:port the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// URL returns the broker's address as a paho server URL, tcp://host:port.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Suspend closes the listener and disconnects every client, as a broker
// that went down would, but keeps sessions, subscriptions, retained and
// queued messages for Resume. Clients see their connection lost.
// Suspending a suspended broker does nothing.
func (b *Broker) Suspend() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("suspend broker: %w", ErrClosed)
	}
	if b.suspended {
		return nil
	}
	b.closeListener()
	b.suspended = true
	return nil
}

// closeListener closes the listener and drops its clients, waiting until
// they are gone.
//
// mochi's own way (Server.Close, or Listeners.Close with its closer)
// calls Clients.GetByListener, which takes the clients' read lock twice
// and deadlocks when a client connects or disconnects in between
// (mochi-mqtt/server#488, unfixed in v2.7.9). So the broker closes its
// listener itself, with a closer that reads the clients through GetAll,
// before Server.Close ever runs; see also tcpListener.
func (b *Broker) closeListener() {
	b.srv.Listeners.Close(listenerID, b.disconnectAll)
	b.srv.Listeners.Delete(listenerID)
}

// disconnectAll drops the connected clients of the listener id.
func (b *Broker) disconnectAll(id string) {
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Listener == id && !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
}

// Resume listens again on the same address after Suspend. It fails if
// another process took the port in the meantime. Resuming a running
// broker does nothing.
func (b *Broker) Resume() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("resume broker: %w", ErrClosed)
	}
	if !b.suspended {
		return nil
	}
	l := newTCPListener(listenerID, b.addr)
	if err := b.srv.AddListener(l); err != nil {
		return fmt.Errorf("resume broker: listen on %s: %w", b.addr, err)
	}
	b.srv.Listeners.Serve(listenerID, b.srv.EstablishConnection)
	b.suspended = false
	return nil
}

// Close stops the broker, disconnects every client and discards all
// state. It may be called more than once.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if !b.suspended {
		b.closeListener()
	}
	if err := b.srv.Close(); err != nil {
		return fmt.Errorf("close broker: %w", err)
	}
	return nil
}

// allowAll lets every client connect and use every topic. It replaces
// mochi's hooks/auth.AllowHook, whose package drags in a YAML library
// for its ledger that sitelink does not need.
type allowAll struct{ mqtt.HookBase }

func (*allowAll) ID() string { return "allow-all" }

func (*allowAll) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (*allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (*allowAll) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
