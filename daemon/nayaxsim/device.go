package nayaxsim

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// This file plays Nayax's Device Start (the consumer starts at the
// terminal: StartSession, InfoQuery or AvailabilityCheck,
// TransactionNotify) and Device Stop by StopNotify (Nayax does not match
// the card; the integrator does), and checks the relay's answers the way
// Nayax would before it goes on.

// randomAlphabet is what StartSession's Random is drawn from.
const randomAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newRandom returns a StartSession Random: randomLen characters of
// [A-Za-z0-9] from crypto/rand, without modulo bias.
func newRandom() string {
	out := make([]byte, 0, randomLen)
	var buf [32]byte
	for len(out) < randomLen {
		_, _ = rand.Read(buf[:]) // never fails (crypto/rand, Go ≥ 1.24)
		for _, b := range buf {
			// 248 = 4×62: dropping 248..255 keeps every character equally likely.
			if b < 248 && len(out) < randomLen {
				out = append(out, randomAlphabet[b%62])
			}
		}
	}
	return string(out)
}

// deviceStart runs Device Start for card c at station of t (key is the
// station's key in s.open). amount is the tap's: the estimate of an
// AvailabilityCheck, and what is authorized when the InfoQuery answer
// names no Amount.
func (s *Sim) deviceStart(ctx context.Context, t Terminal, key, station string, c card, amount float64) (TapResult, error) {
	out := TapResult{Kind: KindRefused}
	if amount == 0 {
		amount = defaultAmount
	}
	done := func(err error) (TapResult, error) {
		s.log.Info("nayaxsim tap", "kind", out.Kind, "flow", FlowDeviceStart, "station", station, "reason", out.Reason,
			"nayax_transaction_id", out.Txn.NayaxTransactionID, "spark_transaction_id", out.Txn.SparkTransactionID, "http_status", out.HTTPStatus)
		return out, err
	}

	// 1. StartSession: the integrator creates the SparkTransactionId and
	// proves with the Cipher that it holds the token secret.
	random := newRandom()
	body := marshalOrdered(
		kv{"HwSerial", serialOrNil(t)},
		kv{"MachineId", machineOrNil(t)},
		kv{"TokenId", s.o.TokenID},
		kv{"Random", random},
	)
	res, err := s.send(ctx, CallStartSession, "/api/StartSession", body, nil)
	out.add(CallStartSession, res)
	if err != nil {
		out.Reason = err.Error()
		return done(err)
	}
	sparkID, reason := s.checkStartSession(res.status, res.answer, random)
	if reason == "" {
		s.mu.Lock()
		if s.bySpark(sparkID) != nil {
			reason = "StartSession answer: SparkTransactionId already used by another transaction"
		} else {
			s.authed[sparkID] = true // Settlement and CancelTransaction may follow
		}
		s.mu.Unlock()
	}
	if reason != "" {
		out.Reason = reason
		return done(nil)
	}

	// 2. InfoQuery (or AvailabilityCheck with the estimate): is the
	// station free, what to show, what to pre-authorize.
	out.Kind = KindUnavailable
	call, path := CallInfoQuery, "/api/InfoQuery"
	var station0 any
	if station != "" {
		station0 = station
	}
	members := []kv{
		{"HwSerial", serialOrNil(t)},
		{"MachineId", machineOrNil(t)},
		{"SparkTransactionId", sparkID},
		{"ServiceStationNumber", station0},
		{"SiteId", SiteID},
	}
	if t.AvailabilityCheck {
		call, path = CallAvailabilityCheck, "/api/AvailabilityCheck"
		members = append(members, kv{"Amount", amount})
	}
	res, err = s.send(ctx, call, path, marshalOrdered(members...), nil)
	out.add(call, res)
	if err != nil {
		out.Reason = err.Error()
		return done(err)
	}
	info, reason := checkInfo(call, res.status, res.answer, sparkID)
	out.Availability, out.PosDisplay, out.InfoAmount = info.availability, info.posDisplay, info.amount
	if reason != "" {
		out.Reason = reason
		return done(nil)
	}

	// 3. The consumer taps, the issuer authorizes, TransactionNotify.
	if info.amount > 0 {
		amount = info.amount
	}
	now := s.o.Now()
	s.mu.Lock()
	tx := &Txn{
		NayaxTransactionID: s.nextID,
		SparkTransactionID: sparkID,
		SiteID:             SiteID,
		MachineAuTime:      sparkTime(now),
		MachineID:          t.MachineID,
		HwSerial:           t.HwSerial,
		Station:            station,
		Amount:             amount,
		Flow:               FlowDeviceStart,
		State:              StateAuthorized,
		CardHash:           c.hash,
		CardLast4:          c.last4,
		AuthorizedAt:       now,
	}
	s.nextID++
	s.txns[tx.NayaxTransactionID] = tx
	s.order = append(s.order, tx.NayaxTransactionID)
	s.open[key] = tx.NayaxTransactionID
	body = notifyBody(tx, t, c)
	s.mu.Unlock()

	res, err = s.send(ctx, CallTransactionNotify, "/api/TransactionNotify", body, nil)
	out.add(CallTransactionNotify, res)
	s.mu.Lock()
	approved := false
	if err == nil {
		approved, out.Reason = checkNotify(res.status, res.answer, *tx)
	} else {
		out.Reason = err.Error()
	}
	if approved {
		tx.Acked, out.Kind = true, KindAuthorize
	} else {
		// Nayax keeps the authorization until the integrator cancels it;
		// the station is free.
		out.Kind = KindDeclined
		if s.open[key] == tx.NayaxTransactionID {
			delete(s.open, key)
		}
	}
	out.Txn = *tx
	s.mu.Unlock()
	return done(err)
}

