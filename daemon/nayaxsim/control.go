package nayaxsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The control API lets another process (`sitelink nayaxsim tap …`) drive
// a running simulator. It lives under /_sim/ on the same server:
//
//	POST /_sim/tap             TapRequest → TapResult
//	POST /_sim/stop-tap        StopTapRequest → TapResult
//	POST /_sim/decline         {"spark_transaction_id","code"} → CallbackResult
//	POST /_sim/timeout         {"spark_transaction_id"} → CallbackResult
//	POST /_sim/cortina-cancel  {"nayax_transaction_id","void","card_number"} → {"http_status","response"}
//	POST /_sim/fail            FailRequest
//	POST /_sim/clear           clears failures
//	POST /_sim/relay           {"url"}
//	GET  /_sim/requests?call=  []Request (Spark requests received)
//	GET  /_sim/callbacks?call= []Request (callbacks sent)
//	GET  /_sim/txns            []Txn
//
// Errors answer 4xx/5xx with {"error": "..."}; a callback the relay
// answered (whatever it answered) is a 200 carrying that answer.

// TapRequest is the body of POST /_sim/tap. DeviceStart, StopNotify and
// AvailabilityCheck set the terminal's settings (see Terminal); once set
// they stay set for that terminal.
type TapRequest struct {
	MachineID         int64   `json:"machine_id"`
	HwSerial          string  `json:"hw_serial"`
	Station           string  `json:"station"`
	Card              string  `json:"card"`
	Amount            float64 `json:"amount"`
	DeviceStart       bool    `json:"device_start,omitempty"`
	StopNotify        bool    `json:"stop_notify,omitempty"`
	AvailabilityCheck bool    `json:"availability_check,omitempty"`
}

func (r TapRequest) terminal() Terminal {
	return Terminal{MachineID: r.MachineID, HwSerial: r.HwSerial, DeviceStart: r.DeviceStart,
		StopNotify: r.StopNotify, AvailabilityCheck: r.AvailabilityCheck}
}

// StopTapRequest is the body of POST /_sim/stop-tap (see Sim.StopTap).
// StopNotify sets the terminal's setting, which then stays set.
type StopTapRequest struct {
	MachineID  int64  `json:"machine_id"`
	HwSerial   string `json:"hw_serial"`
	Station    string `json:"station"`
	Card       string `json:"card"`
	StopNotify bool   `json:"stop_notify,omitempty"`
}

// FailRequest is the body of POST /_sim/fail: Failure with the call it
// applies to and Delay as a Go duration string ("1.5s").
type FailRequest struct {
	Call   string `json:"call"`
	Times  int    `json:"times"`
	Status int    `json:"status"`
	Delay  string `json:"delay,omitempty"`
	Code   int    `json:"code"`
}

// CortinaRequest is the body of POST /_sim/cortina-cancel.
type CortinaRequest struct {
	NayaxTransactionID int64  `json:"nayax_transaction_id"`
	Void               bool   `json:"void"`
	CardNumber         string `json:"card_number"`
}

// CortinaResult is the relay's answer to a Cortina Cancel/Void.
type CortinaResult struct {
	HTTPStatus int             `json:"http_status"`
	Response   json.RawMessage `json:"response,omitempty"`
}

type sessionRequest struct {
	SparkTransactionID string `json:"spark_transaction_id"`
	Code               int    `json:"code"`
}

type controlError struct {
	Error string `json:"error"`
}

