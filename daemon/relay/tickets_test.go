package relay

import (
	"encoding/json"
	"strings"
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
	const s1, s2 = "7d1f3a52-9a0b-4a7e-9a53-3f1c2b4d5e01", "7d1f3a52-9a0b-4a7e-9a53-3f1c2b4d5e02"
	// A valid request of each call, with kv added or replaced (nil
	// removes a member).
	with := func(base map[string]json.RawMessage, kv ...any) map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range body(kv...) {
			if string(v) == "null" {
				delete(out, k)
				continue
			}
			out[k] = v
		}
		return out
	}
	settlement := body("NayaxTransactionId", 42, "SparkTransactionId", s1, "SiteId", 2, "MachineAuTime", "20240205194122328",
		"TerminalId", "0042", "TerminalIdType", 1, "Amount", 10)
	cancel := body("NayaxTransactionId", 42, "SparkTransactionId", s1, "SiteId", 2, "MachineAuTime", "20240205194122328",
		"TerminalId", "0042", "TerminalIdType", 1, "CancellationType", 1, "ReasonCode", "75", "ReasonText", "Service not provided", "CancelAmount", 20)
	start := body("SparkTransactionId", s2, "TerminalId", "7", "TerminalIdType", 2, "TransactionTimeout", 60)
	for _, tc := range []struct {
		name, node, typ string
		fields          map[string]json.RawMessage
		want            string // refusal reason, "" to send
		check           func(t *testing.T, sent map[string]json.RawMessage)
	}{
		{"settlement within the ticket", "site-a", wire.EventSettlementRequest,
			with(settlement, "ticket", tk("site-a", 42, s1, "20.00"), "Amount", 19.99), "", nil},
		{"settlement of exactly the authorized amount, other spelling", "site-a", wire.EventSettlementRequest,
			with(settlement, "ticket", tk("site-a", 42, s1, "20.00"), "NayaxTransactionId", "42", "Amount", "20"), "", nil},
		{"one minor unit over", "site-a", wire.EventSettlementRequest,
			with(settlement, "ticket", tk("site-a", 42, s1, "20.00"), "Amount", 20.01), refusedOverAuthorized, nil},
		{"an amount with an exponent", "site-a", wire.EventSettlementRequest,
			with(settlement, "ticket", tk("site-a", 42, s1, "20"), "Amount", json.RawMessage(`2e1`)), "", nil},
		{"an amount with an exponent over", "site-a", wire.EventSettlementRequest,
			with(settlement, "ticket", tk("site-a", 42, s1, "20"), "Amount", json.RawMessage(`2.0001e1`)), refusedOverAuthorized, nil},
		{"a negative amount", "site-a", wire.EventSettlementRequest,
			with(settlement, "ticket", tk("site-a", 42, s1, "20"), "Amount", -5), refusedBadRequest, nil},
		{"settlement without an amount", "site-a", wire.EventSettlementRequest,
			with(settlement, "ticket", tk("site-a", 42, s1, "20"), "Amount", nil), refusedBadRequest, nil},
		{"cancel of the authorized amount", "site-a", wire.EventCancelRequest,
			with(cancel, "ticket", tk("site-a", 42, s1, "20")), "", nil},
		{"cancel over the authorized amount", "site-a", wire.EventCancelRequest,
			with(cancel, "ticket", tk("site-a", 42, s1, "20"), "CancelAmount", 25), refusedOverAuthorized, nil},
		{"no ticket", "site-a", wire.EventCancelRequest, cancel, refusedNoTicket, nil},
		{"another node's ticket", "site-b", wire.EventCancelRequest,
			with(cancel, "ticket", tk("site-a", 42, s1, "20")), refusedBadTicket, nil},
		{"ticket with a raised max", "site-a", wire.EventSettlementRequest,
			with(settlement, "ticket", json.RawMessage(`{"nayax":42,"spark":"`+s1+`","max":"2000","mac":"`+r.ticketMAC("site-a", 42, s1, "20")+`"}`), "Amount", 1000), refusedBadTicket, nil},
		{"ticket that is not an object", "site-a", wire.EventCancelRequest,
			with(cancel, "ticket", "x"), refusedBadTicket, nil},
		{"another Nayax transaction", "site-a", wire.EventCancelRequest,
			with(cancel, "ticket", tk("site-a", 42, s1, "20"), "NayaxTransactionId", 43), refusedTicketMismatch, nil},
		{"another Spark transaction", "site-a", wire.EventCancelRequest,
			with(cancel, "ticket", tk("site-a", 42, s1, "20"), "SparkTransactionId", s2), refusedTicketMismatch, nil},
		{"a transaction Nayax gave no Spark id: the NayaxTransactionId binds", "site-a", wire.EventCancelRequest,
			with(cancel, "ticket", tk("site-a", 42, "", "20"), "SparkTransactionId", s2), "", nil},
		{"the victim's id in another case beside its own: the one checked is the one sent", "site-a", wire.EventCancelRequest,
			with(cancel, "ticket", tk("site-a", 42, s1, "20"), "nayaxTransactionId", 99), refusedTicketMismatch, nil},
		{"the victim's id under a name only Unicode folding equates", "site-a", wire.EventCancelRequest,
			with(cancel, "ticket", tk("site-a", 42, s1, "20"), "NayaxTranſactionId", 99), refusedTicketMismatch, nil},
		{"its own id in another case beside the victim's", "site-a", wire.EventCancelRequest,
			with(cancel, "ticket", tk("site-a", 42, s1, "20"), "NayaxTransactionId", 99, "nayaxtransactionid", 42), "", func(t *testing.T, sent map[string]json.RawMessage) {
				if len(sent) != len(cancel) || string(sent["NayaxTransactionId"]) != "42" {
					t.Fatalf("sent %v", sent)
				}
			}},
		{"members outside the schema are not sent", "site-a", wire.EventSettlementRequest,
			with(settlement, "ticket", tk("site-a", 42, s1, "20"), "Extra", "x"), "", func(t *testing.T, sent map[string]json.RawMessage) {
				if _, ok := sent["Extra"]; ok || len(sent) != len(settlement) {
					t.Fatalf("sent %v", sent)
				}
			}},
		{"start at an owned terminal by machine id", "site-a", wire.EventStartRequest, with(start, "Amount", 100), "", nil},
		{"start at an owned terminal by serial", "site-a", wire.EventStartRequest, with(start, "TerminalId", "42", "TerminalIdType", 1), "", nil},
		{"start over the maximum", "site-a", wire.EventStartRequest, with(start, "Amount", 100.01), refusedOverMaxStart, nil},
		{"start with a huge exponent", "site-a", wire.EventStartRequest, with(start, "Amount", json.RawMessage(`1e-999999`)), refusedBadAmount, nil},
		{"start at another node's terminal", "site-b", wire.EventStartRequest, with(start, "Amount", 1), refusedNotOwner, nil},
		{"start at an unregistered terminal", "site-a", wire.EventStartRequest, with(start, "TerminalId", "8"), refusedNotOwner, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := map[string]string{wire.EventSettlementRequest: "ExternalSettlement", wire.EventCancelRequest: "ExternalCancel", wire.EventStartRequest: "TriggerTransaction"}[tc.typ]
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
			if tc.check != nil {
				tc.check(t, tc.fields)
			}
		})
	}
}

