package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const relayExamplePath = "../../configs/relay.example.yaml"

// minimalRelay is the smallest valid relay configuration; cases append to it.
const minimalRelay = `relay: {id: r1, card_key_file: /c, callback_headers: [{name: X-Auth, value_file: /h}]}
nayax: {base_url: "https://n.example/api", integrator_id: i1, sign_key_file: /k, token_id: 7, token_secret_file: /s}
`

// relayProblemsOf parses src and returns its problems as "path: reason".
func relayProblemsOf(t *testing.T, src string) []string {
	t.Helper()
	r, err := ParseRelay([]byte(src))
	if err == nil {
		if r == nil {
			t.Fatal("ParseRelay returned nil *Relay and nil error")
		}
		return nil
	}
	if r != nil {
		t.Errorf("ParseRelay returned a *Relay along with error %v", err)
	}
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("error %T %v is not Problems", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false")
	}
	out := make([]string, len(probs))
	for i, p := range probs {
		p.Line = 0
		out[i] = p.String()
	}
	return out
}

func mustParseRelay(t *testing.T, src string) *Relay {
	t.Helper()
	r, err := ParseRelay([]byte(src))
	if err != nil {
		t.Fatalf("ParseRelay: unexpected problems:\n%v", err)
	}
	return r
}

func TestRelayExampleFile(t *testing.T) {
	r, err := LoadRelay(relayExamplePath)
	if err != nil {
		t.Fatalf("relay example config has problems:\n%v", err)
	}
	want := DefaultRelay()
	want.Relay.ID = "relay-1"
	want.Nayax.BaseURL = "https://nayax-spark-dmz.nayax.com/api"
	want.Nayax.IntegratorID = "your-sign-key-id"
	want.Nayax.SignKeyFile = "/etc/sitelink/nayax-sign.key"
	want.Nayax.TokenID = 116383
	want.Nayax.TokenSecretFile = "/etc/sitelink/nayax-token.secret"
	want.Relay.CardKeyFile = "/etc/sitelink/card.key"
	want.Relay.CallbackHeaders = []CallbackHeader{{Name: "X-Sitelink-Auth", ValueFile: "/etc/sitelink/callback-auth.secret"}}
	// configs/mosquitto.conf's cloud listener: client certificates.
	want.MQTT.Broker = "ssl://mqtt.example.com:8884"
	want.MQTT.TLS = TLS{CAFile: "/etc/sitelink/ca.crt", CertFile: "/etc/sitelink/relay.crt", KeyFile: "/etc/sitelink/relay.key"}
	if !reflect.DeepEqual(*r, want) {
		t.Errorf("relay example config:\n got %+v\nwant %+v", *r, want)
	}
}

