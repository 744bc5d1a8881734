package edge

import (
	"fmt"
	"time"

	"github.com/sitelink/sitelink/store"
)

// statusEvery is how often the STATUS line is refreshed while running, so
// `systemctl status` shows a current outbox depth without flooding the
// manager.
const statusEvery = 10 * time.Second

// heartbeat drives the systemd watchdog and the periodic STATUS line. It
// lives on the engine goroutine (the engine calls beat on every tick), so
// a stuck engine stops the pings and systemd restarts the daemon.
type heartbeat struct {
	watchdog   func()
	interval   time.Duration
	status     func(string)
	line       func() string // the current status line
	lastPing   time.Time
	lastStatus time.Time
}

// newHeartbeat pings o.Watchdog and sends line() to o.Status; either may
// be unset.
func newHeartbeat(o Options, line func() string, now time.Time) *heartbeat {
	// The start-up status line is sent by Run: wait a full period.
	return &heartbeat{watchdog: o.Watchdog, interval: o.WatchdogInterval, status: o.Status, line: line, lastStatus: now}
}

// beat pings the watchdog at half its interval (sd_watchdog_enabled(3))
// and refreshes the status line every statusEvery.
func (h *heartbeat) beat(now time.Time) {
	if h.watchdog != nil && h.interval > 0 && now.Sub(h.lastPing) >= h.interval/2 {
		h.lastPing = now
		h.watchdog()
	}
	if h.status != nil && now.Sub(h.lastStatus) >= statusEvery {
		h.lastStatus = now
		h.status(h.line())
	}
}

// statusLine summarises the daemon for systemd's STATUS=: link state,
// station count and outbox depth, e.g. "connected, 2 stations, outbox 0".
// up is passed in because the link calls OnUp before it reports itself
// connected; why, if set, says why the link is down.
func statusLine(up bool, why string, stations *stationSet, st *store.Store) string {
	link := "buffering"
	if up {
		link = "connected"
	} else if why != "" {
		link = "buffering (" + why + ")"
	}
	n := stations.count()
	nst := fmt.Sprintf("%d stations", n)
	if n == 1 {
		nst = "1 station"
	}
	outbox := "outbox ?"
	if n, err := st.OutboxLen(); err == nil {
		outbox = fmt.Sprintf("outbox %d", n)
	}
	return link + ", " + nst + ", " + outbox
}
