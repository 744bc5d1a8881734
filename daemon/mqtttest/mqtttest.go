package mqtttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/broker"
)

// Broker kinds.
const (
	KindMosquitto = "mosquitto"
	KindEmbedded  = "embedded"
)

// RequireEnv names the environment variable that, set to 1, makes Start
// fail instead of falling back to the embedded broker.
const RequireEnv = "SITELINK_REQUIRE_MOSQUITTO"

// Timeouts of broker start and stop. They are generous because -race and
// loaded CI machines slow mosquitto's start and persistence writes.
const (
	startTimeout = 10 * time.Second
	stopTimeout  = 10 * time.Second
	startTries   = 5 // fresh ports to try when the chosen one was taken
)

// Broker is a broker started for one test.
type Broker struct {
	URL  string // tcp://127.0.0.1:PORT, or ssl://127.0.0.1:PORT with Options.TLS; for paho
	Addr string // 127.0.0.1:PORT
	Kind string // KindMosquitto or KindEmbedded

	t    testing.TB
	bin  string // mosquitto binary
	dir  string // mosquitto config, persistence and logs
	conf string // mosquitto config file
	opts Options
	// addrs are the listeners' addresses (Addr first): mosquitto counts
	// as started once each accepts a connection.
	addrs []string

	mu      sync.Mutex
	proc    *os.Process   // running mosquitto, nil when stopped
	exited  chan struct{} // closed when proc exited
	emb     *broker.Broker
	stopped bool // embedded: suspended by Stop
}

// Start starts a broker for t and stops it in t.Cleanup: mosquitto if it
// is installed, else the embedded broker (or t.Fatal if RequireEnv=1).
func Start(t testing.TB) *Broker {
	t.Helper()
	return StartWith(t, Options{})
}

// findMosquitto returns the mosquitto binary, or "" if there is none.
// Debian installs it in /usr/sbin, which is not in every user's PATH.
func findMosquitto() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func start(t testing.TB, bin string) *Broker {
	t.Helper()
	return startWith(t, bin, Options{})
}

func startWith(t testing.TB, bin string, o Options) *Broker {
	t.Helper()
	if bin == "" {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal("mosquitto required (" + RequireEnv + "=1) but not found in PATH, /usr/sbin or /usr/local/sbin")
		}
		if o.needsMosquitto() {
			t.Skip("mqtttest: mosquitto not found, and the embedded broker does not do TLS, passwords or ACLs")
		}
		t.Log("mqtttest: mosquitto not found, falling back to the embedded broker")
		return startEmbedded(t)
	}
	return startMosquittoWith(t, bin, o)
}

func startEmbedded(t testing.TB) *Broker {
	t.Helper()
	emb, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatalf("mqtttest: start embedded broker: %v", err)
	}
	b := &Broker{URL: emb.URL(), Addr: emb.Addr(), Kind: KindEmbedded, t: t, emb: emb}
	t.Cleanup(func() {
		if err := emb.Close(); err != nil {
			t.Errorf("mqtttest: close embedded broker: %v", err)
		}
	})
	return b
}

func startMosquitto(t testing.TB, bin string) *Broker {
	t.Helper()
	return startMosquittoWith(t, bin, Options{})
}

func startMosquittoWith(t testing.TB, bin string, o Options) *Broker {
	t.Helper()
	b := newMosquitto(t, bin)
	b.opts = o
	if o.ACL != "" {
		if err := os.WriteFile(b.aclPath(), []byte(o.ACL), 0o600); err != nil {
			t.Fatalf("mqtttest: write mosquitto acl_file: %v", err)
		}
	}
	b.run(1, func(ports []int) (string, error) { return b.config(ports[0]), nil })
	b.URL = "tcp://" + b.Addr
	if o.TLS != nil {
		b.URL = "ssl://" + b.Addr
	}
	return b
}

// newMosquitto returns a mosquitto Broker, not started yet, with its
// directory; t.Cleanup stops it and, if t failed, logs its log's tail.
func newMosquitto(t testing.TB, bin string) *Broker {
	t.Helper()
	b := &Broker{Kind: KindMosquitto, t: t, bin: bin, dir: t.TempDir()}
	b.conf = filepath.Join(b.dir, "mosquitto.conf")
	// Registered after t.TempDir, so it runs before the directory is
	// removed: mosquitto writes its persistence file there as it exits.
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("mqtttest: tail of %s:\n%s", b.logPath(), tail(b.logPath(), 40))
		}
	})
	return b
}