// fakeMsg is a paho.Message for handlers called directly.
type fakeMsg struct {
	topic   string
	acked   *int
	payload []byte // {} when nil
}

func (m fakeMsg) Duplicate() bool   { return false }
func (m fakeMsg) Qos() byte         { return 1 }
func (m fakeMsg) Retained() bool    { return false }
func (m fakeMsg) Topic() string     { return m.topic }
func (m fakeMsg) MessageID() uint16 { return 1 }
func (m fakeMsg) Payload() []byte {
	if m.payload == nil {
		return []byte(`{}`)
	}
	return m.payload
}
func (m fakeMsg) Ack() { *m.acked++ }

// One site flooding request events fills neither the queue nor the
// workers: past its burst its events are dropped (acknowledged, counted)
// and other sites' still queue.
func TestNodeEventRate(t *testing.T) {
	r, err := New(Options{ID: "r", Prefix: "p", CardKey: []byte("tickets test card key, 32+ bytes!!"), InsecureAllowUnauthenticatedCallbacks: true,
		Link: link.Options{Broker: "tcp://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	acked := 0
	for range nodeEventBurst + 50 {
		r.onEvent(nil, fakeMsg{topic: "p/nodes/site-rogue/events/start-request", acked: &acked})
	}
	r.onEvent(nil, fakeMsg{topic: "p/nodes/site-other/events/settlement-request", acked: &acked})
	if got := r.events.Len(); got < nodeEventBurst || got > nodeEventBurst+5 {
		t.Fatalf("%d events queued, want the rogue's burst %d (+ a few refilled) and the other site's", got, nodeEventBurst)
	}
	if acked < 45 {
		t.Fatalf("%d dropped events acknowledged", acked)
	}
	var b strings.Builder
	_, _ = r.metrics.WriteTo(&b)
	if !strings.Contains(b.String(), `sitelink_relay_events_dropped_total{reason="node_rate"} `) {
		t.Fatalf("drops not counted:\n%s", b.String())
	}
	last, _ := r.events.Pop()
	for {
		d, ok := r.events.Pop()
		if !ok {
			break
		}
		last = d
	}
	if last.msg.Topic() != "p/nodes/site-other/events/settlement-request" {
		t.Fatalf("the other site's event was not queued: last %s", last.msg.Topic())
	}
}

// A relay does not start without callback headers unless told that it
// takes callbacks from anyone; its maximum start must be a decimal.
func TestNewRefusesUnauthenticated(t *testing.T) {
	base := Options{ID: "r", Prefix: "p", CardKey: []byte("tickets test card key, 32+ bytes!!"), Link: link.Options{Broker: "tcp://127.0.0.1:1"}}
	for _, tc := range []struct {
		name string
		edit func(*Options)
		ok   bool
	}{
		{"no headers", func(*Options) {}, false},
		{"headers", func(o *Options) { o.CallbackHeaders = []Header{{"X-A", "a"}} }, true},
		{"insecure on purpose", func(o *Options) { o.InsecureAllowUnauthenticatedCallbacks = true }, true},
		{"max start not a decimal", func(o *Options) { o.InsecureAllowUnauthenticatedCallbacks, o.MaxStartAmount = true, "1e999999" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			if _, err := New(o); (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok %v", err, tc.ok)
			}
		})
	}
}