func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request, op string) {
	get := r.Method == http.MethodGet
	switch {
	case op == "requests" && get:
		writeJSON(w, http.StatusOK, s.Requests(r.URL.Query().Get("call")))
		return
	case op == "callbacks" && get:
		writeJSON(w, http.StatusOK, s.Callbacks(r.URL.Query().Get("call")))
		return
	case op == "txns" && get:
		writeJSON(w, http.StatusOK, s.Txns())
		return
	case r.Method != http.MethodPost:
		writeJSON(w, http.StatusMethodNotAllowed, controlError{"method not allowed"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, controlError{"cannot read body"})
		return
	}
	decode := func(v any) bool {
		if len(bytes.TrimSpace(body)) == 0 {
			return true
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			writeJSON(w, http.StatusBadRequest, controlError{"bad request body: " + err.Error()})
			return false
		}
		return true
	}
	switch op {
	case "tap":
		var req TapRequest
		if !decode(&req) {
			return
		}
		res, err := s.Tap(r.Context(), req.terminal(), req.Station, req.Card, req.Amount)
		s.controlAnswer(w, res, err)
	case "stop-tap":
		var req StopTapRequest
		if !decode(&req) {
			return
		}
		res, err := s.StopTap(r.Context(), Terminal{MachineID: req.MachineID, HwSerial: req.HwSerial, StopNotify: req.StopNotify}, req.Station, req.Card)
		s.controlAnswer(w, res, err)
	case "decline":
		var req sessionRequest
		if !decode(&req) {
			return
		}
		if req.Code == 0 {
			req.Code = codePOSTimeout
		}
		res, err := s.Decline(r.Context(), req.SparkTransactionID, req.Code)
		s.controlAnswer(w, res, err)
	case "timeout":
		var req sessionRequest
		if !decode(&req) {
			return
		}
		res, err := s.Timeout(r.Context(), req.SparkTransactionID)
		s.controlAnswer(w, res, err)
	case "cortina-cancel":
		var req CortinaRequest
		if !decode(&req) {
			return
		}
		status, ans, err := s.CortinaCancel(r.Context(), req.NayaxTransactionID, req.Void, req.CardNumber)
		s.controlAnswer(w, CortinaResult{HTTPStatus: status, Response: ans}, err)
	case "fail":
		var req FailRequest
		if !decode(&req) {
			return
		}
		f, err := req.failure()
		if err != nil {
			writeJSON(w, http.StatusBadRequest, controlError{err.Error()})
			return
		}
		s.Fail(req.Call, f)
		writeJSON(w, http.StatusOK, struct{}{})
	case "clear":
		s.ClearFailures()
		writeJSON(w, http.StatusOK, struct{}{})
	case "relay":
		var req struct {
			URL string `json:"url"`
		}
		if !decode(&req) {
			return
		}
		s.SetRelay(req.URL)
		writeJSON(w, http.StatusOK, struct{}{})
	default:
		writeJSON(w, http.StatusNotFound, controlError{"unknown control operation"})
	}
}

// failure checks a FailRequest and turns it into a Failure.
func (req FailRequest) failure() (Failure, error) {
	if req.Call != "" && req.Call != "*" && canonicalCall(req.Call) == "" {
		return Failure{}, fmt.Errorf("unknown call %q", req.Call)
	}
	f := Failure{Times: req.Times, Status: req.Status, Code: req.Code}
	if req.Times < 0 {
		return Failure{}, errors.New("times must not be negative")
	}
	if req.Delay != "" {
		d, err := time.ParseDuration(req.Delay)
		if err != nil || d < 0 {
			return Failure{}, fmt.Errorf("delay %q is not a duration", req.Delay)
		}
		f.Delay = d
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		return Failure{}, fmt.Errorf("status %d is not an HTTP status", f.Status)
	}
	if f.Status == 0 && f.Code == 0 && f.Delay == 0 {
		return Failure{}, errors.New("a failure needs a status, a code or a delay")
	}
	return f, nil
}

// controlAnswer writes a callback's result; a callback that could not be
// delivered (or an unknown transaction) is a 502/404 with the error and
// whatever result there is.
func (s *Sim) controlAnswer(w http.ResponseWriter, res any, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, res)
		return
	}
	status := http.StatusBadGateway
	switch {
	case errors.Is(err, ErrUnknownTransaction):
		status = http.StatusNotFound
	case errors.Is(err, ErrTerminal), errors.Is(err, ErrNoRelay):
		status = http.StatusBadRequest
	}
	writeJSON(w, status, controlError{err.Error()})
}

// ControlClient drives a simulator in another process through its
// control API.
type ControlClient struct {
	base string
	// HTTP is the client used; default a client with a 30 s timeout.
	HTTP *http.Client
}

