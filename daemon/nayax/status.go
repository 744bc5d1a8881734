package nayax

import (
	"bytes"
	"strings"
)

// Verdicts of a Status.
const (
	VerdictApproved = "Approved"
	VerdictDeclined = "Declined"
)

// Spark response codes (ResponseCode in spark.openapi.yaml) that sitelink
// sends or acts on.
const (
	CodeNone                     = 0   // no errors
	CodeUnknownMachine           = 25  // unknown machine id
	CodeValidation               = 26  // validation error: malformed body, wrong field type
	CodeUnknownTransaction       = 27  // unknown transaction id
	CodeAlreadyCancelled         = 28  // already cancelled
	CodeNotFoundOrOld            = 32  // transaction not found or too old
	CodeAuthFailed               = 33  // failed to authenticate
	CodePOSTimeout               = 44  // timeout on POS device (DeclineCallback)
	CodePOSCancelled             = 45  // cancelled on POS device (DeclineCallback)
	CodeExternalSettlementFailed = 50  // ExternalSettlement failed (retry up to 5 times in 24 h)
	CodeExternalCancelFailed     = 51  // ExternalCancel failed (Nayax AutoCancel may take over)
	CodeNotConfigured            = 52  // not configured
	CodeTimeout                  = 992 // timeout
	CodeMissingMandatory         = 997 // a mandatory field is missing
	CodeGeneral                  = 999 // general error
)

// Status is Spark's result object, used both for the AuthStatus Nayax
// sends and for the Status of every answer sitelink gives.
type Status struct {
	Verdict          string `json:"Verdict"`
	ErrorCode        *int   `json:"ErrorCode,omitempty"`
	ErrorDescription string `json:"ErrorDescription,omitempty"`
	StatusMessage    string `json:"StatusMessage,omitempty"`
}

// Approved returns an Approved status with desc (Nayax's examples use
// "No Errors") as its ErrorDescription.
func Approved(desc string) Status {
	return Status{Verdict: VerdictApproved, ErrorDescription: desc}
}

// Declined returns a Declined status with a Spark code and a description.
func Declined(code int, desc string) Status {
	return Status{Verdict: VerdictDeclined, ErrorCode: &code, ErrorDescription: desc}
}

// IsApproved reports whether the verdict is Approved. It ignores case and
// surrounding spaces, since Nayax pads its own descriptions (" No Errors ").
// Any other verdict, including an unknown one, counts as not approved.
func (s Status) IsApproved() bool {
	return strings.EqualFold(strings.TrimSpace(s.Verdict), VerdictApproved)
}

// Code returns ErrorCode, or CodeNone when it is absent.
func (s Status) Code() int {
	if s.ErrorCode == nil {
		return CodeNone
	}
	return *s.ErrorCode
}

// UnmarshalJSON decodes a Status leniently, like the callbacks: string
// fields may arrive as numbers and ErrorCode as a numeric string. Field
// names match case-insensitively and unknown fields are ignored.
func (s *Status) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, null) {
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return errNotObject
	}
	var verdict, desc, msg Text
	var code Int64
	if err := decodeObject(b, []field{
		{"Verdict", &verdict},
		{"ErrorCode", &code},
		{"ErrorDescription", &desc},
		{"StatusMessage", &msg},
	}); err != nil {
		return err
	}
	*s = Status{Verdict: verdict.S, ErrorDescription: desc.S, StatusMessage: msg.S}
	if code.Valid {
		c := int(code.V)
		if int64(c) != code.V {
			return &DecodeError{Code: CodeValidation, Field: "ErrorCode", Reason: errIntRange.Error()}
		}
		s.ErrorCode = &c
	}
	return nil
}

// optStatus decodes into a *Status field: null leaves it nil.
type optStatus struct{ p **Status }

func (o optStatus) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, null) {
		*o.p = nil
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return errNotObject
	}
	s := new(Status)
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	*o.p = s
	return nil
}
