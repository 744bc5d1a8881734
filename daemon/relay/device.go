package relay

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
)

// Device Start and Device Stop by StopNotify (FLOWS.md). The relay stays
// stateless: StartSession is answered here (a new SparkTransactionId and
// the cipher, nothing stored); InfoQuery, TransactionNotify and
// StopNotify go to the node that owns the terminal, which keeps the
// reservation, the session and the card match. Every answer comes within
// the ack budget; a site that is offline or slow gets Nayax a Declined /
// out-of-service answer, and a TransactionNotify the site did not take in
// time is released by the site when it gets it (the command's deadline).

// startSession answers StartSession: the token must be ours and the
// terminal one a node owns; the cipher proves we hold the token secret.
func (r *Relay) startSession(_ context.Context, body []byte) answer {
	out := func(st nayax.Status) answer {
		return answer{nayax.StartSessionResponse{Status: st}, st.Verdict}
	}
	req, err := nayax.DecodeStartSession(body)
	if err != nil {
		return answer{nayax.StartSessionResponse{Status: nayax.DeclineFor(err)}, nayax.VerdictDeclined}
	}
	if len(r.o.TokenSecret) == 0 || req.TokenId.V != int64(r.o.TokenID) {
		return out(nayax.Declined(nayax.CodeAuthFailed, "unknown TokenId"))
	}
	if _, ok := r.routes.lookup(req.MachineId.V, req.HwSerial.S); !ok {
		return out(unknownMachine())
	}
	spark := newID()
	cipher, err := nayax.Cipher(spark, req.Random.S, time.Now(), r.o.TokenSecret)
	if err != nil {
		return out(nayax.Declined(nayax.CodeGeneral, "cannot build the cipher"))
	}
	st := nayax.Approved("No Errors")
	return answer{nayax.StartSessionResponse{Cipher: cipher, SparkTransactionId: spark, Status: st}, st.Verdict}
}

// infoQuery answers InfoQuery and AvailabilityCheck from the node that
// owns the terminal, live; an unknown terminal or a site that does not
// answer in time is out of service (3).
func (r *Relay) infoQuery(ctx context.Context, body []byte) answer {
	req, err := nayax.DecodeInfoQuery(body)
	resp := nayax.InfoQueryResponse{SparkTransactionId: req.SparkTransactionId.S, HwSerial: req.HwSerial.S, MachineId: req.MachineId.V,
		ServiceStationNumber: req.ServiceStationNumber.S, SiteId: req.SiteId, ServiceStationAvailability: nayax.StationOutOfService}
	out := func(st nayax.Status) answer {
		resp.Status = st
		return answer{resp, st.Verdict}
	}
	if err != nil {
		return out(nayax.DeclineFor(err))
	}
	n, ok := r.routes.lookup(req.MachineId.V, req.HwSerial.S)
	if !ok {
		return out(unknownMachine())
	}
	rep, err := r.sendBy(ctx, n, wire.CommandInfo, req.Forward(r.cardKey), true)
	if err != nil {
		return out(nayax.Declined(nayax.CodeTimeout, offlineWhy(err)))
	}
	a := rep.Body
	resp.ServiceStationAvailability = a.ServiceStationAvailability
	if resp.ServiceStationAvailability < nayax.StationAvailable || resp.ServiceStationAvailability > nayax.StationOutOfService {
		resp.ServiceStationAvailability = nayax.StationOutOfService
	}
	resp.ServiceStationNumber = cmpOr(a.ServiceStationNumber, resp.ServiceStationNumber)
	resp.PosDisplay = a.PosDisplay
	st := nayaxStatus(a.Status)
	if a.Amount != "" {
		// The terminal holds this much of the consumer's money: no more
		// than any remote start may ask (relay.max_start_amount), whatever
		// a site's key says.
		amt, err := nayax.NewAmountDecimal(a.Amount)
		over, cerr := above(a.Amount, r.o.MaxStartAmount)
		switch {
		case err != nil || cerr != nil || amt.V <= 0:
			resp.ServiceStationAvailability = nayax.StationOutOfService
			st = nayax.Declined(nayax.CodeGeneral, "the site named no usable pre-authorization amount")
		case over:
			resp.ServiceStationAvailability = nayax.StationOutOfService
			st = nayax.Declined(nayax.CodeGeneral, "pre-authorization amount above relay.max_start_amount")
			r.refuseRequest(n.ID, wire.Result{Call: "InfoQuery"}, refused(refusedOverMaxStart, "InfoQuery Amount %s above relay.max_start_amount %s", a.Amount, r.o.MaxStartAmount))
		default:
			resp.Amount = amt
		}
	}
	if resp.ServiceStationAvailability != nayax.StationAvailable && st.IsApproved() {
		st = nayax.Declined(nayax.CodeGeneral, "station not available")
	}
	return out(st)
}

