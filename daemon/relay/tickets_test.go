package relay

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/wire"
)

// checkRequest, rule by rule: what a node may ask Nayax for.
func TestCheckRequest(t *testing.T) {
	r, err := New(Options{ID: "r", Prefix: "p", CardKey: []byte("tickets test card key, 32+ bytes!!"), InsecureAllowUnauthenticatedCallbacks: true,
		MaxStartAmount: "100", Link: link.Options{Broker: "tcp://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	r.routes.setTerminal("m7", &wire.Terminal{Node: "site-a", MachineID: 7, HwSerial: "0042", At: time.Now()}, nil)
	tk := func(node string, nayaxID int64, spark, max string) json.RawMessage {
		b, _ := json.Marshal(r.ticket(node, nayaxID, spark, max))
		return b
	}
	body := func(kv ...any) map[string]json.RawMessage {
		m := map[string]json.RawMessage{}
		for i := 0; i+1 < len(kv); i += 2 {
			switch v := kv[i+1].(type) {
			case json.RawMessage:
				m[kv[i].(string)] = v
			default:
				m[kv[i].(string)], _ = json.Marshal(v)
			}
		}
		return m
	}
	for _, tc := range []struct {
		name, node, typ string
		fields          map[string]json.RawMessage
		want            string // refusal reason, "" to send
		sparkKept       bool
	}{
		{"settlement within the ticket", "site-a", wire.EventSettlementRequest,
			body("ticket", tk("site-a", 42, "s-1", "20.00"), "NayaxTransactionId", 42, "SparkTransactionId", "s-1", "Amount", 19.99), "", true},
		{"settlement of exactly the authorized amount, other spelling", "site-a", wire.EventSettlementRequest,
			body("ticket", tk("site-a", 42, "s-1", "20.00"), "NayaxTransactionId", "42", "SparkTransactionId", "s-1", "Amount", "20"), "", true},
		{"one minor unit over", "site-a", wire.EventSettlementRequest,
			body("ticket", tk("site-a", 42, "s-1", "20.00"), "NayaxTransactionId", 42, "SparkTransactionId", "s-1", "Amount", 20.01), refusedOverAuthorized, true},
		{"settlement without an amount", "site-a", wire.EventSettlementRequest,
			body("ticket", tk("site-a", 42, "s-1", "20"), "NayaxTransactionId", 42, "SparkTransactionId", "s-1"), refusedNoAmount, true},
		{"cancel without an amount releases all", "site-a", wire.EventCancelRequest,
			body("ticket", tk("site-a", 42, "s-1", "20"), "NayaxTransactionId", 42, "SparkTransactionId", "s-1"), "", true},
		{"cancel over the authorized amount", "site-a", wire.EventCancelRequest,
			body("ticket", tk("site-a", 42, "s-1", "20"), "NayaxTransactionId", 42, "SparkTransactionId", "s-1", "CancelAmount", 25), refusedOverAuthorized, true},
		{"no ticket", "site-a", wire.EventCancelRequest,
			body("NayaxTransactionId", 42, "SparkTransactionId", "s-1"), refusedNoTicket, true},
		{"another node's ticket", "site-b", wire.EventCancelRequest,
			body("ticket", tk("site-a", 42, "s-1", "20"), "NayaxTransactionId", 42, "SparkTransactionId", "s-1"), refusedBadTicket, true},
		{"ticket with a raised max", "site-a", wire.EventSettlementRequest,
			body("ticket", json.RawMessage(`{"nayax":42,"spark":"s-1","max":"2000","mac":"`+r.ticketMAC("site-a", 42, "s-1", "20")+`"}`),
				"NayaxTransactionId", 42, "SparkTransactionId", "s-1", "Amount", 1000), refusedBadTicket, true},
		{"ticket that is not an object", "site-a", wire.EventCancelRequest,
			body("ticket", "x", "NayaxTransactionId", 42), refusedBadTicket, true},
		{"another Nayax transaction", "site-a", wire.EventCancelRequest,
			body("ticket", tk("site-a", 42, "s-1", "20"), "NayaxTransactionId", 43, "SparkTransactionId", "s-1"), refusedTicketMismatch, true},
		{"another Spark transaction", "site-a", wire.EventCancelRequest,
			body("ticket", tk("site-a", 42, "s-1", "20"), "NayaxTransactionId", 42, "SparkTransactionId", "s-2"), refusedTicketMismatch, true},
		{"transaction that came without a Spark id: the node's own id is not sent", "site-a", wire.EventCancelRequest,
			body("ticket", tk("site-a", 42, "", "20"), "NayaxTransactionId", 42, "SparkTransactionId", "made-up-by-the-node"), "", false},
		{"start at an owned terminal by machine id", "site-a", wire.EventStartRequest,
			body("TerminalId", "7", "TerminalIdType", 2, "Amount", 100), "", true},
		{"start at an owned terminal by serial", "site-a", wire.EventStartRequest,
			body("TerminalId", "42", "TerminalIdType", 1), "", true},
		{"start over the maximum", "site-a", wire.EventStartRequest,
			body("TerminalId", "7", "TerminalIdType", 2, "Amount", 100.01), refusedOverMaxStart, true},
		{"start at another node's terminal", "site-b", wire.EventStartRequest,
			body("TerminalId", "7", "TerminalIdType", 2, "Amount", 1), refusedNotOwner, true},
		{"start at an unregistered terminal", "site-a", wire.EventStartRequest,
			body("TerminalId", "8", "TerminalIdType", 2, "Amount", 1), refusedNotOwner, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := "Call"
			tc.fields["SparkTransactionId"] = cmpOr(tc.fields["SparkTransactionId"], json.RawMessage(`"s-1"`))
			got := r.checkRequest(tc.node, tc.typ, call, tc.fields)
			switch {
			case tc.want == "" && got != nil:
				t.Fatalf("refused %s: %s", got.reason, got.why)
			case tc.want != "" && (got == nil || got.reason != tc.want):
				t.Fatalf("got %+v, want %s", got, tc.want)
			}
			if _, ok := tc.fields[wire.RequestTicket]; ok {
				t.Error("the ticket is left in the request for Nayax")
			}
			if _, ok := tc.fields["SparkTransactionId"]; ok != tc.sparkKept {
				t.Errorf("SparkTransactionId kept = %v, want %v", ok, tc.sparkKept)
			}
		})
	}
}

func cmpOr(a, b json.RawMessage) json.RawMessage {
	if a != nil {
		return a
	}
	return b
}
