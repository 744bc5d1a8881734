package nayaxsim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sitelink/sitelink/daemon/nayax/seeds"
)

// defaultAmount is authorized when neither the TriggerTransaction nor the
// tap names an amount (Nayax's example pre-authorization).
const defaultAmount = 15.0

// maxAnswer caps how much of a relay's answer the simulator keeps.
const maxAnswer = 1 << 20

// Kinds of TapResult.
const (
	// KindAuthorize: a transaction was authorized and the relay
	// acknowledged it (TransactionCallback, or TransactionNotify answered
	// Approved).
	KindAuthorize = "authorize"
	// KindStop: a stop was sent (StopCallback or StopNotify), whatever
	// the relay answered.
	KindStop = "stop"
	// KindRefused: Device Start ended at StartSession: its answer was not
	// Approved, or its SparkTransactionId or Cipher did not hold up.
	// Nothing else was sent.
	KindRefused = "refused"
	// KindUnavailable: Device Start ended at InfoQuery or
	// AvailabilityCheck: ServiceStationAvailability was not 1 (available), or the answer
	// was not Approved or not usable. No card was authorized.
	KindUnavailable = "unavailable"
	// KindDeclined: the relay did not approve the TransactionNotify. The
	// transaction stays authorized at Nayax until the integrator cancels
	// it (CancelTransaction); its station is free again.
	KindDeclined = "declined"
)

// Terminal is a Nayax payment terminal: its machine id and HW serial,
// and how its integration is set up in Nayax's back office. Either id
// may be zero; callbacks carry what is known.
type Terminal struct {
	MachineID int64  `json:"machine_id"`
	HwSerial  string `json:"hw_serial"`
	// DeviceStart: the consumer starts at the terminal (StartSession,
	// InfoQuery, TransactionNotify) instead of the terminal sending a
	// TransactionCallback.
	DeviceStart bool `json:"device_start,omitempty"`
	// StopNotify: a stop at this terminal is a StopNotify (Nayax leaves
	// the matching to the integrator) instead of a StopCallback.
	StopNotify bool `json:"stop_notify,omitempty"`
	// AvailabilityCheck: Device Start asks AvailabilityCheck, with the
	// estimated Amount, instead of InfoQuery.
	AvailabilityCheck bool `json:"availability_check,omitempty"`
}

// TapResult is what a Tap or StopTap did and what the relay answered.
type TapResult struct {
	Kind string `json:"kind"` // authorize | stop | refused | unavailable | declined
	Txn  Txn    `json:"txn"`  // after the relay answered; zero when none was made or named
	// HTTPStatus and Response are the relay's answer to the last call
	// made.
	HTTPStatus int             `json:"http_status"`
	Response   json.RawMessage `json:"response,omitempty"`
	// Elapsed is the relay's response time, the longest of Calls when a
	// tap made several (Nayax wants every one answered within 5 s).
	Elapsed time.Duration `json:"elapsed"`
	// Calls are the calls made to the relay, in order.
	Calls []TapCall `json:"calls,omitempty"`
	// Reason says why a Device Start was refused or found the station
	// unavailable, or what was wrong in an answer that Nayax would
	// check (ids echoed, the session a StopNotify names).
	Reason string `json:"reason,omitempty"`
	// Availability, PosDisplay and InfoAmount are the InfoQuery or
	// AvailabilityCheck answer's ServiceStationAvailability, PosDisplay
	// and Amount (Device Start).
	Availability int     `json:"availability,omitempty"`
	PosDisplay   string  `json:"pos_display,omitempty"`
	InfoAmount   float64 `json:"info_amount,omitempty"`
}

// TapCall is one call a tap made to the relay and its answer.
type TapCall struct {
	Call       string          `json:"call"`
	HTTPStatus int             `json:"http_status"`
	Response   json.RawMessage `json:"response,omitempty"`
	Elapsed    time.Duration   `json:"elapsed"`
}

// add records a call's outcome in the result.
func (r *TapResult) add(call string, res sent) {
	r.Calls = append(r.Calls, TapCall{Call: call, HTTPStatus: res.status, Response: res.answer, Elapsed: res.elapsed})
	r.HTTPStatus, r.Response = res.status, res.answer
	r.Elapsed = max(r.Elapsed, res.elapsed)
}

// CallbackResult is the relay's answer to a DeclineCallback or
// TimeoutCallback.
type CallbackResult struct {
	Call               string          `json:"call"`
	SparkTransactionID string          `json:"spark_transaction_id"`
	HTTPStatus         int             `json:"http_status"`
	Response           json.RawMessage `json:"response,omitempty"`
	Elapsed            time.Duration   `json:"elapsed"`
}

