package edge

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/queue"
	"github.com/sitelink/sitelink/daemon/wire"
)

// The broker ACL that DESIGN.md §3 prescribes under mutual TLS, plus the
// cloud side's own certificate identity.
const (
	nodeACL  = "pattern readwrite sitelink/v1/nodes/%u/#\n"
	cloudACL = "user cloud\ntopic readwrite sitelink/#\n"
)

// secureCase is one way of securing the link. setup returns what the
// broker demands, how the cloud recorder meets it and how the daemon's
// config does (edit runs once the broker URL is in the config).
type secureCase struct {
	name  string
	setup func(t *testing.T) (mqtttest.Options, mqtttest.RecordOptions, func(*config.Edge))
}

// serverTLSWithPassword: the broker has a certificate and a password
// file; the node verifies the broker with ca_file and logs in with
// username and password_file.
func serverTLSWithPassword(t *testing.T) (mqtttest.Options, mqtttest.RecordOptions, func(*config.Edge)) {
	f := mqtttest.MakeTLS(t, testNode)
	pw := mqtttest.MakePasswordFile(t, map[string]string{testNode: "node-secret", "cloud": "cloud-secret"})
	return mqtttest.Options{TLS: &f, PasswordFile: pw},
		mqtttest.RecordOptions{TLS: f.ClientConfig(t, ""), Username: "cloud", Password: "cloud-secret"},
		func(c *config.Edge) {
			c.MQTT.Username = testNode
			// The trailing newline is what `echo secret > file` leaves.
			c.MQTT.PasswordFile = secretFile(t, "node-secret\n")
			c.MQTT.TLS.CAFile = f.CAFile
		}
}

// mutualTLS: the broker requires a client certificate, takes its
// CommonName as the username and confines each node to its own topics.
func mutualTLS(t *testing.T) (mqtttest.Options, mqtttest.RecordOptions, func(*config.Edge)) {
	f := mqtttest.MakeTLS(t, testNode)
	return mqtttest.Options{TLS: &f, RequireCert: true, ACL: nodeACL + cloudACL},
		mqtttest.RecordOptions{TLS: f.ClientConfig(t, "cloud")},
		func(c *config.Edge) {
			c.MQTT.TLS = config.TLS{CAFile: f.CAFile, CertFile: f.ClientCert, KeyFile: f.ClientKey}
		}
}

// TestSecureLink runs the seed authorize → stop through brokers that
// demand TLS, mutual TLS and passwords.
func TestSecureLink(t *testing.T) {
	cases := []secureCase{
		{"server TLS and password", serverTLSWithPassword},
		{"mutual TLS", mutualTLS},
		{"mutual TLS and password", func(t *testing.T) (mqtttest.Options, mqtttest.RecordOptions, func(*config.Edge)) {
			// use_identity_as_username wins over the password the node
			// sends; a fleet may still configure both during migration.
			bo, ro, edit := mutualTLS(t)
			bo.PasswordFile = mqtttest.MakePasswordFile(t, map[string]string{"someone": "else"})
			return bo, ro, func(c *config.Edge) {
				edit(c)
				c.MQTT.Username = testNode
				c.MQTT.PasswordFile = secretFile(t, "ignored")
			}
		}},
		{"server_name overrides the broker host", func(t *testing.T) (mqtttest.Options, mqtttest.RecordOptions, func(*config.Edge)) {
			f := mqtttest.MakeTLS(t, testNode)
			return mqtttest.Options{TLS: &f}, mqtttest.RecordOptions{TLS: f.ClientConfig(t, "")},
				func(c *config.Edge) {
					// The certificate is also valid for localhost.
					c.MQTT.TLS = config.TLS{CAFile: f.CAFile, ServerName: "localhost"}
				}
		}},
		{"through a SOCKS5 proxy (all_proxy)", func(t *testing.T) (mqtttest.Options, mqtttest.RecordOptions, func(*config.Edge)) {
			// With all_proxy set, paho dials the proxy and then starts TLS
			// with tls.Client, which (unlike tls.Dial) does not take the
			// server name from the address: the config must carry it.
			t.Setenv("all_proxy", "socks5://"+socks5Proxy(t))
			return mutualTLS(t)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bo, ro, edit := tc.setup(t)
			s, _ := startSecureSite(t, bo, ro, edit)
			waitFor(t, 10*time.Second, "daemon connected", func() bool {
				st, err := s.api.Status()
				return err == nil && st.Connected
			})
			s.charge()
			if v, code := verdict(s.command("stop-1", "stop", seeds.Get("000_stopcallback_request.json"))); v != "Approved" {
				t.Fatalf("stop: %s %v", v, code)
			}
			s.waitEnded(seedSpark)
			// The node published its birth and, through the outbox, its
			// session events: its own topics are writable for it.
			s.cloud.Await(10*time.Second, 0, "online state", func(m mqtttest.Message) bool {
				var st wire.State
				return m.Topic == s.topics.State() && json.Unmarshal(m.Payload, &st) == nil && st.Online
			})
			s.cloud.Await(10*time.Second, 0, "stopped event", func(m mqtttest.Message) bool {
				return m.Topic == s.topics.Event("session") && strings.Contains(string(m.Payload), `"stopped"`)
			})
		})
	}
}

