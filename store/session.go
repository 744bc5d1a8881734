package store

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"
)

// Origins of a session: how its transaction was started, which decides
// the calls that settle or cancel it.
const (
	OriginRemote      = "remote"       // Remote Start: TriggerTransaction, then Settlement / CancelTransaction
	OriginExternal    = "external"     // authorized on the terminal, TransactionCallback: ExternalSettlement / ExternalCancel
	OriginDeviceStart = "device-start" // Device Start, TransactionNotify: Settlement / CancelTransaction
)

// State is a session's place in the lifecycle of DESIGN.md §2.
type State string

// Session states. Active states hold a station; final states do not.
// Which state may follow which is the lifecycle table (lifecycle.go).
const (
	Requested   State = "requested"   // start requested, waiting for the card
	Authorized  State = "authorized"  // card authorized, contactor closed, no energy yet
	Charging    State = "charging"    // vehicle draws energy
	Stopping    State = "stopping"    // stop decided, contactor opening
	Stopped     State = "stopped"     // contactor open, energy final
	Interrupted State = "interrupted" // daemon shut down or crashed mid-session
	Settling    State = "settling"    // settlement requested, awaiting Nayax
	Settled     State = "settled"     // Nayax accepted the settlement
	Cancelling  State = "cancelling"  // cancel requested, awaiting Nayax
	Cancelled   State = "cancelled"   // Nayax released the hold (or told us so)
	Declined    State = "declined"    // card declined or timed out
	Closed      State = "closed"      // ended without money involved
	// NeedsReconciliation: Nayax refused a settlement or cancel in a way
	// no retry can fix (or the retry budget ran out); an operator must
	// look. Final for the engine.
	NeedsReconciliation State = "needs-reconciliation"
	// Reconciled: an operator looked at a session in
	// needs-reconciliation, settled the matter with Nayax or the customer,
	// and said so (`sitelink resolve`, the resolve command), with a note
	// kept in its history. Its money is final: it may leave the ledger
	// with the other final sessions (retention).
	Reconciled State = "reconciled"
)