// card is a fake payment card, derived from a name so that the same name
// always gives the same card (and CardHash).
type card struct {
	hash  string // hex SHA-256 of the fake card number
	last4 string
	uid   string
}

// fakeCard derives a 16-digit Luhn-valid test number starting with 4 from
// the name. The number itself never leaves this function.
func fakeCard(name string) card {
	if name == "" {
		name = "default"
	}
	seed := sha256.Sum256([]byte("nayaxsim card " + name))
	pan := make([]byte, 0, 16)
	pan = append(pan, '4')
	for i := 0; len(pan) < 15; i++ {
		pan = append(pan, '0'+seed[i]%10)
	}
	pan = append(pan, luhnDigit(pan))
	uid := make([]byte, 16)
	for i := range uid {
		uid[i] = '0' + seed[16+i]%10
	}
	if uid[0] == '0' {
		uid[0] = '1'
	}
	sum := sha256.Sum256(pan)
	return card{hash: hex.EncodeToString(sum[:]), last4: string(pan[12:]), uid: string(uid)}
}

func luhnDigit(digits []byte) byte {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

// CardHash returns the CardHash the simulator sends for the card with
// this name.
func CardHash(name string) string { return fakeCard(name).hash }

// Tap presents the card called card at a station of terminal t. The
// terminal's settings (DeviceStart, StopNotify, AvailabilityCheck) are
// remembered: a setting given once, here or in Options.Terminals, stays
// on for that terminal, so later taps may name it by an id alone.
//
// On a terminal without DeviceStart, on a station with no open
// transaction, it authorizes amount (see below) and sends a
// TransactionCallback (Approved): for the oldest TriggerTransaction
// pending on that terminal, with its SparkTransactionId (Remote Start),
// or else as an external authorization with a fresh SparkTransactionId.
// The transaction is registered before the callback is sent, so the relay
// may settle or cancel it while answering.
//
// On a station with an open transaction (authorized, acknowledged, not
// stopped) it sends a stop for that transaction with this card (see
// StopTap): another card than the one that authorized gives another
// hash, which sitelink must decline. An approved stop closes the station.
//
// On a DeviceStart terminal with no TriggerTransaction pending, the card
// decides: if it paid for a transaction still open at the site (on this
// station first, then this terminal, then any), the tap stops it;
// otherwise the tap runs Device Start (StartSession, InfoQuery or
// AvailabilityCheck, TransactionNotify), authorizing the InfoQuery
// answer's Amount, else amount, else 15. See TapResult's kinds for how it
// ends.
//
// The amount authorized by a TransactionCallback is the
// TriggerTransaction's Amount when it gave one, else amount, else 15.
func (s *Sim) Tap(ctx context.Context, t Terminal, station, cardName string, amount float64) (TapResult, error) {
	if t.MachineID == 0 && strings.TrimSpace(t.HwSerial) == "" {
		return TapResult{}, ErrTerminal
	}
	if amount < 0 || math.IsNaN(amount) || math.IsInf(amount, 0) {
		return TapResult{}, fmt.Errorf("tap: amount must be a non-negative number")
	}
	c := fakeCard(cardName)
	now := s.o.Now()

	s.mu.Lock()
	t, ti := s.learn(t)
	key := stationKey(ti, station)
	deviceStart := t.DeviceStart && !s.hasPending(t)
	var open *Txn
	if deviceStart {
		open = s.cardTxn(c.hash, ti, key)
	} else {
		open = s.openTxn(key)
	}
	if open != nil {
		s.mu.Unlock()
		return s.stop(ctx, t, station, c, open)
	}
	if deviceStart {
		s.mu.Unlock()
		return s.deviceStart(ctx, t, key, station, c, amount)
	}
	tx := &Txn{
		NayaxTransactionID: s.nextID,
		SparkTransactionID: uuid.NewString(),
		SiteID:             SiteID,
		MachineAuTime:      sparkTime(now),
		MachineID:          t.MachineID,
		HwSerial:           t.HwSerial,
		Station:            station,
		Amount:             amount,
		Flow:               FlowExternal,
		State:              StateAuthorized,
		CardHash:           c.hash,
		CardLast4:          c.last4,
		AuthorizedAt:       now,
	}
	s.nextID++
	if p := s.takePending(t); p != nil {
		tx.SparkTransactionID, tx.Remote, tx.Flow = p.sparkID, true, FlowRemoteStart
		if p.amount > 0 {
			tx.Amount = p.amount
		}
	}
	if tx.Amount == 0 {
		tx.Amount = defaultAmount
	}
	s.txns[tx.NayaxTransactionID] = tx
	s.order = append(s.order, tx.NayaxTransactionID)
	s.open[key] = tx.NayaxTransactionID
	body := transactionBody(tx, t, c)
	s.mu.Unlock()

	res, err := s.send(ctx, CallTransactionCallback, "/api/TransactionCallback", body, nil)
	s.mu.Lock()
	if err == nil && acknowledged(res) {
		tx.Acked = true
	} else if s.open[key] == tx.NayaxTransactionID {
		delete(s.open, key)
	}
	out := TapResult{Kind: KindAuthorize, Txn: *tx}
	out.add(CallTransactionCallback, res)
	s.mu.Unlock()
	s.log.Info("nayaxsim tap", "kind", KindAuthorize, "station", station, "remote", tx.Remote,
		"nayax_transaction_id", tx.NayaxTransactionID, "spark_transaction_id", tx.SparkTransactionID, "http_status", out.HTTPStatus)
	return out, err
}

// Decline sends a DeclineCallback for a pending TriggerTransaction (or a
// known transaction) with this ErrorCode: 44 timeout on the POS device,
// 45 cancelled on it. A pending trigger is dropped.
func (s *Sim) Decline(ctx context.Context, sparkID string, code int) (CallbackResult, error) {
	s.mu.Lock()
	t, ok := s.sessionTerminal(sparkID)
	s.mu.Unlock()
	if !ok {
		return CallbackResult{}, fmt.Errorf("decline %s: %w", sparkID, ErrUnknownTransaction)
	}
	desc := "Declined"
	switch code {
	case codePOSTimeout:
		desc = "Timeout on POS Device"
	case codePOSCancelled:
		desc = "Cancelled on POS Device"
	}
	body := marshalOrdered(
		kv{"MachineId", machineOrNil(t)},
		kv{"HwSerial", serialOrNil(t)},
		kv{"SparkTransactionId", sparkID},
		kv{"Status", declinedStatus(code, desc)},
	)
	res, err := s.send(ctx, CallDeclineCallback, "/api/DeclineCallback", body, nil)
	return res.callbackResult(CallDeclineCallback, sparkID), err
}

// Timeout sends a TimeoutCallback: the session of a pending
// TriggerTransaction (dropped) or a known transaction is dead.
func (s *Sim) Timeout(ctx context.Context, sparkID string) (CallbackResult, error) {
	s.mu.Lock()
	t, ok := s.sessionTerminal(sparkID)
	s.mu.Unlock()
	if !ok {
		return CallbackResult{}, fmt.Errorf("timeout %s: %w", sparkID, ErrUnknownTransaction)
	}
	body := marshalOrdered(
		kv{"TerminalId", terminalID(t)},
		kv{"MachineId", machineOrNil(t)},
		kv{"HwSerial", serialOrNil(t)},
		kv{"SparkTransactionId", sparkID},
	)
	res, err := s.send(ctx, CallTimeoutCallback, "/api/TimeoutCallback", body, nil)
	return res.callbackResult(CallTimeoutCallback, sparkID), err
}

// CortinaCancel sends a Cortina Prepaid Cancel (void false) or Void (void
// true) for a transaction, shaped like Nayax's PPCancelRequest example
// with this transaction's ids, and CardData.CardNumber = cardNumber
// (tests pass a Track 2 string to prove the relay drops it). The
// transaction counts as cancelled by Nayax from then on. It returns the
// relay's HTTP status and answer.
func (s *Sim) CortinaCancel(ctx context.Context, nayaxID int64, void bool, cardNumber string) (int, json.RawMessage, error) {
	s.mu.Lock()
	tx := s.txns[nayaxID]
	if tx == nil {
		s.mu.Unlock()
		return 0, nil, fmt.Errorf("cortina cancel %d: %w", nayaxID, ErrUnknownTransaction)
	}
	if tx.State == StateAuthorized {
		tx.State, tx.CancelledAmount, tx.CancelledByNayax = StateCancelled, tx.Amount, true
	}
	body, redacted, err := cortinaBody(*tx, cardNumber)
	s.mu.Unlock()
	if err != nil {
		return 0, nil, fmt.Errorf("cortina cancel %d: %w", nayaxID, err)
	}
	call, path := CallCortinaCancel, "/Cortina/PrePaid/Cancel"
	if void {
		call, path = CallCortinaVoid, "/Cortina/PrePaid/Void"
	}
	res, err := s.send(ctx, call, path, body, redacted)
	s.log.Info("nayaxsim cortina", "call", call, "nayax_transaction_id", nayaxID, "http_status", res.status)
	return res.status, res.answer, err
}

// sent is one callback's outcome.
type sent struct {
	status  int
	answer  json.RawMessage
	elapsed time.Duration
}

func (r sent) callbackResult(call, sparkID string) CallbackResult {
	return CallbackResult{Call: call, SparkTransactionID: sparkID, HTTPStatus: r.status, Response: r.answer, Elapsed: r.elapsed}
}

// send posts a callback to the relay and records it. record, when not
// nil, is what the record keeps instead of body (card data removed).
func (s *Sim) send(ctx context.Context, call, path string, body, record []byte) (sent, error) {
	s.mu.Lock()
	relay := s.relay
	s.mu.Unlock()
	if relay == "" {
		return sent{}, fmt.Errorf("%s: %w", call, ErrNoRelay)
	}
	base := strings.TrimRight(relay, "/")
	if strings.HasSuffix(strings.ToLower(base), "/api") {
		base = base[:len(base)-len("/api")]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return sent{}, fmt.Errorf("%s: %w", call, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "nayaxsim")
	for k, v := range s.o.CallbackHeaders {
		req.Header.Set(k, v)
	}
	if record == nil {
		record = body
	}
	rec := Request{Call: call, Header: req.Header.Clone(), Body: rawJSON(record), At: s.o.Now()}
	start := time.Now()
	resp, err := s.client.Do(req)
	var out sent
	if err == nil {
		var b []byte
		b, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		resp.Body.Close()
		out = sent{status: resp.StatusCode, answer: rawJSON(b), elapsed: time.Since(start)}
		rec.HTTPStatus, rec.Answer = out.status, out.answer
	}
	s.mu.Lock()
	s.addRecord(&s.callbacks, rec)
	s.mu.Unlock()
	if err != nil {
		return out, fmt.Errorf("%s to %s: %w", call, base+path, err)
	}
	return out, nil
}

// acknowledged reports whether the relay accepted a callback: a 2xx
// status and no Declined verdict (an empty 200 is enough for Nayax).
func acknowledged(r sent) bool {
	if r.status < 200 || r.status > 299 {
		return false
	}
	o, p := parseObject(r.answer)
	if p != nil {
		return true
	}
	st, p := parseObject(o.get("Status"))
	if p != nil {
		return true
	}
	v := st.peekString("Verdict")
	return v == nil || !strings.EqualFold(strings.TrimSpace(*v), "Declined")
}

// learn completes t from the known terminals, or adds it, and returns its
// index among them: stations are keyed by it, so a terminal named by its
// machine id in one tap and by its serial in the next is still one
// terminal. Settings are merged: one set in either stays set, for the
// terminal and the returned t. s.mu is held.
func (s *Sim) learn(t Terminal) (Terminal, int) {
	for i, k := range s.terminals {
		byMachine := t.MachineID != 0 && t.MachineID == k.MachineID
		bySerial := t.HwSerial != "" && normSerial(t.HwSerial) == normSerial(k.HwSerial)
		if !byMachine && !bySerial {
			continue
		}
		if t.MachineID == 0 {
			t.MachineID = k.MachineID
		}
		if t.HwSerial == "" {
			t.HwSerial = k.HwSerial
		}
		t.DeviceStart = t.DeviceStart || k.DeviceStart
		t.StopNotify = t.StopNotify || k.StopNotify
		t.AvailabilityCheck = t.AvailabilityCheck || k.AvailabilityCheck
		if k.MachineID == 0 || k.HwSerial == "" {
			s.terminals[i] = t
		} else {
			k.DeviceStart, k.StopNotify, k.AvailabilityCheck = t.DeviceStart, t.StopNotify, t.AvailabilityCheck
			s.terminals[i] = k
		}
		return t, i
	}
	s.terminals = append(s.terminals, t)
	return t, len(s.terminals) - 1
}

// stationKey names station of the terminal with index ti in s.open.
func stationKey(ti int, station string) string { return strconv.Itoa(ti) + "/" + station }

// openTxn returns the transaction open on a station. s.mu is held.
func (s *Sim) openTxn(key string) *Txn {
	id, ok := s.open[key]
	if !ok {
		return nil
	}
	tx := s.txns[id]
	if tx == nil || tx.State != StateAuthorized || tx.Stopped {
		delete(s.open, key)
		return nil
	}
	return tx
}

// hasPending reports whether a trigger waits for a card on t. s.mu is
// held.
func (s *Sim) hasPending(t Terminal) bool {
	for _, p := range s.pending {
		if terminalIs(t, p.termID, p.termType) {
			return true
		}
	}
	return false
}

// takePending removes and returns the oldest trigger for t. s.mu is held.
func (s *Sim) takePending(t Terminal) *trigger {
	for i, p := range s.pending {
		if terminalIs(t, p.termID, p.termType) {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			return p
		}
	}
	return nil
}

// sessionTerminal finds the terminal of a pending trigger (dropping it)
// or of a transaction, by SparkTransactionId. s.mu is held.
func (s *Sim) sessionTerminal(sparkID string) (Terminal, bool) {
	for i, p := range s.pending {
		if p.sparkID != sparkID {
			continue
		}
		s.pending = append(s.pending[:i], s.pending[i+1:]...)
		for _, k := range s.terminals {
			if terminalIs(k, p.termID, p.termType) {
				return k, true
			}
		}
		if p.termType == 1 {
			return Terminal{HwSerial: p.termID}, true
		}
		id, _ := strconv.ParseInt(strings.TrimSpace(p.termID), 10, 64)
		return Terminal{MachineID: id}, true
	}
	if tx := s.bySpark(sparkID); tx != nil {
		return Terminal{MachineID: tx.MachineID, HwSerial: tx.HwSerial}, true
	}
	return Terminal{}, false
}

func terminalID(t Terminal) string {
	if t.HwSerial != "" {
		return t.HwSerial
	}
	return strconv.FormatInt(t.MachineID, 10)
}

func machineOrNil(t Terminal) any {
	if t.MachineID == 0 {
		return nil
	}
	return t.MachineID
}

func serialOrNil(t Terminal) any {
	if t.HwSerial == "" {
		return nil
	}
	return t.HwSerial
}

// transactionBody is the TransactionCallback, built on Nayax's example
// (seed 001). ServiceStationNumber is sitelink's extension.
func transactionBody(tx *Txn, t Terminal, c card) []byte {
	return fromSeed("001_transactioncallback_request.json", map[string]any{
		"NayaxTransactionId": tx.NayaxTransactionID,
		"SparkTransactionId": tx.SparkTransactionID,
		"SiteId":             tx.SiteID,
		"TerminalId":         terminalID(t),
		"MachineId":          machineOrNil(t),
		"HwSerial":           serialOrNil(t),
		"AuthStatus": map[string]any{
			"Verdict": "Approved", "ErrorCode": 0, "ErrorDescription": "", "StatusMessage": "",
		},
		"CardLast4Digits":      c.last4,
		"CardHash":             c.hash,
		"CardUid":              c.uid,
		"MachineAuTime":        tx.MachineAuTime,
		"Amount":               tx.Amount,
		"ServiceStationNumber": tx.Station,
	})
}

// stopBody is the StopCallback, built on Nayax's example (seed 000),
// carrying the tapping card's hash.
func stopBody(tx *Txn, t Terminal, station string, c card) []byte {
	return fromSeed("000_stopcallback_request.json", map[string]any{
		"StopSiteId":           tx.SiteID,
		"MachineId":            machineOrNil(t),
		"HwSerial":             serialOrNil(t),
		"CardLast4Digits":      c.last4,
		"CardHash":             c.hash,
		"SparkTransactionId":   tx.SparkTransactionID,
		"NayaxTransactionId":   tx.NayaxTransactionID,
		"CardUid":              c.uid,
		"MachineAuTime":        tx.MachineAuTime,
		"ServiceStationNumber": station,
	})
}

// fromSeed overrides members of a seed request; a nil value removes the
// member.
func fromSeed(name string, set map[string]any) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(seeds.Get(name), &m); err != nil {
		panic("nayaxsim: seed " + name + ": " + err.Error())
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			panic("nayaxsim: encode " + k + ": " + err.Error())
		}
		m[k] = b
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic("nayaxsim: encode " + name + ": " + err.Error())
	}
	return b
}

// kv is one member of an object written in order.
type kv struct {
	k string
	v any
}

// marshalOrdered writes an object with members in the given order,
// leaving out nil values.
func marshalOrdered(members ...kv) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for _, m := range members {
		if m.v == nil {
			continue
		}
		v, err := json.Marshal(m.v)
		if err != nil {
			panic("nayaxsim: encode " + m.k + ": " + err.Error())
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(m.k)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes()
}