// lateAlert is how a refused client certificate can look to the node
// instead of the broker's alert: under TLS 1.3 the client's handshake is
// done before the broker judges its certificate, so the CONNECT write may
// meet a closed connection before the alert is read.
const lateAlert = "connection reset by peer|broken pipe|EOF"

// TestSecureLinkRefused: a daemon the broker will not have keeps running
// disconnected, retries, and says why in its log.
func TestSecureLinkRefused(t *testing.T) {
	cases := []struct {
		secureCase
		why string // in the daemon's log (a regular expression)
	}{
		{secureCase{"wrong password", func(t *testing.T) (mqtttest.Options, mqtttest.RecordOptions, func(*config.Edge)) {
			bo, ro, edit := serverTLSWithPassword(t)
			return bo, ro, func(c *config.Edge) {
				edit(c)
				c.MQTT.PasswordFile = secretFile(t, "not-the-secret\n")
			}
		}}, "not Authorized"},
		{secureCase{"unknown user", func(t *testing.T) (mqtttest.Options, mqtttest.RecordOptions, func(*config.Edge)) {
			bo, ro, edit := serverTLSWithPassword(t)
			return bo, ro, func(c *config.Edge) {
				edit(c)
				c.MQTT.Username = "site-other"
			}
		}}, "not Authorized"},
		{secureCase{"CA does not match", func(t *testing.T) (mqtttest.Options, mqtttest.RecordOptions, func(*config.Edge)) {
			bo, ro, edit := serverTLSWithPassword(t)
			other := mqtttest.MakeTLS(t, testNode)
			return bo, ro, func(c *config.Edge) {
				edit(c)
				c.MQTT.TLS.CAFile = other.CAFile
			}
		}}, "certificate signed by unknown authority"},
		{secureCase{"server_name not in the certificate", func(t *testing.T) (mqtttest.Options, mqtttest.RecordOptions, func(*config.Edge)) {
			bo, ro, edit := serverTLSWithPassword(t)
			return bo, ro, func(c *config.Edge) {
				edit(c)
				c.MQTT.TLS.ServerName = "broker.example.net"
			}
		}}, "not broker.example.net"},
		{secureCase{"no client certificate", func(t *testing.T) (mqtttest.Options, mqtttest.RecordOptions, func(*config.Edge)) {
			bo, ro, edit := mutualTLS(t)
			return bo, ro, func(c *config.Edge) {
				edit(c)
				c.MQTT.TLS.CertFile, c.MQTT.TLS.KeyFile = "", ""
			}
		}}, "certificate required|" + lateAlert},
		{secureCase{"client certificate from another CA", func(t *testing.T) (mqtttest.Options, mqtttest.RecordOptions, func(*config.Edge)) {
			bo, ro, edit := mutualTLS(t)
			other := mqtttest.MakeTLS(t, testNode)
			return bo, ro, func(c *config.Edge) {
				edit(c)
				c.MQTT.TLS.CertFile, c.MQTT.TLS.KeyFile = other.ClientCert, other.ClientKey
			}
		}}, "unknown certificate authority|" + lateAlert},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bo, ro, edit := tc.setup(t)
			s, tap := startSecureSite(t, bo, ro, edit)
			// Several refused attempts: the daemon retries rather than
			// giving up or crashing.
			waitFor(t, 15*time.Second, "three refused connection attempts", func() bool {
				return tap.count("mqtt connect failed") >= 3
			})
			select {
			case err := <-s.done:
				t.Fatalf("daemon exited while refused: %v", err)
			default:
			}
			st, err := s.api.Status()
			if err != nil {
				t.Fatalf("status: %v", err)
			}
			if st.Connected {
				t.Fatal("status says connected to a broker that refuses the node")
			}
			if !regexp.MustCompile(tc.why).MatchString(tap.String()) {
				t.Errorf("daemon log does not match %q:\n%s", tc.why, tap)
			}
			for _, m := range s.cloud.All() {
				if strings.HasPrefix(m.Topic, "sitelink/v1/nodes/") {
					t.Fatalf("a refused node's message reached the broker: %s %s", m.Topic, m.Payload)
				}
			}
			// The stations stay usable locally: the sim answers.
			if s.sims["5"].Read().Contactor {
				t.Fatal("contactor closed without a session")
			}
		})
	}
}

