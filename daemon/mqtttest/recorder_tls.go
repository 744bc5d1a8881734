package mqtttest

import (
	"crypto/tls"
	"net/url"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// RecordOptions are the credentials a Recorder connects with.
type RecordOptions struct {
	// TLS is the client configuration for an ssl:// broker, e.g. from
	// TLSFiles.ClientConfig. An empty ServerName is filled in from the
	// URL's host, as crypto/tls needs it on every dialling path.
	TLS      *tls.Config
	Username string // empty: none (or the certificate's identity)
	Password string
}

// RecordWith is Record on a broker that wants TLS, a client certificate
// or a username and password.
func RecordWith(t testing.TB, url, id, filter string, o RecordOptions) *Recorder {
	t.Helper()
	return record(t, url, id, filter, o)
}

func (ro RecordOptions) apply(o *paho.ClientOptions, broker string) {
	if ro.TLS != nil {
		tc := ro.TLS
		if tc.ServerName == "" {
			if u, err := url.Parse(broker); err == nil {
				tc = tc.Clone()
				tc.ServerName = u.Hostname()
			}
		}
		o.SetTLSConfig(tc)
	}
	if ro.Username != "" {
		o.SetUsername(ro.Username)
		o.SetPassword(ro.Password)
	}
}