func TestRelayDefaults(t *testing.T) {
	def := DefaultRelay()
	if def.Relay.ID != "" || def.Nayax.BaseURL != "" || def.Nayax.TokenID != 0 || def.Relay.CallbackHeaders != nil {
		t.Errorf("DefaultRelay has values without a default: %+v", def)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", def.Relay.Listen, ":8080"},
		{"ack_budget", def.Relay.AckBudget, Duration(4 * time.Second)},
		{"mqtt", def.MQTT, Default().MQTT},
		{"group", def.MQTT.Group, "default"},
		{"timeout", def.Nayax.Timeout, Duration(10 * time.Second)},
		{"attempts", def.Nayax.Attempts, 3},
		{"trigger_timeout", def.Nayax.TriggerTimeout, Duration(time.Minute)},
		{"metrics_listen", def.Relay.MetricsListen, "127.0.0.1:9101"},
		{"rate_limit", def.Relay.RateLimit, 200.0},
		{"rate_burst", def.Relay.RateBurst, 400},
		{"max_connections", def.Relay.MaxConnections, 1024},
		{"max_start_amount", def.Relay.MaxStartAmount, "150"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("default %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if probs := def.Validate(); len(probs) != 8 {
		t.Errorf("DefaultRelay().Validate() = %v, want the 8 keys without a default", probs)
	}
}

func TestRelayDefaultsApplied(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, r *Relay)
	}{
		{"minimal gets every default", minimalRelay, func(t *testing.T, r *Relay) {
			want := DefaultRelay()
			want.Relay.ID = "r1"
			want.Relay.CardKeyFile = "/c"
			want.Relay.CallbackHeaders = []CallbackHeader{{Name: "X-Auth", ValueFile: "/h"}}
			want.Nayax = Nayax{BaseURL: "https://n.example/api", IntegratorID: "i1", SignKeyFile: "/k", TokenID: 7, TokenSecretFile: "/s",
				Timeout: Duration(10 * time.Second), Attempts: 3, TriggerTimeout: Duration(time.Minute)}
			if !reflect.DeepEqual(*r, want) {
				t.Errorf("got %+v\nwant %+v", *r, want)
			}
		}},
		{"partial mqtt block", minimalRelay + "mqtt: {broker: \"ssl://b.example:8883\", group: relays}\n", func(t *testing.T, r *Relay) {
			if r.MQTT.Broker != "ssl://b.example:8883" || r.MQTT.Group != "relays" || r.MQTT.TopicPrefix != "sitelink/v1" {
				t.Errorf("mqtt = %+v", r.MQTT)
			}
		}},
		{"empty callback_headers is nil", "relay: {id: r1, card_key_file: /c, insecure_allow_unauthenticated_callbacks: true}\nnayax: {base_url: \"https://n.example/api\", integrator_id: i1, sign_key_file: /k, token_id: 7, token_secret_file: /s}\n", func(t *testing.T, r *Relay) {
			r2 := mustParseRelay(t, "relay: {id: r1, card_key_file: /c, callback_headers: [], insecure_allow_unauthenticated_callbacks: true}\nnayax: {base_url: \"https://n.example/api\", integrator_id: i1, sign_key_file: /k, token_id: 7, token_secret_file: /s}\n")
			if r.Relay.CallbackHeaders != nil || r2.Relay.CallbackHeaders != nil || !r2.Relay.InsecureAllowUnauthenticatedCallbacks {
				t.Errorf("callback_headers = %#v, %#v", r.Relay.CallbackHeaders, r2.Relay.CallbackHeaders)
			}
		}},
		{"tolerant token_id and listen", "relay: {id: 5, card_key_file: /c, insecure_allow_unauthenticated_callbacks: true, listen: \"127.0.0.1:9000\"}\nnayax: {base_url: \"http://127.0.0.1:8081\", integrator_id: 42, sign_key_file: k, token_id: \"116383\", token_secret_file: s, attempts: 10, trigger_timeout: 1h}\n", func(t *testing.T, r *Relay) {
			if r.Relay.ID != "5" || r.Nayax.IntegratorID != "42" || r.Nayax.TokenID != 116383 || r.Relay.Listen != "127.0.0.1:9000" {
				t.Errorf("relay = %+v, nayax = %+v", r.Relay, r.Nayax)
			}
		}},
		{"two headers and https", minimalRelay[:len("relay: {id: r1, card_key_file: /c")] + ", tls_cert_file: /c.pem, tls_key_file: /k.pem, callback_headers: [{name: X-A, value: \"a b\"}, {name: x-b, value_file: /v}]}\n" + minimalRelay[strings.Index(minimalRelay, "nayax"):], func(t *testing.T, r *Relay) {
			if len(r.Relay.CallbackHeaders) != 2 || r.Relay.TLSCertFile != "/c.pem" || r.Relay.CallbackHeaders[0].Value != "a b" {
				t.Errorf("relay = %+v", r.Relay)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustParseRelay(t, tt.src))
		})
	}
}