// TestSecureLinkWrongIdentity: a client certificate for another node is
// accepted by the broker, which then drops the node's publishes (MQTT
// 3.1.1 cannot refuse one) and, mosquitto granting the subscription,
// never delivers a command: the link looks up. The daemon warns at start.
func TestSecureLinkWrongIdentity(t *testing.T) {
	bo, ro, edit := mutualTLS(t)
	f := bo.TLS
	s, tap := startSecureSite(t, bo, ro, func(c *config.Edge) {
		edit(c)
		c.MQTT.TLS.CertFile, c.MQTT.TLS.KeyFile = f.IssueClient(t, "site-other")
	})
	if !strings.Contains(tap.String(), "cert_common_name=site-other node_id="+testNode) {
		t.Fatalf("no warning about the certificate identity:\n%s", tap)
	}
	// The ACL refuses the node's command subscription: the link says so
	// and does not pretend to be connected.
	waitFor(t, 10*time.Second, "subscription refusal in the log", func() bool {
		return strings.Contains(tap.String(), "refused by the broker") || strings.Contains(tap.String(), "does not deliver this node")
	})
	if st, err := s.api.Status(); err != nil || st.Connected {
		t.Fatalf("status with a refused subscription: %+v %v", st, err)
	}
}

// TestLinkOptions: the node's link is its own identity with a persistent
// session and manual acks (a command is acked once its reply is out), a
// will, and the node's subscriptions; the connection settings themselves
// are config's (config.MQTT.LinkOptions, tested there).
func TestLinkOptions(t *testing.T) {
	c := testConfig(t, "ssl://127.0.0.1:8883", t.TempDir())
	d, err := New(Options{Config: c})
	if err != nil {
		t.Fatal(err)
	}
	o, err := d.linkOptions(newPresence(d.topics, "test", &d.cfg, nil, nil, nil, nil), newRelayWatch(d.log, d.topics.Prefix, func() {}), queue.New[inbound](), nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.ClientID != testNode || o.CleanSession || !o.ManualAck || o.Will == nil || o.OnUp == nil || o.TLS == nil {
		t.Fatalf("options: client %q clean %v manual ack %v will %v onUp %v tls %v", o.ClientID, o.CleanSession, o.ManualAck, o.Will != nil, o.OnUp != nil, o.TLS != nil)
	}
	want := []string{d.topics.Commands(), d.topics.ConfigDesired(), wire.GroupConfigDesired(d.topics.Prefix, c.MQTT.Group), d.topics.State(), wire.AllRelays(d.topics.Prefix)}
	if len(o.Subs) != len(want) {
		t.Fatalf("subscriptions %v, want %v", slices.Collect(maps.Keys(o.Subs)), want)
	}
	for _, f := range want {
		if o.Subs[f] == nil {
			t.Errorf("no subscription to %s", f)
		}
	}
	c.MQTT.PasswordFile = filepath.Join(t.TempDir(), "nope")
	c.MQTT.Username = testNode
	if _, err := d.linkOptions(newPresence(d.topics, "test", &d.cfg, nil, nil, nil, nil), newRelayWatch(d.log, d.topics.Prefix, func() {}), queue.New[inbound](), nil); err == nil || !strings.Contains(err.Error(), "mqtt.password_file") {
		t.Fatalf("err = %v, want one naming mqtt.password_file", err)
	}
}

// startSecureSite starts a broker with bo, a cloud recorder connecting
// with ro, and a daemon whose config edit adjusts. Unlike startSite it
// does not wait for the daemon to connect, only for its local API.
func startSecureSite(t *testing.T, bo mqtttest.Options, ro mqtttest.RecordOptions, edit func(*config.Edge)) (*site, *logTap) {
	t.Helper()
	b := mqtttest.StartWith(t, bo)
	s := &site{t: t, broker: b, cfg: testConfig(t, b.URL, t.TempDir())}
	edit(s.cfg)
	if p := s.cfg.Validate(); len(p) > 0 {
		t.Fatalf("test config invalid: %v", p)
	}
	s.topics = wire.Topics{Prefix: s.cfg.MQTT.TopicPrefix, Node: testNode}
	s.cloud = mqtttest.RecordWith(t, b.URL, "cloud-"+t.Name(), s.cfg.MQTT.TopicPrefix+"/#", ro)

	tap := &logTap{}
	w := &tWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	log := slog.New(slog.NewTextHandler(io.MultiWriter(w, tap), &slog.HandlerOptions{Level: slog.LevelDebug}))

	s.launch(log)
	return s, tap
}

// secretFile writes content to a 0600 file, as an operator stores a
// password.
func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mqtt-password")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// logTap keeps the daemon's log text for assertions.
type logTap struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logTap) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logTap) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logTap) count(s string) int { return strings.Count(l.String(), s) }

