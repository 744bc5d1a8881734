package mqtttest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// dial connects a paho client with TLS and credentials; the error is
// returned, not fatal, for the cases that must fail.
func dial(t *testing.T, url, id string, ro RecordOptions) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(wait)
	ro.apply(o, url)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		t.Fatalf("connect %s: timed out", id)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

func TestMakeTLS(t *testing.T) {
	f := MakeTLS(t, "site-0042")
	roots := x509.NewCertPool()
	roots.AddCert(f.CACert)
	cases := []struct {
		name, cert, key string
		usage           x509.ExtKeyUsage
		cn              string
		hosts           []string
	}{
		{"server", f.ServerCert, f.ServerKey, x509.ExtKeyUsageServerAuth, "localhost", []string{"127.0.0.1", "localhost", "::1"}},
		{"client", f.ClientCert, f.ClientKey, x509.ExtKeyUsageClientAuth, "site-0042", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pair, err := tls.LoadX509KeyPair(tc.cert, tc.key)
			if err != nil {
				t.Fatalf("key pair: %v", err)
			}
			leaf := pair.Leaf
			if leaf.Subject.CommonName != tc.cn {
				t.Errorf("CommonName = %q, want %q", leaf.Subject.CommonName, tc.cn)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{tc.usage}}); err != nil {
				t.Errorf("verify against the CA: %v", err)
			}
			for _, h := range tc.hosts {
				if err := leaf.VerifyHostname(h); err != nil {
					t.Errorf("not valid for %s: %v", h, err)
				}
			}
			fi, err := os.Stat(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
			}
		})
	}
	data, err := os.ReadFile(f.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(data); b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("CAFile is not a PEM certificate: %q", data)
	}
	other := MakeTLS(t, "x")
	if other.CAFile == f.CAFile || other.CACert.Equal(f.CACert) {
		t.Fatal("two MakeTLS calls share a CA")
	}
}

