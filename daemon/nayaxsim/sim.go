package nayaxsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Errors returned by the simulator.
var (
	// ErrOptions is an Options value the simulator cannot run with.
	ErrOptions = errors.New("invalid simulator options")
	// ErrNoRelay is a callback asked for before any relay URL was set.
	ErrNoRelay = errors.New("no relay URL set")
	// ErrUnknownTransaction is a callback for a transaction the simulator
	// never authorized or triggered.
	ErrUnknownTransaction = errors.New("unknown transaction")
	// ErrTerminal is a terminal with neither a machine id nor a HW serial.
	ErrTerminal = errors.New("terminal needs a machine id or a HW serial")
	// ErrControl is a control API request the simulator refused.
	ErrControl = errors.New("simulator control request failed")
)

// Defaults used when Options leave a credential empty. They are fake and
// public; a relay pointed at the simulator is configured with them (see
// Sim.Options).
const (
	DefaultIntegratorID = "nayaxsim-integrator"
	DefaultSignKey      = "nayaxsim-sign-key"
	DefaultTokenID      = 116383
	DefaultTokenSecret  = "nayaxsim-token-secret-0123456789" // 32 bytes
)

// SiteID is the SiteId the simulator puts in every authorization, as in
// Nayax's examples.
const SiteID = 2

// Spark calls the simulator answers (the integrator → Nayax direction).
const (
	CallStartAuthentication = "StartAuthentication"
	CallTriggerTransaction  = "TriggerTransaction"
	CallSettlement          = "Settlement"
	CallCancelTransaction   = "CancelTransaction"
	CallExternalSettlement  = "ExternalSettlement"
	CallExternalCancel      = "ExternalCancel"
)

// Callbacks the simulator sends (the Nayax → integrator direction), as
// named in Sim.Callbacks.
const (
	CallTransactionCallback = "TransactionCallback"
	CallStopCallback        = "StopCallback"
	CallDeclineCallback     = "DeclineCallback"
	CallTimeoutCallback     = "TimeoutCallback"
	CallCortinaCancel       = "CortinaCancel"
	CallCortinaVoid         = "CortinaVoid"
	// Device Start (Tap on a Terminal with DeviceStart) and StopNotify
	// (a stop at a Terminal with StopNotify).
	CallStartSession      = "StartSession"
	CallInfoQuery         = "InfoQuery"
	CallAvailabilityCheck = "AvailabilityCheck"
	CallTransactionNotify = "TransactionNotify"
	CallStopNotify        = "StopNotify"
)

var sparkCalls = []string{
	CallStartAuthentication, CallTriggerTransaction, CallSettlement,
	CallCancelTransaction, CallExternalSettlement, CallExternalCancel,
}

// canonicalCall returns the spelling of a Spark call name, matched
// case-insensitively, or "" when it is not one.
func canonicalCall(name string) string {
	for _, c := range sparkCalls {
		if strings.EqualFold(c, name) {
			return c
		}
	}
	return ""
}

// Options configure a simulator.
type Options struct {
	// Addr is the listen address; default "127.0.0.1:0".
	Addr string
	// IntegratorID is the expected IntegratorId header; default
	// DefaultIntegratorID.
	IntegratorID string
	// SignKey signs TransactionSignature =
	// hex(SHA-256(UTF-8("{SparkTransactionId};{SignKey}"))); default
	// DefaultSignKey.
	SignKey string
	// TokenID is StartAuthentication's expected TokenId; default
	// DefaultTokenID.
	TokenID int32
	// TokenSecret is the AES-256 key of the cipher, 32 bytes (the right
	// 32 characters of the token Nayax issues); default DefaultTokenSecret.
	TokenSecret []byte
	// RelayURL is where callbacks go (e.g. http://127.0.0.1:8080, with or
	// without /api); it may be set later with SetRelay.
	RelayURL string
	// CallbackHeaders are static headers sent with every callback, as
	// Nayax can be configured to send (it allows two).
	CallbackHeaders map[string]string
	// Terminals are the terminals this "Nayax account" has. When set,
	// StartAuthentication and TriggerTransaction for any other terminal
	// are Declined 25, and callbacks carry both ids of a known terminal.
	// Terminals a Tap names are learned.
	Terminals []Terminal
	// FirstNayaxID is the NayaxTransactionId of the first authorization;
	// later ones count up. Default: a random ten-digit number. Set it
	// above 2^53 to prove a client never passes ids through float64.
	FirstNayaxID int64
	// MaxRecords bounds how many Requests and how many Callbacks are
	// kept (the newest); default 10000, so a long-running simulator does
	// not grow without end.
	MaxRecords int
	// Logger receives one line per request and callback; nil discards.
	// Card data is never logged.
	Logger *slog.Logger
	// Now is the clock (cipher window, MachineAuTime); default time.Now.
	Now func() time.Time
}

