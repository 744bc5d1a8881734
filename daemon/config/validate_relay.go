package config

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// reservedHeaders are header names that net/http or a proxy consumes or
// rewrites before the relay's handler sees them, so a check against them
// could never pass (Host moves to Request.Host, Transfer-Encoding is
// removed) or would clash with what Nayax itself sends (Content-Type).
var reservedHeaders = map[string]bool{
	"Connection": true, "Content-Length": true, "Content-Type": true,
	"Expect": true, "Host": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// Validate checks the meaning of a relay configuration, whatever built it;
// the syntax is ParseRelay's job. It returns every problem found, in the
// order of the file's sections, or nil.
func (r *Relay) Validate() Problems {
	v := &validator{}
	validateRelaySection(v, r.Relay)
	validateMQTT(v, r.MQTT)
	validateNayax(v, r.Nayax)
	if len(v.probs) == 0 {
		return nil
	}
	return v.probs
}

func validateRelaySection(v *validator, s RelaySection) {
	v.checkTopicLevel("relay.id", "relay id", s.ID)
	v.checkListen("relay.listen", s.Listen)

	switch {
	case s.AckBudget <= 0:
		v.add("relay.ack_budget", "must be > 0, got %s", quote(s.AckBudget.String()))
	case s.AckBudget >= Duration(nayaxAckWait):
		v.add("relay.ack_budget", "must be below %s (Nayax waits %d s for an answer), got %s",
			nayaxAckWait, int(nayaxAckWait/time.Second), quote(s.AckBudget.String()))
	}

	if len(s.CallbackHeaders) == 0 && !s.InsecureAllowUnauthenticatedCallbacks {
		v.add("relay.callback_headers", "required: set up one or two custom headers in Nayax's back office and list them here; only nayaxsim or a demo may run without (insecure_allow_unauthenticated_callbacks: true)")
	}
	if !decimalAmount.MatchString(s.MaxStartAmount) || strings.Trim(s.MaxStartAmount, "0.") == "" {
		v.add("relay.max_start_amount", "must be a decimal amount above 0 in the currency's main unit (e.g. 150 or 99.50), got %s", quote(s.MaxStartAmount))
	}
	if len(s.CallbackHeaders) > maxCallbackHeader {
		v.add("relay.callback_headers", "at most %d (Nayax sends up to %d static headers), got %d",
			maxCallbackHeader, maxCallbackHeader, len(s.CallbackHeaders))
	}
	seen := map[string]string{} // canonical name -> path of its first use
	for i, h := range s.CallbackHeaders {
		p := fmt.Sprintf("relay.callback_headers[%d]", i)
		canon := http.CanonicalHeaderKey(h.Name)
		switch {
		case h.Name == "":
			v.add(p+".name", "required")
		case !isHeaderToken(h.Name):
			v.add(p+".name", "invalid header name %s: use letters, digits and !#$%%&'*+-.^_`|~", quote(h.Name))
		case reservedHeaders[canon]:
			v.add(p+".name", "header %s is handled by the HTTP server and cannot be checked; pick another name", quote(h.Name))
		case seen[canon] != "":
			v.add(p+".name", "duplicate header %s (also in %s; names are case-insensitive)", quote(h.Name), seen[canon])
		default:
			seen[canon] = p
		}
		if (h.Value == "") == (h.ValueFile == "") {
			v.add(p, "exactly one of value and value_file")
		}
		if h.Value != "" && !isHeaderValue(h.Value) {
			// The value may be a secret: say what is wrong, never echo it.
			v.add(p+".value", "not a usable header value: no control characters and no leading or trailing spaces")
		}
	}

	switch {
	case s.TLSCertFile != "" && s.TLSKeyFile == "":
		v.add("relay.tls_key_file", "required when tls_cert_file is set")
	case s.TLSKeyFile != "" && s.TLSCertFile == "":
		v.add("relay.tls_cert_file", "required when tls_key_file is set")
	}

	if s.MetricsListen != "" {
		n := len(v.probs)
		v.checkListen("relay.metrics_listen", s.MetricsListen)
		if len(v.probs) == n && sameSocket(s.Listen, s.MetricsListen) {
			v.add("relay.metrics_listen", "must be another address than relay.listen (%s): the metrics stay off the public listener", quote(s.Listen))
		}
	}
	switch r := s.RateLimit; {
	case !(r >= 0) || math.IsInf(r, 1):
		v.add("relay.rate_limit", "must be >= 0 (requests a second per source; 0: no limit), got %s", fmtFloat(r))
	case r > 0 && s.RateBurst < 1:
		v.add("relay.rate_burst", "must be at least 1, got %d", s.RateBurst)
	}
	if s.MaxConnections < 1 {
		v.add("relay.max_connections", "must be at least 1, got %d", s.MaxConnections)
	}
	if s.ShareGroup != "" {
		n := len(v.probs)
		v.checkTopicLevel("relay.share_group", "group", s.ShareGroup)
		if len(v.probs) == n && len(s.ShareGroup) < 16 {
			v.add("relay.share_group", "too short to be secret (%d characters): leave it empty to derive one from the card key, or use e.g. `openssl rand -hex 16`", len(s.ShareGroup))
		}
	}
	if s.CardKeyFile == "" {
		// No card key, no card hash on MQTT but Nayax's own: refuse.
		v.add("relay.card_key_file", "required")
	}
}

// decimalAmount is an amount as the relay compares it exactly.
var decimalAmount = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,6})?$`)

// sameSocket reports whether two valid host:port addresses would clash:
// the same port on the same host, or on any host when either listens on
// every interface.
func sameSocket(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return pa == pb && (ha == hb || wildcard(ha) || wildcard(hb))
}

// checkListen validates a server's host:port. The port must be a number:
// a service name or port 0 (any free port) would leave Nayax's configured
// callback URL pointing nowhere.
func (v *validator) checkListen(path, addr string) {
	if addr == "" {
		v.add(path, "required")
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(path, `want host:port such as ":8080" or "127.0.0.1:8080", got %s`, quote(addr))
		return
	}
	if strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '/' }) {
		v.add(path, "invalid host in %s", quote(addr))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.add(path, "invalid port %s (want 1 to 65535)", quote(port))
	}
}

func validateNayax(v *validator, n Nayax) {
	v.checkBaseURL("nayax.base_url", n.BaseURL)
	switch {
	case n.IntegratorID == "":
		v.add("nayax.integrator_id", "required")
	case !isHeaderValue(n.IntegratorID):
		// Sent as the IntegratorId header on every call.
		v.add("nayax.integrator_id", "invalid integrator_id %s: no control characters and no leading or trailing spaces", quote(n.IntegratorID))
	}
	if n.SignKeyFile == "" {
		v.add("nayax.sign_key_file", "required")
	}
	switch {
	case n.TokenID == 0:
		v.add("nayax.token_id", "required")
	case n.TokenID < 0:
		v.add("nayax.token_id", "must be > 0, got %d", n.TokenID)
	}
	if n.TokenSecretFile == "" {
		v.add("nayax.token_secret_file", "required")
	}
	v.checkPositive("nayax.timeout", n.Timeout)
	if n.Attempts < 1 || n.Attempts > maxAttempts {
		v.add("nayax.attempts", "must be between 1 and %d, got %d", maxAttempts, n.Attempts)
	}
	switch t := n.TriggerTimeout; {
	case t < Duration(minTriggerTimeout) || t > Duration(maxTriggerTimeout):
		v.add("nayax.trigger_timeout", "must be between %s and %s, got %s", minTriggerTimeout, maxTriggerTimeout, quote(t.String()))
	case t.D()%time.Second != 0:
		// TransactionTimeout is a whole number of seconds on the wire.
		v.add("nayax.trigger_timeout", "must be whole seconds, got %s", quote(t.String()))
	}
}

// checkBaseURL validates the Nayax API base URL. Plain http is accepted for
// a local simulator; credentials, queries and fragments are not, because
// the client appends endpoint paths to the URL.
func (v *validator) checkBaseURL(path, s string) {
	const want = `want an http:// or https:// URL such as "https://nayax-spark-dmz.nayax.com/api"`
	if s == "" {
		v.add(path, "required")
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Opaque != "":
		v.add(path, "%s, got %s", want, quote(s))
	case u.User != nil:
		v.add(path, "must not carry credentials")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		v.add(path, "must not have a query or fragment, got %s", quote(s))
	case u.Port() != "":
		if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
			v.add(path, "invalid port %s", quote(u.Port()))
		}
	}
}

// isHeaderToken reports whether s is an HTTP field name (RFC 9110 token).
func isHeaderToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isHeaderValue reports whether s survives as an HTTP field value: no
// control characters, and no surrounding white space, which HTTP servers
// strip, so a value with it could never match.
func isHeaderValue(s string) bool {
	if s == "" || strings.TrimSpace(s) != s {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\t' })
}
