package wire_test

import (
	"strings"
	"testing"

	"github.com/sitelink/sitelink/daemon/wire"
)

func TestDecodeResolve(t *testing.T) {
	for _, tc := range []struct {
		name, body, err string
	}{
		{"ok", `{"SparkTransactionId":"abc","Note":"refunded by Nayax support, case 123","By":"ops"}`, ""},
		{"no by", `{"SparkTransactionId":"abc","Note":"settled by hand"}`, ""},
		{"not json", `{"SparkTransactionId":`, "resolve:"},
		{"no id", `{"Note":"x"}`, "SparkTransactionId: required"},
		{"bad id", `{"SparkTransactionId":"a\nb","Note":"x"}`, "not a transaction id"},
		{"no note", `{"SparkTransactionId":"abc","Note":"  "}`, "Note: required"},
		{"long note", `{"SparkTransactionId":"abc","Note":"` + strings.Repeat("é", wire.MaxResolveNote+1) + `"}`, "longer than"},
		{"card number", `{"SparkTransactionId":"abc","Note":"card 4111 1111 1111 1111 refunded"}`, "card number"},
		{"card number with dots", `{"SparkTransactionId":"abc","Note":"card 4111.1111.1111.1111"}`, "card number"},
		{"card number with slashes", `{"SparkTransactionId":"abc","Note":"4111/1111/1111/1111"}`, "card number"},
		{"card number with underscores", `{"SparkTransactionId":"abc","Note":"4111_1111_1111_1111"}`, "card number"},
		{"card number, en dashes", `{"SparkTransactionId":"abc","Note":"4111\u20131111\u20131111\u20131111"}`, "card number"},
		{"card number, full width", `{"SparkTransactionId":"abc","Note":"\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11"}`, "card number"},
		{"card number in By", `{"SparkTransactionId":"abc","Note":"refunded","By":"4111 1111 1111 1111"}`, "By: a run"},
		{"date and time ok", `{"SparkTransactionId":"abc","Note":"refunded 2026-12-06 10:30, receipt 4711"}`, ""},
		{"case number ok", `{"SparkTransactionId":"abc","Note":"Nayax case 12345678901, refunded 2026-12-01"}`, ""},
		{"control", `{"SparkTransactionId":"abc","Note":"a\u0007b"}`, "control characters"},
		{"long by", `{"SparkTransactionId":"abc","Note":"x","By":"` + strings.Repeat("b", wire.MaxResolveBy+1) + `"}`, "By:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wire.DecodeResolve([]byte(tc.body))
			if tc.err == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func FuzzDecodeResolve(f *testing.F) {
	f.Add([]byte(`{"SparkTransactionId":"abc","Note":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := wire.DecodeResolve(b)
		if err == nil && (r.SparkTransactionId == "" || strings.TrimSpace(r.Note) == "" || len(r.Note) > 4*wire.MaxResolveNote) {
			t.Fatalf("accepted %+v", r)
		}
	})
}