// TestStartWith connects clients with and without the right credentials
// to brokers that demand TLS, client certificates and passwords.
func TestStartWith(t *testing.T) {
	bin := findMosquitto()
	if bin == "" {
		t.Skip("mosquitto not installed")
	}
	f := MakeTLS(t, "alice")
	other := MakeTLS(t, "alice")
	users := map[string]string{"alice": "a-secret", "bob": "b-secret"}
	// Trusts the broker, but presents a certificate it does not.
	stranger := f.ClientConfig(t, "")
	stranger.Certificates = other.ClientConfig(t, "alice").Certificates
	type attempt struct {
		name string
		ro   RecordOptions
		err  string // "" = must connect
	}
	cases := []struct {
		name     string
		opts     func(t *testing.T) Options
		attempts []attempt
	}{
		{"server TLS", func(*testing.T) Options { return Options{TLS: &f} }, []attempt{
			{"trusted", RecordOptions{TLS: f.ClientConfig(t, "")}, ""},
			{"other CA", RecordOptions{TLS: other.ClientConfig(t, "")}, "unknown authority"},
		}},
		{"mutual TLS", func(*testing.T) Options { return Options{TLS: &f, RequireCert: true} }, []attempt{
			{"certificate", RecordOptions{TLS: f.ClientConfig(t, "alice")}, ""},
			{"no certificate", RecordOptions{TLS: f.ClientConfig(t, "")}, "certificate required|" + lateAlert},
			{"certificate from another CA", RecordOptions{TLS: stranger}, "unknown certificate authority|" + lateAlert},
		}},
		{"password", func(t *testing.T) Options { return Options{PasswordFile: MakePasswordFile(t, users)} }, []attempt{
			{"right", RecordOptions{Username: "bob", Password: "b-secret"}, ""},
			{"wrong", RecordOptions{Username: "bob", Password: "a-secret"}, "not Authorized"},
			{"anonymous", RecordOptions{}, "not Authorized"},
		}},
		{"TLS and password", func(t *testing.T) Options { return Options{TLS: &f, PasswordFile: MakePasswordFile(t, users)} }, []attempt{
			{"right", RecordOptions{TLS: f.ClientConfig(t, ""), Username: "alice", Password: "a-secret"}, ""},
			{"wrong", RecordOptions{TLS: f.ClientConfig(t, ""), Username: "alice", Password: "b-secret"}, "not Authorized"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := StartWith(t, tc.opts(t))
			scheme := "tcp://"
			if b.opts.TLS != nil {
				scheme = "ssl://"
			}
			if b.URL != scheme+b.Addr || b.Kind != KindMosquitto {
				t.Fatalf("URL %q kind %q, want %s%s on mosquitto", b.URL, b.Kind, scheme, b.Addr)
			}
			check := func(when string) {
				t.Helper()
				for i, a := range tc.attempts {
					_, err := dial(t, b.URL, fmt.Sprintf("c%d", i), a.ro)
					switch {
					case a.err == "" && err != nil:
						t.Errorf("%s, %s: %v", when, a.name, err)
					case a.err != "" && err == nil:
						t.Errorf("%s, %s: connected, want %q", when, a.name, a.err)
					case a.err != "" && !matches(a.err, err.Error()):
						t.Errorf("%s, %s: %v, want %q", when, a.name, err, a.err)
					}
				}
			}
			check("started")
			b.Restart()
			check("restarted")
		})
	}
}

// lateAlert: under TLS 1.3 a refused client certificate may show as a
// dead connection instead of the broker's alert (see daemon/edge).
const lateAlert = "connection reset by peer|broken pipe|EOF"

func matches(alternatives, s string) bool {
	for a := range strings.SplitSeq(alternatives, "|") {
		if strings.Contains(s, a) {
			return true
		}
	}
	return false
}

// TestIdentityACL checks that under mutual TLS the certificate's
// CommonName is the username an ACL pattern sees. (mosquitto grants the
// subscription either way and filters on delivery.)
func TestIdentityACL(t *testing.T) {
	if findMosquitto() == "" {
		t.Skip("mosquitto not installed")
	}
	f := MakeTLS(t, "alice")
	b := StartWith(t, Options{TLS: &f, RequireCert: true, ACL: "pattern readwrite nodes/%u/#\nuser cloud\ntopic readwrite nodes/#\n"})
	got := make(chan string, 10)
	alice, err := dial(t, b.URL, "alice", RecordOptions{TLS: f.ClientConfig(t, "alice")})
	if err != nil {
		t.Fatal(err)
	}
	if tok := alice.Subscribe("nodes/#", 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() }); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	cloud, err := dial(t, b.URL, "cloud", RecordOptions{TLS: f.ClientConfig(t, "cloud")})
	if err != nil {
		t.Fatal(err)
	}
	// In order from one publisher: bob's would arrive before alice's.
	for _, topic := range []string{"nodes/bob/cmd", "nodes/alice/cmd"} {
		if tok := cloud.Publish(topic, 1, false, "x"); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	select {
	case topic := <-got:
		if topic != "nodes/alice/cmd" {
			t.Fatalf("alice received %s", topic)
		}
	case <-time.After(wait):
		t.Fatal("alice received nothing on her own topic")
	}
}

// TestRecordWith records through a mutual-TLS broker.
func TestRecordWith(t *testing.T) {
	if findMosquitto() == "" {
		t.Skip("mosquitto not installed")
	}
	f := MakeTLS(t, "edge")
	b := StartWith(t, Options{TLS: &f, RequireCert: true, ACL: "pattern readwrite s/%u/#\nuser cloud\ntopic readwrite s/#\n"})
	r := RecordWith(t, b.URL, "cloud", "s/#", RecordOptions{TLS: f.ClientConfig(t, "cloud")})
	edge, err := dial(t, b.URL, "edge", RecordOptions{TLS: f.ClientConfig(t, "edge")})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"s/other/x", "s/edge/x"} { // the first is dropped by the ACL
		if tok := edge.Publish(topic, 1, false, topic); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	r.Await(wait, 0, "s/edge/x", func(m Message) bool { return m.Topic == "s/edge/x" })
	for _, m := range r.All() {
		if m.Topic == "s/other/x" {
			t.Fatal("the ACL let edge publish on another node's topic")
		}
	}
}

// skipTB records Skip as well as Fatal.
type skipTB struct {
	*fakeTB
	skipped string
}

func (s *skipTB) Skip(args ...any) {
	s.mu.Lock()
	s.skipped = fmt.Sprint(args...)
	s.mu.Unlock()
	runtime.Goexit()
}

// TestStartWithoutMosquitto: the embedded fallback cannot do TLS or
// passwords, so such a broker skips the test, or fails it under
// RequireEnv=1.
func TestStartWithoutMosquitto(t *testing.T) {
	f := MakeTLS(t, "x")
	cases := []struct {
		name, require string
		opts          Options
		want          string // "fatal", "skip" or "" (embedded broker)
	}{
		{"TLS", "", Options{TLS: &f}, "skip"},
		{"password", "", Options{PasswordFile: "/nonexistent"}, "skip"},
		{"ACL", "", Options{ACL: "topic read #\n"}, "skip"},
		{"TLS required", "1", Options{TLS: &f}, "fatal"},
		{"plain", "", Options{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(RequireEnv, tc.require)
			tb := &skipTB{fakeTB: &fakeTB{TB: t}}
			var b *Broker
			done := make(chan struct{})
			go func() {
				defer close(done)
				b = startWith(tb, "", tc.opts)
			}()
			select {
			case <-done:
			case <-time.After(wait):
				t.Fatal("startWith hung")
			}
			got := ""
			switch {
			case tb.fatal != "":
				got = "fatal"
			case tb.skipped != "":
				got = "skip"
			}
			if got != tc.want {
				t.Fatalf("got %q (fatal %q, skip %q), want %q", got, tb.fatal, tb.skipped, tc.want)
			}
			if got == "" && b.Kind != KindEmbedded {
				t.Fatalf("Kind = %q", b.Kind)
			}
		})
	}
}
