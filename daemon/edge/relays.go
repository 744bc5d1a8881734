package edge

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/wire"
)

// relayWatch follows the relays' presence (P/relays/+, retained) and,
// when a replica comes online, has the engine send again every request
// that awaits Nayax's answer. An event published while no replica was
// subscribed (the broker restarted without persistence, and this site
// reconnected before the relays) reached nobody; without this it would
// wait for policy.result_timeout.
//
// Resends are coalesced: one shortly after an announcement, at most one
// per resendEvery, however many replicas (or forged announcements) come.
type relayWatch struct {
	log    *slog.Logger
	prefix string
	resend func() // queues engine.resendAwaiting on the engine goroutine

	mu     sync.Mutex
	epochs map[string]int64 // relay id -> epoch last seen online
	timer  *time.Timer
	last   time.Time

	online   atomic.Int64 // replicas seen online now
	refused  atomic.Int64 // unreadable or excess presence messages
	resends  atomic.Int64 // resends triggered
	onlineAt atomic.Int64 // unix nanos of the last replica coming online
}

const (
	// maxRelays bounds the replicas remembered: presence is input from
	// the network.
	maxRelays = 256
	// resendDelay lets a burst of replicas (a broker restart) announce
	// themselves before the resend; resendEvery spaces resends.
	resendDelay = 300 * time.Millisecond
	resendEvery = 2 * time.Second
)

func newRelayWatch(log *slog.Logger, prefix string, resend func()) *relayWatch {
	return &relayWatch{log: log, prefix: prefix, resend: resend, epochs: map[string]int64{}}
}

// onPresence runs in paho's router: parse, update a map, maybe arm a
// timer; never blocks.
func (w *relayWatch) onPresence(_ *link.Conn, m paho.Message) {
	defer m.Ack()
	id, ok := wire.ParseRelayTopic(w.prefix, m.Topic())
	if !ok {
		w.refused.Add(1)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(m.Payload()) == 0 {
		delete(w.epochs, id)
		w.online.Store(int64(len(w.epochs)))
		return
	}
	st, err := wire.DecodeRelayState(m.Payload())
	if err != nil {
		w.refused.Add(1)
		return
	}
	if !st.Online {
		delete(w.epochs, id)
		w.online.Store(int64(len(w.epochs)))
		return
	}
	if prev, known := w.epochs[id]; known && prev == st.Epoch {
		return // a retained copy of what we knew (our own reconnect)
	}
	if _, known := w.epochs[id]; !known && len(w.epochs) >= maxRelays {
		w.refused.Add(1)
		return
	}
	w.epochs[id] = st.Epoch
	w.online.Store(int64(len(w.epochs)))
	w.onlineAt.Store(time.Now().UnixNano())
	w.schedule()
}

// schedule arms the coalesced resend; w.mu is held.
func (w *relayWatch) schedule() {
	if w.timer != nil {
		return
	}
	wait := resendDelay
	if next := time.Until(w.last.Add(resendEvery)); next > wait {
		wait = next
	}
	w.timer = time.AfterFunc(wait, func() {
		w.mu.Lock()
		w.timer, w.last = nil, time.Now()
		w.mu.Unlock()
		w.resends.Add(1)
		w.resend()
	})
}

// stop disarms a pending resend.
func (w *relayWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}
