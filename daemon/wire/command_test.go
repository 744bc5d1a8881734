package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/wire"
)

// checkCommandPayload: what CommandPayload writes decodes to c with its
// body's bytes kept, is json.Marshal's own output for a body Marshal
// leaves as it is, and is refused only for a body that is not one JSON
// object or a deadline JSON cannot hold.
func checkCommandPayload(t *testing.T, c wire.Command) {
	t.Helper()
	got, err := wire.CommandPayload(c)
	want, merr := json.Marshal(c)
	bodyOK := len(c.Body) == 0 || (json.Valid(c.Body) && bytes.HasPrefix(bytes.TrimLeft(c.Body, " \t\r\n"), []byte("{")))
	if err != nil {
		if bodyOK && merr == nil {
			t.Fatalf("%+v: refused (%v), json.Marshal wrote %s", c, err, want)
		}
		if !bodyOK && !errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("%+v: refused with %v, want ErrMalformed", c, err)
		}
		return
	}
	if !bodyOK {
		t.Fatalf("%+v: body is not one JSON object, yet written: %s", c, got)
	}
	var back, ref wire.Command
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%+v: wrote %s, which does not decode: %v", c, got, err)
	}
	// Strings as json.Marshal writes them (invalid UTF-8 replaced).
	noBody := c
	noBody.Body = nil
	if b, err := json.Marshal(noBody); err != nil || json.Unmarshal(b, &ref) != nil {
		t.Fatalf("%+v: json.Marshal without the body: %v", c, err)
	}
	if back.ID != ref.ID || back.Type != ref.Type || back.ReplyTo != ref.ReplyTo ||
		(back.Deadline == nil) != (c.Deadline == nil) || (c.Deadline != nil && !back.Deadline.Equal(*c.Deadline)) ||
		!bytes.Equal(back.Body, bytes.TrimSpace(c.Body)) {
		t.Fatalf("%+v: wrote %s, which decodes to %+v", c, got, back)
	}
	// json.Marshal compacts and HTML-escapes a RawMessage; a body that
	// is compact already and has nothing to escape comes out the same.
	var compact bytes.Buffer
	plain := json.Compact(&compact, c.Body) == nil && bytes.Equal(compact.Bytes(), c.Body)
	for _, b := range c.Body {
		plain = plain && b >= 0x20 && b < 0x7f && b != '<' && b != '>' && b != '&'
	}
	if plain && merr == nil && !bytes.Equal(got, want) {
		t.Fatalf("%+v:\n got %s\nwant %s (json.Marshal)", c, got, want)
	}
}

func TestCommandPayload(t *testing.T) {
	at := time.Date(2026, 12, 7, 1, 2, 3, 456789000, time.UTC)
	cet := at.In(time.FixedZone("CET", 3600))
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	stop := json.RawMessage(`{"MachineId":71234996,"SparkTransactionId":"12c7","SiteId":"<a&b>","ServiceStationNumber":"5"}`)
	for _, c := range []wire.Command{
		{ID: "4f1c", Type: wire.CommandStop, ReplyTo: "sitelink/v1/nodes/site-1/replies/relay-1", Body: stop},
		{ID: "4f1c", Type: wire.CommandStop, Body: json.RawMessage(`{"a":1}`)},
		{ID: "4f1c", Type: wire.CommandStop},
		{ID: "4f1c", Type: wire.CommandStop, Deadline: &at, Body: json.RawMessage(`{}`)},
		{ID: "4f1c", Type: wire.CommandStop, Deadline: &cet},
		{ID: "4f1c", Type: wire.CommandStop, Deadline: &far},
		{ID: "a<b>&c", Type: wire.CommandStop, ReplyTo: "q\"uote", Body: stop},
		{ID: "é\u2028", Type: "tab\t", Body: json.RawMessage(` { "a" : [1, 2] } `)},
		{ID: "é", Type: wire.CommandStop, Deadline: &far},
		{ID: "x", Type: wire.CommandStop, Body: json.RawMessage(`[1]`)},
		{ID: "x", Type: wire.CommandStop, Body: json.RawMessage(`{"a":}`)},
		{ID: "x", Type: wire.CommandStop, Body: json.RawMessage(`{} {}`)},
		{ID: "x\"", Type: wire.CommandStop, Body: json.RawMessage(`"s"`)},
	} {
		checkCommandPayload(t, c)
	}
	// The relay's own shape, written directly: the body keeps a
	// Literal's bytes that json.Marshal would escape.
	got, err := wire.CommandPayload(wire.Command{ID: "1", Type: wire.CommandStop, Body: stop})
	if want := `{"id":"1","type":"stop","body":` + string(stop) + `}`; err != nil || string(got) != want {
		t.Errorf("CommandPayload = %s, %v; want %s", got, err, want)
	}
}

func FuzzCommandPayload(f *testing.F) {
	f.Add("4f1c", "stop", "sitelink/v1/nodes/site-1/replies/relay-1", []byte(`{"MachineId":1,"SiteId":"<&>"}`), int64(0))
	f.Add("a<b", "stop", "", []byte(` {"a" : "\u2028"} `), int64(1_800_000_000))
	f.Add("x", "t", "r", []byte(`[]`), int64(-1))
	f.Fuzz(func(t *testing.T, id, typ, replyTo string, body []byte, deadline int64) {
		c := wire.Command{ID: id, Type: typ, ReplyTo: replyTo, Body: body}
		if deadline != 0 {
			d := time.Unix(deadline, deadline%1e9).UTC()
			c.Deadline = &d
		}
		checkCommandPayload(t, c)
	})
}