// StopTap presents the card called cardName at terminal t to stop a
// session, as a consumer does at an idle terminal, and sends only the
// stop: a StopNotify when t has StopNotify (station as its
// ServiceStationNumber, left out when ""), else a StopCallback. A
// StopNotify is sent whether or not the card paid for anything, so that
// the relay's Declined can be tested; a StopCallback names the card's
// open transaction (this station's first, then this terminal's, then
// any at the site), or else the one open on the station (another card's,
// which the relay must decline), and without either it is
// ErrUnknownTransaction. An approved stop closes its transaction's
// station.
func (s *Sim) StopTap(ctx context.Context, t Terminal, station, cardName string) (TapResult, error) {
	if t.MachineID == 0 && strings.TrimSpace(t.HwSerial) == "" {
		return TapResult{}, ErrTerminal
	}
	c := fakeCard(cardName)
	s.mu.Lock()
	t, ti := s.learn(t)
	key := stationKey(ti, station)
	target := s.cardTxn(c.hash, ti, key)
	if target == nil && !t.StopNotify {
		target = s.openTxn(key)
	}
	s.mu.Unlock()
	if target == nil && !t.StopNotify {
		return TapResult{}, fmt.Errorf("stop tap at station %q: %w: no open transaction to name in a StopCallback", station, ErrUnknownTransaction)
	}
	return s.stop(ctx, t, station, c, target)
}

// stop sends the stop of card c at station of t: a StopNotify when t has
// StopNotify, else a StopCallback for target (not nil then). target is
// what the tap expects to stop, reported in the result.
func (s *Sim) stop(ctx context.Context, t Terminal, station string, c card, target *Txn) (TapResult, error) {
	if t.StopNotify {
		return s.stopNotify(ctx, t, station, c, target)
	}
	s.mu.Lock()
	body := stopBody(target, t, station, c)
	s.mu.Unlock()
	res, err := s.send(ctx, CallStopCallback, "/api/StopCallback", body, nil)
	s.mu.Lock()
	if err == nil && acknowledged(res) {
		s.closeTxn(target)
	}
	out := TapResult{Kind: KindStop, Txn: *target}
	out.add(CallStopCallback, res)
	s.mu.Unlock()
	s.log.Info("nayaxsim tap", "kind", KindStop, "call", CallStopCallback, "station", station, "nayax_transaction_id", out.Txn.NayaxTransactionID, "http_status", out.HTTPStatus)
	return out, err
}