// transactionNotify hands the authorized Device Start transaction to the
// node as an `authorize` (flow device-start, with the ticket), answered
// with the node's verdict. Sent with a deadline: a site that takes it
// after the relay answered Declined releases the hold instead of
// starting.
func (r *Relay) transactionNotify(ctx context.Context, body []byte) answer {
	req, err := nayax.DecodeTransactionNotify(body)
	resp := nayax.TransactionNotifyResponse{NayaxTransactionId: req.NayaxTransactionId.V, SparkTransactionId: req.SparkTransactionId.S,
		HwSerial: req.HwSerial.S, MachineId: req.MachineId.V, SiteId: req.SiteId, ServiceStationNumber: req.ServiceStationNumber.S}
	out := func(st nayax.Status) answer {
		resp.Status = st
		return answer{resp, st.Verdict}
	}
	if err != nil {
		return out(nayax.DeclineFor(err))
	}
	n, ok := r.routes.lookup(req.MachineId.V, req.HwSerial.S)
	if !ok {
		return out(unknownMachine())
	}
	cb := req.Callback()
	fwd := withField(cb.Forward(r.cardKey), wire.AuthorizeFlow, wire.FlowDeviceStart)
	fwd = withTicket(fwd, r.ticket(n.ID, req.NayaxTransactionId.V, req.SparkTransactionId.S, req.Amount.Decimal()))
	rep, err := r.sendBy(ctx, n, wire.CommandAuthorize, fwd, true)
	if err != nil {
		return out(nayax.Declined(nayax.CodeTimeout, offlineWhy(err)+"; the hold is released"))
	}
	return out(nayaxStatus(rep.Body.Status))
}

// stopNotify asks the node that owns the terminal to find and stop the
// session the card paid for; its answer carries the session's ids. Sent
// with a deadline: a site that takes it after the relay answered
// Declined stops nothing (the consumer was told no, and taps again).
func (r *Relay) stopNotify(ctx context.Context, body []byte) answer {
	req, err := nayax.DecodeStopNotify(body)
	resp := nayax.StopNotifyResponse{StopSiteId: req.StopSiteId, MachineId: req.MachineId.V, HwSerial: req.HwSerial.S}
	out := func(st nayax.Status) answer {
		resp.Status = st
		return answer{resp, st.Verdict}
	}
	if err != nil {
		return out(nayax.DeclineFor(err))
	}
	n, ok := r.routes.lookup(req.MachineId.V, req.HwSerial.S)
	if !ok {
		return out(unknownMachine())
	}
	rep, err := r.sendBy(ctx, n, wire.CommandStopNotify, req.Forward(r.cardKey), true)
	if err != nil {
		return out(nayax.Declined(nayax.CodeTimeout, offlineWhy(err)+"; nothing stopped"))
	}
	a := rep.Body
	st := nayaxStatus(a.Status)
	if st.IsApproved() {
		resp.SparkTransactionId, resp.NayaxTransactionId, resp.MachineAuTime = a.SparkTransactionId, a.NayaxTransactionId, a.MachineAuTime
		if site, err := nayax.ParseLiteral(a.SiteId); err == nil {
			resp.SiteId = site
		}
	}
	return out(st)
}

// infoRefusal is InfoQuery's answer to a request refused before its
// handler ran: out of service.
func infoRefusal(st nayax.Status) answer {
	return answer{nayax.InfoQueryResponse{ServiceStationAvailability: nayax.StationOutOfService, Status: st}, st.Verdict}
}

// sendBy is send with, when expire is set, the command's deadline at the
// end of ctx: a node that gets it later does not act on it as if Nayax
// were still waiting.
func (r *Relay) sendBy(ctx context.Context, n node, typ string, body json.RawMessage, expire bool) (wire.Reply, error) {
	var deadline *time.Time
	if d, ok := ctx.Deadline(); ok && expire {
		deadline = &d
	}
	return r.sendCommand(ctx, n, typ, body, deadline)
}

// offlineWhy says why a node gave no answer, for Nayax's log.
func offlineWhy(err error) string {
	switch {
	case errors.Is(err, errOffline):
		return "station controller offline"
	case errors.Is(err, errNoAnswer):
		return "station controller did not answer in time"
	}
	return "relay cannot reach the site broker"
}

// nayaxStatus is a node's Spark status as Nayax's type.
func nayaxStatus(s wire.Status) nayax.Status {
	return nayax.Status{Verdict: s.Verdict, ErrorCode: s.ErrorCode, ErrorDescription: s.ErrorDescription, StatusMessage: s.StatusMessage}
}

func cmpOr(a, b string) string {
	if strings.TrimSpace(a) != "" {
		return a
	}
	return b
}
