package edge

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// pumpWindow is how many events may await their PUBACK at once. A window,
// not one-at-a-time, is what lets the drain run at broker speed.
const pumpWindow = 256

// Acknowledged events are deleted by the ledger's next write transaction
// (store.OutboxAcked), so a command's events cost no commit of their own.
// When none comes within ackFlushDelay, or ackFlushBatch acknowledgements
// have piled up (a drain after an outage), the pump commits the deletes
// itself, the latter on a goroutine of its own while it publishes on:
// bounded work for whichever transaction carries them, and at most
// ackFlushDelay of events published again after a crash.
const (
	ackFlushDelay = time.Second
	ackFlushBatch = 4 * pumpWindow
)

// pump publishes the outbox in order: read a batch after the cursor,
// publish, and delete entries from the head as their PUBACKs arrive. On a
// lost connection the cursor resets, so everything not acknowledged is
// published again on the next connection (at-least-once; consumers dedupe
// by event id).
type pump struct {
	st     *store.Store
	link   *link.Link
	topics wire.Topics
	log    *slog.Logger
	wake   chan struct{}
	ackTO  time.Duration

	published atomic.Uint64 // events acknowledged by the broker
}

func newPump(st *store.Store, l *link.Link, t wire.Topics, log *slog.Logger, ackTimeout time.Duration) *pump {
	return &pump{st: st, link: l, topics: t, log: log, wake: make(chan struct{}, 1), ackTO: ackTimeout}
}

// poke tells the pump that new entries were committed.
func (p *pump) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// flush waits until the outbox is empty, the link is down, or timeout.
func (p *pump) flush(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && p.link.Connected() {
		if n, err := p.st.OutboxLen(); err != nil || n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *pump) run(ctx context.Context) {
	for {
		conn, err := p.link.Wait(ctx)
		if err != nil {
			return
		}
		err = p.drain(ctx, conn)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// A store error or a connection going away: try again
			// shortly (on this connection if it survived).
			p.log.Warn("outbox drain interrupted", "err", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
		}
	}
}

type inflight struct {
	seq uint64
	tok paho.Token
}

var errAckTimeout = errors.New("no PUBACK within timeout")

// drain publishes until the connection drops or ctx ends.
func (p *pump) drain(ctx context.Context, conn *link.Conn) error {
	var (
		cursor  uint64
		flight  []inflight
		acked   []uint64
		pending []store.OutboxEntry
		flushT  = time.NewTimer(time.Hour)
		flushC  <-chan time.Time // non-nil while acknowledged entries await their delete
	)
	flushT.Stop()
	flushAcked := func() error {
		flushC = nil
		return p.st.FlushAcked()
	}
	// A backlog's deletes are committed by a goroutine of their own, so
	// that publishing goes on while their commit writes and syncs (it
	// takes a millisecond or more, and the window would run dry
	// meanwhile). One flush at a time; a request while one runs is
	// served by the next.
	bgFlush := make(chan struct{}, 1)
	bgErr := make(chan error, 1)
	bgDone := make(chan struct{})
	go func() {
		defer close(bgDone)
		for range bgFlush {
			if err := p.st.FlushAcked(); err != nil {
				select {
				case bgErr <- err:
				default:
				}
			}
		}
	}()
	defer func() {
		close(bgFlush)
		<-bgDone
		flushT.Stop()
		if flushC != nil {
			if err := p.st.FlushAcked(); err != nil {
				p.log.Warn("outbox: delete acknowledged entries", "err", err)
			}
		}
		if len(flight) > 0 {
			seqs := make([]uint64, len(flight))
			for i, f := range flight {
				seqs[i] = f.seq
			}
			if err := p.st.OutboxAttempted(seqs...); err != nil {
				p.log.Warn("outbox: record attempts", "err", err)
			}
		}
	}()
	for {
		// Refill once a sixteenth of the window is free: a read is one
		// View, and a window left to run low is the broker waiting.
		if room := pumpWindow - len(flight); room > pumpWindow/16 || len(flight) == 0 {
			var err error
			pending, err = p.st.OutboxAfter(cursor, room)
			if err != nil {
				return err
			}
			for _, e := range pending {
				flight = append(flight, inflight{seq: e.Seq, tok: conn.Publish(p.topics.Event(e.Type), false, e.Payload)})
				cursor = e.Seq
			}
		}
		if len(flight) == 0 {
			select {
			case <-p.wake:
				continue
			case <-flushC:
				if err := flushAcked(); err != nil {
					return err
				}
				continue
			case <-conn.Done():
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		// Wait for the oldest; then collect every completed one behind it.
		timer := time.NewTimer(p.ackTO)
		select {
		case <-flight[0].tok.Done():
			timer.Stop()
		case <-flushC:
			timer.Stop()
			if err := flushAcked(); err != nil {
				return err
			}
			continue
		case <-conn.Done():
			timer.Stop()
			return nil
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
			conn.Abort(errAckTimeout)
			return errAckTimeout
		}
		acked = acked[:0]
		for len(flight) > 0 {
			select {
			case <-flight[0].tok.Done():
			default:
				goto done
			}
			if err := flight[0].tok.Error(); err != nil {
				// A failed publish means the connection is going away.
				conn.Abort(err)
				return err
			}
			acked = append(acked, flight[0].seq)
			flight = flight[1:]
		}
	done:
		if len(acked) > 0 {
			p.st.OutboxAcked(acked...)
			p.published.Add(uint64(len(acked)))
			switch {
			case p.st.AckedPending() >= ackFlushBatch:
				select {
				case bgFlush <- struct{}{}:
				default: // one is running or asked for
				}
				select {
				case err := <-bgErr:
					return err
				default:
				}
			case flushC == nil:
				flushT.Reset(ackFlushDelay)
				flushC = flushT.C
			}
		}
	}
}
