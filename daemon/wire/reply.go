package wire

import (
	"encoding/json"
	"strconv"
)

// A reply crosses MQTT for every callback the relay answers: the edge
// writes it on the stop path, the relay reads it and writes its body to
// Nayax. Its JSON is written and read here directly when it is as the
// edge writes it (no escapes, known members, integers in range), with
// exactly json.Marshal's bytes and json.Unmarshal's result (FuzzReplyJSON);
// anything else takes encoding/json's path.

// ReplyPayload is json.Marshal(r).
func ReplyPayload(r Reply) ([]byte, error) {
	if plainJSON(r.ID) && plainJSON(r.Type) {
		out := make([]byte, 0, 160+len(r.ID))
		out = append(out, `{"id":"`...)
		out = append(out, r.ID...)
		out = append(out, `","type":"`...)
		out = append(out, r.Type...)
		out = append(out, `","body":`...)
		if out, ok := appendAnswer(out, r.Body); ok {
			return append(out, '}'), nil
		}
	}
	return json.Marshal(r)
}

// AnswerJSON is json.Marshal(a), which cannot fail.
func AnswerJSON(a Answer) []byte {
	if b, ok := appendAnswer(make([]byte, 0, 160), a); ok {
		return b
	}
	b, _ := json.Marshal(a)
	return b
}

// appendAnswer appends json.Marshal(a)'s bytes when no string of a needs
// escaping; ok is false otherwise.
func appendAnswer(b []byte, a Answer) (_ []byte, ok bool) {
	s := &a.Status
	for _, v := range [...]string{a.SparkTransactionId, a.ServiceStationNumber, a.PosDisplay, a.Amount, a.SiteId, a.MachineAuTime,
		s.Verdict, s.ErrorDescription, s.StatusMessage} {
		if !plainJSON(v) {
			return b, false
		}
	}
	b = append(b, '{')
	b = appendStr(b, "SparkTransactionId", a.SparkTransactionId, true)
	b = appendKey(b, "Status")
	b = append(b, '{')
	b = appendStr(b, "Verdict", s.Verdict, false)
	b = appendIntPtr(b, "ErrorCode", s.ErrorCode)
	b = appendIntPtr(b, "Code", s.Code)
	b = appendIntPtr(b, "CustomDeclineCode", s.CustomDeclineCode)
	b = appendStr(b, "ErrorDescription", s.ErrorDescription, true)
	b = appendStr(b, "StatusMessage", s.StatusMessage, true)
	b = append(b, '}')
	b = appendStr(b, "ServiceStationNumber", a.ServiceStationNumber, true)
	if a.ServiceStationAvailability != 0 {
		b = strconv.AppendInt(appendKey(b, "ServiceStationAvailability"), int64(a.ServiceStationAvailability), 10)
	}
	b = appendStr(b, "PosDisplay", a.PosDisplay, true)
	b = appendStr(b, "Amount", a.Amount, true)
	if a.NayaxTransactionId != 0 {
		b = strconv.AppendInt(appendKey(b, "NayaxTransactionId"), a.NayaxTransactionId, 10)
	}
	b = appendStr(b, "SiteId", a.SiteId, true)
	b = appendStr(b, "MachineAuTime", a.MachineAuTime, true)
	return append(b, '}'), true
}

// appendKey appends `"key":`, after a comma unless it is the object's
// first member.
func appendKey(b []byte, key string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	return append(append(append(b, '"'), key...), `":`...)
}

func appendStr(b []byte, key, v string, omitempty bool) []byte {
	if omitempty && v == "" {
		return b
	}
	return append(append(append(appendKey(b, key), '"'), v...), '"')
}

func appendIntPtr(b []byte, key string, v *int) []byte {
	if v == nil {
		return b
	}
	return strconv.AppendInt(appendKey(b, key), int64(*v), 10)
}