// stopNotify sends a StopNotify for card c and checks an Approved answer
// against the transactions this card has open.
func (s *Sim) stopNotify(ctx context.Context, t Terminal, station string, c card, target *Txn) (TapResult, error) {
	var station0 any
	if station != "" {
		station0 = station
	}
	body := marshalOrdered(
		kv{"StopSiteId", SiteID},
		kv{"MachineId", machineOrNil(t)},
		kv{"HwSerial", serialOrNil(t)},
		kv{"CardLast4Digits", c.last4},
		kv{"CardHash", c.hash},
		kv{"CardUid", c.uid},
		kv{"ServiceStationNumber", station0},
	)
	s.mu.Lock()
	cands := s.openByCard(c.hash)
	s.mu.Unlock()
	res, err := s.send(ctx, CallStopNotify, "/api/StopNotify", body, nil)
	out := TapResult{Kind: KindStop}
	out.add(CallStopNotify, res)
	s.mu.Lock()
	if target != nil {
		out.Txn = *target
	}
	if err == nil {
		a := checkStopNotify(res.status, res.answer)
		out.Reason = a.reason
		if a.approved && a.reason == "" {
			var named *Txn
			for _, o := range cands {
				if o.tx.NayaxTransactionID == a.nayaxID && o.tx.SparkTransactionID == a.sparkID {
					named = o.tx
				}
			}
			switch {
			case named == nil && len(cands) == 0:
				out.Reason = "StopNotify Approved for a card that has no open transaction"
			case named == nil:
				out.Reason = "StopNotify Approved naming a transaction that is not one this card has open (SparkTransactionId and NayaxTransactionId must both match)"
			case a.hasSite && a.siteID != int64(named.SiteID):
				out.Reason = "StopNotify answer: SiteId differs from the transaction's"
			case a.hasTime && a.auTime != named.MachineAuTime:
				out.Reason = "StopNotify answer: MachineAuTime differs from the transaction's"
			}
			if named != nil && out.Reason == "" {
				s.closeTxn(named)
				out.Txn = *named
			}
		}
	} else {
		out.Reason = err.Error()
	}
	s.mu.Unlock()
	s.log.Info("nayaxsim tap", "kind", KindStop, "call", CallStopNotify, "station", station, "nayax_transaction_id", out.Txn.NayaxTransactionID,
		"http_status", out.HTTPStatus, "reason", out.Reason)
	return out, err
}

// closeTxn marks tx stopped and frees its station, if it is still open on
// one. s.mu is held.
func (s *Sim) closeTxn(tx *Txn) {
	for k, id := range s.open {
		if id == tx.NayaxTransactionID {
			tx.Stopped = true
			delete(s.open, k)
		}
	}
}

// openEntry is an open transaction and its station key.
type openEntry struct {
	key string
	tx  *Txn
}