// Client returns a control client for the simulator at simURL: its root
// URL or its Spark URL (ending in /api).
func Client(simURL string) *ControlClient {
	base := strings.TrimRight(simURL, "/")
	if strings.HasSuffix(strings.ToLower(base), "/api") {
		base = base[:len(base)-len("/api")]
	}
	return &ControlClient{base: base, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// ControlTap taps a card on the simulator at simURL (see Sim.Tap).
func ControlTap(ctx context.Context, simURL string, req TapRequest) (TapResult, error) {
	return Client(simURL).Tap(ctx, req)
}

// Tap is Sim.Tap through the control API.
func (c *ControlClient) Tap(ctx context.Context, req TapRequest) (TapResult, error) {
	var res TapResult
	err := c.do(ctx, http.MethodPost, "tap", req, &res)
	return res, err
}

// StopTap is Sim.StopTap through the control API.
func (c *ControlClient) StopTap(ctx context.Context, req StopTapRequest) (TapResult, error) {
	var res TapResult
	err := c.do(ctx, http.MethodPost, "stop-tap", req, &res)
	return res, err
}

// Decline is Sim.Decline through the control API.
func (c *ControlClient) Decline(ctx context.Context, sparkID string, code int) (CallbackResult, error) {
	var res CallbackResult
	err := c.do(ctx, http.MethodPost, "decline", sessionRequest{SparkTransactionID: sparkID, Code: code}, &res)
	return res, err
}

// Timeout is Sim.Timeout through the control API.
func (c *ControlClient) Timeout(ctx context.Context, sparkID string) (CallbackResult, error) {
	var res CallbackResult
	err := c.do(ctx, http.MethodPost, "timeout", sessionRequest{SparkTransactionID: sparkID}, &res)
	return res, err
}

// CortinaCancel is Sim.CortinaCancel through the control API.
func (c *ControlClient) CortinaCancel(ctx context.Context, nayaxID int64, void bool, cardNumber string) (CortinaResult, error) {
	var res CortinaResult
	err := c.do(ctx, http.MethodPost, "cortina-cancel", CortinaRequest{NayaxTransactionID: nayaxID, Void: void, CardNumber: cardNumber}, &res)
	return res, err
}

// Fail is Sim.Fail through the control API.
func (c *ControlClient) Fail(ctx context.Context, call string, f Failure) error {
	req := FailRequest{Call: call, Times: f.Times, Status: f.Status, Code: f.Code}
	if f.Delay > 0 {
		req.Delay = f.Delay.String()
	}
	return c.do(ctx, http.MethodPost, "fail", req, nil)
}

// ClearFailures is Sim.ClearFailures through the control API.
func (c *ControlClient) ClearFailures(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "clear", struct{}{}, nil)
}

// SetRelay is Sim.SetRelay through the control API.
func (c *ControlClient) SetRelay(ctx context.Context, relayURL string) error {
	return c.do(ctx, http.MethodPost, "relay", map[string]string{"url": relayURL}, nil)
}

// Requests is Sim.Requests through the control API.
func (c *ControlClient) Requests(ctx context.Context, call string) ([]Request, error) {
	var out []Request
	err := c.do(ctx, http.MethodGet, "requests?call="+url.QueryEscape(call), nil, &out)
	return out, err
}

// Callbacks is Sim.Callbacks through the control API.
func (c *ControlClient) Callbacks(ctx context.Context, call string) ([]Request, error) {
	var out []Request
	err := c.do(ctx, http.MethodGet, "callbacks?call="+url.QueryEscape(call), nil, &out)
	return out, err
}

// Txns is Sim.Txns through the control API.
func (c *ControlClient) Txns(ctx context.Context) ([]Txn, error) {
	var out []Txn
	err := c.do(ctx, http.MethodGet, "txns", nil, &out)
	return out, err
}

func (c *ControlClient) do(ctx context.Context, method, op string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("nayaxsim control %s: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/_sim/"+op, body)
	if err != nil {
		return fmt.Errorf("nayaxsim control %s: %w", op, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("nayaxsim control %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("nayaxsim control %s: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		var ce controlError
		_ = json.Unmarshal(b, &ce)
		if ce.Error == "" {
			ce.Error = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("nayaxsim control %s: %w: HTTP %d: %s", op, ErrControl, resp.StatusCode, ce.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("nayaxsim control %s: decode answer: %w", op, err)
	}
	return nil
}
