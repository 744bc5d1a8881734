package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/sitelink/sitelink/daemon/metrics"
)

// DefaultSocket is where the CLI looks when given neither -socket nor
// -config.
const DefaultSocket = "/run/sitelink/api.sock"

// Status is the answer of GET /v1/status.
type Status struct {
	Node        string `json:"node"`
	Connected   bool   `json:"connected"`
	Epoch       int64  `json:"epoch"`
	OutboxDepth int    `json:"outbox_depth"`
	Version     string `json:"version"`
	Stations    int    `json:"stations"`
	Published   uint64 `json:"published"`
	// Instance is the random id this daemon drew at start and puts in
	// its state messages; NodeIDConflict is set while another daemon
	// uses this node's id (see README "Two controllers with one
	// node.id"); NodeIDConflicts counts those detected since start.
	Instance        string          `json:"instance,omitempty"`
	NodeIDConflict  *NodeIDConflict `json:"node_id_conflict,omitempty"`
	NodeIDConflicts int64           `json:"node_id_conflicts,omitempty"`
}

// NodeIDConflict is what a node knows of a second daemon under its id.
type NodeIDConflict struct {
	Since         time.Time `json:"since"`     // first sign of this episode
	LastSeen      time.Time `json:"last_seen"` // latest sign
	OtherInstance string    `json:"other_instance"`
	OtherVersion  string    `json:"other_version"`
	OtherOnline   bool      `json:"other_online"` // as its latest state said
}

// Station is one element of GET /v1/stations.
type Station struct {
	Number    string  `json:"number"`
	Driver    string  `json:"driver"`
	Contactor bool    `json:"contactor"`
	CPState   string  `json:"cp_state"`
	EnergyWh  float64 `json:"energy_wh"`
	PowerW    float64 `json:"power_w"`
	Fault     string  `json:"fault"`
	Session   string  `json:"session,omitempty"` // active session's SparkTransactionId
}