// openByCard returns the open transactions paid with this card hash,
// oldest first. s.mu is held.
func (s *Sim) openByCard(hash string) []openEntry {
	var out []openEntry
	for k := range s.open {
		if tx := s.openTxn(k); tx != nil && tx.CardHash == hash {
			out = append(out, openEntry{key: k, tx: tx})
		}
	}
	slices.SortFunc(out, func(a, b openEntry) int {
		if a.tx.NayaxTransactionID != b.tx.NayaxTransactionID {
			return compareInt(a.tx.NayaxTransactionID, b.tx.NayaxTransactionID)
		}
		return strings.Compare(a.key, b.key)
	})
	return out
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cardTxn returns the transaction open at the site that this card paid
// for: the one on station key first, then one on terminal ti, then any
// (all the simulator's terminals are at its one site). s.mu is held.
func (s *Sim) cardTxn(hash string, ti int, key string) *Txn {
	list := s.openByCard(hash)
	prefix := strconv.Itoa(ti) + "/"
	for _, o := range list {
		if o.key == key {
			return o.tx
		}
	}
	for _, o := range list {
		if strings.HasPrefix(o.key, prefix) {
			return o.tx
		}
	}
	if len(list) > 0 {
		return list[0].tx
	}
	return nil
}

// notifyBody is the TransactionNotify of an authorized Device Start
// transaction, members in the OpenAPI example's order.
func notifyBody(tx *Txn, t Terminal, c card) []byte {
	var station any
	if tx.Station != "" {
		station = tx.Station
	}
	return marshalOrdered(
		kv{"HwSerial", serialOrNil(t)},
		kv{"MachineId", machineOrNil(t)},
		kv{"NayaxTransactionId", tx.NayaxTransactionID},
		kv{"SparkTransactionId", tx.SparkTransactionID},
		kv{"Amount", tx.Amount},
		kv{"CardLast4Digits", c.last4},
		kv{"CardHash", c.hash},
		kv{"CardUid", c.uid},
		kv{"ServiceStationNumber", station},
		kv{"SiteId", tx.SiteID},
		kv{"MachineAuTime", tx.MachineAuTime},
	)
}

// answerStatus reads an answer's Status: its Verdict ("" when there is
// none) and, when not Approved, a short description for a Reason.
func answerStatus(o object) (verdict, desc string) {
	st, p := parseObject(o.get("Status"))
	if p != nil {
		return "", "no Status object"
	}
	v := st.peekString("Verdict")
	if v == nil || strings.TrimSpace(*v) == "" {
		return "", "Status has no Verdict"
	}
	verdict = strings.TrimSpace(*v)
	desc = "Status " + clip(verdict)
	if code := st.get("ErrorCode"); code != nil {
		desc += " " + clip(string(code))
	}
	if e := st.peekString("ErrorDescription"); e != nil && strings.TrimSpace(*e) != "" {
		desc += ": " + clip(strings.TrimSpace(*e))
	}
	return verdict, desc
}

func isApproved(verdict string) bool { return strings.EqualFold(verdict, "Approved") }

// clip shortens text quoted from an answer in a Reason.
func clip(s string) string {
	const n = 120
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

func httpOK(status int) bool { return status >= 200 && status <= 299 }

// checkStartSession checks a StartSession answer as Nayax would: HTTP
// 2xx, Status Approved, SparkTransactionId a 36-character GUID, and a
// Cipher that decrypts under the token secret to
// "{SparkTransactionId}={Random}{yyMMddHHmm}" with this answer's id, the
// request's Random and a time within 5 minutes. It returns the id, or
// why the session is refused.
func (s *Sim) checkStartSession(status int, answer []byte, random string) (sparkID, reason string) {
	if !httpOK(status) {
		return "", fmt.Sprintf("StartSession answered HTTP %d", status)
	}
	o, p := parseObject(answer)
	if p != nil {
		return "", "StartSession answer: " + p.desc
	}
	if v, d := answerStatus(o); !isApproved(v) {
		return "", "StartSession not approved: " + d
	}
	rd := &reader{o: o}
	id, _ := rd.str("SparkTransactionId", true)
	cipher, _ := rd.str("Cipher", true)
	if rd.err != nil {
		return "", "StartSession answer: " + rd.err.desc
	}
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return "", "StartSession answer: SparkTransactionId is not a 36-character GUID"
	}
	text, err := decryptCipher(cipher, s.o.TokenSecret)
	if err != nil {
		return "", "StartSession Cipher: " + err.Error()
	}
	plain, err := parseCipherPlain(text)
	switch {
	case err != nil:
		return "", "StartSession Cipher: " + err.Error()
	case plain.sparkID != id:
		return "", "StartSession Cipher holds another SparkTransactionId than the answer's"
	case plain.random != random:
		return "", "StartSession Cipher holds another Random than the request's"
	case !inWindow(plain.at, s.o.Now()):
		return "", "StartSession Cipher time is more than 5 minutes from now (UTC)"
	}
	return id, ""
}

// infoAnswer is what an InfoQuery or AvailabilityCheck answer said.
type infoAnswer struct {
	availability int
	posDisplay   string
	amount       float64
}

// checkInfo reads an InfoQuery or AvailabilityCheck answer. The reason
// is empty only when the station may be paid for: HTTP 2xx, Status
// Approved, ServiceStationAvailability 1, a usable Amount (none is fine),
// and no other SparkTransactionId or SiteId echoed.
func checkInfo(call string, status int, answer []byte, sparkID string) (infoAnswer, string) {
	var info infoAnswer
	if !httpOK(status) {
		return info, fmt.Sprintf("%s answered HTTP %d", call, status)
	}
	o, p := parseObject(answer)
	if p != nil {
		return info, call + " answer: " + p.desc
	}
	verdict, desc := answerStatus(o)
	rd := &reader{o: o}
	av, hasAv := rd.integer("ServiceStationAvailability", false, math.MinInt32, math.MaxInt32)
	info.availability = int(av)
	info.posDisplay, _ = rd.str("PosDisplay", false)
	info.amount, _ = rd.amount("Amount", false)
	echo, hasEcho := rd.str("SparkTransactionId", false)
	site, hasSite := rd.integer("SiteId", false, math.MinInt16, math.MaxInt16)
	switch {
	case rd.err != nil:
		return info, call + " answer: " + rd.err.desc
	case hasEcho && echo != sparkID:
		return info, call + " answer: SparkTransactionId differs from the request's"
	case hasSite && site != SiteID:
		return info, call + " answer: SiteId differs from the request's"
	case hasAv && av != 1:
		return info, fmt.Sprintf("%s: station availability %d (%s)", call, av, availabilityText(av))
	case !isApproved(verdict):
		return info, call + " not approved: " + desc
	case !hasAv:
		return info, call + " answer: missing ServiceStationAvailability"
	}
	return info, ""
}

func availabilityText(av int64) string {
	switch av {
	case 2:
		return "busy"
	case 3:
		return "out of service"
	}
	return "not a known availability"
}

// checkNotify reads a TransactionNotify answer: approved when HTTP 2xx
// and Status Approved. The reason also tells an approved answer that
// echoes other ids than the transaction's.
func checkNotify(status int, answer []byte, tx Txn) (bool, string) {
	if !httpOK(status) {
		return false, fmt.Sprintf("TransactionNotify answered HTTP %d", status)
	}
	o, p := parseObject(answer)
	if p != nil {
		return false, "TransactionNotify answer: " + p.desc
	}
	if v, d := answerStatus(o); !isApproved(v) {
		return false, "TransactionNotify not approved: " + d
	}
	rd := &reader{o: o}
	nid, hasN := rd.integer("NayaxTransactionId", false, math.MinInt64, math.MaxInt64)
	sid, hasS := rd.str("SparkTransactionId", false)
	switch {
	case rd.err != nil:
		return true, "TransactionNotify answer: " + rd.err.desc
	case hasN && nid != tx.NayaxTransactionID:
		return true, "TransactionNotify answer: NayaxTransactionId differs from the request's"
	case hasS && sid != tx.SparkTransactionID:
		return true, "TransactionNotify answer: SparkTransactionId differs from the request's"
	}
	return true, ""
}

// stopAnswer is what a StopNotify answer said.
type stopAnswer struct {
	approved bool
	sparkID  string
	nayaxID  int64
	siteID   int64
	hasSite  bool
	auTime   string
	hasTime  bool
	reason   string // the answer is not what Nayax accepts; "" for a plain Declined
}

// checkStopNotify reads a StopNotify answer. An Approved one must carry
// the matched session's SparkTransactionId and NayaxTransactionId.
func checkStopNotify(status int, answer []byte) stopAnswer {
	var a stopAnswer
	if !httpOK(status) {
		a.reason = fmt.Sprintf("StopNotify answered HTTP %d", status)
		return a
	}
	o, p := parseObject(answer)
	if p != nil {
		a.reason = "StopNotify answer: " + p.desc
		return a
	}
	verdict, desc := answerStatus(o)
	if verdict == "" {
		a.reason = "StopNotify answer: " + desc
		return a
	}
	if a.approved = isApproved(verdict); !a.approved {
		return a
	}
	rd := &reader{o: o}
	a.sparkID, _ = rd.str("SparkTransactionId", true)
	a.nayaxID, _ = rd.integer("NayaxTransactionId", true, 1, math.MaxInt64)
	a.siteID, a.hasSite = rd.integer("SiteId", false, math.MinInt16, math.MaxInt16)
	a.auTime, a.hasTime = rd.machineAuTime("MachineAuTime")
	if rd.err != nil {
		a.reason = "Approved StopNotify answer: " + rd.err.desc
	}
	return a
}
