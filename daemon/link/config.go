package link

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/sitelink/sitelink/daemon/config"
)

// FromConfig builds the connection part of Options from an mqtt config
// section: broker, timing, credentials (the password read from its file)
// and TLS. The caller sets the client id, session, handlers and logger.
func FromConfig(m config.MQTT) (Options, error) {
	o := Options{
		Broker:         m.Broker,
		Username:       m.Username,
		KeepAlive:      m.KeepAlive.D(),
		ConnectTimeout: m.ConnectTimeout.D(),
		BackoffMin:     m.ReconnectMin.D(),
		BackoffMax:     m.ReconnectMax.D(),
	}
	if m.PasswordFile != "" {
		b, err := os.ReadFile(m.PasswordFile)
		if err != nil {
			return o, fmt.Errorf("mqtt.password_file: %w", err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	tc, err := tlsConfig(m.Broker, m.TLS)
	if err != nil {
		return o, err
	}
	o.TLS = tc
	return o, nil
}

// tlsSchemes are the broker URL schemes on which paho speaks TLS (as in
// config's validation).
var tlsSchemes = map[string]bool{"ssl": true, "tls": true, "mqtts": true, "wss": true}

// tlsConfig returns the client TLS configuration for broker, or nil if
// its scheme does not use TLS (config validation rejects TLS settings on
// such a URL).
//
// It is built for every TLS scheme, even with no TLS settings (system
// roots): otherwise paho would fall back to its own empty configuration,
// dropping server_name and the TLS 1.2 floor. ServerName defaults to the
// broker's host: tls.Dial infers it from the address, but with all_proxy
// set paho dials the proxy and uses tls.Client, which refuses to verify
// a server without one.
func tlsConfig(broker string, t config.TLS) (*tls.Config, error) {
	u, err := url.Parse(broker)
	if err != nil {
		return nil, fmt.Errorf("mqtt.broker: %w", err)
	}
	if !tlsSchemes[u.Scheme] {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if tc.ServerName == "" {
		tc.ServerName = u.Hostname()
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt.tls.ca_file: no certificates in %s", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