// socks5Proxy returns the address of a minimal SOCKS5 proxy (no
// authentication, CONNECT only) that serves the rest of the test binary.
// One proxy for all: golang.org/x/net/proxy, which paho asks, reads
// all_proxy once per process, so a proxy per test would leave later
// tests (and -count=N) pointed at a closed port.
func socks5Proxy(t *testing.T) string {
	t.Helper()
	socks.once.Do(func() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			socks.err = err
			return
		}
		socks.addr = l.Addr().String()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					up := socks5Connect(c)
					if up == nil {
						return
					}
					defer up.Close()
					socks.relayed.Add(1)
					go func() { _, _ = io.Copy(up, c); up.Close() }()
					_, _ = io.Copy(c, up)
				}()
			}
		}()
	})
	if socks.err != nil {
		t.Fatalf("SOCKS5 proxy: %v", socks.err)
	}
	before := socks.relayed.Load()
	t.Cleanup(func() { t.Logf("SOCKS5 proxy relayed %d connections", socks.relayed.Load()-before) })
	return socks.addr
}

var socks struct {
	once    sync.Once
	addr    string
	err     error
	relayed atomic.Int64
}

// socks5Connect answers a SOCKS5 handshake on c and dials the requested
// address; nil if anything is off.
func socks5Connect(c net.Conn) net.Conn {
	buf := make([]byte, 256)
	read := func(n int) []byte {
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return nil
		}
		return buf[:n]
	}
	if h := read(2); h == nil || h[0] != 5 || read(int(h[1])) == nil { // version, methods
		return nil
	}
	if _, err := c.Write([]byte{5, 0}); err != nil { // no authentication
		return nil
	}
	req := read(4) // version, CONNECT, reserved, address type
	if req == nil || req[1] != 1 {
		return nil
	}
	var host string
	switch req[3] {
	case 1:
		if a := read(4); a != nil {
			host = net.IP(append([]byte(nil), a...)).String()
		}
	case 3:
		if n := read(1); n != nil {
			if a := read(int(n[0])); a != nil {
				host = string(a)
			}
		}
	case 4:
		if a := read(16); a != nil {
			host = net.IP(append([]byte(nil), a...)).String()
		}
	}
	p := read(2)
	if host == "" || p == nil {
		return nil
	}
	up, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(p)))), 5*time.Second)
	if err != nil {
		_, _ = c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
		return nil
	}
	if _, err := c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
		up.Close()
		return nil
	}
	return up
}
