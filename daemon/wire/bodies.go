package wire

import (
	"encoding/json"
	"fmt"
	"strings"
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
	// OutcomeError: no answer from Nayax; the node retries later.
	OutcomeError Outcome = "error"
	// OutcomeRefused: the relay did not send the request to Nayax and
	// never will (it names a transaction the relay did not hand to this
	// node, a terminal the node does not own, an amount over the limit,
	// or a call that does not fit the event); Error says why. Sending it
	// again changes nothing: the node hands it to an operator.
	OutcomeRefused Outcome = "refused"
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

// SessionEventOf is SessionEvent for its sender: the same JSON, byte for
// byte, with the session (a value json.Marshal writes as an object)
// marshalled in the same pass instead of on its own first and then
// scanned again as a RawMessage. The stop path sends three.
type SessionEventOf[S any] struct {
	From    string `json:"from,omitempty"`
	To      string `json:"to"`
	Reason  string `json:"reason,omitempty"`
	Session S      `json:"session"`
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

// RequestTicket is the member of a settlement or cancel request event's
// body that carries the Ticket of its transaction; the relay checks it
// and strips it, as it does RequestCall.
const RequestTicket = "ticket"

// Ticket is the relay's proof that it handed a Nayax transaction to a
// node: the relay adds it (as RequestTicket) to every `authorize` command
// it forwards, the node keeps it with the session, unread, and puts it in
// that session's settlement and cancel request events. The relay sends
// such a request to Nayax only if MAC, which it computes with the fleet's
// secret over the node (the topic the event came on), Nayax, Spark and
// Max, is right and the request names that transaction for at most Max:
// one node's key cannot settle, cancel or void another site's
// transactions. Max is the authorized Amount as Nayax wrote it.
type Ticket struct {
	Nayax int64  `json:"nayax"`
	Spark string `json:"spark,omitempty"`
	Max   string `json:"max"`
	MAC   string `json:"mac"`
}

// TicketOf returns the ticket member of a forwarded `authorize` body (a
// JSON object), or nil if it has none.
func TicketOf(body json.RawMessage) json.RawMessage {
	var m struct {
		Ticket json.RawMessage `json:"ticket"`
	}
	if json.Unmarshal(body, &m) != nil || len(m.Ticket) == 0 || !isObject(m.Ticket) || len(m.Ticket) > maxTicket {
		return nil
	}
	return m.Ticket
}

// maxTicket bounds a ticket kept in the ledger (a real one is ~150 bytes).
const maxTicket = 1024

// Terminal is the retained P/terminals/{key} message: the node that owns
// a Nayax terminal (machine id and/or HW serial). The fleet's operator
// writes it (`sitelink fleet terminals`); nodes cannot (the broker's ACL),
// and the relay routes a terminal's callbacks only by it, never by what a
// node's state claims. An empty retained message removes the terminal.
//
// Removed marks a removal (Node empty): kept retained like an entry, so
// that a relay that missed it while disconnected learns it, and never
// puts the old owner back when it re-seeds a broker that lost its data.
// Among messages for one key the newest At wins.
type Terminal struct {
	Node      string    `json:"node"`
	MachineID int64     `json:"machine_id,omitempty"`
	HwSerial  string    `json:"hw_serial,omitempty"`
	Removed   bool      `json:"removed,omitempty"`
	At        time.Time `json:"at"`
}

// TerminalMessage is the retained message that gives terminal t to
// t.Node (or removes it, t.Removed): its topic (P/terminals/{TerminalKey})
// and payload. A zero t.At is now.
func TerminalMessage(prefix string, t Terminal) (topic string, payload []byte, err error) {
	if t.At.IsZero() {
		t.At = time.Now().UTC()
	}
	payload, err = json.Marshal(t)
	if err != nil {
		return "", nil, err
	}
	if _, err := DecodeTerminal(payload); err != nil {
		return "", nil, err
	}
	return TerminalTopic(prefix, TerminalKey(t.MachineID, t.HwSerial)), payload, nil
}

// DecodeTerminal decodes a terminal ownership message: node must be a
// valid topic level and at least one of machine_id (positive) and
// hw_serial given.
func DecodeTerminal(payload []byte) (Terminal, error) {
	var t Terminal
	if err := decodeEnvelope("decode terminal", payload, &t); err != nil {
		return Terminal{}, err
	}
	if t.Removed != (t.Node == "") {
		return Terminal{}, fmt.Errorf("decode terminal: a node, or removed with no node: %w", ErrMalformed)
	}
	if err := checkLevel("node", t.Node); err != nil && !t.Removed {
		return Terminal{}, fmt.Errorf("decode terminal: %v: %w", err, ErrMalformed)
	}
	if t.MachineID < 0 || (t.MachineID == 0 && strings.TrimSpace(t.HwSerial) == "") {
		return Terminal{}, fmt.Errorf("decode terminal: need a positive machine_id or a hw_serial: %w", ErrMalformed)
	}
	if len(t.HwSerial) > MaxIDLen {
		return Terminal{}, fmt.Errorf("decode terminal: hw_serial longer than %d bytes: %w", MaxIDLen, ErrMalformed)
	}
	return t, nil
}