// Sim is a running simulator: a Spark DMZ for sitelink's relay to call,
// and a Nayax that calls the relay back. All methods are safe for
// concurrent use.
type Sim struct {
	o      Options
	log    *slog.Logger
	ln     net.Listener
	srv    *http.Server
	client *http.Client
	done   chan struct{} // closed by Close: ends Failure delays
	closed sync.Once

	mu        sync.Mutex
	relay     string
	authed    map[string]bool // SparkTransactionIds that passed StartAuthentication
	pending   []*trigger      // TriggerTransactions waiting for a tap, oldest first
	txns      map[int64]*Txn
	order     []int64          // NayaxTransactionIds in creation order
	open      map[string]int64 // terminal+station → open transaction
	terminals []Terminal       // configured and learned
	nextID    int64            // next NayaxTransactionId
	failures  map[string]*Failure
	reqs      []record
	callbacks []record
	seq       uint64 // numbers records, so an in-flight one is found after trimming
}

// record is a Request with its sequence number.
type record struct {
	seq uint64
	Request
}

// addRecord appends r to *list, keeping at most MaxRecords of the newest,
// and returns its sequence number. s.mu is held.
func (s *Sim) addRecord(list *[]record, r Request) uint64 {
	s.seq++
	*list = append(*list, record{seq: s.seq, Request: r})
	if n := len(*list); n > s.o.MaxRecords+s.o.MaxRecords/4 {
		*list = append((*list)[:0:0], (*list)[n-s.o.MaxRecords:]...)
	}
	return s.seq
}

// finishRecord sets the answer of the request record seq, if still kept.
func (s *Sim) finishRecord(seq uint64, status int, answer []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.reqs) - 1; i >= 0; i-- {
		if s.reqs[i].seq == seq {
			s.reqs[i].HTTPStatus = status
			s.reqs[i].Answer = rawJSON(answer)
			return
		}
	}
}

// Start validates o, fills in defaults, and starts serving on o.Addr.
func Start(o Options) (*Sim, error) {
	s, err := newSim(o)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return nil, fmt.Errorf("nayaxsim listen %s: %w", s.o.Addr, err)
	}
	s.ln = ln
	// Generous timeouts (it is a test tool), but every one set: an
	// injected delay longer than WriteTimeout is cut short.
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("nayaxsim serve", "err", err)
		}
	}()
	s.log.Info("nayaxsim listening", "url", s.URL())
	return s, nil
}

