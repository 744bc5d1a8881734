package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/sitelink/sitelink/daemon/nayax"
)

// The files a configuration names (secrets, certificates, keys, serial
// ports) are checked here, by the same functions that read them when a
// daemon starts: `sitelink config check` and the daemon's start cannot
// disagree about a file, and they word its problem alike.

// maxPEMFile caps a certificate, key or CA bundle file: Debian's whole
// ca-certificates bundle is about 200 KiB, so a larger file is a wrong path.
const maxPEMFile = 1 << 20

// openNamed opens a file named by a configuration. The path is already
// expanded: $CREDENTIALS_DIRECTORY is resolved while decoding
// (expandCredentials), so the check and the daemon open the same file.
func openNamed(path string) (*os.File, error) {
	return os.Open(path)
}

// readNamed reads a file named by a configuration, refusing one larger
// than limit bytes (a wrong path: a log, a device) before reading it all.
func readNamed(path string, limit int64) ([]byte, error) {
	f, err := openNamed(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d KiB, not a certificate or key file", path, limit>>10)
	}
	return data, nil
}

// isAccess reports whether err is about reaching a file (missing, not
// permitted) rather than about its content: on another machine than the
// target that is expected, and only a warning.
func isAccess(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)
}

// loadCAs reads a CA file: PEM certificates and nothing else. Unlike
// x509.CertPool.AppendCertsFromPEM, which skips what it cannot parse, a
// block that is not a certificate is an error: a key or a truncated
// certificate in a CA file is a mistake.
func loadCAs(path string) (*x509.CertPool, error) {
	data, err := readNamed(path, maxPEMFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		n++
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: PEM block %d is a %q, not a CERTIFICATE", path, n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %v", path, n, err)
		}
		pool.AddCert(c)
	}
	if n == 0 {
		return nil, fmt.Errorf("no PEM certificates in %s", path)
	}
	return pool, nil
}

// keyPairError says which of a certificate's two files is at fault.
type keyPairError struct {
	key bool // the key file (else the certificate file)
	err error
}

func (e *keyPairError) Error() string { return e.err.Error() }
func (e *keyPairError) Unwrap() error { return e.err }

// loadKeyPair reads a certificate and its private key (PEM) and checks that
// they belong together. The error is a *keyPairError naming the file at
// fault; a key that does not match the certificate is the key's.
func loadKeyPair(certPath, keyPath string) (tls.Certificate, error) {
	certPEM, err := readNamed(certPath, maxPEMFile)
	if err != nil {
		return tls.Certificate{}, &keyPairError{err: err}
	}
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return tls.Certificate{}, &keyPairError{err: fmt.Errorf("no PEM certificate in %s", certPath)}
	}
	if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		return tls.Certificate{}, &keyPairError{err: fmt.Errorf("%s: %v", certPath, err)}
	}
	keyPEM, err := readNamed(keyPath, maxPEMFile)
	if err != nil {
		return tls.Certificate{}, &keyPairError{key: true, err: err}
	}
	// The certificate parsed: what X509KeyPair still finds wrong is the
	// key, or that it belongs to another certificate.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, &keyPairError{key: true, err: fmt.Errorf("%s: %v (certificate %s)", keyPath, err, certPath)}
	}
	return cert, nil
}

// loadTokenSecret reads the Nayax token secret and derives the key of the
// StartAuthentication Cipher from it.
func loadTokenSecret(path string) ([]byte, error) {
	s, err := ReadSecret(path)
	if err != nil {
		return nil, err
	}
	return nayax.CipherKey(s)
}

// loadCardKey reads the fleet's card key, which must be long enough to key
// an HMAC.
func loadCardKey(path string) ([]byte, error) {
	s, err := ReadSecret(path)
	if err != nil {
		return nil, err
	}
	if len(s) < nayax.MinCardKey {
		return nil, fmt.Errorf("%d bytes, want at least %d (e.g. head -c 32 /dev/urandom | base64)", len(s), nayax.MinCardKey)
	}
	return []byte(s), nil
}

// hostCheck collects the problems of the files and devices a
// configuration names.
type hostCheck struct {
	probs Problems
	// ports: look up the serial ports. The daemon's start does not:
	// a missing adapter faults its stations, not the daemon.
	ports bool
	// elsewhere: the check runs on another machine than the target, so
	// a file or port that cannot be reached here is only a warning.
	elsewhere bool
	// gpioLine, when set, says whether the host has a GPIO line.
	gpioLine func(name string) bool
}

// report records err (if any) against the key path.
func (c *hostCheck) report(path string, err error) {
	if err == nil {
		return
	}
	p := Problem{Path: path, Reason: err.Error()}
	if c.elsewhere && isAccess(err) {
		p.Warning = true
	}
	if c.ports && !c.elsewhere && errors.Is(err, fs.ErrPermission) {
		// `config check` run by an operator: the daemon's user may well
		// read what this one cannot.
		p.Reason += " (run the check as root or as the daemon's user)"
	}
	c.probs = append(c.probs, p)
}

