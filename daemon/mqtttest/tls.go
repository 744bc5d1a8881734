package mqtttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Options select what a broker started by StartWith demands of its
// clients. The zero value is Start's broker: plain TCP, anonymous clients
// welcome, no ACL.
type Options struct {
	// TLS makes the listener TLS-only with these server files; Broker.URL
	// becomes ssl://127.0.0.1:PORT. The certificate is valid for
	// 127.0.0.1 and localhost.
	TLS *TLSFiles
	// RequireCert (needs TLS) makes the broker demand a client certificate
	// signed by TLS.CAFile and take its CommonName as the username
	// (mosquitto's require_certificate and use_identity_as_username), as
	// a fleet broker under mutual TLS does.
	RequireCert bool
	// PasswordFile is a mosquitto password_file (see MakePasswordFile).
	// Clients without a valid username and password are refused.
	PasswordFile string
	// ACL is the content of a mosquitto acl_file, e.g.
	// "pattern readwrite sitelink/v1/nodes/%u/#\n". Empty: no ACL, every
	// client may use every topic.
	ACL string
}

// needsMosquitto reports whether o asks for something only mosquitto
// provides here.
func (o Options) needsMosquitto() bool {
	return o.TLS != nil || o.RequireCert || o.PasswordFile != "" || o.ACL != ""
}

// StartWith is Start with a listener configured by o. The embedded
// fallback does not do TLS, passwords or ACLs: without mosquitto such a
// broker skips the test (or fails it if RequireEnv=1).
func StartWith(t testing.TB, o Options) *Broker {
	t.Helper()
	if o.RequireCert && o.TLS == nil {
		t.Fatal("mqtttest: Options.RequireCert needs Options.TLS")
	}
	return startWith(t, findMosquitto(), o)
}

// authConfig writes the listener's TLS and the authentication settings.
// With per_listener_settings off (the default) password_file, acl_file
// and allow_anonymous are global, which is fine with one listener.
func (b *Broker) authConfig(c *strings.Builder) {
	o := b.opts
	if o.TLS != nil {
		fmt.Fprintf(c, "cafile %s\ncertfile %s\nkeyfile %s\n", o.TLS.CAFile, o.TLS.ServerCert, o.TLS.ServerKey)
	}
	if o.RequireCert {
		c.WriteString("# Mutual TLS: the certificate's CommonName is the client's username.\n")
		c.WriteString("require_certificate true\nuse_identity_as_username true\n")
	}
	if o.PasswordFile != "" {
		fmt.Fprintf(c, "password_file %s\n", o.PasswordFile)
	}
	if o.ACL != "" {
		fmt.Fprintf(c, "acl_file %s\n", b.aclPath())
	}
	if o.PasswordFile != "" || o.RequireCert {
		c.WriteString("allow_anonymous false\n")
	} else {
		c.WriteString("allow_anonymous true\n")
	}
}

// TLSFiles are a throw-away PKI for one test, as PEM files: a CA, a
// server certificate for 127.0.0.1 and localhost, and one client
// certificate. Keys are ECDSA P-256 in PKCS #8, mode 0600.
type TLSFiles struct {
	CAFile     string // CA certificate: mosquitto's cafile and a client's ca_file
	ServerCert string // server certificate, signed by the CA
	ServerKey  string
	ClientCert string // client certificate with the CommonName given to MakeTLS; empty from StartShipped
	ClientKey  string

	CACert *x509.Certificate
	CAKey  *ecdsa.PrivateKey // signs further certificates (IssueClient)

	dir string
}

// certValidity is how long test certificates are valid; they start an
// hour in the past so that clock skew between processes does not matter.
const certValidity = 24 * time.Hour

// MakeTLS generates a CA, a server certificate and a client certificate
// with CommonName clientCN in t.TempDir().
func MakeTLS(t testing.TB, clientCN string) TLSFiles {
	t.Helper()
	f := makeCA(t, "sitelink test CA")
	f.ClientCert, f.ClientKey = f.IssueClient(t, clientCN)
	return f
}

