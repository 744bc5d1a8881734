package nayax

import (
	"bytes"
	"encoding/json"
)

// Cortina decline codes (the Prepaid Card decline reasons) that sitelink
// answers Cortina Prepaid Cancel and Void with.
const (
	CortinaUnknownTransaction = 2   // transaction id unknown
	CortinaFormatError        = 8   // request cannot be parsed (format error)
	CortinaTimeout            = 992 // timeout exception
	CortinaMissingMandatory   = 997 // missing mandatory parameters
	CortinaInvalidFormat      = 998 // validation / request cannot be parsed
	CortinaGeneral            = 999 // general exception
)

// CortinaStatus is the Status of a Cortina answer. It differs from
// Spark's: Code instead of ErrorCode, and CustomDeclineCode, which the
// reference says always mirrors Code when Code is present.
type CortinaStatus struct {
	Verdict           string `json:"Verdict"`
	Code              *int   `json:"Code,omitempty"`
	CustomDeclineCode *int   `json:"CustomDeclineCode,omitempty"`
	StatusMessage     string `json:"StatusMessage,omitempty"`
}

// CortinaApproved returns an Approved Cortina status; Code is left out,
// since the reference sends it only on a decline.
func CortinaApproved(msg string) CortinaStatus {
	return CortinaStatus{Verdict: VerdictApproved, StatusMessage: msg}
}

// CortinaDeclined returns a Declined Cortina status with Code and
// CustomDeclineCode both set to code.
func CortinaDeclined(code int, msg string) CortinaStatus {
	c, d := code, code
	return CortinaStatus{Verdict: VerdictDeclined, Code: &c, CustomDeclineCode: &d, StatusMessage: msg}
}

// IsApproved reports whether the verdict is Approved, ignoring case and
// surrounding spaces like Status.IsApproved.
func (s CortinaStatus) IsApproved() bool {
	return Status{Verdict: s.Verdict}.IsApproved()
}

// CortinaResponse is the answer to a Cortina Prepaid Cancel or Void.
// Balance is optional prepaid balance data, passed through as given.
type CortinaResponse struct {
	Status  CortinaStatus   `json:"Status"`
	Balance json.RawMessage `json:"Balance,omitempty"`
}

// CortinaCancel is what sitelink keeps of a Cortina Prepaid Cancel or Void
// (PPCancelRequest, PPVoidRequest): Nayax telling the integrator that a
// transaction is cancelled. The nested objects are flattened; the
// comments name where each field comes from. CardData, PaymentInfo.Token,
// ActorInfo, CustomData, geolocations and products are never decoded at
// all, so they cannot leak from here.
//
// Ids documented as strings keep their literal text when they arrive as
// numbers: TransactionId 2.3658433596983443e+35 stays
// "2.3658433596983443e+35". A NayaxTransactionId or MachineId of 0 (which
// the reference example sends for "none") is left absent.
type CortinaCancel struct {
	TransactionId      Text    // BasicInfo.TransactionId
	NayaxTransactionId Int64   // BasicInfo.NayaxTransactionId
	SiteId             Literal // BasicInfo.SiteId
	MachineAuTime      Text    // BasicInfo.MachineAuTime (Cortina: ddMMyyHHmmss)
	Amount             Amount  // BasicInfo.Amount
	CurrencyCode       Text    // BasicInfo.CurrencyCode
	MachineId          Int64   // MachineInfo.Id
	TerminalId         Text    // MachineInfo.TerminalId
	HwSerial           Text    // DeviceInfo.HwSerial
	ReasonCode         Literal // ReasonCode
	ReasonText         Text    // ReasonText
	AuthAmount         Amount  // PaymentInfo.AuthAmount
	SettAmount         Amount  // PaymentInfo.SettAmount
	SrvTranId          Text    // PaymentInfo.SrvTranId
	AuthCode           Text    // PaymentInfo.AuthCode
	RRN                Text    // PaymentInfo.RRN
}