// keyPair checks a certificate and key named at certKey and keyKey.
func (c *hostCheck) keyPair(certKey, certPath, keyKey, keyPath string) {
	if certPath == "" || keyPath == "" {
		return // both or neither: Validate's
	}
	_, err := loadKeyPair(certPath, keyPath)
	var kp *keyPairError
	if errors.As(err, &kp) && kp.key {
		c.report(keyKey, err)
	} else {
		c.report(certKey, err)
	}
}

// secret checks a secret file named at key.
func (c *hostCheck) secret(key, path string) {
	if path != "" {
		_, err := ReadSecret(path)
		c.report(key, err)
	}
}

// mqtt checks the files of the mqtt section, with LinkOptions' loaders.
func (c *hostCheck) mqtt(m MQTT) {
	c.secret("mqtt.password_file", m.PasswordFile)
	if !m.usesTLS() {
		return
	}
	if m.TLS.CAFile != "" {
		_, err := loadCAs(m.TLS.CAFile)
		c.report("mqtt.tls.ca_file", err)
	}
	c.keyPair("mqtt.tls.cert_file", m.TLS.CertFile, "mqtt.tls.key_file", m.TLS.KeyFile)
}

// edge checks what an edge configuration names on the host.
func (c *hostCheck) edge(e *Edge) {
	c.mqtt(e.MQTT)
	if c.ports {
		for i, b := range e.Buses {
			if b.Port == "" {
				continue
			}
			key := fmt.Sprintf("buses[%d].port", i)
			switch fi, err := os.Stat(b.Port); {
			case err != nil:
				c.report(key, fmt.Errorf("serial port %s: %w", b.Port, unwrapPath(err)))
			case fi.Mode()&os.ModeCharDevice == 0:
				c.report(key, fmt.Errorf("%s is not a serial device (a character device such as /dev/ttyUSB0)", b.Port))
			}
		}
	}
	if c.gpioLine != nil {
		c.probs = append(c.probs, e.CheckPins(c.gpioLine)...)
	}
}

// unwrapPath drops the *fs.PathError's "stat PATH:" prefix, which the
// message says already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// relay checks what a relay configuration names on the host, with
// Relay.Secrets' loaders.
func (c *hostCheck) relay(r *Relay) {
	if p := r.Nayax.SignKeyFile; p != "" {
		_, err := ReadSecret(p)
		c.report("nayax.sign_key_file", err)
	}
	if p := r.Nayax.TokenSecretFile; p != "" {
		_, err := loadTokenSecret(p)
		c.report("nayax.token_secret_file", err)
	}
	if p := r.Relay.CardKeyFile; p != "" {
		_, err := loadCardKey(p)
		c.report("relay.card_key_file", err)
	}
	for i, h := range r.Relay.CallbackHeaders {
		c.secret(fmt.Sprintf("relay.callback_headers[%d].value_file", i), h.ValueFile)
	}
	c.keyPair("relay.tls_cert_file", r.Relay.TLSCertFile, "relay.tls_key_file", r.Relay.TLSKeyFile)
	c.mqtt(r.MQTT)
}

// RelaySecrets is what a relay reads from the files its configuration
// names.
type RelaySecrets struct {
	SignKey     string            // nayax.sign_key_file
	TokenSecret []byte            // the Cipher key from nayax.token_secret_file
	CardKey     []byte            // relay.card_key_file
	Headers     []string          // each callback header's expected value, inline or from value_file
	TLS         []tls.Certificate // relay.tls_cert_file and tls_key_file; nil: plain HTTP behind a proxy
}

// Secrets reads the files the relay configuration names, with the loaders
// `config check` uses. The error names the key at fault.
func (r *Relay) Secrets() (RelaySecrets, error) {
	var s RelaySecrets
	var err error
	if s.SignKey, err = ReadSecret(r.Nayax.SignKeyFile); err != nil {
		return s, fmt.Errorf("nayax.sign_key_file: %w", err)
	}
	if s.TokenSecret, err = loadTokenSecret(r.Nayax.TokenSecretFile); err != nil {
		return s, fmt.Errorf("nayax.token_secret_file: %w", err)
	}
	if s.CardKey, err = loadCardKey(r.Relay.CardKeyFile); err != nil {
		return s, fmt.Errorf("relay.card_key_file: %w", err)
	}
	for i, h := range r.Relay.CallbackHeaders {
		v := h.Value
		if h.ValueFile != "" {
			if v, err = ReadSecret(h.ValueFile); err != nil {
				return s, fmt.Errorf("relay.callback_headers[%d].value_file: %w", i, err)
			}
		}
		s.Headers = append(s.Headers, v)
	}
	if r.Relay.TLSCertFile != "" {
		cert, err := loadKeyPair(r.Relay.TLSCertFile, r.Relay.TLSKeyFile)
		var kp *keyPairError
		if errors.As(err, &kp) && kp.key {
			return s, fmt.Errorf("relay.tls_key_file: %w", err)
		} else if err != nil {
			return s, fmt.Errorf("relay.tls_cert_file: %w", err)
		}
		s.TLS = []tls.Certificate{cert}
	}
	return s, nil
}
