package edge

import (
	"cmp"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sitelink/sitelink/daemon/billing"
	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// Device Start: the consumer picks a station on the terminal. InfoQuery
// (`info`) asks whether it is free and reserves it for that transaction;
// TransactionNotify (an `authorize` with flow device-start) is then
// served like any authorization, on the reservation. Device Stop by
// StopNotify (`stop-notify`): the card is matched here.

// reservation holds a free station for one Device Start transaction
// between its InfoQuery and its TransactionNotify.
type reservation struct {
	spark string
	until time.Time
}

// reservations are owned by the engine goroutine (commands run there).
// A reservation ends at its TransactionNotify, at its time, or when the
// station is used otherwise; an expired one is kept until the station's
// next query, so that a late TransactionNotify is told apart from one
// with no InfoQuery before it (after a controller restart).
type reservations map[string]reservation

// infoCommand answers InfoQuery / AvailabilityCheck for a station.
func (e *engine) infoCommand(cmd wire.Command, now time.Time) (wire.Answer, func(tx *store.Tx) error) {
	req, err := nayax.DecodeInfoQuery(cmd.Body)
	if err != nil {
		return decodeFailure(cmd, err), nil
	}
	cfg := e.conf()
	station := req.ServiceStationNumber.S
	out := func(avail int, st nayax.Status, why string) wire.Answer {
		a := wire.Answer{SparkTransactionId: req.SparkTransactionId.S, ServiceStationNumber: station, Status: sparkStatus(st), ServiceStationAvailability: avail}
		if why != "" {
			a.Status.StatusMessage = why
		}
		return a
	}
	unavailable := func(why string) wire.Answer {
		return out(nayax.StationOutOfService, nayax.Declined(nayax.CodeNotConfigured, why), "")
	}
	term, ok := cfg.TerminalFor(req.MachineId.V, req.HwSerial.S)
	switch {
	case !ok:
		return unavailable("unknown machine for this site"), nil
	case !term.DeviceStart():
		return unavailable("this terminal is not set up for Device Start (terminals[].start)"), nil
	}
	if station == "" && len(term.Stations) == 1 {
		station = term.Stations[0]
	}
	if station == "" || !term.HasStation(station) {
		return unavailable(fmt.Sprintf("station %q is not served by this terminal", station)), nil
	}
	avail, why := e.availability(station, req.SparkTransactionId.S, now)
	if avail != nayax.StationAvailable {
		a := out(avail, nayax.Declined(nayax.CodeGeneral, why), "")
		a.PosDisplay = billing.PosDisplay(cfg.Tariff.PosDisplay, station, e.tariffNow())
		return a, nil
	}
	// One station per transaction: a consumer who looks at another
	// station gives up the first.
	for st, res := range e.reserved {
		if res.spark == req.SparkTransactionId.S && st != station {
			delete(e.reserved, st)
		}
	}
	e.reserved[station] = reservation{spark: req.SparkTransactionId.S, until: now.Add(cfg.Policy.Reservation.D())}
	a := out(nayax.StationAvailable, nayax.Approved("No Errors"), "")
	a.PosDisplay = billing.PosDisplay(cfg.Tariff.PosDisplay, station, e.tariffNow())
	a.Amount = store.FormatFixed(e.preauthMinor(term, station), cfg.Tariff.DecimalPlace)
	return a, nil
}

// availability is a station's availability for Device Start transaction
// spark: 2 in session or reserved for another transaction, 3 faulted,
// disabled or unknown, 1 free (or already reserved for spark).
func (e *engine) availability(station, spark string, now time.Time) (int, string) {
	hw, ok := e.stations.get(station)
	if !ok {
		return nayax.StationOutOfService, "unknown station " + station
	}
	var busy bool
	err := e.st.View(func(tx *store.Tx) error {
		_, err := tx.ActiveSession(station)
		busy = err == nil
		return nil
	})
	if err != nil {
		return nayax.StationOutOfService, "ledger unavailable"
	}
	if busy {
		return nayax.StationBusy, "station " + station + " is in session"
	}
	r := hw.Read()
	if r.Fault != "" {
		return nayax.StationOutOfService, "station " + station + " is faulted: " + r.Fault
	}
	if r.Contactor {
		return nayax.StationOutOfService, "station " + station + ": contactor closed without a session"
	}
	if res, held := e.reserved[station]; held && res.spark != spark && now.Before(res.until) {
		return nayax.StationBusy, "station " + station + " is reserved for another consumer"
	}
	return nayax.StationAvailable, ""
}

// claimReservation checks a Device Start authorization against the
// station's reservation and ends it: "" if the station is the
// transaction's to take, else why not.
func (e *engine) claimReservation(station, spark string, now time.Time) string {
	// A reservation this transaction holds on another station (its
	// InfoQuery named another) ends.
	for st, res := range e.reserved {
		if res.spark == spark && st != station {
			delete(e.reserved, st)
		}
	}
	res, held := e.reserved[station]
	switch {
	case !held:
		// No InfoQuery reached this controller for it (a restart in
		// between): the station is the transaction's if free, checked
		// as for any authorization.
		return ""
	case res.spark != spark && now.Before(res.until):
		return "station " + station + " is reserved for another consumer"
	case res.spark == spark && !now.Before(res.until):
		delete(e.reserved, station)
		return "the reservation of station " + station + " expired"
	}
	delete(e.reserved, station)
	return ""
}

// deviceStartMargin is what a Device Start keeps of the relay's budget
// beyond the contactor timeout, for the reply to travel back.
const deviceStartMargin = 300 * time.Millisecond

// preauthMinor is what a Device Start of station at term pre-authorizes,
// in minor units: the station's preauth_amount, else the terminal's, else
// policy.start_amount.
func (e *engine) preauthMinor(term config.Terminal, station string) int64 {
	cfg := e.conf()
	var own float64
	for _, s := range cfg.Stations {
		if s.Number == station {
			own = s.PreauthAmount
		}
	}
	amount := cmp.Or(own, term.PreauthAmount, cfg.Policy.StartAmount)
	v, err := billing.ParseAmount(store.FloatDecimal(amount), cfg.Tariff.DecimalPlace)
	if err != nil {
		e.log.Error("BUG: pre-authorization amount not exact (Validate checks it)", "amount", amount, "err", err)
	}
	return v
}

// tariffNow is the configured tariff, exact.
func (e *engine) tariffNow() store.Tariff { return e.sessionTariff(&store.Session{}) }

// flowOf is the flow an `authorize` body names (wire.AuthorizeFlow), ""
// for a TransactionCallback.
func flowOf(body json.RawMessage) string {
	var f map[string]json.RawMessage
	if json.Unmarshal(body, &f) != nil {
		return ""
	}
	var s string
	_ = json.Unmarshal(f[wire.AuthorizeFlow], &s)
	return s
}

// stopNotifyCommand handles StopNotify: find the one ongoing session this
// card paid for — on the terminal's stations first, then anywhere on this
// node, narrowed to ServiceStationNumber when given — answer with its
// ids, and stop it (contactor first, then settle). No match, or two,
// stops nothing.
func (e *engine) stopNotifyCommand(cmd wire.Command, now time.Time) (wire.Answer, func(tx *store.Tx) error) {
	req, err := nayax.DecodeStopNotify(cmd.Body)
	if err != nil {
		return decodeFailure(cmd, err), nil
	}
	declined := func(code int, why string) wire.Answer {
		return wire.Answer{Status: sparkStatus(nayax.Declined(code, why)), ServiceStationNumber: req.ServiceStationNumber.S}
	}
	term, ok := e.conf().TerminalFor(req.MachineId.V, req.HwSerial.S)
	switch {
	case !ok:
		return declined(nayax.CodeUnknownMachine, "unknown machine for this site"), nil
	case !term.StopsByNotify():
		return declined(nayax.CodeNotConfigured, "this terminal is not set up for StopNotify (terminals[].stop)"), nil
	}
	var open []store.Session
	var key []byte
	err = e.st.View(func(tx *store.Tx) error {
		key = append([]byte(nil), tx.CardKey()...)
		var err error
		open, err = tx.OpenSessions()
		return err
	})
	if err != nil {
		return declined(nayax.CodeGeneral, "ledger unavailable"), nil
	}
	digest := cardDigest(key, req.CardHash.S)
	var here, elsewhere []store.Session
	for _, s := range open {
		if !s.State.Active() || s.State == store.Requested || s.CardDigest == "" || !hmacEqual(digest, s.CardDigest) {
			continue
		}
		if req.ServiceStationNumber.S != "" && s.Station != req.ServiceStationNumber.S {
			continue
		}
		if term.HasStation(s.Station) {
			here = append(here, s)
		} else {
			elsewhere = append(elsewhere, s)
		}
	}
	matches := here
	if len(matches) == 0 {
		matches = elsewhere
	}
	switch len(matches) {
	case 0:
		return declined(nayax.CodeUnknownTransaction, "no ongoing session paid with this card"), nil
	case 1:
	default:
		return declined(nayax.CodeValidation, fmt.Sprintf("%d ongoing sessions paid with this card: present it at the station's terminal", len(matches))), nil
	}
	s := matches[0]
	if cmd.Deadline != nil && cmd.Deadline.Sub(now) < e.contactorTimeout()+deviceStartMargin {
		// The relay answers Nayax Declined at its deadline: a stop
		// confirmed after it would contradict what the consumer saw.
		return declined(nayax.CodeTimeout, "too little of the relay's answer budget left to stop the station; nothing stopped"), nil
	}
	answer := func(st nayax.Status) wire.Answer {
		return wire.Answer{Status: sparkStatus(st), SparkTransactionId: s.SparkTransactionID, ServiceStationNumber: s.Station,
			NayaxTransactionId: s.NayaxTransactionID, SiteId: s.SiteID, MachineAuTime: s.MachineAuTime}
	}
	// Contactor first; the stop and its reply then commit together.
	herr := e.openContactor(&s)
	record := func(tx *store.Tx) error {
		return e.recordStop(tx, &s, billing.StopCardNotify, herr == nil, now)
	}
	if herr != nil {
		return answer(nayax.Declined(nayax.CodeGeneral, "contactor did not confirm opening; station faulted")), record
	}
	return answer(nayax.Approved("No Errors")), record
}

// lateDeviceStart handles a TransactionNotify that reached this controller
// after the relay had answered Nayax Declined (its deadline passed): the
// customer was told no, so the hold is released (a cancel), never served.
// A transaction this controller already holds is left as it is.
func (e *engine) lateDeviceStart(cmd wire.Command, now time.Time) (wire.Answer, func(tx *store.Tx) error) {
	const why = "TransactionNotify reached the controller after the relay had answered Declined"
	dec, err := nayax.DecodeTransactionCallback(cmd.Body)
	if err != nil {
		return decodeFailure(cmd, err), nil
	}
	req := authRequest{dec, wire.TicketOf(cmd.Body), wire.FlowDeviceStart}
	out := wire.Answer{SparkTransactionId: dec.SparkTransactionId.S, Status: sparkStatus(nayax.Declined(nayax.CodeTimeout, why))}
	term, ok := e.conf().TerminalFor(dec.MachineId.V, dec.HwSerial.S)
	if !ok {
		return out, nil
	}
	var key []byte
	var have bool
	err = e.st.View(func(tx *store.Tx) error {
		key = append([]byte(nil), tx.CardKey()...)
		_, err := tx.SessionByNayax(dec.NayaxTransactionId.V)
		have = err == nil
		return nil
	})
	if err != nil || have {
		return out, nil
	}
	station := dec.ServiceStationNumber.S
	if !term.HasStation(station) {
		station = ""
	}
	if res, held := e.reserved[station]; held && res.spark == dec.SparkTransactionId.S {
		delete(e.reserved, station)
	}
	return out, e.refuse(req, term, station, nil, key, why, now)
}
