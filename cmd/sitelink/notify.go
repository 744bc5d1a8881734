package main

import (
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/daemon"
)

// maxStatusErr bounds the reload error carried in a STATUS= line: systemd
// shows one line, and a file with many problems has them all in the journal.
const maxStatusErr = 400

// notifier speaks sd_notify(3) for `sitelink run`: READY=1 once serving,
// the daemon's STATUS= lines, RELOADING=1 (with MONOTONIC_USEC=, as
// Type=notify-reload requires) and READY=1 around a SIGHUP reload, a
// refused reload kept in the STATUS= line until the next good one (so
// that `systemctl status` shows it), and STOPPING=1 when the shutdown
// begins. Without NOTIFY_SOCKET every message is dropped.
type notifier struct {
	send func(string) // one datagram

	mu        sync.Mutex
	ready     bool   // READY=1 sent: reloads may be announced
	status    string // the daemon's last status line
	reloadErr string // the last reload's refusal, until one succeeds
}

func newNotifier() *notifier {
	return &notifier{send: func(s string) { _, _ = daemon.SdNotify(false, s) }}
}

// Ready reports the daemon serving (edge.Options.Ready).
func (n *notifier) Ready() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ready = true
	n.send(daemon.SdNotifyReady)
}

// Status passes the daemon's status line on (edge.Options.Status), with a
// standing reload refusal after it.
func (n *notifier) Status(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.status = s
	n.send("STATUS=" + n.line())
}

func (n *notifier) line() string {
	if n.reloadErr == "" {
		return n.status
	}
	return n.status + "; " + n.reloadErr
}

// Reloading announces a reload. It reports false, and says nothing,
// before READY=1: the manager is still waiting for the start, and a
// READY=1 closing the reload would end that wait too early.
func (n *notifier) Reloading() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ready {
		return false
	}
	n.send(daemon.SdNotifyReloading + "\n" + strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n"))
	return true
}

// Reloaded ends an announced reload with its outcome: READY=1 either way
// (a refused file leaves the daemon running on its configuration), and
// a STATUS= line that names a refusal.
func (n *notifier) Reloaded(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reloadErr = ""
	if err != nil {
		n.reloadErr = statusErr(err)
	}
	n.send(daemon.SdNotifyReady + "\nSTATUS=" + n.line())
}

// Stopping says the shutdown has begun.
func (n *notifier) Stopping() {
	n.send(daemon.SdNotifyStopping)
}

// statusErr folds a (multi-line) reload error into one bounded line.
func statusErr(err error) string {
	s := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	s = strings.ReplaceAll(s, ":;", ":")
	if len(s) > maxStatusErr {
		s = strings.ToValidUTF8(s[:maxStatusErr], "") + "…"
	}
	return s + " (the running configuration stays)"
}