// Session is one element of GET /v1/sessions.
type Session struct {
	SparkTransactionID string    `json:"spark_transaction_id"`
	NayaxTransactionID int64     `json:"nayax_transaction_id"`
	Station            string    `json:"station"`
	State              string    `json:"state"`
	Origin             string    `json:"origin,omitempty"`
	EnergyWh           float64   `json:"energy_wh"`
	AuthorizedAmount   Decimal   `json:"authorized_amount"`
	Amount             Decimal   `json:"amount"`
	StopReason         string    `json:"stop_reason,omitempty"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
	// Request is what the session waits on from Nayax, if anything.
	Request *Request `json:"request,omitempty"`
	// LastAnswer is Nayax's last answer to one of its requests.
	LastAnswer *Answer `json:"last_answer,omitempty"`
	// Answers are all of Nayax's answers as they came (the first and the
	// latest few): a request sent twice shows both.
	Answers []Answer `json:"answers,omitempty"`
	// Payment is the payment record: Nayax's answer to the settlement or
	// cancel (auth code, RRNs, settled amount, times), for a receipt.
	Payment *PaymentRecord `json:"payment_record,omitempty"`
	// AuthorizedMinor and AmountMinor are AuthorizedAmount and Amount as
	// the ledger keeps them: minor units of Currency, with DecimalPlace
	// decimals (59 at 2 is 0.59).
	AuthorizedMinor int64  `json:"authorized_minor"`
	AmountMinor     int64  `json:"amount_minor"`
	Currency        string `json:"currency,omitempty"`
	DecimalPlace    int    `json:"decimal_place"`
}

// Decimal is an exact decimal amount in the currency's main unit, written
// in JSON as that number (0.59): rendered from the ledger's minor units,
// it never passes through a float.
type Decimal = json.Number

// PaymentRecord is a session's payment record (store.PaymentRecord).
type PaymentRecord struct {
	Call          string    `json:"call"`
	Verdict       string    `json:"verdict"`
	Code          int       `json:"code,omitempty"`
	AuthCode      string    `json:"auth_code,omitempty"`
	NayaxRRN      string    `json:"nayax_rrn,omitempty"`
	FiscalRrn     string    `json:"fiscal_rrn,omitempty"`
	Amount        string    `json:"amount,omitempty"`
	SeTime        string    `json:"se_time,omitempty"`
	MachineAuTime string    `json:"machine_au_time,omitempty"`
	At            time.Time `json:"at"`
}

// Request is a session's pending request to Nayax.
type Request struct {
	Kind     string    `json:"kind"` // start | settlement | cancel
	Call     string    `json:"call"`
	Attempts int       `json:"attempts"`
	FirstAt  time.Time `json:"first_at"`
	NextAt   time.Time `json:"next_at"`
	EventID  string    `json:"event_id"` // the latest event that carried it
}

// Answer is Nayax's answer to a request.
type Answer struct {
	Call        string    `json:"call"`
	Outcome     string    `json:"outcome"`
	Code        int       `json:"code,omitempty"`
	Description string    `json:"description,omitempty"`
	At          time.Time `json:"at"`
}

// StartRequest is the body of POST /v1/start (Remote Start).
type StartRequest struct {
	Station string  `json:"station"`
	Amount  float64 `json:"amount,omitempty"`
}

// StartResult is its answer.
type StartResult struct {
	SparkTransactionID string `json:"spark_transaction_id"`
	Station            string `json:"station"`
}

// OutboxEntry is one element of GET /v1/outbox.
type OutboxEntry struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Seq       uint64    `json:"seq"`
	CreatedAt time.Time `json:"created_at"`
	Attempts  int       `json:"attempts"`
	// Status: "queued" (waiting for the broker) or "awaiting-answer" (a
	// request published, Nayax's answer not yet recorded).
	Status  string `json:"status"`
	Session string `json:"session,omitempty"`
}

// MaxSimReason bounds a simulated fault's reason (SimRequest.Reason), in
// characters.
const MaxSimReason = 200

// SimRequest is the body of POST /v1/sim.
type SimRequest struct {
	Station string  `json:"station"`
	Action  string  `json:"action"` // plug | unplug | fault | clear | power
	KW      float64 `json:"kw,omitempty"`
	Reason  string  `json:"reason,omitempty"`
}

// Backend is what the daemon provides to the API.
type Backend interface {
	Status() (Status, error)
	Stations() ([]Station, error)
	Sessions(limit int) ([]Session, error)
	Outbox(limit int) ([]OutboxEntry, error)
	Sim(SimRequest) error
	Start(context.Context, StartRequest) (StartResult, error)
	Stop(ctx context.Context, station string) error
	SelfTest(ctx context.Context, station string) (string, error)
	// Resolve closes a needs-reconciliation session after an operator
	// settled it by hand (POST /v1/resolve); it returns the session as
	// it is afterwards.
	Resolve(context.Context, ResolveRequest) (Session, error)
	// Metrics writes the Prometheus text exposition (GET /metrics).
	Metrics(w io.Writer) error
	// Config is the effective configuration and where each value came
	// from (GET /v1/config).
	Config() (ConfigView, error)
}

// ConfigView is the effective configuration of a running daemon.
type ConfigView struct {
	Node            string    `json:"node"`
	File            string    `json:"file,omitempty"`
	Version         int64     `json:"config_version"`
	GroupVersion    int64     `json:"group_version"`
	NodeVersion     int64     `json:"node_version"`
	WaitingStations []string  `json:"waiting_stations,omitempty"`
	Settings        []Setting `json:"settings"`
}

// Setting is one key of the effective configuration: its value and its
// source (default, file, group or node).
type Setting struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source string `json:"source"`
}

// StationRequest names a station (POST /v1/stop, /v1/selftest).
type StationRequest struct {
	Station string `json:"station"`
}

// ResolveRequest is the body of POST /v1/resolve (`sitelink resolve`).
type ResolveRequest struct {
	SparkTransactionID string `json:"spark_transaction_id"`
	Note               string `json:"note"`
	By                 string `json:"by,omitempty"`
}

// SelfTestResult is the answer of POST /v1/selftest.
type SelfTestResult struct {
	Report string `json:"report"`
}

// ErrBadRequest marks backend errors that are the caller's fault (HTTP 400).
var ErrBadRequest = errors.New("bad request")

// Handler serves the API over any listener.
func Handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	get := func(f func(r *http.Request) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			v, err := f(r)
			if err != nil {
				writeErr(w, err)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		}
	}
	limit := func(r *http.Request) int {
		n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		return n
	}
	mux.HandleFunc("GET /v1/status", get(func(*http.Request) (any, error) { return b.Status() }))
	mux.HandleFunc("GET /v1/stations", get(func(*http.Request) (any, error) { return b.Stations() }))
	mux.HandleFunc("GET /v1/sessions", get(func(r *http.Request) (any, error) { return b.Sessions(limit(r)) }))
	mux.HandleFunc("GET /v1/outbox", get(func(r *http.Request) (any, error) { return b.Outbox(limit(r)) }))
	mux.HandleFunc("GET /v1/config", get(func(*http.Request) (any, error) { return b.Config() }))
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		// Rendered into a buffer first so a failure is still a 500, not
		// a truncated 200 that Prometheus would half-ingest.
		var buf bytes.Buffer
		if err := b.Metrics(&buf); err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Content-Type", metrics.ContentType)
		_, _ = w.Write(buf.Bytes())
	})
	mux.HandleFunc("POST /v1/start", func(w http.ResponseWriter, r *http.Request) {
		var req StartRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
			writeErr(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
			return
		}
		res, err := b.Start(r.Context(), req)
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("POST /v1/stop", func(w http.ResponseWriter, r *http.Request) {
		var req StationRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
			writeErr(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
			return
		}
		if err := b.Stop(r.Context(), req.Station); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/selftest", func(w http.ResponseWriter, r *http.Request) {
		var req StationRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
			writeErr(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
			return
		}
		rep, err := b.SelfTest(r.Context(), req.Station)
		if err != nil {
			writeErr(w, fmt.Errorf("%w: %v\n%s", ErrBadRequest, err, rep))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(SelfTestResult{Report: rep})
	})
	mux.HandleFunc("POST /v1/resolve", func(w http.ResponseWriter, r *http.Request) {
		var req ResolveRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
			writeErr(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
			return
		}
		s, err := b.Resolve(r.Context(), req)
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	})
	mux.HandleFunc("POST /v1/sim", func(w http.ResponseWriter, r *http.Request) {
		var req SimRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
			writeErr(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
			return
		}
		if err := b.Sim(req); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, ErrBadRequest) {
		code = http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// Listen opens the unix socket, replacing a stale one, with mode 0660 so
// that only the service user and its group can drive stations.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("api socket dir: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("api socket %s: another daemon is serving it", path)
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("api socket: %w", err)
	}
	return l, nil
}

// Client talks to a daemon's API socket.
type Client struct {
	Socket string
	hc     *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{Socket: path, hc: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

func (c *Client) do(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://sitelink"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return dialError(c.Socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return errors.New(e.Error)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status fetches the daemon's status.
func (c *Client) Status() (s Status, err error) { err = c.do("GET", "/v1/status", nil, &s); return }

// Config returns the daemon's effective configuration.
func (c *Client) Config() (v ConfigView, err error) { err = c.do("GET", "/v1/config", nil, &v); return }

// Stations fetches every station's state.
func (c *Client) Stations() (s []Station, err error) {
	err = c.do("GET", "/v1/stations", nil, &s)
	return
}

// Sessions fetches sessions, newest first; limit <= 0 means the server's default.
func (c *Client) Sessions(limit int) (s []Session, err error) {
	err = c.do("GET", fmt.Sprintf("/v1/sessions?limit=%d", limit), nil, &s)
	return
}

// Outbox fetches the oldest undelivered events.
func (c *Client) Outbox(limit int) (o []OutboxEntry, err error) {
	err = c.do("GET", fmt.Sprintf("/v1/outbox?limit=%d", limit), nil, &o)
	return
}

// Start asks for a Remote Start on a station.
func (c *Client) Start(r StartRequest) (res StartResult, err error) {
	err = c.do("POST", "/v1/start", r, &res)
	return
}

// Stop ends the active session of a station (a local stop).
func (c *Client) Stop(station string) error {
	return c.do("POST", "/v1/stop", StationRequest{Station: station}, nil)
}

// SelfTest switches a station's contactor on and off and reports.
func (c *Client) SelfTest(station string) (string, error) {
	var res SelfTestResult
	err := c.do("POST", "/v1/selftest", StationRequest{Station: station}, &res)
	return res.Report, err
}

// Resolve closes a needs-reconciliation session with the operator's note.
func (c *Client) Resolve(r ResolveRequest) (s Session, err error) {
	err = c.do("POST", "/v1/resolve", r, &s)
	return
}

// Sim drives a simulated station.
func (c *Client) Sim(r SimRequest) error { return c.do("POST", "/v1/sim", r, nil) }

// Metrics fetches the Prometheus text exposition.
func (c *Client) Metrics() (string, error) {
	resp, err := c.hc.Get("http://sitelink/metrics")
	if err != nil {
		return "", fmt.Errorf("api %s: %w (is the daemon running?)", c.Socket, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("api %s: metrics: %w", c.Socket, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("api %s: metrics: %s: %s", c.Socket, resp.Status, bytes.TrimSpace(b))
	}
	return string(b), nil
}

// dialError says what a failure to reach the socket means: no permission
// (the socket is the service's group's, mode 0660 in a 0750 directory),
// no daemon, or something else.
func dialError(socket string, err error) error {
	switch {
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		g := socketGroup(socket)
		return fmt.Errorf("api %s: permission denied: the socket is for group %s; join it (sudo usermod -aG %s $USER, then log in again) or use sudo", socket, g, g)
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("api %s: no such socket: is the daemon running? (systemctl status sitelink; else give -socket or -config)", socket)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("api %s: connection refused: the daemon is not running (systemctl status sitelink)", socket)
	}
	return fmt.Errorf("api %s: %w (is the daemon running?)", socket, err)
}

// ServiceGroup is the group of the daemon's socket under the shipped unit
// (systemd/sitelink.service: Group=sitelink).
const ServiceGroup = "sitelink"

// socketGroup names the group owning the socket, or the directory holding
// it when the socket itself cannot be looked at; ServiceGroup when
// neither says.
func socketGroup(socket string) string {
	for _, p := range []string{socket, filepath.Dir(socket)} {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			break
		}
		if g, err := user.LookupGroupId(strconv.FormatUint(uint64(st.Gid), 10)); err == nil {
			return g.Name
		}
		return strconv.FormatUint(uint64(st.Gid), 10)
	}
	return ServiceGroup
}
