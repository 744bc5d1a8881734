package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
// WATCHDOG_USEC, and a SIGHUP (ExecReload) that does not kill it.
func TestSystemdNotify(t *testing.T) {
	b := mqtttest.Start(t)
	cfg, socket := writeConfig(t, b.URL)
	path, msgs := notifySocket(t)
	// WATCHDOG_PID is left unset: go-systemd then accepts the interval
	// for whichever process reads it (the re-executed test binary).
	p := startDaemon(t, cfg, socket, "NOTIFY_SOCKET="+path, "WATCHDOG_USEC=1000000", "WATCHDOG_PID=")

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

	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Still alive and still pinging after the reload request.
	from := pings
	deadline = time.After(10 * time.Second)
	for pings < from+2 {
		select {
		case m := <-msgs:
			if m == "WATCHDOG=1" {
				pings++
			}
		case <-deadline:
			t.Fatal("no watchdog pings after SIGHUP")
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGHUP, SIGTERM: %v", err)
	}
	if log := p.log.String(); !strings.Contains(log, "configuration reloaded") {
		t.Errorf("SIGHUP did not reload the file; log:\n%s", log)
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
