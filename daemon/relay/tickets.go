package relay

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
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
	refusedNoTicket       = "no_ticket"       // settlement or cancel without a ticket
	refusedBadTicket      = "bad_ticket"      // the ticket's MAC is wrong: not issued to this node
	refusedTicketMismatch = "ticket_mismatch" // the request names another transaction than its ticket
	refusedOverAuthorized = "over_authorized" // settlement or cancel amount above the authorized one
	refusedNotOwner       = "not_owner"       // a start for a terminal the node does not own
	refusedOverMaxStart   = "over_max_start"  // a start for more than relay.max_start_amount
	refusedBadRequest     = "bad_request"     // not a JSON object, or a call that does not fit the event
	refusedBadAmount      = "bad_amount"      // an amount missing, unreadable or negative
)

var nodeRefusalReasons = []string{refusedNoTicket, refusedBadTicket, refusedTicketMismatch, refusedOverAuthorized,
	refusedNotOwner, refusedOverMaxStart, refusedBadRequest, refusedBadAmount}

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
// body without "call": fields) of a typ event. It replaces fields with
// what is to be sent: the request without the ticket, rebuilt from the
// call's schema (nayax.CanonicalOutbound). nil: send it.
func (r *Relay) checkRequest(nodeID, typ, call string, fields map[string]json.RawMessage) *refusedRequest {
	raw, hasTicket := fields[wire.RequestTicket]
	delete(fields, wire.RequestTicket)
	// Checked and sent: the request rebuilt from the call's schema, so
	// that what the relay reads is what Nayax reads (no second spelling
	// of a member, nothing outside the schema).
	rest, _ := json.Marshal(fields)
	canon, err := nayax.CanonicalOutbound(call, rest)
	if err != nil {
		return refused(refusedBadRequest, "not a valid %s: %v", call, err)
	}
	clear(fields)
	if err := json.Unmarshal(canon, &fields); err != nil {
		return refused(refusedBadRequest, "not a valid %s: %v", call, err)
	}
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
	// Read exactly the members sent to Nayax (the spelling of the spec).
	var nayaxID nayax.Int64
	var sparkID nayax.Text
	_ = json.Unmarshal(fields["NayaxTransactionId"], &nayaxID)
	_ = json.Unmarshal(fields["SparkTransactionId"], &sparkID)
	if !nayaxID.Valid || nayaxID.V != t.Nayax {
		return refused(refusedTicketMismatch, "%s names NayaxTransactionId %s, its ticket %d", call, nayaxID, t.Nayax)
	}
	switch {
	case t.Spark == "":
		// Nayax gave the transaction no Spark id; the node made one up
		// for its ledger, which names nothing at Nayax: the
		// NayaxTransactionId is what binds.
	case sparkID.S != t.Spark:
		return refused(refusedTicketMismatch, "%s names SparkTransactionId %q, its ticket %q", call, sparkID.S, t.Spark)
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
		return refused(refusedBadAmount, "%s without %s", call, amountField)
	}
	var amount nayax.Amount
	if json.Unmarshal(a, &amount) != nil || !amount.Valid || amount.V < 0 {
		return refused(refusedBadAmount, "%s: unreadable or negative %s", call, amountField)
	}
	over, err := above(amount.Decimal(), t.Max)
	if err != nil {
		return refused(refusedBadAmount, "%s: %s %s: %v", call, amountField, amount.Decimal(), err)
	}
	if over {
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
	for name, dst := range map[string]any{"TerminalId": &q.TerminalId, "TerminalIdType": &q.TerminalIdType, "Amount": &q.Amount} {
		if raw, ok := fields[name]; ok && json.Unmarshal(raw, dst) != nil {
			return refused(refusedBadRequest, "TriggerTransaction: unreadable %s", name)
		}
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
	if q.Amount.Valid && q.Amount.V < 0 {
		return refused(refusedBadAmount, "TriggerTransaction for a negative amount")
	}
	if q.Amount.Valid {
		over, err := above(q.Amount.Decimal(), r.o.MaxStartAmount)
		if err != nil {
			return refused(refusedBadAmount, "TriggerTransaction Amount %s: %v", q.Amount.Decimal(), err)
		}
		if over {
			return refused(refusedOverMaxStart, "TriggerTransaction for %s, more than relay.max_start_amount %s", q.Amount.Decimal(), r.o.MaxStartAmount)
		}
	}
	return nil
}

// decimalText is an amount the relay compares: digits, an optional
// fraction and a small exponent. big.Rat would take "1e-999999" too, at
// the cost of tens of milliseconds a request.
var decimalText = regexp.MustCompile(`^[0-9]{1,15}(\.[0-9]{1,15})?([eE][-+]?[0-9]{1,2})?$`)

// above reports whether decimal a is greater than decimal limit, exactly;
// an error if either is not a plain non-negative decimal.
func above(a, limit string) (bool, error) {
	if !decimalText.MatchString(a) || !decimalText.MatchString(limit) {
		return false, fmt.Errorf("not a plain decimal amount")
	}
	x, ok := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(limit)
	if !ok || !ok2 {
		return false, fmt.Errorf("not decimals: %q, %q", a, limit)
	}
	return x.Cmp(y) > 0, nil
}
