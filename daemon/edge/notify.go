package edge

import (
	"fmt"
	"time"
)

// statusEvery is how often the STATUS line is refreshed while running, so
// `systemctl status` shows a current outbox depth without flooding the
// manager.
const statusEvery = 10 * time.Second

// heartbeat drives the systemd watchdog and the periodic STATUS line. It
// lives on the engine goroutine (engine.run calls beat on every tick), so
// a stuck engine stops the pings and systemd restarts the daemon.
type heartbeat struct {
	d          *Daemon
	lastPing   time.Time
	lastStatus time.Time
}

func (d *Daemon) newHeartbeat(now time.Time) *heartbeat {
	// The start-up status line was just sent: wait a full period.
	return &heartbeat{d: d, lastStatus: now}
}

// beat pings the watchdog at half its interval (sd_watchdog_enabled(3))
// and refreshes the status line every statusEvery.
func (h *heartbeat) beat(now time.Time) {
	o := h.d.o
	if o.Watchdog != nil && o.WatchdogInterval > 0 && now.Sub(h.lastPing) >= o.WatchdogInterval/2 {
		h.lastPing = now
		o.Watchdog()
	}
	if o.Status != nil && now.Sub(h.lastStatus) >= statusEvery {
		h.lastStatus = now
		h.d.status(h.d.statusLine(h.d.link != nil && h.d.link.Connected(), ""))
	}
}

// statusLine summarises the daemon for systemd's STATUS=: link state,
// station count and outbox depth, e.g. "connected, 2 stations, outbox 0".
// up is passed in because the link calls OnUp before it reports itself
// connected; why, if set, says why the link is down.
func (d *Daemon) statusLine(up bool, why string) string {
	link := "buffering"
	if up {
		link = "connected"
	} else if why != "" {
		link = "buffering (" + why + ")"
	}
	n := d.stationCount()
	stations := fmt.Sprintf("%d stations", n)
	if n == 1 {
		stations = "1 station"
	}
	outbox := "outbox ?"
	if n, err := d.st.OutboxLen(); err == nil {
		outbox = fmt.Sprintf("outbox %d", n)
	}
	return link + ", " + stations + ", " + outbox
}
