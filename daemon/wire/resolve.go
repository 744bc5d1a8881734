package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Resolve is the body of a resolve command (and of the local API's
// POST /v1/resolve): an operator who has settled a needs-reconciliation
// session with Nayax or the customer closes it, saying how. The note is
// kept in the session's history and travels in its session event, so it
// must never carry card data.
type Resolve struct {
	SparkTransactionId string
	Note               string
	By                 string `json:",omitempty"` // who resolved it: an operator's name or tool
}

// Bounds of a Resolve: a note is a sentence or two, not a document.
const (
	MaxResolveNote = 500
	MaxResolveBy   = 64
)

// DecodeResolve decodes and checks a resolve body.
func DecodeResolve(body []byte) (Resolve, error) {
	var r Resolve
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("resolve: %w", err)
	}
	return r, r.Check()
}

// Check reports what is wrong with r: a missing id or note, a note or
// name too long or with control characters.
func (r Resolve) Check() error {
	switch {
	case r.SparkTransactionId == "":
		return errors.New("SparkTransactionId: required")
	case len(r.SparkTransactionId) > 64 || !printable(r.SparkTransactionId):
		return errors.New("SparkTransactionId: not a transaction id")
	case strings.TrimSpace(r.Note) == "":
		return errors.New("Note: required (say how the transaction was settled with Nayax or the customer)")
	case utf8.RuneCountInString(r.Note) > MaxResolveNote:
		return fmt.Errorf("Note: longer than %d characters", MaxResolveNote)
	case !printable(r.Note):
		return errors.New("Note: control characters or invalid UTF-8")
	case longDigitRun(r.Note):
		return errors.New("Note: a run of 12 or more digits looks like a card number; never write card data here")
	case longDigitRun(r.By):
		return errors.New("By: a run of 12 or more digits looks like a card number; never write card data here")
	case utf8.RuneCountInString(r.By) > MaxResolveBy || !printable(r.By):
		return fmt.Errorf("By: at most %d printable characters", MaxResolveBy)
	}
	return nil
}

// longDigitRun reports a run of 12 or more digits (any script's, full
// width included) with separators between them allowed — spaces, dashes,
// dots, slashes, underscores — the shapes a card number (PAN) is written
// in, which must not reach the ledger, the logs or MQTT. Letters, colons
// and commas end a run, so a date with a time ("2026-12-06 10:30") passes.
func longDigitRun(s string) bool {
	n := 0
	for _, c := range s {
		switch {
		case unicode.IsDigit(c):
			if n++; n >= 12 {
				return true
			}
		case unicode.IsSpace(c) || unicode.Is(unicode.Pd, c) || strings.ContainsRune("./_\u00b7\u2024\uff0e\uff0f\uff3f", c):
		default:
			n = 0
		}
	}
	return false
}

func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) < 0
}
