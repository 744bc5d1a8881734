package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/mqtttest"
)

// notifySocket listens where a fake service manager would: it returns the
// socket path and a channel of the datagrams sent to it.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	// A unix socket path must stay under ~108 bytes; t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	msgs := make(chan string, 1024)
	go func() {
		defer close(msgs)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			select {
			case msgs <- string(buf[:n]):
			default: // the test stopped listening
			}
		}
	}()
	return path, msgs
}

// `sitelink run` under a fake systemd: READY=1 once serving, a STATUS=
// line with the link, stations and outbox, watchdog pings at half of
// WATCHDOG_USEC; a SIGHUP (ExecReload, or Type=notify-reload's signal)
// is RELOADING=1 with MONOTONIC_USEC= then READY=1, a refused file also
// puts the refusal in STATUS= (until a good reload), and SIGTERM sends
// STOPPING=1. Its stderr is the journal's stream: every line carries its
// priority prefix.
func TestSystemdNotify(t *testing.T) {
	b := mqtttest.Start(t)
	s := newSite(t, b.URL)
	s.write(t, siteConf{})
	path, msgs := notifySocket(t)
	// WATCHDOG_PID is left unset: go-systemd then accepts the interval
	// for whichever process reads it (the re-executed test binary).
	p := startLiveEnv(t, s, true, "NOTIFY_SOCKET="+path, "WATCHDOG_USEC=1000000", "WATCHDOG_PID=")

	var ready, status bool
	var pings int
	deadline := time.After(15 * time.Second)
	for !ready || !status || pings < 3 {
		select {
		case m := <-msgs:
			switch {
			case m == "READY=1":
				ready = true
			case m == "WATCHDOG=1":
				pings++
			case strings.HasPrefix(m, "STATUS=connected, 1 station, outbox "):
				status = true
			}
		case <-deadline:
			t.Fatalf("after 15s: ready=%v status=%v watchdog pings=%d", ready, status, pings)
		}
	}

	// next returns the next message that is not a watchdog ping or a
	// periodic status line, and counts the pings.
	next := func(what string) string {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case m := <-msgs:
				switch {
				case m == "WATCHDOG=1":
					pings++
				case strings.HasPrefix(m, "STATUS="):
				default:
					return m
				}
			case <-deadline:
				t.Fatalf("no %s within 15s", what)
			}
		}
	}
	reloading := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*$`)
	reloads := []struct {
		name   string
		conf   siteConf
		status string // in the STATUS= that comes with READY=1
		not    string // not in it
	}{
		{"good", siteConf{price: "0.45"}, "STATUS=connected, 1 station", "refused"},
		{"bad", siteConf{price: "-1"}, "tariff.price_per_kwh", ""},
		{"good again", siteConf{price: "0.46"}, "STATUS=connected", "refused"},
	}
	for _, r := range reloads {
		s.write(t, r.conf)
		p.signal(t, syscall.SIGHUP)
		if m := next("RELOADING=1 (" + r.name + ")"); !reloading.MatchString(m) {
			t.Fatalf("%s reload: first message %q, want RELOADING=1 with MONOTONIC_USEC", r.name, m)
		}
		m := next("READY=1 after the " + r.name + " reload")
		if !strings.HasPrefix(m, "READY=1\nSTATUS=") || !strings.Contains(m, r.status) || (r.not != "" && strings.Contains(m, r.not)) {
			t.Fatalf("%s reload: %q, want READY=1 and a STATUS= with %q", r.name, m, r.status)
		}
		if r.name == "bad" && !strings.Contains(m, "refused") {
			t.Errorf("bad reload: STATUS does not say it was refused: %q", m)
		}
	}
	// Still alive and still pinging after the reloads.
	from := pings
	deadline = time.After(10 * time.Second)
	for pings < from+2 {
		select {
		case m := <-msgs:
			if m == "WATCHDOG=1" {
				pings++
			}
		case <-deadline:
			t.Fatal("no watchdog pings after the reloads")
		}
	}
	p.signal(t, syscall.SIGTERM)
	if m := next("STOPPING=1"); m != "STOPPING=1" {
		t.Fatalf("on SIGTERM: %q, want STOPPING=1", m)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15s of SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("exit after SIGHUP, SIGTERM: %v", p.err)
	}

	// The journal's view: each line's priority from its level.
	prio := map[string]string{"<7>": "level=DEBUG", "<6>": "level=INFO", "<4>": "level=WARN", "<3>": "level=ERROR"}
	seen := map[string]bool{}
	for l := range strings.Lines(p.log.String()) {
		if len(l) < 3 || prio[l[:3]] == "" || !strings.HasPrefix(l[3:], prio[l[:3]]+" ") {
			t.Errorf("log line without its priority prefix (or with a time journald adds itself): %q", l)
			continue
		}
		seen[l[:3]] = true
		if strings.Contains(l, "reload refused") && l[:3] != "<3>" {
			t.Errorf("the refusal is not an error to the journal: %q", l)
		}
	}
	for _, want := range []string{"<3>", "<6>"} {
		if !seen[want] {
			t.Errorf("no %s line in the log", want)
		}
	}
}

// Priorities by level, and the lines of a plain stderr left as they were.
func TestLogPriority(t *testing.T) {
	cases := []struct {
		log    func(*slog.Logger)
		prefix string
	}{
		{func(l *slog.Logger) { l.Debug("d") }, "<7>level=DEBUG msg=d"},
		{func(l *slog.Logger) { l.Info("i", "k", "v") }, "<6>level=INFO msg=i k=v"},
		{func(l *slog.Logger) { l.Warn("w") }, "<4>level=WARN msg=w"},
		{func(l *slog.Logger) { l.Error("e") }, "<3>level=ERROR msg=e"},
		{func(l *slog.Logger) { l.Log(context.Background(), slog.LevelError+4, "x") }, "<3>level=ERROR+4 msg=x"},
		{func(l *slog.Logger) { l.With("part", "nayax").WithGroup("g").Warn("w", "a", 1) }, "<4>level=WARN msg=w part=nayax g.a=1"},
	}
	for _, c := range cases {
		var buf strings.Builder
		l, err := newLoggerTo(&buf, "debug", true)
		if err != nil {
			t.Fatal(err)
		}
		c.log(l)
		if got := strings.TrimSuffix(buf.String(), "\n"); got != c.prefix {
			t.Errorf("journal line %q, want %q", got, c.prefix)
		}
	}
	var buf strings.Builder
	l, _ := newLogger(&buf, "info")
	l.Warn("w")
	if !strings.HasPrefix(buf.String(), "time=") {
		t.Errorf("plain log line %q: want the time first, no prefix", buf.String())
	}
	// stderr named by JOURNAL_STREAM is the journal; another stream is not.
	var st syscall.Stat_t
	if err := syscall.Fstat(int(os.Stderr.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	for env, want := range map[string]bool{fmt.Sprintf("%d:%d", st.Dev, st.Ino): true, fmt.Sprintf("%d:%d", st.Dev, st.Ino+1): false, "": false} {
		t.Setenv("JOURNAL_STREAM", env)
		l, _ := newLogger(os.Stderr, "info")
		if _, got := l.Handler().(journalHandler); got != want {
			t.Errorf("JOURNAL_STREAM=%q: journal handler %v, want %v", env, got, want)
		}
	}
}

// The notify messages, without a daemon: no reload is announced before
// READY=1, a refusal stays in STATUS= until a reload succeeds.
func TestNotifier(t *testing.T) {
	var sent []string
	n := &notifier{send: func(s string) { sent = append(sent, s) }}
	if n.Reloading() {
		t.Fatal("a reload announced before READY=1")
	}
	n.Ready()
	n.Status("connected, 1 station, outbox 0")
	if !n.Reloading() {
		t.Fatal("a reload not announced after READY=1")
	}
	n.Reloaded(errors.New("reload /etc/sitelink/sitelink.yaml refused:\nsitelink.yaml:9: tariff.price_per_kwh: must not be negative"))
	n.Status("connected, 1 station, outbox 2")
	n.Reloading()
	n.Reloaded(nil)
	n.Stopping()
	refusal := "reload /etc/sitelink/sitelink.yaml refused: sitelink.yaml:9: tariff.price_per_kwh: must not be negative (the running configuration stays)"
	want := []string{
		"READY=1",
		"STATUS=connected, 1 station, outbox 0",
		"RELOADING=1\nMONOTONIC_USEC=",
		"READY=1\nSTATUS=connected, 1 station, outbox 0; " + refusal,
		"STATUS=connected, 1 station, outbox 2; " + refusal,
		"RELOADING=1\nMONOTONIC_USEC=",
		"READY=1\nSTATUS=connected, 1 station, outbox 2",
		"STOPPING=1",
	}
	if len(sent) != len(want) {
		t.Fatalf("sent %q, want %q", sent, want)
	}
	for i := range want {
		if sent[i] != want[i] && !(strings.HasSuffix(want[i], "=") && strings.HasPrefix(sent[i], want[i])) {
			t.Errorf("message %d = %q, want %q", i, sent[i], want[i])
		}
	}
	long := statusErr(errors.New(strings.Repeat("é", 300)))
	if !utf8.ValidString(long) || len(long) > maxStatusErr+100 {
		t.Errorf("a long refusal in STATUS=: %d bytes, valid UTF-8 %v", len(long), utf8.ValidString(long))
	}
}

// A WATCHDOG_PID naming another process leaves the watchdog off
// (sd_watchdog_enabled(3)); a malformed WATCHDOG_USEC too.
func TestWatchdogInterval(t *testing.T) {
	cases := []struct {
		name, usec, pid string
		want            time.Duration
	}{
		{"off", "", "", 0},
		{"any pid", "30000000", "", 30 * time.Second},
		{"our pid", "2000000", strconv.Itoa(os.Getpid()), 2 * time.Second},
		{"other pid", "2000000", strconv.Itoa(os.Getpid() + 1), 0},
		{"malformed", "soon", "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", c.usec)
			t.Setenv("WATCHDOG_PID", c.pid)
			log, _ := newLogger(&strings.Builder{}, "error")
			if got := watchdogInterval(log); got != c.want {
				t.Errorf("watchdogInterval = %v, want %v", got, c.want)
			}
		})
	}
}

// Both units bound what a leak or a flood can take from the machine, and
// the relay's file limit leaves room for its default connection cap.
func TestUnitLimits(t *testing.T) {
	relayConns := config.DefaultRelay().Relay.MaxConnections
	tests := []struct {
		unit     string
		minFiles int // what the service may hold open by design
	}{
		{"sitelink.service", 64},
		{"sitelink-relay.service", relayConns + 64 + 64}, // public cap, metrics cap, broker, Nayax and headroom
	}
	for _, tt := range tests {
		t.Run(tt.unit, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "..", "systemd", tt.unit))
			if err != nil {
				t.Fatal(err)
			}
			keys := map[string]string{}
			for _, l := range strings.Split(string(data), "\n") {
				if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
					keys[k] = v
				}
			}
			size := func(k string) int64 {
				v := keys[k]
				n, err := strconv.ParseInt(strings.TrimSuffix(v, "M"), 10, 64)
				if err != nil || !strings.HasSuffix(v, "M") || n <= 0 {
					t.Fatalf("%s=%q: want a size in M", k, v)
				}
				return n << 20
			}
			if high, hard := size("MemoryHigh"), size("MemoryMax"); high >= hard {
				t.Errorf("MemoryHigh %d not below MemoryMax %d: nothing is reclaimed before the kill", high, hard)
			}
			if n, err := strconv.Atoi(keys["TasksMax"]); err != nil || n < 64 {
				t.Errorf("TasksMax=%q: want a bound of at least 64", keys["TasksMax"])
			}
			if n, err := strconv.Atoi(keys["LimitNOFILE"]); err != nil || n < tt.minFiles {
				t.Errorf("LimitNOFILE=%q: want a bound of at least %d", keys["LimitNOFILE"], tt.minFiles)
			}
		})
	}
}

// The edge is offline-first: it does not wait for the network, only for
// a clock restored locally; the relay waits for both. Secrets come as
// credentials from the credential store, by name (a missing one is
// skipped), never from an absolute path that must exist.
func TestUnitOrderingAndCredentials(t *testing.T) {
	tests := []struct {
		unit      string
		after     []string
		notWants  bool
		credNames []string
	}{
		{"sitelink.service", []string{"time-set.target", "time-sync.target"}, true, []string{"mqtt-password", "mqtt-key"}},
		{"sitelink-relay.service", []string{"network-online.target", "time-sync.target"}, false,
			[]string{"nayax-sign-key", "nayax-token-secret", "card-key", "callback-auth", "tls-key", "mqtt-password", "mqtt-key"}},
	}
	for _, tt := range tests {
		t.Run(tt.unit, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "..", "systemd", tt.unit))
			if err != nil {
				t.Fatal(err)
			}
			var after, wants []string
			creds := map[string]string{}
			for _, l := range strings.Split(string(data), "\n") {
				k, v, ok := strings.Cut(l, "=")
				if !ok || strings.HasPrefix(l, "#") {
					continue
				}
				switch k {
				case "After":
					after = append(after, strings.Fields(v)...)
				case "Wants":
					wants = append(wants, strings.Fields(v)...)
				case "LoadCredential":
					id, src, _ := strings.Cut(v, ":")
					creds[id] = src
				}
			}
			for _, a := range tt.after {
				if !slices.Contains(after, a) {
					t.Errorf("After= lacks %s: %v", a, after)
				}
			}
			if tt.notWants && (slices.Contains(after, "network-online.target") || slices.Contains(wants, "network-online.target")) {
				t.Errorf("the offline-first edge waits for network-online.target")
			}
			prefix := strings.TrimSuffix(tt.unit, ".service") + "."
			for _, id := range tt.credNames {
				if src, ok := creds[id]; !ok || src != prefix+id {
					t.Errorf("LoadCredential=%s:%s missing (got %q)", id, prefix+id, src)
				}
			}
		})
	}
}
