package config

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/mqtttest"
)

func TestLinkOptions(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pw := write("pw", "s3 cret \r\n")
	notPEM := write("ca.txt", "not a certificate\n")
	missing := filepath.Join(dir, "missing")
	f := mqtttest.MakeTLS(t, "node-1")

	tests := []struct {
		name string
		m    MQTT
		err  string // substring of the error; empty: success
		// checks on success
		password   string
		tls        bool
		serverName string
		roots      bool
		certs      int
	}{
		{name: "plain tcp", m: MQTT{Broker: "tcp://b:1883"}},
		{name: "password trimmed of line ends only", m: MQTT{Broker: "tcp://b:1883", PasswordFile: pw}, password: "s3 cret "},
		{name: "missing password file", m: MQTT{Broker: "tcp://b:1883", PasswordFile: missing}, err: "mqtt.password_file"},
		{name: "tls settings ignored without a tls scheme", m: MQTT{Broker: "ws://b:80", TLS: TLS{CAFile: missing}}},
		{name: "ssl with system roots", m: MQTT{Broker: "ssl://broker.example:8883"}, tls: true, serverName: "broker.example"},
		{name: "server_name overrides host", m: MQTT{Broker: "mqtts://10.0.0.1:8883", TLS: TLS{ServerName: "broker.example"}}, tls: true, serverName: "broker.example"},
		{name: "ca and client cert", m: MQTT{Broker: "tls://127.0.0.1:8883", TLS: TLS{CAFile: f.CAFile, CertFile: f.ClientCert, KeyFile: f.ClientKey}},
			tls: true, serverName: "127.0.0.1", roots: true, certs: 1},
		{name: "missing ca file", m: MQTT{Broker: "ssl://b:8883", TLS: TLS{CAFile: missing}}, err: "mqtt.tls.ca_file"},
		{name: "ca file without certificates", m: MQTT{Broker: "ssl://b:8883", TLS: TLS{CAFile: notPEM}}, err: "no PEM certificates in"},
		{name: "key does not match cert", m: MQTT{Broker: "wss://b:443", TLS: TLS{CertFile: f.ClientCert, KeyFile: f.ServerKey}}, err: "mqtt.tls.key_file"},
		{name: "unparsable broker", m: MQTT{Broker: "ssl://b:8883/%zz"}, err: "mqtt.broker"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.m.Username = "u"
			tc.m.KeepAlive, tc.m.ConnectTimeout = Duration(30*time.Second), Duration(5*time.Second)
			tc.m.ReconnectMin, tc.m.ReconnectMax = Duration(time.Second), Duration(time.Minute)
			o, err := tc.m.LinkOptions()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("LinkOptions() error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LinkOptions(): %v", err)
			}
			if o.Broker != tc.m.Broker || o.Username != "u" || o.Password != tc.password ||
				o.KeepAlive != 30*time.Second || o.ConnectTimeout != 5*time.Second ||
				o.BackoffMin != time.Second || o.BackoffMax != time.Minute {
				t.Errorf("options = %+v", o)
			}
			if (o.TLS != nil) != tc.tls {
				t.Fatalf("TLS = %v, want set: %v", o.TLS, tc.tls)
			}
			if o.TLS == nil {
				return
			}
			if o.TLS.MinVersion != tls.VersionTLS12 || o.TLS.ServerName != tc.serverName ||
				(o.TLS.RootCAs != nil) != tc.roots || len(o.TLS.Certificates) != tc.certs {
				t.Errorf("TLS: min version %x, server name %q, roots %v, %d certificates; want %q, roots %v, %d",
					o.TLS.MinVersion, o.TLS.ServerName, o.TLS.RootCAs != nil, len(o.TLS.Certificates), tc.serverName, tc.roots, tc.certs)
			}
		})
	}
}