func (c *CortinaCancel) fields() []field {
	return []field{
		{"BasicInfo", object{
			{"TransactionId", &c.TransactionId},
			{"NayaxTransactionId", &c.NayaxTransactionId},
			{"SiteId", &c.SiteId},
			{"MachineAuTime", &c.MachineAuTime},
			{"Amount", &c.Amount},
			{"CurrencyCode", &c.CurrencyCode},
		}},
		{"MachineInfo", object{
			{"Id", &c.MachineId},
			{"TerminalId", &c.TerminalId},
		}},
		{"DeviceInfo", object{
			{"HwSerial", &c.HwSerial},
		}},
		{"ReasonCode", &c.ReasonCode},
		{"ReasonText", &c.ReasonText},
		{"PaymentInfo", object{
			{"AuthAmount", &c.AuthAmount},
			{"SettAmount", &c.SettAmount},
			{"SrvTranId", &c.SrvTranId},
			{"AuthCode", &c.AuthCode},
			{"RRN", &c.RRN},
		}},
	}
}

// DecodeCortinaCancel decodes and checks the body of a Cortina Prepaid
// Cancel or Void (both have the same shape). Errors are *DecodeError with
// Cortina codes: CortinaFormatError (8) for a body that is too large, not
// a JSON object, or has a field of the wrong type; CortinaMissingMandatory
// (997) when neither BasicInfo.TransactionId nor a non-zero
// BasicInfo.NayaxTransactionId is present, or neither MachineInfo.Id nor
// DeviceInfo.HwSerial. Answer with CortinaDeclineFor(err). On a field
// error the result holds the fields that did decode.
func DecodeCortinaCancel(b []byte) (CortinaCancel, error) {
	var c CortinaCancel
	err := decodeObject(b, c.fields())
	if c.NayaxTransactionId.Valid && c.NayaxTransactionId.V == 0 {
		c.NayaxTransactionId = Int64{}
	}
	if c.MachineId.Valid && c.MachineId.V == 0 {
		c.MachineId = Int64{}
	}
	if err == nil {
		err = c.check()
	}
	if err != nil {
		if err.Code == CodeValidation {
			err.Code = CortinaFormatError
		}
		return c, err
	}
	return c, nil
}

func (c *CortinaCancel) check() *DecodeError {
	switch {
	case !present(c.TransactionId) && !c.NayaxTransactionId.Valid:
		return &DecodeError{Code: CortinaMissingMandatory, Field: "BasicInfo.TransactionId or BasicInfo.NayaxTransactionId", Reason: reasonMissing}
	case !c.MachineId.Valid && !present(c.HwSerial):
		return &DecodeError{Code: CortinaMissingMandatory, Field: "MachineInfo.Id or DeviceInfo.HwSerial", Reason: reasonMissing}
	}
	return nil
}

// The allowlisted shape Forward writes: Cortina's own nesting, only the
// fields of CortinaCancel.
type (
	cortinaForward struct {
		BasicInfo   cortinaBasic   `json:"BasicInfo,omitzero"`
		MachineInfo cortinaMachine `json:"MachineInfo,omitzero"`
		DeviceInfo  cortinaDevice  `json:"DeviceInfo,omitzero"`
		ReasonCode  Literal        `json:"ReasonCode,omitzero"`
		ReasonText  Text           `json:"ReasonText,omitzero"`
		PaymentInfo cortinaPayment `json:"PaymentInfo,omitzero"`
	}
	cortinaBasic struct {
		TransactionId      Text    `json:"TransactionId,omitzero"`
		NayaxTransactionId Int64   `json:"NayaxTransactionId,omitzero"`
		SiteId             Literal `json:"SiteId,omitzero"`
		MachineAuTime      Text    `json:"MachineAuTime,omitzero"`
		Amount             Amount  `json:"Amount,omitzero"`
		CurrencyCode       Text    `json:"CurrencyCode,omitzero"`
	}
	cortinaMachine struct {
		Id         Int64 `json:"Id,omitzero"`
		TerminalId Text  `json:"TerminalId,omitzero"`
	}
	cortinaDevice struct {
		HwSerial Text `json:"HwSerial,omitzero"`
	}
	cortinaPayment struct {
		AuthAmount Amount `json:"AuthAmount,omitzero"`
		SettAmount Amount `json:"SettAmount,omitzero"`
		SrvTranId  Text   `json:"SrvTranId,omitzero"`
		AuthCode   Text   `json:"AuthCode,omitzero"`
		RRN        Text   `json:"RRN,omitzero"`
	}
)

