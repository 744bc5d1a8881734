package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// errCorrupt is wrapped by every decoder error; it is not exported because
// callers cannot do anything about a corrupt record except report it.
var errCorrupt = errors.New("corrupt record")

// timeKeyLen is the length of an order-preserving time key: seconds since
// the Unix epoch with the sign bit flipped (so negative times sort first),
// then nanoseconds, both big-endian. Unlike UnixNano it covers every
// time.Time, including the zero value.
const timeKeyLen = 12

func putTimeKey(dst []byte, t time.Time) {
	binary.BigEndian.PutUint64(dst, uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(dst[8:], uint32(t.Nanosecond()))
}

func timeFromKey(k []byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
	nsec := int64(binary.BigEndian.Uint32(k[8:]))
	return time.Unix(sec, nsec).UTC()
}

// timeIDKey is a time key followed by an id: an index entry ordered by time.
func timeIDKey(t time.Time, id string) []byte {
	k := make([]byte, timeKeyLen+len(id))
	putTimeKey(k, t)
	copy(k[timeKeyLen:], id)
	return k
}

func splitTimeIDKey(k []byte) (time.Time, string, error) {
	if len(k) < timeKeyLen {
		return time.Time{}, "", fmt.Errorf("time index key of %d bytes: %w", len(k), errCorrupt)
	}
	return timeFromKey(k), string(k[timeKeyLen:]), nil
}

// stationPrefix is the length-prefixed station, so that station "a" never
// matches the entries of station "ab".
func stationPrefix(station string) []byte {
	p := make([]byte, 2+len(station))
	binary.BigEndian.PutUint16(p, uint16(len(station)))
	copy(p[2:], station)
	return p
}

func stationKey(station string, created time.Time, id string) []byte {
	k := make([]byte, 0, 2+len(station)+timeKeyLen+len(id))
	k = append(k, stationPrefix(station)...)
	var tk [timeKeyLen]byte
	putTimeKey(tk[:], created)
	k = append(k, tk[:]...)
	return append(k, id...)
}

// splitStationKey returns the spark id at the end of a station index key.
func splitStationKey(k []byte) (station, id string, err error) {
	if len(k) < 2 {
		return "", "", fmt.Errorf("station index key of %d bytes: %w", len(k), errCorrupt)
	}
	n := int(binary.BigEndian.Uint16(k))
	if len(k) < 2+n+timeKeyLen {
		return "", "", fmt.Errorf("station index key of %d bytes: %w", len(k), errCorrupt)
	}
	return string(k[2 : 2+n]), string(k[2+n+timeKeyLen:]), nil
}

func nayaxKey(id int64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(id))
	return k[:]
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// openValue is the value of the open-sessions index: the state and the
// station, so that ActiveSession can filter without decoding sessions.
func openValue(s *Session) []byte {
	v := make([]byte, 0, len(s.State)+1+len(s.Station))
	v = append(v, s.State...)
	v = append(v, 0)
	return append(v, s.Station...)
}

func splitOpenValue(v []byte) (State, string, error) {
	for i, c := range v {
		if c == 0 {
			return State(v[:i]), string(v[i+1:]), nil
		}
	}
	return "", "", fmt.Errorf("open index value: %w", errCorrupt)
}

func encodeSession(s *Session) ([]byte, error) {
	return json.Marshal(s)
}

func decodeSession(v []byte) (Session, error) {
	var s Session
	if err := json.Unmarshal(v, &s); err != nil {
		return Session{}, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if s.SparkTransactionID == "" {
		return Session{}, fmt.Errorf("session without id: %w", errCorrupt)
	}
	return s, nil
}

// Outbox record layout (all integers big-endian):
//
//	[0]      format (1)
//	[1:9]    created, Unix nanoseconds (0 = zero time)
//	[9:13]   attempts
//	[13:15]  type length T
//	[15:17]  id length I
//	[17:17+T]       type
//	[17+T:17+T+I]   id
//	[17+T+I:]       payload, the exact MQTT payload
//
// A fixed binary header instead of JSON keeps a drain of thousands of
// events per second cheap: no escaping of the payload, no reflection.
const (
	outboxFormat    = 1
	outboxHeaderLen = 17
	offAttempts     = 9
)

func encodeOutbox(e *OutboxEntry) ([]byte, error) {
	if len(e.Type) > math.MaxUint16 || len(e.ID) > math.MaxUint16 {
		return nil, fmt.Errorf("outbox type or id too long: %w", ErrInvalid)
	}
	v := make([]byte, outboxHeaderLen, outboxHeaderLen+len(e.Type)+len(e.ID)+len(e.Payload))
	v[0] = outboxFormat
	binary.BigEndian.PutUint64(v[1:], uint64(unixNano(e.CreatedAt)))
	binary.BigEndian.PutUint32(v[offAttempts:], clampAttempts(e.Attempts))
	binary.BigEndian.PutUint16(v[13:], uint16(len(e.Type)))
	binary.BigEndian.PutUint16(v[15:], uint16(len(e.ID)))
	v = append(v, e.Type...)
	v = append(v, e.ID...)
	return append(v, e.Payload...), nil
}

// decodeOutbox decodes a record; the payload is copied only if withPayload,
// because bbolt's memory is valid only inside the transaction.
func decodeOutbox(seq uint64, v []byte, withPayload bool) (OutboxEntry, error) {
	if len(v) < outboxHeaderLen || v[0] != outboxFormat {
		return OutboxEntry{}, fmt.Errorf("outbox %d: bad header: %w", seq, errCorrupt)
	}
	tl := int(binary.BigEndian.Uint16(v[13:]))
	il := int(binary.BigEndian.Uint16(v[15:]))
	if len(v) < outboxHeaderLen+tl+il {
		return OutboxEntry{}, fmt.Errorf("outbox %d: short record: %w", seq, errCorrupt)
	}
	e := OutboxEntry{
		Seq:       seq,
		CreatedAt: fromUnixNano(int64(binary.BigEndian.Uint64(v[1:]))),
		Attempts:  int(min(binary.BigEndian.Uint32(v[offAttempts:]), math.MaxInt32)),
		Type:      string(v[outboxHeaderLen : outboxHeaderLen+tl]),
		ID:        string(v[outboxHeaderLen+tl : outboxHeaderLen+tl+il]),
	}
	if withPayload {
		e.Payload = append([]byte{}, v[outboxHeaderLen+tl+il:]...)
	}
	return e, nil
}

func clampAttempts(n int) uint32 {
	switch {
	case n < 0:
		return 0
	case uint64(n) > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(n)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Inbox record layout: [0] format (1), [1:13] time key of At, [13:15] type
// length T, type, then the reply payload.
const (
	inboxFormat    = 1
	inboxHeaderLen = 1 + timeKeyLen + 2
)

func encodeInbox(e *InboxEntry) ([]byte, error) {
	if len(e.Type) > math.MaxUint16 {
		return nil, fmt.Errorf("inbox type too long: %w", ErrInvalid)
	}
	v := make([]byte, inboxHeaderLen, inboxHeaderLen+len(e.Type)+len(e.Reply))
	v[0] = inboxFormat
	putTimeKey(v[1:], e.At)
	binary.BigEndian.PutUint16(v[1+timeKeyLen:], uint16(len(e.Type)))
	v = append(v, e.Type...)
	return append(v, e.Reply...), nil
}

func decodeInbox(id string, v []byte) (InboxEntry, error) {
	if len(v) < inboxHeaderLen || v[0] != inboxFormat {
		return InboxEntry{}, fmt.Errorf("inbox %q: bad header: %w", id, errCorrupt)
	}
	tl := int(binary.BigEndian.Uint16(v[1+timeKeyLen:]))
	if len(v) < inboxHeaderLen+tl {
		return InboxEntry{}, fmt.Errorf("inbox %q: short record: %w", id, errCorrupt)
	}
	return InboxEntry{
		ID:    id,
		Type:  string(v[inboxHeaderLen : inboxHeaderLen+tl]),
		At:    timeFromKey(v[1:]),
		Reply: append([]byte{}, v[inboxHeaderLen+tl:]...),
	}, nil
}
