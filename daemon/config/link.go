package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"

	"github.com/sitelink/sitelink/daemon/link"
)

// LinkOptions builds the connection part of link.Options from the mqtt
// section: broker, timing, credentials (the password read from its file)
// and TLS. The caller sets the client id, session, handlers and logger.
//
// It lives here rather than in link so that link stays a plain MQTT
// client that knows nothing of sitelink's configuration files.
func (m MQTT) LinkOptions() (link.Options, error) {
	o := link.Options{
		Broker:         m.Broker,
		Username:       m.Username,
		KeepAlive:      m.KeepAlive.D(),
		ConnectTimeout: m.ConnectTimeout.D(),
		BackoffMin:     m.ReconnectMin.D(),
		BackoffMax:     m.ReconnectMax.D(),
	}
	if m.PasswordFile != "" {
		pw, err := ReadSecret(m.PasswordFile)
		if err != nil {
			return o, fmt.Errorf("mqtt.password_file: %w", err)
		}
		o.Password = pw
	}
	tc, err := m.tlsConfig()
	if err != nil {
		return o, err
	}
	o.TLS = tc
	return o, nil
}

// tlsConfig returns the client TLS configuration for the broker, or nil
// if its scheme does not use TLS (Validate rejects TLS settings on such a
// URL).
//
// It is built for every TLS scheme, even with no TLS settings (system
// roots): otherwise paho would fall back to its own empty configuration,
// dropping server_name and the TLS 1.2 floor. ServerName defaults to the
// broker's host: tls.Dial infers it from the address, but with all_proxy
// set paho dials the proxy and uses tls.Client, which refuses to verify
// a server without one.
func (m MQTT) tlsConfig() (*tls.Config, error) {
	u, err := url.Parse(m.Broker)
	if err != nil {
		return nil, fmt.Errorf("mqtt.broker: %w", err)
	}
	if !brokerSchemes[u.Scheme] {
		return nil, nil
	}
	t := m.TLS
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if tc.ServerName == "" {
		tc.ServerName = u.Hostname()
	}
	if t.CAFile != "" {
		pool, err := loadCAs(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls.ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := loadKeyPair(t.CertFile, t.KeyFile)
		var kp *keyPairError
		if errors.As(err, &kp) && kp.key {
			return nil, fmt.Errorf("mqtt.tls.key_file: %w", err)
		} else if err != nil {
			return nil, fmt.Errorf("mqtt.tls.cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// usesTLS reports whether the broker URL has a TLS scheme.
func (m MQTT) usesTLS() bool {
	u, err := url.Parse(m.Broker)
	return err == nil && brokerSchemes[u.Scheme]
}