// Session is one charging session: one station, one Nayax transaction.
// It never holds card data: the card hash is kept only as a keyed digest
// (CardDigest) so that a later StopCallback can be matched.
type Session struct {
	SparkTransactionID string `json:"spark_transaction_id"`
	NayaxTransactionID int64  `json:"nayax_transaction_id,omitempty"`
	Station            string `json:"station"`
	State              State  `json:"state"`
	Origin             string `json:"origin,omitempty"` // OriginRemote, OriginExternal or OriginDeviceStart
	MachineID          int64  `json:"machine_id,omitempty"`
	HwSerial           string `json:"hw_serial,omitempty"`
	SiteID             string `json:"site_id,omitempty"`         // JSON literal exactly as Nayax sent it
	MachineAuTime      string `json:"machine_au_time,omitempty"` // yyyyMMddHHmmssSSS as Nayax sent it
	CardDigest         string `json:"card_digest,omitempty"`     // HMAC of CardHash with the store's key
	CardLast4          string `json:"card_last4,omitempty"`
	// Ticket is the relay's proof that it handed this transaction to
	// this node (wire.Ticket, kept opaque here): its settlement and
	// cancel carry it, or the relay refuses them.
	Ticket          json.RawMessage `json:"ticket,omitempty"`
	AuthorizedMinor int64           `json:"authorized_minor"` // authorized, in minor units (money.go)
	AmountMinor     int64           `json:"amount_minor"`     // settled, in minor units
	MeterStartWh    float64         `json:"meter_start_wh"`
	EnergyWh        float64         `json:"energy_wh"`
	StopReason      string          `json:"stop_reason,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
	// Request is the pending Nayax request of the session (Remote Start
	// trigger, settlement or cancel), kept until Nayax's answer is
	// recorded and retried until then.
	Request *Request `json:"request,omitempty"`
	// LastAnswer is Nayax's last answer to one of the session's requests.
	LastAnswer *Answer `json:"last_answer,omitempty"`
	// Answers are Nayax's answers to the session's requests as they came,
	// oldest first (the first and the latest MaxAnswers-1 are kept): a
	// settlement retried after a lost result shows both the first and the
	// "already settled" answer.
	Answers []Answer `json:"answers,omitempty"`
	// Payment is the payment record: what Nayax's answer to the
	// settlement or cancel said about the money (receipt and
	// reconciliation; never card data).
	Payment *PaymentRecord `json:"payment_record,omitempty"`
	// History lists the transitions, oldest first, for operators.
	History []Transition `json:"history,omitempty"`
	// Tariff is the price the session was started under: a tariff
	// changed by the fleet applies to the sessions that start after it.
	Tariff *Tariff `json:"tariff,omitempty"`
}

// Tariff is a session's price: config.Tariff made exact when the session
// started (money.go). DecimalPlace is also the scale of the session's
// amounts. A session recorded before sessions kept their tariff has none;
// its amounts are in the configured tariff's decimal places.
type Tariff struct {
	Currency         string `json:"currency"`
	DecimalPlace     int    `json:"decimal_place"`
	PricePerKWhMicro int64  `json:"price_per_kwh_micro"` // millionths of the unit per kWh: 0.39 is 390000
	SessionFeeMicro  int64  `json:"session_fee_micro"`   // millionths of the unit
}

// Request is a request to Nayax that a session waits on. Body is the
// exact event body (Nayax's request plus "call"), so every retry sends the
// same request; EventIDs are the outbox events that carried it, any of
// which a result may echo.
type Request struct {
	Kind     string    `json:"kind"` // start | settlement | cancel
	Call     string    `json:"call"`
	Body     []byte    `json:"body"`
	EventIDs []string  `json:"event_ids"`
	Attempts int       `json:"attempts"` // events sent
	Failures int       `json:"failures"` // refusals that count toward a settlement's budget (code 50)
	FirstAt  time.Time `json:"first_at"`
	NextAt   time.Time `json:"next_at"` // when to send again if no answer came
	// Answered lists the events whose result was taken: the first result
	// for an event counts, a later copy (a relay's retry) is ignored.
	Answered []string `json:"answered,omitempty"`
}

// clone returns a copy of s that shares no memory with it.
func (s *Session) clone() Session {
	c := *s
	c.Ticket = bytes.Clone(s.Ticket)
	if s.Request != nil {
		r := *s.Request
		r.Body = bytes.Clone(r.Body)
		r.EventIDs = slices.Clone(r.EventIDs)
		r.Answered = slices.Clone(r.Answered)
		c.Request = &r
	}
	if s.LastAnswer != nil {
		a := *s.LastAnswer
		c.LastAnswer = &a
	}
	c.Answers = slices.Clone(s.Answers)
	if s.Payment != nil {
		p := *s.Payment
		c.Payment = &p
	}
	c.History = slices.Clone(s.History)
	if s.Tariff != nil {
		t := *s.Tariff
		c.Tariff = &t
	}
	return c
}

// MaxAnswers bounds Session.Answers.
const MaxAnswers = 8

// AddAnswer appends a to the session's answers, keeping the first and the
// latest ones within MaxAnswers.
func (s *Session) AddAnswer(a Answer) {
	s.Answers = append(s.Answers, a)
	if n := len(s.Answers); n > MaxAnswers {
		s.Answers = append(s.Answers[:1], s.Answers[n-MaxAnswers+1:]...)
	}
}

// Answer is what Nayax said (through the relay) to one request.
type Answer struct {
	Call        string    `json:"call"`
	Outcome     string    `json:"outcome"` // approved | already-done | declined | error
	Code        int       `json:"code,omitempty"`
	Description string    `json:"description,omitempty"`
	At          time.Time `json:"at"`
}

// PaymentRecord is Nayax's answer to a session's settlement or cancel, as
// far as a receipt or a reconciliation needs it: the call, its status, and
// the identifiers and amount Nayax returned (as Nayax wrote them).
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

// Transition is one recorded state change of a session.
type Transition struct {
	State  State     `json:"state"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// OutboxEntry is one event awaiting publication. Payload is the complete
// MQTT payload (the event envelope), built once at commit time so that a
// replay publishes exactly the same bytes.
type OutboxEntry struct {
	Seq       uint64    `json:"seq"`
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Attempts  int       `json:"attempts"`
	Payload   []byte    `json:"-"`
}

// InboxEntry records a handled command and the reply it got, so that a
// replayed command id gets the same reply and never a second action.
type InboxEntry struct {
	ID    string    `json:"id"`
	Type  string    `json:"type"`
	At    time.Time `json:"at"`
	Reply []byte    `json:"reply"` // complete reply payload as published
}
