package wire

import (
	"encoding/json"
	"fmt"
	"time"
)

// Outcome is how the relay classifies Nayax's answer to a request.
type Outcome string

// Outcomes of a Result.
const (
	// OutcomeApproved: Nayax accepted the request.
	OutcomeApproved Outcome = "approved"
	// OutcomeAlreadyDone: Nayax says it was done before (a retried
	// request whose first attempt succeeded).
	OutcomeAlreadyDone Outcome = "already-done"
	// OutcomeDeclined: Nayax refused it; Status says why.
	OutcomeDeclined Outcome = "declined"
	// OutcomeError: no answer from Nayax (or a request the relay will not
	// send); the node retries later.
	OutcomeError Outcome = "error"
)

// Result is the body of the `result` command: Nayax's answer to the
// request a node's event carried. EventID echoes that event's id, which
// is how the node finds the request. Status is only the verdict: Nayax's
// answers carry card details the site does not need.
type Result struct {
	EventID  string  `json:"event_id"`
	Call     string  `json:"call"`
	Outcome  Outcome `json:"outcome"`
	Status   *Status `json:"status,omitempty"`
	Error    string  `json:"error,omitempty"`
	Attempts int     `json:"attempts,omitempty"`
	// SparkTransactionID names the request's transaction, so that every
	// relay replica learns which request an answer completed (relay
	// dedupe); the site matches results by EventID.
	SparkTransactionID string `json:"spark_transaction_id,omitempty"`
	// Record is what Nayax's answer says about the money (no card
	// data), for the session's payment record; nil if it said nothing.
	Record *PaymentRecord `json:"record,omitempty"`
}

// PaymentRecord is the receipt part of Nayax's answer to a Settlement,
// ExternalSettlement, CancelTransaction or ExternalCancel, as Nayax wrote
// it (strings, so nothing is lost to a float). It never holds card data.
type PaymentRecord struct {
	AuthCode      string `json:"auth_code,omitempty"`
	NayaxRRN      string `json:"nayax_rrn,omitempty"`
	FiscalRrn     string `json:"fiscal_rrn,omitempty"`
	Amount        string `json:"amount,omitempty"` // the amount Nayax settled, as its decimal text
	SeTime        string `json:"se_time,omitempty"`
	MachineAuTime string `json:"machine_au_time,omitempty"`
}

// DecodeResult decodes the body of a `result` command; event_id is
// required. Field names match case-insensitively, as encoding/json does.
func DecodeResult(body []byte) (Result, error) {
	var r Result
	if err := decodeEnvelope("decode result", body, &r); err != nil {
		return Result{}, err
	}
	if r.EventID == "" {
		return Result{}, fmt.Errorf("decode result: missing event_id: %w", ErrMalformed)
	}
	return r, nil
}

// SessionEvent is the body of a `session` event: one lifecycle
// transition and the session after it. Session is the node's public
// session record (the ledger's JSON without card data or history); its
// fields belong to the ledger, so it stays opaque here.
type SessionEvent struct {
	From    string          `json:"from,omitempty"`
	To      string          `json:"to"`
	Reason  string          `json:"reason,omitempty"`
	Session json.RawMessage `json:"session"`
}

// StationEvent is the body of a `station` event: a station's state after
// a change of CP state, contactor or fault.
type StationEvent struct {
	Number    string  `json:"number"`
	CPState   string  `json:"cp_state"`
	Contactor bool    `json:"contactor"`
	Fault     string  `json:"fault,omitempty"`
	EnergyWh  float64 `json:"energy_wh"`
	PowerW    float64 `json:"power_w"`
}

// ReportedConfig is the retained P/nodes/N/config/reported message: the
// node's decision on a desired config, the versions that run, and the
// stations whose change waits for their session to end.
type ReportedConfig struct {
	Version      int64     `json:"version"`
	Applied      bool      `json:"applied"`
	Error        string    `json:"error,omitempty"`
	At           time.Time `json:"at"`
	Source       string    `json:"source"` // "group" or "node": the desired config decided
	GroupVersion int64     `json:"group_version"`
	NodeVersion  int64     `json:"node_version"`
	Waiting      []string  `json:"waiting_stations,omitempty"`
}