func newSim(o Options) (*Sim, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.IntegratorID == "" {
		o.IntegratorID = DefaultIntegratorID
	}
	if o.SignKey == "" {
		o.SignKey = DefaultSignKey
	}
	if o.TokenID == 0 {
		o.TokenID = DefaultTokenID
	}
	if o.TokenSecret == nil {
		o.TokenSecret = []byte(DefaultTokenSecret)
	}
	if len(o.TokenSecret) != 32 {
		return nil, fmt.Errorf("%w: TokenSecret must be 32 bytes, got %d", ErrOptions, len(o.TokenSecret))
	}
	if o.FirstNayaxID < 0 {
		return nil, fmt.Errorf("%w: negative FirstNayaxID", ErrOptions)
	}
	if o.FirstNayaxID == 0 {
		o.FirstNayaxID = 2_000_000_000 + rand.Int64N(1_000_000_000)
	}
	for _, t := range o.Terminals {
		if t.MachineID == 0 && t.HwSerial == "" {
			return nil, fmt.Errorf("%w: %w", ErrOptions, ErrTerminal)
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = 10000
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o.TokenSecret = slices.Clone(o.TokenSecret)
	o.Terminals = slices.Clone(o.Terminals)
	return &Sim{
		o:         o,
		log:       log,
		client:    &http.Client{},
		done:      make(chan struct{}),
		relay:     o.RelayURL,
		authed:    map[string]bool{},
		txns:      map[int64]*Txn{},
		open:      map[string]int64{},
		terminals: slices.Clone(o.Terminals),
		nextID:    o.FirstNayaxID,
		failures:  map[string]*Failure{},
	}, nil
}

// URL returns the base URL of the Spark side, ending in /api (what the
// relay's nayax.base_url is set to).
func (s *Sim) URL() string { return s.BaseURL() + "/api" }

// BaseURL returns the server's root URL, where the control API lives
// under /_sim/.
func (s *Sim) BaseURL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Options returns the options in effect, defaults filled in: the
// credentials a relay needs to talk to this simulator.
func (s *Sim) Options() Options {
	o := s.o
	o.TokenSecret = slices.Clone(o.TokenSecret)
	o.Terminals = slices.Clone(o.Terminals)
	s.mu.Lock()
	o.RelayURL = s.relay
	s.mu.Unlock()
	return o
}

// Close stops the server at once; requests being delayed by a Failure
// are dropped unanswered.
func (s *Sim) Close() error {
	s.closed.Do(func() { close(s.done) })
	if s.srv == nil {
		return nil
	}
	if err := s.srv.Close(); err != nil {
		return fmt.Errorf("close nayaxsim: %w", err)
	}
	return nil
}

// SetRelay sets where callbacks go, for a relay that starts after the
// simulator.
func (s *Sim) SetRelay(url string) {
	s.mu.Lock()
	s.relay = url
	s.mu.Unlock()
}

// Failure makes the next requests of one Spark call fail, for retry tests.
type Failure struct {
	// Times is how many of the next requests fail; 0 means every request
	// until ClearFailures.
	Times int `json:"times"`
	// Status answers with this HTTP status (500, 503…) and no Spark body.
	Status int `json:"status"`
	// Delay answers late, to trip client timeouts. Alone, the request is
	// then processed normally even if the client has gone, as a real
	// server would: a client that gave up and retries meets "already
	// completed" (28).
	Delay time.Duration `json:"delay"`
	// Code answers HTTP 200 with a Declined status of this ErrorCode
	// (50, 51, 33…), without processing the request.
	Code int `json:"code"`
}

// Fail installs f for call (a Spark call name, any case; "" or "*" for
// every call). A call-specific failure takes precedence over "*". An
// unknown call name is ignored.
func (s *Sim) Fail(call string, f Failure) {
	key := "*"
	if call != "" && call != "*" {
		if key = canonicalCall(call); key == "" {
			return
		}
	}
	s.mu.Lock()
	s.failures[key] = &f
	s.mu.Unlock()
}

// ClearFailures removes every installed failure.
func (s *Sim) ClearFailures() {
	s.mu.Lock()
	clear(s.failures)
	s.mu.Unlock()
}

// takeFailure consumes one use of the failure for call, if any.
func (s *Sim) takeFailure(call string) (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := call
	f := s.failures[key]
	if f == nil {
		key = "*"
		f = s.failures[key]
	}
	if f == nil {
		return Failure{}, false
	}
	out := *f
	if f.Times > 0 {
		if f.Times--; f.Times == 0 {
			delete(s.failures, key)
		}
	}
	return out, true
}

// Request is one exchange: a Spark request the simulator answered
// (Requests), or a callback it sent (Callbacks).
type Request struct {
	Call   string      `json:"call"`
	Header http.Header `json:"header"`
	// Body is the request body; one that is not JSON is kept as a JSON
	// string holding its text.
	Body json.RawMessage `json:"body"`
	// Answer is the response body, kept like Body; empty while a delayed
	// request is still being answered.
	Answer json.RawMessage `json:"answer,omitempty"`
	// HTTPStatus is the response status; 0 while the request is in
	// flight or when a callback got no response.
	HTTPStatus int       `json:"http_status"`
	At         time.Time `json:"at"`
}

// Requests returns the Spark requests received for call ("" = all), in
// order of arrival.
func (s *Sim) Requests(call string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return filterRequests(s.reqs, call)
}

// Callbacks returns the callbacks sent for call ("" = all;
// TransactionCallback, StopCallback, DeclineCallback, TimeoutCallback,
// CortinaCancel, CortinaVoid, StartSession, InfoQuery, AvailabilityCheck,
// TransactionNotify, StopNotify), in order.
func (s *Sim) Callbacks(call string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return filterRequests(s.callbacks, call)
}

func filterRequests(in []record, call string) []Request {
	out := []Request{}
	for _, r := range in {
		if call == "" || strings.EqualFold(r.Call, call) {
			q := r.Request
			q.Header = q.Header.Clone()
			out = append(out, q)
		}
	}
	return out
}

// rawJSON keeps b as JSON when it is valid, otherwise as a JSON string of
// its text, so a record always marshals.
func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return json.RawMessage(slices.Clone(b))
	}
	q, _ := json.Marshal(string(b))
	return q
}

// ServeHTTP serves the Spark side (POST /api/{Call} or /{Call}, any
// case), GET /api/Version, and the control API under /_sim/. Sim is an
// http.Handler so it can also be mounted in another server.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	if strings.HasPrefix(p, "/_sim/") {
		s.serveControl(w, r, strings.TrimPrefix(p, "/_sim/"))
		return
	}
	lp := strings.ToLower(p)
	if strings.HasPrefix(lp, "/api/") {
		p = p[len("/api"):]
	}
	name := strings.TrimPrefix(p, "/")
	if strings.EqualFold(name, "Version") && r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, map[string]string{
			"ProductVersion": "nayaxsim (sitelink Spark simulator)",
			"Copyright":      "not Nayax",
			"ApiVersion":     "v2",
		})
		return
	}
	call := canonicalCall(name)
	if call == "" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.serveSpark(w, r, call)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode answer"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// readBody reads at most maxBody+1 bytes, so that an oversized body is
// seen as such without buffering all of it.
func readBody(r io.Reader) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, maxBody+1))
}

// sleep waits d or until the simulator closes, reporting whether the
// full delay passed. It ignores the request's context on purpose: a
// server goes on with a request whose client timed out.
func (s *Sim) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}
