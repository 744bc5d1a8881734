package guard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// lockedBuf is a log sink for concurrent writers.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSuffix(l.b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// A flood writes one line per interval, whatever its size, and every
// refusal is in the totals and in exactly one line.
func TestRefusalsBounded(t *testing.T) {
	tests := []struct {
		name      string
		n         int           // refusals
		step      time.Duration // fake time between two
		wantLines int
	}{
		{"one refusal is logged at once", 1, 0, 1},
		{"a burst within an interval: one line, the rest at Flush", 100000, 0, 2},
		{"a flood over ten intervals", 100000, 10 * time.Minute / 100000, 11},
		{"sparse refusals: one line each", 5, 2 * time.Minute, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf lockedBuf
			r := NewRefusals(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelWarn, "callbacks refused", time.Minute)
			now := time.Unix(1e9, 0)
			r.now = func() time.Time { return now }
			for i := range tt.n {
				reason := []string{"unauthorized", "rate_limited", "not_found"}[i%3]
				r.Refuse(reason)
				now = now.Add(tt.step)
			}
			r.Flush()
			lines := buf.lines()
			if len(lines) != tt.wantLines {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), tt.wantLines, strings.Join(lines[:min(len(lines), 20)], "\n"))
			}
			var logged int
			for _, l := range lines {
				if !strings.Contains(l, "level=WARN") || !strings.Contains(l, `msg="callbacks refused"`) {
					t.Errorf("line %q", l)
				}
				var n int
				if _, err := fmt.Sscanf(l[strings.Index(l, "total=")+len("total="):], "%d", &n); err != nil {
					t.Fatalf("no count in %q", l)
				}
				logged += n
			}
			if logged != tt.n {
				t.Errorf("lines count %d refusals, want %d", logged, tt.n)
			}
			var total uint64
			for _, n := range r.Totals() {
				total += n
			}
			if total != uint64(tt.n) {
				t.Errorf("totals %v, want %d in all", r.Totals(), tt.n)
			}
		})
	}
}

// Run writes the tail of a flood within an interval, and flushes when it
// stops.
func TestRefusalsRun(t *testing.T) {
	var buf lockedBuf
	r := NewRefusals(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelInfo, "refused", 50*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	for range 1000 {
		r.Refuse("unauthorized")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(buf.lines()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l := buf.lines(); len(l) != 2 || !strings.Contains(l[0], "level=INFO") || !strings.Contains(l[0], "total=1 ") || !strings.Contains(l[1], "total=999 ") {
		t.Fatalf("lines:\n%s", strings.Join(l, "\n"))
	}
	r.Refuse("rate_limited")
	cancel()
	<-done
	if l := buf.lines(); len(l) != 3 || !strings.Contains(l[2], "rate_limited=1") {
		t.Fatalf("after stop:\n%s", strings.Join(l, "\n"))
	}
}

// The listener holds at most its cap; one more connection is reset at
// once and counted, and a freed slot is taken again.
func TestListenCap(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	refused := 0
	l := Listen(raw, 2, func() { mu.Lock(); refused++; mu.Unlock() })
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	take := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("connection not accepted")
			return nil
		}
	}
	dial()
	first := take()
	dial()
	take()
	if l.Open() != 2 {
		t.Fatalf("open = %d, want 2", l.Open())
	}
	// The reset may even beat the client's connect: either way it is
	// refused at once.
	if third, err := net.Dial("tcp", raw.Addr().String()); err == nil {
		defer third.Close()
		_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = third.Read(make([]byte, 1))
		if err == nil || isTimeout(err) {
			t.Fatalf("connection over the cap: read %v, want it closed at once", err)
		}
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return refused == 1 })
	select {
	case c := <-accepted:
		t.Fatalf("accepted %v over the cap", c.RemoteAddr())
	default:
	}

	first.Close()
	first.Close() // a second close frees nothing more
	if l.Open() != 1 {
		t.Fatalf("open after close = %d, want 1", l.Open())
	}
	dial()
	take()
	if l.Open() != 2 {
		t.Fatalf("open = %d, want 2", l.Open())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, io.EOF)
}

func TestSources(t *testing.T) {
	tests := []struct {
		name    string
		addrs   []string // requests, in order, all at once
		allowed []bool
	}{
		{"a burst of 3 then refused", []string{"192.0.2.1:1000", "192.0.2.1:1001", "192.0.2.1:1002", "192.0.2.1:1003"}, []bool{true, true, true, false}},
		{"ports do not matter, addresses do", []string{"192.0.2.1:1", "192.0.2.1:2", "192.0.2.1:3", "192.0.2.2:1", "192.0.2.1:4"}, []bool{true, true, true, true, false}},
		{"IPv6 counts per /64", []string{"[2001:db8::1]:1", "[2001:db8::2]:1", "[2001:db8:0:0:ffff::3]:1", "[2001:db8::4]:1", "[2001:db8:0:1::1]:1"}, []bool{true, true, true, false, true}},
		{"v4-mapped is the v4 address", []string{"[::ffff:192.0.2.9]:1", "192.0.2.9:2", "192.0.2.9:3", "192.0.2.9:4"}, []bool{true, true, true, false}},
		{"unparsable peers share a bucket", []string{"@", "pipe", "", "x"}, []bool{true, true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSources(rate.Every(time.Hour), 3, 0)
			for i, a := range tt.addrs {
				if got := s.Allow(a); got != tt.allowed[i] {
					t.Errorf("request %d from %q: allowed %v, want %v", i, a, got, tt.allowed[i])
				}
			}
		})
	}

	t.Run("tokens come back at the rate", func(t *testing.T) {
		s := NewSources(50, 1, 0)
		if !s.Allow("192.0.2.1:1") || s.Allow("192.0.2.1:1") {
			t.Fatal("burst of 1 not enforced")
		}
		time.Sleep(30 * time.Millisecond)
		if !s.Allow("192.0.2.1:1") {
			t.Fatal("no token after 30 ms at 50/s")
		}
	})
	t.Run("sources tracked stay bounded", func(t *testing.T) {
		s := NewSources(1, 1, 100)
		for i := range 10000 {
			s.Allow(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255))
		}
		if s.Len() != 100 {
			t.Fatalf("tracking %d sources, want 100", s.Len())
		}
		// The most recent are still tracked: their bucket is empty.
		if s.Allow("10.0.39.15:2") {
			t.Error("the most recent source got a fresh bucket")
		}
	})
	t.Run("Inf allows everything and tracks nothing", func(t *testing.T) {
		s := NewSources(rate.Inf, 1, 0)
		for range 1000 {
			if !s.Allow("192.0.2.1:1") {
				t.Fatal("refused with rate.Inf")
			}
		}
		if s.Len() != 0 {
			t.Errorf("tracking %d sources", s.Len())
		}
	})
}