// run starts mosquitto with the configuration render writes for n free
// loopback ports (one per listener) and sets b.Addr to the first
// listener's address. A port taken before mosquitto bound it means fresh
// ports and another try. render's error fails the test: the
// configuration cannot be made, whatever the ports.
func (b *Broker) run(n int, render func(ports []int) (string, error)) {
	t := b.t
	t.Helper()
	var err error
	for range startTries {
		var ports []int
		ports, err = freePorts(n)
		if err != nil {
			t.Fatalf("mqtttest: %v", err)
		}
		b.addrs = b.addrs[:0]
		for _, p := range ports {
			b.addrs = append(b.addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		}
		b.Addr = b.addrs[0]
		conf, rerr := render(ports)
		if rerr != nil {
			t.Fatalf("mqtttest: mosquitto config: %v", rerr)
		}
		if err = os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
			t.Fatalf("mqtttest: write mosquitto config: %v", err)
		}
		if err = b.launch(); err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("mqtttest: start %s: %v\n%s", b.bin, err, tail(b.logPath(), 40))
}

// config returns the mosquitto configuration. Comments say why each
// setting differs from mosquitto's default.
func (b *Broker) config(port int) string {
	var c strings.Builder
	fmt.Fprintf(&c, "# Written by sitelink daemon/mqtttest for one test.\n")
	fmt.Fprintf(&c, "listener %d 127.0.0.1\n", port)
	b.authConfig(&c)
	c.WriteString("# Nagle plus delayed ACK would add ~40 ms to every QoS 1 round trip.\n")
	c.WriteString("set_tcp_nodelay true\n")
	c.WriteString("# Sessions and queued messages survive Stop/Restart; the file is written on SIGTERM.\n")
	c.WriteString("persistence true\n")
	fmt.Fprintf(&c, "persistence_location %s/\n", b.dir)
	c.WriteString("persistence_file mosquitto.db\n")
	c.WriteString("# Hold a long outage's worth of QoS 1 messages for an offline persistent session.\n")
	c.WriteString("max_queued_messages 100000\n")
	c.WriteString("# No window on QoS 1 messages in flight to a client: the default 20 throttles a draining subscriber.\n")
	c.WriteString("max_inflight_messages 0\n")
	fmt.Fprintf(&c, "log_dest file %s\n", b.logPath())
	c.WriteString("log_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	c.WriteString("log_timestamp_format %Y-%m-%dT%H:%M:%S\n")
	// Run as root, mosquitto drops to the user "mosquitto", which cannot
	// write to the test's directory; as any other user the option is
	// ignored.
	if u := currentUser(); u != "" {
		fmt.Fprintf(&c, "user %s\n", u)
	}
	return c.String()
}

func (b *Broker) aclPath() string { return filepath.Join(b.dir, "acl") }
func (b *Broker) logPath() string { return filepath.Join(b.dir, "mosquitto.log") }
func (b *Broker) outPath() string { return filepath.Join(b.dir, "mosquitto.out") }

// errAddrInUse means mosquitto could not bind its port.
var errAddrInUse = errors.New("address in use")

// launch starts mosquitto with b.conf and waits until it accepts TCP
// connections. The caller must not hold b.mu.
func (b *Broker) launch() error {
	// Only what this launch logs tells why it failed.
	var logOff int64
	if fi, err := os.Stat(b.logPath()); err == nil {
		logOff = fi.Size()
	}
	out, err := os.OpenFile(b.outPath(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("open mosquitto output: %w", err)
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run mosquitto: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	b.mu.Lock()
	b.proc, b.exited = cmd.Process, exited
	b.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			b.mu.Lock()
			b.proc = nil
			b.mu.Unlock()
			logs := since(b.logPath(), logOff) + tail(b.outPath(), 20)
			if strings.Contains(logs, "in use") {
				return fmt.Errorf("mosquitto on %s: %w", strings.Join(b.addrs, ", "), errAddrInUse)
			}
			return fmt.Errorf("mosquitto exited at start-up (%s): %s", cmd.ProcessState, strings.TrimSpace(logs))
		default:
		}
		// A connection alone could reach whoever else holds the port while
		// mosquitto fails to bind it; the log line says the bind was ours.
		running := strings.Contains(since(b.logPath(), logOff), " running")
		var addr string
		for _, addr = range b.addrs {
			var c net.Conn
			if c, err = net.DialTimeout("tcp", addr, 250*time.Millisecond); err != nil {
				break
			}
			c.Close()
		}
		if err == nil {
			if running {
				return nil
			}
			err = errors.New("mosquitto has not logged that it is running")
		}
		if time.Now().After(deadline) {
			b.Stop()
			return fmt.Errorf("mosquitto not accepting connections on %s after %v: %w", addr, startTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop stops the broker. mosquitto gets SIGTERM and is waited for, so its
// persistence file is written; the embedded broker is suspended. Clients
// lose their connections. Stop is idempotent and safe from any goroutine.
func (b *Broker) Stop() {
	if b.Kind == KindEmbedded {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.stopped {
			return
		}
		if err := b.emb.Suspend(); err != nil {
			b.t.Errorf("mqtttest: stop embedded broker: %v", err)
		}
		b.stopped = true
		return
	}
	b.mu.Lock()
	proc, exited := b.proc, b.exited
	b.proc = nil
	b.mu.Unlock()
	if proc == nil {
		return
	}
	// mosquitto 2.0.11 logs "running" and only then sets the flag its
	// SIGTERM handler clears (src/mosquitto.c: run = 1), so a SIGTERM
	// right after start-up can be lost and mosquitto runs on (seen about
	// once in 300 Start-then-Restart). SIGTERM again until it exits: the
	// handler only clears the flag, so a repeat is harmless.
	_ = proc.Signal(syscall.SIGTERM)
	again := time.NewTicker(200 * time.Millisecond)
	defer again.Stop()
	deadline := time.After(stopTimeout)
	for {
		select {
		case <-exited:
			return
		case <-again.C:
			_ = proc.Signal(syscall.SIGTERM)
		case <-deadline:
			b.t.Errorf("mqtttest: mosquitto did not exit within %v of SIGTERM; killing it", stopTimeout)
			_ = proc.Kill()
			<-exited
			return
		}
	}
}

// Restart starts the broker again on the same port, with the sessions,
// subscriptions, retained and queued messages it had when it stopped,
// and returns once it accepts connections. A running broker is stopped
// first. Call it from the test's goroutine: it fails the test with
// t.Fatal.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	if b.Kind == KindEmbedded {
		b.mu.Lock()
		defer b.mu.Unlock()
		if err := b.emb.Resume(); err != nil {
			b.t.Fatalf("mqtttest: restart embedded broker: %v", err)
		}
		b.stopped = false
		return
	}
	// The port is ours by convention only; if something grabbed it while
	// mosquitto was down, wait for it to go away.
	deadline := time.Now().Add(startTimeout)
	for {
		err := b.launch()
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			b.t.Fatalf("mqtttest: restart mosquitto: %v\n%s", err, tail(b.logPath(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// RestartEmpty is Restart for a broker that lost everything: mosquitto
// starts again on the same port without its persistence file (no
// sessions, subscriptions, retained or queued messages), as a broker run
// without persistence does after a restart. The embedded broker cannot
// forget: the test is skipped there.
func (b *Broker) RestartEmpty() {
	b.t.Helper()
	if b.Kind == KindEmbedded {
		b.t.Skip("mqtttest: the embedded broker cannot restart empty; install mosquitto")
	}
	b.Stop()
	if err := os.Remove(filepath.Join(b.dir, "mosquitto.db")); err != nil && !errors.Is(err, os.ErrNotExist) {
		b.t.Fatalf("mqtttest: remove persistence: %v", err)
	}
	b.Restart()
}

// freePorts returns n distinct loopback TCP ports that were free a
// moment ago: all are held open at once, so none is picked twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// since returns the content of the file at path from offset off on.
func since(path string, off int64) string {
	data, err := os.ReadFile(path)
	if err != nil || off > int64(len(data)) {
		return ""
	}
	return string(data[off:])
}

// tail returns the last n lines of the file at path, or a note why it
// cannot.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)\n", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n"))) + "\n"
}
