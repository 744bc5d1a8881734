package relay

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
)

// A node's request is sent to Nayax only if it concerns that node's own
// money: a settlement or cancel must carry the ticket this relay issued to
// that node with the transaction (wire.Ticket), and a remote start must
// name a terminal that P/terminals gives to that node, for at most
// Options.MaxStartAmount. Whatever a node's key publishes, it cannot
// settle, cancel or trigger anything at another site.

// ticketDomain separates the tickets' MACs from every other use of the
// fleet's secret (nayax.CardKey.Sum).
const ticketDomain = "ticket/v1"

// Reasons a node's request is refused (the reason label of
// sitelink_relay_node_requests_refused_total).
const (
	refusedNoTicket       = "no_ticket"         // settlement or cancel without a ticket
	refusedBadTicket      = "bad_ticket"        // the ticket's MAC is wrong: not issued to this node
	refusedTicketMismatch = "ticket_mismatch"   // the request names another transaction than its ticket
	refusedOverAuthorized = "over_authorized"   // settlement or cancel amount above the authorized one
	refusedNotOwner       = "not_owner"         // a start for a terminal the node does not own
	refusedOverMaxStart   = "over_max_start"    // a start for more than relay.max_start_amount
	refusedBadRequest     = "bad_request"       // not a JSON object, or a call that does not fit the event
	refusedNoAmount       = "amount_unreadable" // an amount the relay cannot compare
)

var nodeRefusalReasons = []string{refusedNoTicket, refusedBadTicket, refusedTicketMismatch, refusedOverAuthorized,
	refusedNotOwner, refusedOverMaxStart, refusedBadRequest, refusedNoAmount}

// refusal is why a node's request is not sent: a metric reason and the
// text the node gets in its result.
type refusedRequest struct {
	reason, why string
}

func refused(reason, format string, args ...any) *refusedRequest {
	return &refusedRequest{reason, fmt.Sprintf(format, args...)}
}

// ticket is the ticket for Nayax transaction nayaxID (Spark id spark,
// authorized for max as Nayax wrote it) handed to node.
func (r *Relay) ticket(node string, nayaxID int64, spark, max string) wire.Ticket {
	return wire.Ticket{Nayax: nayaxID, Spark: spark, Max: max, MAC: r.ticketMAC(node, nayaxID, spark, max)}
}

func (r *Relay) ticketMAC(node string, nayaxID int64, spark, max string) string {
	return base64.RawURLEncoding.EncodeToString(r.cardKey.Sum(ticketDomain, node, strconv.FormatInt(nayaxID, 10), spark, max))
}

// withTicket adds the ticket to a forwarded TransactionCallback.
func withTicket(fwd json.RawMessage, t wire.Ticket) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(fwd, &m) != nil {
		return fwd
	}
	m[wire.RequestTicket], _ = json.Marshal(t)
	b, _ := json.Marshal(m)
	return b
}

// checkRequest decides whether node may make request call (the event's
// body without "call": fields) of a typ event. It removes the ticket from
// fields, and the SparkTransactionId when the transaction came without
// one (the node made its own up; Nayax never issued it). nil: send it.
func (r *Relay) checkRequest(nodeID, typ, call string, fields map[string]json.RawMessage) *refusedRequest {
	raw, hasTicket := fields[wire.RequestTicket]
	delete(fields, wire.RequestTicket)
	if typ == wire.EventStartRequest {
		return r.checkStart(nodeID, fields)
	}
	if !hasTicket {
		return refused(refusedNoTicket, "%s without the ticket the relay issued with the transaction", call)
	}
	var t wire.Ticket
	if json.Unmarshal(raw, &t) != nil || !hmac.Equal([]byte(t.MAC), []byte(r.ticketMAC(nodeID, t.Nayax, t.Spark, t.Max))) {
		return refused(refusedBadTicket, "%s with a ticket this fleet did not issue to %s", call, nodeID)
	}
	var ids struct {
		NayaxTransactionId nayax.Int64
		SparkTransactionId nayax.Text
	}
	body, _ := json.Marshal(fields)
	_ = json.Unmarshal(body, &ids)
	if !ids.NayaxTransactionId.Valid || ids.NayaxTransactionId.V != t.Nayax {
		return refused(refusedTicketMismatch, "%s names NayaxTransactionId %s, its ticket %d", call, ids.NayaxTransactionId, t.Nayax)
	}
	switch {
	case t.Spark == "":
		delete(fields, "SparkTransactionId")
	case ids.SparkTransactionId.S != t.Spark:
		return refused(refusedTicketMismatch, "%s names SparkTransactionId %q, its ticket %q", call, ids.SparkTransactionId.S, t.Spark)
	}
	amountField := "Amount"
	if typ == wire.EventCancelRequest {
		amountField = "CancelAmount"
	}
	a, ok := fields[amountField]
	if !ok {
		if typ == wire.EventCancelRequest {
			return nil // a cancel without an amount releases the whole hold
		}
		return refused(refusedNoAmount, "%s without %s", call, amountField)
	}
	var amount nayax.Amount
	if json.Unmarshal(a, &amount) != nil || !amount.Valid {
		return refused(refusedNoAmount, "%s: unreadable %s", call, amountField)
	}
	if over, err := above(amount.Decimal(), t.Max); err != nil || over {
		return refused(refusedOverAuthorized, "%s: %s %s is more than the authorized %s", call, amountField, amount.Decimal(), t.Max)
	}
	return nil
}

// checkStart: a TriggerTransaction for a terminal the node owns, for at
// most the configured maximum.
func (r *Relay) checkStart(nodeID string, fields map[string]json.RawMessage) *refusedRequest {
	var q struct {
		TerminalId     nayax.Text
		TerminalIdType nayax.Int64
		Amount         nayax.Amount
	}
	body, _ := json.Marshal(fields)
	if json.Unmarshal(body, &q) != nil {
		return refused(refusedBadRequest, "TriggerTransaction: unreadable TerminalId, TerminalIdType or Amount")
	}
	var machine int64
	var serial string
	switch q.TerminalIdType.V {
	case nayax.TerminalMachineID:
		machine, _ = strconv.ParseInt(q.TerminalId.S, 10, 64)
	case nayax.TerminalHWSerial:
		serial = q.TerminalId.S
	}
	if owner, ok := r.routes.ownerOf(machine, serial); !ok || owner != nodeID {
		return refused(refusedNotOwner, "TriggerTransaction for terminal %q, which P/terminals does not give to %s", q.TerminalId.S, nodeID)
	}
	if q.Amount.Valid {
		if over, err := above(q.Amount.Decimal(), r.o.MaxStartAmount); err != nil || over {
			return refused(refusedOverMaxStart, "TriggerTransaction for %s, more than relay.max_start_amount %s", q.Amount.Decimal(), r.o.MaxStartAmount)
		}
	}
	return nil
}

// above reports whether decimal a is greater than decimal limit, exactly.
func above(a, limit string) (bool, error) {
	x, ok := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(limit)
	if !ok || !ok2 {
		return false, fmt.Errorf("not decimals: %q, %q", a, limit)
	}
	return x.Cmp(y) > 0, nil
}