// TestRelayProblems covers every relay problem class; each case lists
// exactly the problems expected.
func TestRelayProblems(t *testing.T) {
	const nayax = "nayax: {base_url: \"https://n.example/api\", integrator_id: i1, sign_key_file: /k, token_id: 7, token_secret_file: /s}\n"
	// hdr is the one callback header of the cases that are not about them.
	const hdr = "callback_headers: [{name: X-Auth, value_file: /h}]"
	relay := func(body string) string {
		if !strings.Contains(body, "callback_headers") && !strings.Contains(body, "insecure_allow") {
			body += ", " + hdr
		}
		return "relay: {id: r1, card_key_file: /c, " + body + "}\n" + nayax
	}
	nx := func(body string) string {
		return "relay: {id: r1, card_key_file: /c, " + hdr + "}\nnayax: {integrator_id: i1, sign_key_file: /k, token_id: 7, token_secret_file: /s, " + body + "}\n"
	}
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"empty file", "", []string{
			"relay.id: required", "relay.callback_headers: required: set up one or two custom headers in Nayax's back office and list them here; only nayaxsim or a demo may run without (insecure_allow_unauthenticated_callbacks: true)", "relay.card_key_file: required", "nayax.base_url: required", "nayax.integrator_id: required",
			"nayax.sign_key_file: required", "nayax.token_id: required", "nayax.token_secret_file: required",
		}},
		{"syntax error", "relay: {id: r1\n", []string{"invalid YAML: did not find expected ',' or '}'"}},

		// Unknown keys at every depth, and edge keys in a relay file.
		{"unknown top-level key", minimalRelay + "node: {id: n1}\n", []string{"node: unknown key"}},
		{"unknown relay key", relay("ack: 1s"), []string{"relay.ack: unknown key"}},
		{"unknown nayax key", minimalRelay[:len(minimalRelay)-2] + ", token: x}\n", []string{"nayax.token: unknown key"}},
		{"unknown header key", relay("callback_headers: [{name: X-A, value: a, secret: b}]"), []string{"relay.callback_headers[0].secret: unknown key"}},
		{"unknown mqtt key", minimalRelay + "mqtt: {client_id: x}\n", []string{"mqtt.client_id: unknown key"}},

		// Wrong types.
		{"duplicate nayax key", nx("base_url: \"https://n/api\", token_id: abc"), []string{"nayax.token_id: duplicate key (first at line 2)"}},
		{"token_id type", "relay: {id: r1, card_key_file: /c, " + hdr + "}\nnayax: {base_url: \"https://n/api\", integrator_id: i1, sign_key_file: /k, token_id: abc, token_secret_file: /s}\n", []string{`nayax.token_id: expected an integer, got "abc"`}},
		{"token_id overflows int32", "relay: {id: r1, card_key_file: /c, " + hdr + "}\nnayax: {base_url: \"https://n/api\", integrator_id: i1, sign_key_file: /k, token_id: 2147483648, token_secret_file: /s}\n", []string{"nayax.token_id: integer 2147483648 out of range"}},
		{"ack_budget without unit", relay("ack_budget: 4"), []string{`relay.ack_budget: invalid duration "4": add a unit, e.g. "4s"`}},
		{"callback_headers is a mapping", relay("callback_headers: {name: X-A}"), []string{"relay.callback_headers: expected a list, got a mapping"}},
		{"header value is a list", relay("callback_headers: [{name: X-A, value: [a]}]"), []string{"relay.callback_headers[0].value: expected a string, got a list"}},

		// relay
		{"relay.id invalid", "relay: {id: \"relay/1\", card_key_file: /c, " + hdr + "}\n" + nayax, []string{`relay.id: invalid relay id "relay/1": use 1 to 64 letters, digits, '.', '_' or '-' (it is an MQTT topic level)`}},
		{"listen empty", relay("listen: \"\""), []string{"relay.listen: required"}},
		{"listen without port", relay("listen: \"8080\""), []string{`relay.listen: want host:port such as ":8080" or "127.0.0.1:8080", got "8080"`}},
		{"listen port zero", relay("listen: \":0\""), []string{`relay.listen: invalid port "0" (want 1 to 65535)`}},
		{"listen port name", relay("listen: \":http\""), []string{`relay.listen: invalid port "http" (want 1 to 65535)`}},
		{"listen bad host", relay("listen: \"a b:80\""), []string{`relay.listen: invalid host in "a b:80"`}},
		{"listen ipv6 ok", relay("listen: \"[::1]:8443\""), nil},
		{"ack_budget zero", relay("ack_budget: 0s"), []string{`relay.ack_budget: must be > 0, got "0s"`}},
		{"ack_budget 5s", relay("ack_budget: 5s"), []string{`relay.ack_budget: must be below 5s (Nayax waits 5 s for an answer), got "5s"`}},
		{"ack_budget 4.999s ok", relay("ack_budget: 4999ms"), nil},
		{"three headers", relay("callback_headers: [{name: A, value: a}, {name: B, value: b}, {name: C, value: c}]"), []string{"relay.callback_headers: at most 2 (Nayax sends up to 2 static headers), got 3"}},
		{"header with both", relay("callback_headers: [{name: X-A, value: a, value_file: /a}]"), []string{"relay.callback_headers[0]: exactly one of value and value_file"}},
		{"header with neither", relay("callback_headers: [{name: X-A}, {name: X-B, value: \"\"}]"), []string{"relay.callback_headers[0]: exactly one of value and value_file", "relay.callback_headers[1]: exactly one of value and value_file"}},
		{"header name missing", relay("callback_headers: [{value: a}]"), []string{"relay.callback_headers[0].name: required"}},
		{"header name invalid", relay("callback_headers: [{name: \"X Auth\", value: a}]"), []string{"relay.callback_headers[0].name: invalid header name \"X Auth\": use letters, digits and !#$%&'*+-.^_`|~"}},
		{"header name colon", relay("callback_headers: [{name: \"X-Auth:\", value: a}]"), []string{"relay.callback_headers[0].name: invalid header name \"X-Auth:\": use letters, digits and !#$%&'*+-.^_`|~"}},
		{"header name reserved", relay("callback_headers: [{name: host, value: a}]"), []string{`relay.callback_headers[0].name: header "host" is handled by the HTTP server and cannot be checked; pick another name`}},
		{"header name duplicate", relay("callback_headers: [{name: X-Auth, value: a}, {name: x-auth, value: b}]"), []string{`relay.callback_headers[1].name: duplicate header "x-auth" (also in relay.callback_headers[0]; names are case-insensitive)`}},
		{"header value with newline", relay("callback_headers: [{name: X-Auth, value: \"s3cret\\r\\nX-Evil: 1\"}]"), []string{"relay.callback_headers[0].value: not a usable header value: no control characters and no leading or trailing spaces"}},
		{"header value with spaces", relay("callback_headers: [{name: X-Auth, value: \" s3cret\"}]"), []string{"relay.callback_headers[0].value: not a usable header value: no control characters and no leading or trailing spaces"}},
		{"tls cert without key", relay("tls_cert_file: /c.pem"), []string{"relay.tls_key_file: required when tls_cert_file is set"}},
		{"tls key without cert", relay("tls_key_file: /k.pem"), []string{"relay.tls_cert_file: required when tls_key_file is set"}},
		{"metrics_listen off", relay(`metrics_listen: ""`), nil},
		{"metrics_listen without port", relay(`metrics_listen: "9101"`), []string{`relay.metrics_listen: want host:port such as ":8080" or "127.0.0.1:8080", got "9101"`}},
		{"metrics_listen port zero", relay(`metrics_listen: "127.0.0.1:0"`), []string{`relay.metrics_listen: invalid port "0" (want 1 to 65535)`}},
		{"metrics_listen on the public socket", relay(`listen: ":8080", metrics_listen: "127.0.0.1:8080"`), []string{`relay.metrics_listen: must be another address than relay.listen (":8080"): the metrics stay off the public listener`}},
		{"metrics_listen every interface", relay(`listen: "203.0.113.5:8080", metrics_listen: ":8080"`), []string{`relay.metrics_listen: must be another address than relay.listen ("203.0.113.5:8080"): the metrics stay off the public listener`}},
		{"metrics_listen same port on another host", relay(`listen: "203.0.113.5:8080", metrics_listen: "127.0.0.1:8080"`), nil},
		{"rate_limit off", relay("rate_limit: 0, rate_burst: 0"), nil},
		{"rate_limit fraction", relay("rate_limit: 0.5, rate_burst: 1"), nil},
		{"rate_limit negative", relay("rate_limit: -1"), []string{"relay.rate_limit: must be >= 0 (requests a second per source; 0: no limit), got -1"}},
		{"rate_limit not a number", relay("rate_limit: fast"), []string{`relay.rate_limit: expected a number, got "fast"`}},
		{"rate_burst zero", relay("rate_burst: 0"), []string{"relay.rate_burst: must be at least 1, got 0"}},
		{"max_connections zero", relay("max_connections: 0"), []string{"relay.max_connections: must be at least 1, got 0"}},
		{"max_connections not an integer", relay("max_connections: 1.5"), []string{`relay.max_connections: expected an integer, got "1.5"`}},
		{"callback_headers missing", "relay: {id: r1, card_key_file: /c}\n" + nayax, []string{"relay.callback_headers: required: set up one or two custom headers in Nayax's back office and list them here; only nayaxsim or a demo may run without (insecure_allow_unauthenticated_callbacks: true)"}},
		{"callback_headers empty, insecure ok", relay("callback_headers: [], insecure_allow_unauthenticated_callbacks: true"), nil},
		{"max_start_amount zero", relay("max_start_amount: 0.00"), []string{`relay.max_start_amount: must be a decimal amount above 0 in the currency's main unit (e.g. 150 or 99.50), got "0.00"`}},
		{"max_start_amount negative", relay("max_start_amount: -5"), []string{`relay.max_start_amount: must be a decimal amount above 0 in the currency's main unit (e.g. 150 or 99.50), got "-5"`}},
		{"max_start_amount exponent", relay("max_start_amount: 1e3"), []string{`relay.max_start_amount: must be a decimal amount above 0 in the currency's main unit (e.g. 150 or 99.50), got "1e3"`}},
		{"max_start_amount unquoted decimal ok", relay("max_start_amount: 99.50"), nil},
		{"share_group guessable", relay("share_group: default"), []string{"relay.share_group: too short to be secret (7 characters): leave it empty to derive one from the card key, or use e.g. `openssl rand -hex 16`"}},
		{"share_group with a wildcard", relay("share_group: \"relays+0123456789abcdef\""), []string{`relay.share_group: invalid group "relays+0123456789abcdef": use 1 to 64 letters, digits, '.', '_' or '-' (it is an MQTT topic level)`}},
		{"share_group random ok", relay("share_group: 5f2b9c0e4a7d41e3b8c6a1d0e9f73b24"), nil},
		{"card_key_file missing", "relay: {id: r1, " + hdr + "}\n" + nayax, []string{"relay.card_key_file: required"}},
		{"card_key_file empty", "relay: {id: r1, card_key_file: \"\", " + hdr + "}\n" + nayax, []string{"relay.card_key_file: required"}},

		// mqtt: the shared checks apply to the relay too.
		{"mqtt group invalid", minimalRelay + "mqtt: {group: \"a+b\"}\n", []string{`mqtt.group: invalid group "a+b": use 1 to 64 letters, digits, '.', '_' or '-' (it is an MQTT topic level)`}},
		{"mqtt broker and tls", minimalRelay + "mqtt: {broker: \"http://b:1\", tls: {cert_file: /c}}\n", []string{
			`mqtt.broker: unsupported scheme in "http://b:1" (want tcp, ssl, tls, mqtt, mqtts, ws or wss)`,
			"mqtt.tls.key_file: required when cert_file is set",
		}},
		{"mqtt password without user", minimalRelay + "mqtt: {password_file: /p, keepalive: 0s}\n", []string{"mqtt.password_file: set without mqtt.username", `mqtt.keepalive: must be at least 1s, got "0s"`}},

		// nayax
		{"base_url scheme", nx(`base_url: "ftp://n.example/api"`), []string{`nayax.base_url: want an http:// or https:// URL such as "https://nayax-spark-dmz.nayax.com/api", got "ftp://n.example/api"`}},
		{"base_url without scheme", nx(`base_url: "nayax-spark-dmz.nayax.com/api"`), []string{`nayax.base_url: want an http:// or https:// URL such as "https://nayax-spark-dmz.nayax.com/api", got "nayax-spark-dmz.nayax.com/api"`}},
		{"base_url without host", nx(`base_url: "https:///api"`), []string{`nayax.base_url: want an http:// or https:// URL such as "https://nayax-spark-dmz.nayax.com/api", got "https:///api"`}},
		{"base_url credentials", nx(`base_url: "https://u:p@n.example/api"`), []string{"nayax.base_url: must not carry credentials"}},
		{"base_url query", nx(`base_url: "https://n.example/api?x=1"`), []string{`nayax.base_url: must not have a query or fragment, got "https://n.example/api?x=1"`}},
		{"base_url port", nx(`base_url: "http://127.0.0.1:0/api"`), []string{`nayax.base_url: invalid port "0"`}},
		{"base_url local http ok", nx(`base_url: "http://127.0.0.1:8081/"`), nil},
		{"integrator_id spaces", "relay: {id: r1, card_key_file: /c, " + hdr + "}\nnayax: {base_url: \"https://n/api\", integrator_id: \" i1\", sign_key_file: /k, token_id: 7, token_secret_file: /s}\n", []string{`nayax.integrator_id: invalid integrator_id " i1": no control characters and no leading or trailing spaces`}},
		{"token_id negative", "relay: {id: r1, card_key_file: /c, " + hdr + "}\nnayax: {base_url: \"https://n/api\", integrator_id: i1, sign_key_file: /k, token_id: -5, token_secret_file: /s}\n", []string{"nayax.token_id: must be > 0, got -5"}},
		{"files missing", "relay: {id: r1, card_key_file: /c, " + hdr + "}\nnayax: {base_url: \"https://n/api\", integrator_id: i1, token_id: 7, sign_key_file: \"\"}\n", []string{"nayax.sign_key_file: required", "nayax.token_secret_file: required"}},
		{"timeout zero", nx(`base_url: "https://n/api", timeout: 0s`), []string{`nayax.timeout: must be > 0, got "0s"`}},
		{"attempts zero", nx(`base_url: "https://n/api", attempts: 0`), []string{"nayax.attempts: must be between 1 and 10, got 0"}},
		{"attempts eleven", nx(`base_url: "https://n/api", attempts: 11`), []string{"nayax.attempts: must be between 1 and 10, got 11"}},
		{"trigger_timeout short", nx(`base_url: "https://n/api", trigger_timeout: 500ms`), []string{`nayax.trigger_timeout: must be between 1s and 1h0m0s, got "500ms"`}},
		{"trigger_timeout long", nx(`base_url: "https://n/api", trigger_timeout: 3601s`), []string{`nayax.trigger_timeout: must be between 1s and 1h0m0s, got "1h0m1s"`}},
		{"trigger_timeout fraction", nx(`base_url: "https://n/api", trigger_timeout: 1.5s`), []string{`nayax.trigger_timeout: must be whole seconds, got "1.5s"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := relayProblemsOf(t, tt.src)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestRelayAllProblemsReported checks that one relay file with many
// mistakes gets all of them, each at its line, in file order.
func TestRelayAllProblemsReported(t *testing.T) {
	src := `relay:
  listen: "8080"
  ack_budget: 6s
  callback_headers:
    - name: X-Auth
      value: a
      value_file: /etc/a
    - name: "bad name"
      value: b
    - name: X-Other
      valu: c
  metrics_listen: ":9101x"
  rate_burst: 0
  max_connections: -5
mqtt:
  brokr: tcp://127.0.0.1:1883
  group: a/b
nayax:
  base_url: nayax.example
  token_id: -1
  sign_key_file: /k
  timeout: 10
  attempts: 0
`
	want := []string{
		"line 1: relay.id: required",
		"line 1: relay.card_key_file: required",
		`line 2: relay.listen: want host:port such as ":8080" or "127.0.0.1:8080", got "8080"`,
		`line 3: relay.ack_budget: must be below 5s (Nayax waits 5 s for an answer), got "6s"`,
		"line 4: relay.callback_headers: at most 2 (Nayax sends up to 2 static headers), got 3",
		"line 5: relay.callback_headers[0]: exactly one of value and value_file",
		"line 8: relay.callback_headers[1].name: invalid header name \"bad name\": use letters, digits and !#$%&'*+-.^_`|~",
		"line 10: relay.callback_headers[2]: exactly one of value and value_file",
		"line 11: relay.callback_headers[2].valu: unknown key",
		`line 12: relay.metrics_listen: invalid port "9101x" (want 1 to 65535)`,
		"line 13: relay.rate_burst: must be at least 1, got 0",
		"line 14: relay.max_connections: must be at least 1, got -5",
		"line 16: mqtt.brokr: unknown key",
		`line 17: mqtt.group: invalid group "a/b": use 1 to 64 letters, digits, '.', '_' or '-' (it is an MQTT topic level)`,
		"line 18: nayax.integrator_id: required",
		"line 18: nayax.token_secret_file: required",
		`line 19: nayax.base_url: want an http:// or https:// URL such as "https://nayax-spark-dmz.nayax.com/api", got "nayax.example"`,
		"line 20: nayax.token_id: must be > 0, got -1",
		`line 22: nayax.timeout: invalid duration "10": add a unit, e.g. "10s"`,
		"line 23: nayax.attempts: must be between 1 and 10, got 0",
	}
	_, err := ParseRelay([]byte(src))
	if err == nil {
		t.Fatal("no problems reported")
	}
	got := strings.Split(err.Error(), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRelayValidateProgrammatic(t *testing.T) {
	r := DefaultRelay()
	r.Relay.ID = "r1"
	r.Relay.CardKeyFile = "/c"
	r.Relay.InsecureAllowUnauthenticatedCallbacks = true
	r.Nayax = Nayax{BaseURL: "https://n/api", IntegratorID: "i", SignKeyFile: "/k", TokenID: 1, TokenSecretFile: "/s",
		Timeout: Duration(time.Second), Attempts: 1, TriggerTimeout: Duration(time.Second)}
	if probs := r.Validate(); probs != nil {
		t.Errorf("Validate = %v", probs)
	}
	r.Relay.CallbackHeaders = []CallbackHeader{{Name: "X-A", Value: "s3cret\x00"}}
	probs := r.Validate()
	if len(probs) != 1 || probs[0].Path != "relay.callback_headers[0].value" {
		t.Fatalf("Validate = %v", probs)
	}
	if strings.Contains(probs.Error(), "s3cret") {
		t.Errorf("problem echoes the header value: %v", probs)
	}
}

func TestLoadRelay(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	_, err := LoadRelay(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) || errors.Is(err, ErrInvalid) {
		t.Errorf("missing file: err = %v, want ErrNotExist naming the path", err)
	}
	bad := writeFile(t, dir, "bad.yaml", "relay: {idd: x}\n")
	_, err = LoadRelay(bad)
	var probs Problems
	if !errors.As(err, &probs) || len(probs) != 9 {
		t.Errorf("bad file: err = %v, want 9 problems", err)
	}
	good := writeFile(t, dir, "good.yaml", minimalRelay)
	if r, err := LoadRelay(good); err != nil || r.Relay.ID != "r1" {
		t.Errorf("good file: %+v, %v", r, err)
	}
}

func TestRelayYAMLRoundTrip(t *testing.T) {
	r := mustParseRelay(t, "relay: {id: r1, card_key_file: /c, callback_headers: [{name: X-A, value: \"0042\"}, {name: X-B, value_file: /v}]}\n"+minimalRelay[strings.Index(minimalRelay, "nayax"):])
	out, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if back := mustParseRelay(t, string(out)); !reflect.DeepEqual(r, back) {
		t.Errorf("round trip:\n got %+v\nwant %+v\nyaml:\n%s", back, r, out)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		kind     string
		problems int // 0: valid
	}{
		{"edge", priced(minimal), KindEdge, 0},
		{"relay", minimalRelay, KindRelay, 0},
		{"relay key last", "nayax: {base_url: \"https://n/api\", integrator_id: i1, sign_key_file: /k, token_id: 7, token_secret_file: /s}\nrelay: {id: r1, card_key_file: /c, callback_headers: [{name: X-A, value: a}]}\n", KindRelay, 0},
		{"edge example", mustRead(t, examplePath), KindEdge, 0},
		{"relay example", mustRead(t, relayExamplePath), KindRelay, 0},
		{"empty file is an edge", "", KindEdge, 3},
		{"list is an edge", "- relay\n", KindEdge, 1},
		{"broken edge", "node: {id: n1\n", KindEdge, 1},
		{"broken relay", "relay: {id: r1\n", KindRelay, 1},
		{"relay without relay block", "nayax: {}\n", KindRelay, 8},
		{"relay with edge keys", minimalRelay + "stations: []\n", KindRelay, 1},
		{"edge with relay key", minimal + "relay: {id: r1, card_key_file: /c}\n", KindRelay, 8},
		{"relay key under a block", priced(minimal + "mqtt: {relay: 1}\n"), KindEdge, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, err := Check([]byte(tt.src))
			if kind != tt.kind {
				t.Errorf("kind = %q, want %q", kind, tt.kind)
			}
			var probs Problems
			if err != nil && !errors.As(err, &probs) {
				t.Fatalf("err %T %v is not Problems", err, err)
			}
			if len(probs) != tt.problems {
				t.Errorf("got %d problems, want %d:\n%v", len(probs), tt.problems, err)
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestCheckHost(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	kind, probs, err := CheckHost(missing, CheckOptions{})
	if kind != "" || probs != nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %q, %v, %v", kind, probs, err)
	}
	for _, tt := range []struct {
		path, kind string
	}{
		{writeFile(t, dir, "edge.yaml", priced(minimal)), KindEdge},
		{writeFile(t, dir, "relay.yaml", strings.ReplaceAll(minimalRelay, "_file: /", "_file: "+dir+"/")), KindRelay},
	} {
		if kind, _, err := CheckHost(tt.path, CheckOptions{}); kind != tt.kind || err != nil {
			t.Errorf("CheckHost(%s) = %q, %v; want %q, nil", tt.path, kind, err, tt.kind)
		}
	}
	bad := writeFile(t, dir, "bad.yaml", minimalRelay+"mqtt: {brokr: x}\n")
	kind, probs, err = CheckHost(bad, CheckOptions{})
	if kind != KindRelay || err != nil || len(probs) == 0 || probs[len(probs)-1].String() != bad+":3: mqtt.brokr: unknown key" {
		t.Errorf("bad relay file: %q, %v, %v", kind, probs, err)
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		want    string
		empty   bool // want ErrEmptySecret
	}{
		{"plain", "s3cret", "s3cret", false},
		{"trailing newline", "s3cret\n", "s3cret", false},
		{"trailing CRLF", "s3cret\r\n", "s3cret", false},
		{"only one newline trimmed", "s3cret\n\n", "s3cret\n", false},
		{"lone CR kept", "s3cret\r", "s3cret\r", false},
		{"spaces kept", " s3 cret \n", " s3 cret ", false},
		{"inner newline kept", "-----BEGIN-----\nabc\n-----END-----\n", "-----BEGIN-----\nabc\n-----END-----", false},
		{"empty file", "", "", true},
		{"only a newline", "\n", "", true},
		{"only CRLF", "\r\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, strings.ReplaceAll(tt.name, " ", "_"), tt.content)
			got, err := ReadSecret(path)
			if tt.empty {
				if !errors.Is(err, ErrEmptySecret) || !strings.Contains(err.Error(), path) {
					t.Errorf("ReadSecret = %q, %v; want ErrEmptySecret naming the path", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ReadSecret = %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	t.Run("errors name the path, never the content", func(t *testing.T) {
		missing := filepath.Join(dir, "missing.secret")
		big := writeFile(t, dir, "big.secret", "s3cret"+strings.Repeat("x", maxSecret))
		for _, path := range []string{missing, dir, big} {
			_, err := ReadSecret(path)
			if err == nil || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("ReadSecret(%s) error = %v", path, err)
			}
		}
		if _, err := ReadSecret(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing file: %v, want ErrNotExist", err)
		}
		if _, err := ReadSecret(""); err == nil {
			t.Error("empty path accepted")
		}
	})
}