// Forward returns the body the relay may publish on MQTT for this cancel
// (the cancel command): the Cortina nesting with only the allowlisted
// fields, {"BasicInfo":{…},"MachineInfo":{"Id","TerminalId"},
// "DeviceInfo":{"HwSerial"},"ReasonCode","ReasonText","PaymentInfo":
// {"AuthAmount","SettAmount","SrvTranId","AuthCode","RRN"}}, absent fields
// left out. DecodeCortinaCancel of it gives c back. A Cortina cancel
// carries no card hash: k is not used (every Forward takes the key, so the
// relay forwards nothing without it).
func (c CortinaCancel) Forward(k CardKey) json.RawMessage {
	return forward(cortinaForward{
		BasicInfo: cortinaBasic{
			TransactionId:      c.TransactionId,
			NayaxTransactionId: c.NayaxTransactionId,
			SiteId:             c.SiteId,
			MachineAuTime:      c.MachineAuTime,
			Amount:             c.Amount,
			CurrencyCode:       c.CurrencyCode,
		},
		MachineInfo: cortinaMachine{Id: c.MachineId, TerminalId: c.TerminalId},
		DeviceInfo:  cortinaDevice{HwSerial: c.HwSerial},
		ReasonCode:  c.ReasonCode,
		ReasonText:  c.ReasonText,
		PaymentInfo: cortinaPayment{
			AuthAmount: c.AuthAmount,
			SettAmount: c.SettAmount,
			SrvTranId:  c.SrvTranId,
			AuthCode:   c.AuthCode,
			RRN:        c.RRN,
		},
	})
}

// Forward returns the body the relay may publish on MQTT for this
// StopCallback (the stop command): every field but CardUid, with CardHash
// replaced by k.Hash of it (left out with the zero key): Nayax's CardHash
// never travels. DecodeStopCallback of it gives r back without CardUid
// and with the keyed CardHash.
func (r StopCallbackRequest) Forward(k CardKey) json.RawMessage {
	r.CardUid = Text{}
	r.CardHash = k.text(r.CardHash)
	return forward(&r)
}

// Forward returns the body the relay may publish on MQTT for this
// TransactionCallback (the authorize command): every field but CardUid,
// with CardHash replaced by k.Hash of it, as StopCallbackRequest.Forward.
// DecodeTransactionCallback of it gives r back without CardUid and with
// the keyed CardHash.
func (r TransactionCallbackRequest) Forward(k CardKey) json.RawMessage {
	r.CardUid = Text{}
	r.CardHash = k.text(r.CardHash)
	return forward(&r)
}

// Forward returns the body the relay may publish on MQTT for this
// DeclineCallback: all of its fields, none of which is card data (k is
// not used).
func (r DeclineCallbackRequest) Forward(k CardKey) json.RawMessage {
	return forward(&r)
}

// Forward returns the body the relay may publish on MQTT for this
// TimeoutCallback: all of its fields, none of which is card data (k is
// not used).
func (r TimeoutCallbackRequest) Forward(k CardKey) json.RawMessage {
	return forward(&r)
}

// object decodes a nested JSON object into fields; null means absent.
type object []field

func (o object) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, null) {
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return errNotObject
	}
	if err := decodeObject(b, o); err != nil {
		return err
	}
	return nil
}