// makeCA generates a CA with CommonName name and a server certificate it
// signed, valid for 127.0.0.1, ::1 and localhost; no client certificate.
func makeCA(t testing.TB, name string) TLSFiles {
	t.Helper()
	f := TLSFiles{dir: t.TempDir()}
	key := newKey(t)
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name, Organization: []string{"sitelink mqtttest"}},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der := sign(t, tmpl, tmpl, key, key)
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("mqtttest: parse CA certificate: %v", err)
	}
	f.CACert, f.CAKey = ca, key
	f.CAFile = filepath.Join(f.dir, "ca.crt")
	writePEM(t, f.CAFile, "CERTIFICATE", der, 0o644)

	f.ServerCert, f.ServerKey = f.issue(t, "server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return f
}

// IssueClient signs another client certificate with CommonName cn and
// returns its certificate and key files.
func (f TLSFiles) IssueClient(t testing.TB, cn string) (certFile, keyFile string) {
	t.Helper()
	return f.issue(t, "client-"+fileSafe(cn), &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// ClientConfig returns a client TLS configuration that trusts the CA and,
// unless cn is empty, presents a fresh client certificate with
// CommonName cn.
func (f TLSFiles) ClientConfig(t testing.TB, cn string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(f.CACert)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cn != "" {
		certFile, keyFile := f.IssueClient(t, cn)
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatalf("mqtttest: load client certificate %s: %v", cn, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc
}

func (f TLSFiles) issue(t testing.TB, name string, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der := sign(t, tmpl, f.CACert, key, f.CAKey)
	certFile = filepath.Join(f.dir, name+".crt")
	keyFile = filepath.Join(f.dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der, 0o644)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("mqtttest: marshal %s key: %v", name, err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", kder, 0o600)
	return certFile, keyFile
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("mqtttest: generate key: %v", err)
	}
	return key
}

// sign fills serial and validity into tmpl and signs it with parent.
func sign(t testing.TB, tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) []byte {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("mqtttest: certificate serial: %v", err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(certValidity)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatalf("mqtttest: sign certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	return der
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatalf("mqtttest: write %s: %v", path, err)
	}
}

// fileSafe turns a CommonName into a file name part.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator || r < ' ' {
			return '_'
		}
		return r
	}, s)
}

// MakePasswordFile writes a mosquitto password_file holding users (name
// to password) with mosquitto_passwd and returns its path. Without
// mosquitto_passwd the test is skipped, or fails if RequireEnv=1.
func MakePasswordFile(t testing.TB, users map[string]string) string {
	t.Helper()
	bin := findPasswd()
	if bin == "" {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal("mosquitto_passwd required (" + RequireEnv + "=1) but not found")
		}
		t.Skip("mqtttest: mosquitto_passwd not found")
	}
	if len(users) == 0 {
		t.Fatal("mqtttest: MakePasswordFile needs at least one user")
	}
	path := filepath.Join(t.TempDir(), "passwd")
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	slices.Sort(names)
	for i, u := range names {
		args := []string{"-b", path, u, users[u]}
		if i == 0 {
			args = append([]string{"-c"}, args...) // create
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mqtttest: mosquitto_passwd %s: %v\n%s", u, err, out)
		}
	}
	return path
}

// findPasswd returns the mosquitto_passwd binary, or "" if there is none.
// Debian puts it in /usr/bin, next to nothing else of mosquitto's.
func findPasswd() string {
	if p, err := exec.LookPath("mosquitto_passwd"); err == nil {
		return p
	}
	dirs := []string{"/usr/bin", "/usr/local/bin", "/usr/sbin", "/usr/local/sbin"}
	if m := findMosquitto(); m != "" {
		dirs = append([]string{filepath.Dir(m)}, dirs...)
	}
	for _, d := range dirs {
		p := filepath.Join(d, "mosquitto_passwd")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
