package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sitelink/sitelink/daemon/broker"
)

// benchBroker is the broker every figure and its floor share: mosquitto
// when it is installed (the fleet's broker), else the embedded one.
type benchBroker struct {
	URL  string // tcp://127.0.0.1:PORT
	Kind string // "mosquitto 2.0.11" or "embedded"

	cmd *exec.Cmd
	emb *broker.Broker
}

func findMosquitto() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// startBroker starts a broker in dir. The mosquitto configuration is the
// one the tests use minus persistence: no fsync of the broker's own
// enters a figure.
func startBroker(dir string) (*benchBroker, error) {
	bin := findMosquitto()
	if bin == "" {
		emb, err := broker.Start(broker.Options{})
		if err != nil {
			return nil, err
		}
		return &benchBroker{URL: emb.URL(), Kind: "embedded (mosquitto not installed)", emb: emb}, nil
	}
	var lastErr error
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		conf := filepath.Join(dir, "mosquitto.conf")
		var c strings.Builder
		fmt.Fprintf(&c, "listener %d 127.0.0.1\nallow_anonymous true\n", port)
		c.WriteString("set_tcp_nodelay true\npersistence false\n")
		c.WriteString("max_queued_messages 1000000\nmax_inflight_messages 0\n")
		fmt.Fprintf(&c, "log_dest file %s\nlog_type error\nlog_type warning\nlog_type notice\n", filepath.Join(dir, "mosquitto.log"))
		if os.Getuid() == 0 {
			c.WriteString("user root\n")
		}
		if err := os.WriteFile(conf, []byte(c.String()), 0o600); err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-c", conf)
		out, _ := os.Create(filepath.Join(dir, "mosquitto.out"))
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		deadline := time.Now().Add(10 * time.Second)
		for {
			select {
			case <-exited:
				lastErr = errors.New("mosquitto exited at start-up")
			default:
				if c, err := net.DialTimeout("tcp", addr, 250*time.Millisecond); err == nil {
					c.Close()
					return &benchBroker{URL: "tcp://" + addr, Kind: "mosquitto", cmd: cmd}, nil
				}
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					lastErr = errors.New("mosquitto not accepting connections")
				} else {
					time.Sleep(50 * time.Millisecond)
					continue
				}
			}
			break
		}
	}
	return nil, fmt.Errorf("start mosquitto: %w", lastErr)
}

func (b *benchBroker) Close() {
	if b.emb != nil {
		_ = b.emb.Close()
	}
	if b.cmd != nil && b.cmd.Process != nil {
		_ = b.cmd.Process.Kill()
		_, _ = b.cmd.Process.Wait()
	}
}
