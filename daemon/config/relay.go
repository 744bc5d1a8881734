package config

import (
	"fmt"
	"os"
	"time"
)

// Relay is the relay's configuration (DESIGN.md §4, §5): its HTTP side
// facing Nayax, its MQTT link to the edges and its Nayax API credentials.
type Relay struct {
	Relay RelaySection `yaml:"relay"`
	MQTT  MQTT         `yaml:"mqtt"` // as for the edge; the client id is Relay.ID, Group names the shared subscription
	Nayax Nayax        `yaml:"nayax"`
}

// RelaySection is one relay replica's identity and its HTTP server, which
// Nayax calls.
type RelaySection struct {
	// ID is this replica's MQTT client id, unique per replica: a broker
	// disconnects the older of two clients with the same id.
	ID string `yaml:"id"`
	// Listen is the HTTP server's host:port; an empty host listens on
	// every interface.
	Listen string `yaml:"listen"`
	// AckBudget is how long a callback waits for the edge's verdict before
	// answering Declined 992; it must stay below Nayax's 5 s.
	AckBudget Duration `yaml:"ack_budget"`
	// CallbackHeaders are the static headers Nayax is set up to send with
	// every callback; a callback without all of them is refused.
	// Required, unless InsecureAllowUnauthenticatedCallbacks says that
	// this relay takes callbacks from anyone (nayaxsim, a demo).
	CallbackHeaders                       []CallbackHeader `yaml:"callback_headers"`
	InsecureAllowUnauthenticatedCallbacks bool             `yaml:"insecure_allow_unauthenticated_callbacks"`
	// MaxStartAmount caps the Amount of a site's remote start, a decimal
	// in the currency's main unit: a stolen controller cannot make its
	// terminals ask a card for more.
	MaxStartAmount string `yaml:"max_start_amount"`
	// TLSCertFile and TLSKeyFile (both or neither) make the relay serve
	// HTTPS itself instead of behind a terminating proxy.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// MetricsListen is the host:port of a second HTTP server with
	// /metrics and /healthz, kept off Listen, which faces the internet;
	// empty serves them nowhere. Load balancers probe /healthz here.
	MetricsListen string `yaml:"metrics_listen"`
	// RateLimit is the requests a second one source address may make to
	// Listen on average, RateBurst at once; beyond it the relay answers
	// 429. 0 turns the limit off (a proxy in front limits per client).
	RateLimit float64 `yaml:"rate_limit"`
	RateBurst int     `yaml:"rate_burst"`
	// MaxConnections caps the connections open at once on Listen; one
	// more is reset at once.
	MaxConnections int `yaml:"max_connections"`
	// CardKeyFile names the file holding the fleet's card key (at least
	// 32 bytes, the same on every replica): the relay forwards Nayax's
	// CardHash only as an HMAC under it. Required.
	CardKeyFile string `yaml:"card_key_file"`
	// ShareGroup names the MQTT shared subscription the replicas split
	// the sites' events through. Empty (the default): derived from the
	// card key, the same on every replica and unguessable; mosquitto 2.0
	// does not check subscriptions against its ACL, so a client that
	// knows the name can join the group and starve the relays.
	ShareGroup string `yaml:"share_group"`
}

// CallbackHeader is one static header expected on Nayax callbacks. The
// expected value is given inline or, better for a shared secret, in a file
// (read with ReadSecret by the relay).
type CallbackHeader struct {
	Name      string `yaml:"name"`       // an HTTP header name, e.g. X-Sitelink-Auth
	Value     string `yaml:"value"`      // expected value, or empty with ValueFile
	ValueFile string `yaml:"value_file"` // file holding the expected value, or empty with Value
}

// Nayax is how the relay calls the Nayax Spark API.
type Nayax struct {
	BaseURL         string   `yaml:"base_url"`          // e.g. https://nayax-spark-dmz.nayax.com/api
	IntegratorID    string   `yaml:"integrator_id"`     // the SignKeyId, sent as the IntegratorId header
	SignKeyFile     string   `yaml:"sign_key_file"`     // file holding the sign key for TransactionSignature
	TokenID         int32    `yaml:"token_id"`          // TokenId of StartAuthentication
	TokenSecretFile string   `yaml:"token_secret_file"` // file holding the token secret (the AES key of Cipher)
	Timeout         Duration `yaml:"timeout"`           // one HTTP attempt
	Attempts        int      `yaml:"attempts"`          // tries per request, including the first
	TriggerTimeout  Duration `yaml:"trigger_timeout"`   // TransactionTimeout for a start request that names none (sites set policy.trigger_timeout)
}

// Limits of the relay configuration checked by Validate.
const (
	nayaxAckWait      = 5 * time.Second // Nayax's wait for a callback's answer
	maxCallbackHeader = 2               // Nayax sends at most two static custom headers
	maxAttempts       = 10
	minTriggerTimeout = time.Second
	maxTriggerTimeout = time.Hour // TransactionTimeout is an int16 of seconds; an hour at a terminal is already absurd
)

// DefaultRelay returns a relay configuration with every default filled in
// and the keys without a sensible default (relay.id and the nayax
// credentials) empty.
func DefaultRelay() Relay {
	return Relay{
		Relay: RelaySection{
			Listen:        ":8080",
			AckBudget:     Duration(4 * time.Second),
			MetricsListen: "127.0.0.1:9101",
			// Ten times the peak of a large fleet's callbacks from one
			// Nayax address, and still a cap on one attacker.
			RateLimit:      200,
			RateBurst:      400,
			MaxConnections: 1024,
			MaxStartAmount: "150",
		},
		MQTT: defaultMQTT(),
		Nayax: Nayax{
			Timeout:        Duration(10 * time.Second),
			Attempts:       3,
			TriggerTimeout: Duration(60 * time.Second),
		},
	}
}

// ParseRelay reads a relay configuration with ParseEdge's semantics:
// defaults first, the YAML merged over them, then Validate, and every
// problem (unknown keys, wrong types, bad values) returned as Problems. On
// error the returned *Relay is nil.
func ParseRelay(data []byte) (*Relay, error) {
	r := DefaultRelay()
	if probs := parseInto(data, &r, nil); probs != nil {
		return nil, probs
	}
	return &r, nil
}

// LoadRelay reads and parses the file at path. As with LoadEdge, a read
// error is wrapped and names the path, and configuration problems come back
// as Problems, unwrapped, with their File set. The files the configuration
// names are not read: see LoadRelayChecked.
func LoadRelay(path string) (*Relay, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read relay config: %w", err)
	}
	r, err := ParseRelay(data)
	if probs, ok := err.(Problems); ok {
		return nil, probs.inFile(path)
	}
	return r, err
}