// decodeReplyFast is json.Unmarshal(payload, &r) for a reply as the
// edge writes it; ok is false for anything else: escapes, whitespace,
// null, other or repeated members, numbers that are not integers in
// range.
func decodeReplyFast(payload []byte) (r Reply, ok bool) {
	d := flatDecoder{b: payload}
	var seen [3]bool
	ok = d.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return d.once(&seen[0]) && d.str(&r.ID)
		case "type":
			return d.once(&seen[1]) && d.str(&r.Type)
		case "body":
			return d.once(&seen[2]) && d.answer(&r.Body)
		}
		return false
	})
	return r, ok && d.i == len(d.b)
}

// flatDecoder walks compact JSON as the edge writes it, giving up on
// anything else.
type flatDecoder struct {
	b []byte
	i int
}

func (d *flatDecoder) once(seen *bool) bool {
	if *seen {
		return false
	}
	*seen = true
	return true
}

func (d *flatDecoder) byte(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// object reads {"key":value,...}, member calls reading each value.
func (d *flatDecoder) object(member func(key []byte) bool) bool {
	if !d.byte('{') {
		return false
	}
	if d.byte('}') {
		return true
	}
	for {
		key, ok := d.raw()
		if !ok || !d.byte(':') || !member(key) {
			return false
		}
		if d.byte('}') {
			return true
		}
		if !d.byte(',') {
			return false
		}
	}
}

// str reads a string of printable ASCII without escapes.
func (d *flatDecoder) str(dst *string) bool {
	s, ok := d.raw()
	if ok {
		*dst = string(s)
	}
	return ok
}

// raw reads what str reads, in place.
func (d *flatDecoder) raw() ([]byte, bool) {
	if !d.byte('"') {
		return nil, false
	}
	start := d.i
	for ; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			return d.b[start : d.i-1], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// int reads an integer that fits bits: an optional minus, then digits
// without a leading zero.
func (d *flatDecoder) int(bits int) (int64, bool) {
	start := d.i
	d.byte('-')
	digits := d.i
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
	}
	n := d.i - digits
	if n == 0 || (n > 1 && d.b[digits] == '0') || (d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E')) {
		return 0, false
	}
	v, err := strconv.ParseInt(string(d.b[start:d.i]), 10, bits)
	return v, err == nil
}

func (d *flatDecoder) intPtr(dst **int) bool {
	v, ok := d.int(strconv.IntSize)
	if ok {
		n := int(v)
		*dst = &n
	}
	return ok
}

func (d *flatDecoder) answer(a *Answer) bool {
	var seen [9]bool
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "SparkTransactionId":
			return d.once(&seen[0]) && d.str(&a.SparkTransactionId)
		case "Status":
			return d.once(&seen[1]) && d.status(&a.Status)
		case "ServiceStationNumber":
			return d.once(&seen[2]) && d.str(&a.ServiceStationNumber)
		case "ServiceStationAvailability":
			v, ok := d.int(strconv.IntSize)
			a.ServiceStationAvailability = int(v)
			return d.once(&seen[3]) && ok
		case "PosDisplay":
			return d.once(&seen[4]) && d.str(&a.PosDisplay)
		case "Amount":
			return d.once(&seen[5]) && d.str(&a.Amount)
		case "NayaxTransactionId":
			v, ok := d.int(64)
			a.NayaxTransactionId = v
			return d.once(&seen[6]) && ok
		case "SiteId":
			return d.once(&seen[7]) && d.str(&a.SiteId)
		case "MachineAuTime":
			return d.once(&seen[8]) && d.str(&a.MachineAuTime)
		}
		return false
	})
}

func (d *flatDecoder) status(s *Status) bool {
	var seen [6]bool
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "Verdict":
			return d.once(&seen[0]) && d.str(&s.Verdict)
		case "ErrorCode":
			return d.once(&seen[1]) && d.intPtr(&s.ErrorCode)
		case "Code":
			return d.once(&seen[2]) && d.intPtr(&s.Code)
		case "CustomDeclineCode":
			return d.once(&seen[3]) && d.intPtr(&s.CustomDeclineCode)
		case "ErrorDescription":
			return d.once(&seen[4]) && d.str(&s.ErrorDescription)
		case "StatusMessage":
			return d.once(&seen[5]) && d.str(&s.StatusMessage)
		}
		return false
	})
}
