package nayax

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// MaxBody is the largest callback body the decoders accept. Real Spark
// callbacks are well under 2 KiB; the limit keeps a hostile sender from
// making the relay buffer megabytes.
const MaxBody = 64 << 10

// Reasons used in DecodeError for the whole body.
const (
	reasonTooLarge  = "body too large"
	reasonMalformed = "malformed JSON"
	reasonMissing   = "missing"
)

// DecodeError is a rejected callback body. Code is the Spark code to answer
// with (CodeValidation or CodeMissingMandatory), Field the offending field
// ("" for the whole body; nested fields are dotted, "AuthStatus.ErrorCode").
// Reason never contains the field's value.
type DecodeError struct {
	Code   int
	Field  string
	Reason string
}

// Error returns "Field: Reason", or only Reason for the whole body.
func (e *DecodeError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Unwrap maps Code to ErrMissing or ErrInvalid.
func (e *DecodeError) Unwrap() error {
	if e.Code == CodeMissingMandatory {
		return ErrMissing
	}
	return ErrInvalid
}

// DeclineFor is the one answer to a Spark body that did not decode: the
// Declined Status with the *DecodeError's code and text (the Decode
// functions return nothing else), or CodeValidation for any other error.
// The relay answers Nayax with it and the edge answers a command with it.
func DeclineFor(err error) Status {
	code, msg := decodeAnswer(err, CodeValidation)
	return Declined(code, msg)
}

// CortinaDeclineFor is DeclineFor for a Cortina body (DecodeCortinaCancel,
// whose codes are Cortina's): the Declined CortinaStatus with the
// *DecodeError's code and text, or CortinaFormatError for any other error.
func CortinaDeclineFor(err error) CortinaStatus {
	code, msg := decodeAnswer(err, CortinaFormatError)
	return CortinaDeclined(code, msg)
}

func decodeAnswer(err error, fallback int) (int, string) {
	var de *DecodeError
	switch {
	case errors.As(err, &de):
		return de.Code, de.Error()
	case err == nil:
		return fallback, "invalid request" // a caller's bug; still a decline
	}
	return fallback, err.Error()
}

func missing(field string) *DecodeError {
	return &DecodeError{Code: CodeMissingMandatory, Field: field, Reason: reasonMissing}
}

// field binds a JSON member name to the value it decodes into.
type field struct {
	name string
	dst  json.Unmarshaler
}

// decodeObject decodes a JSON object into fields. Names match like
// encoding/json (exact first, then case-insensitively), a repeated member
// is applied in order so the last one wins, and unknown members are
// skipped because Nayax adds fields. A member of the wrong type does not
// stop the decoding of the others: the caller gets the first error and
// every field that did decode, so an answer can still echo the ids.
func decodeObject(b []byte, fields []field) *DecodeError {
	return decodeObjectLimit(b, fields, MaxBody)
}

// decodeObjectLimit is decodeObject with another size limit, for the
// answers Nayax gives, which may carry receipts.
func decodeObjectLimit(b []byte, fields []field, limit int) *DecodeError {
	if len(b) > limit {
		return &DecodeError{Code: CodeValidation, Reason: reasonTooLarge}
	}
	// Some HTTP stacks prefix a UTF-8 byte order mark; it carries nothing.
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if !json.Valid(b) {
		return &DecodeError{Code: CodeValidation, Reason: reasonMalformed}
	}
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return &DecodeError{Code: CodeValidation, Reason: reasonMalformed}
	}
	// b is one valid JSON object: its members are walked in place, each
	// value handed to its field as the bytes Nayax sent (no copy, no
	// token stream: this runs for every callback the relay answers). The
	// fields' UnmarshalJSON keep no reference to them.
	var first *DecodeError
	for i := 1; ; {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return first
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		keyEnd := stringEnd(b, i)
		key := b[i:keyEnd]
		i = skipSpace(b, skipSpace(b, keyEnd)+1) // past ':'
		end := valueEnd(b, i)
		if i >= len(b) || end <= i {
			return &DecodeError{Code: CodeValidation, Reason: reasonMalformed} // not reached: b is valid
		}
		value := b[i:end]
		i = end
		f := lookupKey(fields, key)
		if f == nil {
			continue
		}
		if err := f.dst.UnmarshalJSON(value); err != nil && first == nil {
			first = fieldError(f.name, err)
		}
	}
}

// The scanners below walk JSON that json.Valid accepted; on anything else
// they stop at the end of b rather than run past it.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at b[i] ('"').
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// valueEnd returns the index just past the value starting at b[i].
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i // a number, true, false or null: up to the next delimiter
	for ; j < len(b); j++ {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
	}
	return j
}

// lookupKey finds the field a member's key (as written, quotes
// included) names. A plain key is compared as it is; one with escapes or
// beyond ASCII is decoded first, as encoding/json decodes it.
func lookupKey(fields []field, raw []byte) *field {
	if len(raw) < 2 {
		return nil
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' || c >= 0x80 {
			var key string
			if json.Unmarshal(raw, &key) != nil {
				return nil
			}
			return lookup(fields, key)
		}
	}
	return lookup(fields, string(inner))
}

func lookup(fields []field, key string) *field {
	for i := range fields {
		if fields[i].name == key {
			return &fields[i]
		}
	}
	for i := range fields {
		if strings.EqualFold(fields[i].name, key) {
			return &fields[i]
		}
	}
	return nil
}

// fieldError names the field in err, prefixing the path of a nested
// DecodeError.
func fieldError(name string, err error) *DecodeError {
	var de *DecodeError
	if errors.As(err, &de) {
		f := name
		if de.Field != "" {
			f = name + "." + de.Field
		}
		return &DecodeError{Code: de.Code, Field: f, Reason: de.Reason}
	}
	return &DecodeError{Code: CodeValidation, Field: name, Reason: err.Error()}
}

// present reports whether a text field carries something besides spaces.
func present(t Text) bool { return strings.TrimSpace(t.S) != "" }
