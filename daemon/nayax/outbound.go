package nayax

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"reflect"
	"strings"
)

// The calls sitelink makes to Spark (POST {base}/{call}).
const (
	CallStartAuthentication = "StartAuthentication"
	CallTriggerTransaction  = "TriggerTransaction"
	CallSettlement          = "Settlement"
	CallCancelTransaction   = "CancelTransaction"
	CallExternalSettlement  = "ExternalSettlement"
	CallExternalCancel      = "ExternalCancel"
)

// TerminalIdType values: what TerminalId names.
const (
	TerminalHWSerial  = 1 // the terminal's hardware serial
	TerminalMachineID = 2 // the Nayax machine id
)

// CancellationType values: the terminal's flow.
const (
	CancellationPreAuth      = 1 // pre-authorization flow: a Cancel
	CancellationPreSelection = 2 // pre-selection flow: a Void
)

// The request and response types below follow spark.openapi.yaml. They
// marshal to what Nayax expects (absent fields are left out) and unmarshal
// leniently, like the callbacks: numbers for strings and back, names in
// any case, unknown fields ignored, and a *DecodeError (code 26) for a
// field of the wrong type. They serve the relay reading Nayax's answers,
// the edge building requests, and the simulator reading both.

// StartAuthenticationRequest authenticates one SparkTransactionId before
// any other call on it. Cipher is built by Cipher from the same Random.
type StartAuthenticationRequest struct {
	TokenId            Int64 `json:"TokenId,omitzero"`
	TerminalId         Text  `json:"TerminalId,omitzero"`
	TerminalIdType     Int64 `json:"TerminalIdType,omitzero"`
	Random             Text  `json:"Random,omitzero"`
	Cipher             Text  `json:"Cipher,omitzero"`
	SparkTransactionId Text  `json:"SparkTransactionId,omitzero"`
}

func (r *StartAuthenticationRequest) check() *DecodeError {
	switch {
	case !r.TokenId.Valid:
		return missing("TokenId")
	case r.TokenId.V <= 0 || r.TokenId.V > math.MaxInt32:
		return invalid("TokenId", "must be a positive 32-bit integer")
	}
	if err := checkTerminal(r.TerminalId, r.TerminalIdType); err != nil {
		return err
	}
	switch {
	case !present(r.Random):
		return missing("Random")
	case !validRandom(r.Random.S):
		return invalid("Random", "must be 17 characters of [A-Za-z0-9]")
	case !present(r.Cipher):
		return missing("Cipher")
	case !wholeBlocks(r.Cipher.S):
		return invalid("Cipher", "must be Base64 of whole AES blocks")
	case !present(r.SparkTransactionId):
		return missing("SparkTransactionId")
	}
	return nil
}

// UnmarshalJSON decodes leniently; errors are *DecodeError.
func (r *StartAuthenticationRequest) UnmarshalJSON(b []byte) error {
	return unmarshalFields(b, r)
}

// StartAuthenticationResponse is Nayax's answer to StartAuthentication.
// HashedSparkTransactionId must equal HashSparkID of the id sent.
type StartAuthenticationResponse struct {
	HashedSparkTransactionId Text    `json:"HashedSparkTransactionId,omitzero"`
	Status                   *Status `json:"Status,omitempty"`
}

// UnmarshalJSON decodes leniently; errors are *DecodeError.
func (r *StartAuthenticationResponse) UnmarshalJSON(b []byte) error {
	return unmarshalFields(b, r)
}

// TriggerTransactionRequest wakes the terminal for a Remote Start.
// Amount is required by Nayax in the pre-selection flow only;
// TransactionTimeout (seconds to wait for a card) must be above 0.
type TriggerTransactionRequest struct {
	SparkTransactionId Text   `json:"SparkTransactionId,omitzero"`
	TerminalId         Text   `json:"TerminalId,omitzero"`
	TerminalIdType     Int64  `json:"TerminalIdType,omitzero"`
	Amount             Amount `json:"Amount,omitzero"`
	PosDisplay         Text   `json:"PosDisplay,omitzero"`
	EReceiptData       Text   `json:"EReceiptData,omitzero"`
	TransactionTimeout Int64  `json:"TransactionTimeout,omitzero"`
}

func (r *TriggerTransactionRequest) check() *DecodeError {
	if !present(r.SparkTransactionId) {
		return missing("SparkTransactionId")
	}
	if err := checkTerminal(r.TerminalId, r.TerminalIdType); err != nil {
		return err
	}
	if r.Amount.Valid && r.Amount.V < 0 {
		return invalid("Amount", "negative amount")
	}
	switch {
	case !r.TransactionTimeout.Valid:
		return missing("TransactionTimeout")
	case r.TransactionTimeout.V <= 0 || r.TransactionTimeout.V > math.MaxInt16:
		return invalid("TransactionTimeout", "must be 1 to 32767 seconds")
	}
	return nil
}

// UnmarshalJSON decodes leniently; errors are *DecodeError.
func (r *TriggerTransactionRequest) UnmarshalJSON(b []byte) error {
	return unmarshalFields(b, r)
}

// TriggerTransactionResponse is Nayax's answer to TriggerTransaction.
type TriggerTransactionResponse struct {
	SparkTransactionId Text    `json:"SparkTransactionId,omitzero"`
	Status             *Status `json:"Status,omitempty"`
}

// UnmarshalJSON decodes leniently; errors are *DecodeError.
func (r *TriggerTransactionResponse) UnmarshalJSON(b []byte) error {
	return unmarshalFields(b, r)
}

// SettlementRequest charges the final amount of a Remote Start
// (pre-authorization flow).
type SettlementRequest struct {
	NayaxTransactionId Int64   `json:"NayaxTransactionId,omitzero"`
	SparkTransactionId Text    `json:"SparkTransactionId,omitzero"`
	SiteId             Literal `json:"SiteId,omitzero"`
	TerminalId         Text    `json:"TerminalId,omitzero"`
	TerminalIdType     Int64   `json:"TerminalIdType,omitzero"`
	Amount             Amount  `json:"Amount,omitzero"`
	EReceiptData       Text    `json:"EReceiptData,omitzero"`
}

func (r *SettlementRequest) check() *DecodeError {
	if err := checkNayaxID(r.NayaxTransactionId); err != nil {
		return err
	}
	if !present(r.SparkTransactionId) {
		return missing("SparkTransactionId")
	}
	if err := checkTerminal(r.TerminalId, r.TerminalIdType); err != nil {
		return err
	}
	return checkAmount("Amount", r.Amount)
}

// UnmarshalJSON decodes leniently; errors are *DecodeError.
func (r *SettlementRequest) UnmarshalJSON(b []byte) error {
	return unmarshalFields(b, r)
}

// SettlementResponse is Nayax's answer to Settlement.
type SettlementResponse struct {
	SparkTransactionId Text    `json:"SparkTransactionId,omitzero"`
	Status             *Status `json:"Status,omitempty"`
	CardBrand          Text    `json:"CardBrand,omitzero"`
	CardLast4Digits    Text    `json:"CardLast4Digits,omitzero"`
	AuthCode           Text    `json:"AuthCode,omitzero"`
	MachineAuTime      Text    `json:"MachineAuTime,omitzero"`
	AuTime             Text    `json:"AuTime,omitzero"`
	SeTime             Text    `json:"SeTime,omitzero"`
	CurrencyCode       Text    `json:"CurrencyCode,omitzero"`
	CurrencyNumeric    Text    `json:"CurrencyNumeric,omitzero"`
	FiscalRrn          Text    `json:"FiscalRrn,omitzero"`
	NayaxRRN           Text    `json:"NayaxRRN,omitzero"`
	Amount             Amount  `json:"Amount,omitzero"`
}

// UnmarshalJSON decodes leniently; errors are *DecodeError.
func (r *SettlementResponse) UnmarshalJSON(b []byte) error {
	return unmarshalFields(b, r)
}

// CancelTransactionRequest cancels (pre-authorization) or voids
// (pre-selection) a Remote Start that provided no service. ReasonCode is
// an integer in this call's schema and a string in ExternalCancel's; a
// Literal keeps whichever the sender chose.
type CancelTransactionRequest struct {
	NayaxTransactionId Int64   `json:"NayaxTransactionId,omitzero"`
	SparkTransactionId Text    `json:"SparkTransactionId,omitzero"`
	SiteId             Literal `json:"SiteId,omitzero"`
	MachineAuTime      Text    `json:"MachineAuTime,omitzero"`
	TerminalId         Text    `json:"TerminalId,omitzero"`
	TerminalIdType     Int64   `json:"TerminalIdType,omitzero"`
	CancellationType   Int64   `json:"CancellationType,omitzero"`
	ReasonCode         Literal `json:"ReasonCode,omitzero"`
	ReasonText         Text    `json:"ReasonText,omitzero"`
	CancelAmount       Amount  `json:"CancelAmount,omitzero"`
}

func (r *CancelTransactionRequest) check() *DecodeError {
	if err := checkNayaxID(r.NayaxTransactionId); err != nil {
		return err
	}
	if !present(r.SparkTransactionId) {
		return missing("SparkTransactionId")
	}
	if err := checkTerminal(r.TerminalId, r.TerminalIdType); err != nil {
		return err
	}
	if err := checkCancellationType(r.CancellationType); err != nil {
		return err
	}
	return checkAmount("CancelAmount", r.CancelAmount)
}

// UnmarshalJSON decodes leniently; errors are *DecodeError.
func (r *CancelTransactionRequest) UnmarshalJSON(b []byte) error {
	return unmarshalFields(b, r)
}

// CancelTransactionResponse is Nayax's answer to CancelTransaction.
type CancelTransactionResponse struct {
	SparkTransactionId Text    `json:"SparkTransactionId,omitzero"`
	Status             *Status `json:"Status,omitempty"`
	CardBrand          Text    `json:"CardBrand,omitzero"`
	CardLast4Digits    Text    `json:"CardLast4Digits,omitzero"`
	AuthCode           Text    `json:"AuthCode,omitzero"`
	MachineAuTime      Text    `json:"MachineAuTime,omitzero"`
	AuTime             Text    `json:"AuTime,omitzero"`
	CancelTime         Text    `json:"CancelTime,omitzero"`
	CurrencyCode       Text    `json:"CurrencyCode,omitzero"`
	CurrencyNumeric    Text    `json:"CurrencyNumeric,omitzero"`
	FiscalRrn          Text    `json:"FiscalRrn,omitzero"`
	NayaxRRN           Text    `json:"NayaxRRN,omitzero"`
}

// UnmarshalJSON decodes leniently; errors are *DecodeError.
func (r *CancelTransactionResponse) UnmarshalJSON(b []byte) error {
	return unmarshalFields(b, r)
}

// ExternalSettlementRequest charges the final amount of a transaction
// authorized on the terminal itself, within 48 h. The ids (and SiteId)
// must echo the authorization exactly.
type ExternalSettlementRequest struct {
	NayaxTransactionId Int64         `json:"NayaxTransactionId,omitzero"`
	SparkTransactionId Text          `json:"SparkTransactionId,omitzero"`
	MachineAuTime      Text          `json:"MachineAuTime,omitzero"`
	SiteId             Literal       `json:"SiteId,omitzero"`
	TerminalId         Text          `json:"TerminalId,omitzero"`
	TerminalIdType     Int64         `json:"TerminalIdType,omitzero"`
	Amount             Amount        `json:"Amount,omitzero"`
	EReceiptData       Text          `json:"EReceiptData,omitzero"`
	ProductInfo        []ProductInfo `json:"ProductInfo,omitempty"`
}

func (r *ExternalSettlementRequest) check() *DecodeError {
	if err := checkNayaxID(r.NayaxTransactionId); err != nil {
		return err
	}
	// The schema marks SiteId optional, but the reference text lists it
	// among the identifiers a settlement must echo, and a missing SiteId
	// is its first cause of code 50.
	if !r.SiteId.Valid() {
		return missing("SiteId")
	}
	if err := checkTerminal(r.TerminalId, r.TerminalIdType); err != nil {
		return err
	}
	return checkAmount("Amount", r.Amount)
}

// UnmarshalJSON decodes leniently; errors are *DecodeError.
func (r *ExternalSettlementRequest) UnmarshalJSON(b []byte) error {
	return unmarshalFields(b, r)
}

// ProductInfo is one product line of an ExternalSettlement, for operators
// with a products map in Nayax Core.
type ProductInfo struct {
	Value    Amount `json:"Value,omitzero"`
	Code     Int64  `json:"Code,omitzero"`
	Quantity Int64  `json:"Quantity,omitzero"`
}

// UnmarshalJSON decodes leniently; errors are *DecodeError.
func (p *ProductInfo) UnmarshalJSON(b []byte) error {
	return unmarshalFields(b, p)
}

// productList decodes a JSON array of ProductInfo; null leaves it nil.
type productList struct{ p *[]ProductInfo }

func (l productList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*l.p = nil
	if bytes.Equal(b, null) {
		return nil
	}
	if len(b) == 0 || b[0] != '[' {
		return errNotArray
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return errBadJSONToken
	}
	if len(raws) == 0 {
		return nil // like an absent list, which is how it marshals
	}
	out := make([]ProductInfo, len(raws))
	for i, raw := range raws {
		if err := out[i].UnmarshalJSON(raw); err != nil {
			return err
		}
	}
	*l.p = out
	return nil
}

// ExternalSettlementResponse is Nayax's answer to ExternalSettlement.
// Code 50 means the settlement failed; Nayax allows up to 5 retries in 24 h.
type ExternalSettlementResponse struct {
	SparkTransactionId Text    `json:"SparkTransactionId,omitzero"`
	Status             *Status `json:"Status,omitempty"`
	AuthCode           Text    `json:"AuthCode,omitzero"`
	MachineAuTime      Text    `json:"MachineAuTime,omitzero"`
	Amount             Amount  `json:"Amount,omitzero"`
}

// UnmarshalJSON decodes leniently; errors are *DecodeError.
func (r *ExternalSettlementResponse) UnmarshalJSON(b []byte) error {
	return unmarshalFields(b, r)
}

// ExternalCancelRequest releases the funds of a transaction authorized on
// the terminal itself when no service will be provided; it must be sent at
// once. SiteId must echo exactly what Nayax gave (hence a Literal), and
// ReasonCode is a string in this call's schema ("01").
type ExternalCancelRequest struct {
	NayaxTransactionId Int64   `json:"NayaxTransactionId,omitzero"`
	SparkTransactionId Text    `json:"SparkTransactionId,omitzero"`
	SiteId             Literal `json:"SiteId,omitzero"`
	MachineAuTime      Text    `json:"MachineAuTime,omitzero"`
	TerminalId         Text    `json:"TerminalId,omitzero"`
	TerminalIdType     Int64   `json:"TerminalIdType,omitzero"`
	CancellationType   Int64   `json:"CancellationType,omitzero"`
	ReasonCode         Literal `json:"ReasonCode,omitzero"`
	ReasonText         Text    `json:"ReasonText,omitzero"`
	CancelAmount       Amount  `json:"CancelAmount,omitzero"`
}

func (r *ExternalCancelRequest) check() *DecodeError {
	if err := checkNayaxID(r.NayaxTransactionId); err != nil {
		return err
	}
	// Optional in the schema, but Nayax matches the transaction on it and
	// answers "not found" without it.
	if !r.SiteId.Valid() {
		return missing("SiteId")
	}
	if err := checkTerminal(r.TerminalId, r.TerminalIdType); err != nil {
		return err
	}
	if err := checkCancellationType(r.CancellationType); err != nil {
		return err
	}
	if strings.TrimSpace(r.ReasonCode.Value()) == "" && !present(r.ReasonText) {
		return missing("ReasonCode or ReasonText")
	}
	return checkAmount("CancelAmount", r.CancelAmount)
}

// UnmarshalJSON decodes leniently; errors are *DecodeError.
func (r *ExternalCancelRequest) UnmarshalJSON(b []byte) error {
	return unmarshalFields(b, r)
}

// ExternalCancelResponse is Nayax's answer to ExternalCancel. Code 51
// means the cancel failed; Nayax's AutoCancel retries it if the operator
// has it enabled.
type ExternalCancelResponse struct {
	SparkTransactionId Text    `json:"SparkTransactionId,omitzero"`
	Status             *Status `json:"Status,omitempty"`
	AuthCode           Text    `json:"AuthCode,omitzero"`
	MachineAuTime      Text    `json:"MachineAuTime,omitzero"`
}

// UnmarshalJSON decodes leniently; errors are *DecodeError.
func (r *ExternalCancelResponse) UnmarshalJSON(b []byte) error {
	return unmarshalFields(b, r)
}

// ValidateOutbound checks a request body for one of the calls sitelink
// makes (the Call constants, StartAuthentication included) the way Nayax
// would: nil, or a *DecodeError with CodeValidation (not a JSON object, a
// field of the wrong type or out of range, an unknown call) or
// CodeMissingMandatory. Mandatory fields:
//
//   - StartAuthentication: TokenId, TerminalId, TerminalIdType, Random
//     (17 characters of [A-Za-z0-9]), Cipher (Base64 of AES blocks),
//     SparkTransactionId.
//   - TriggerTransaction: SparkTransactionId, TerminalId, TerminalIdType,
//     TransactionTimeout (1 to 32767). Amount, which only the
//     pre-selection flow needs, must not be negative when present.
//   - Settlement: NayaxTransactionId, SparkTransactionId, TerminalId,
//     TerminalIdType, Amount.
//   - CancelTransaction: NayaxTransactionId, SparkTransactionId,
//     TerminalId, TerminalIdType, CancellationType, CancelAmount.
//   - ExternalSettlement: NayaxTransactionId, SiteId, TerminalId,
//     TerminalIdType, Amount.
//   - ExternalCancel: NayaxTransactionId, SiteId, TerminalId,
//     TerminalIdType, CancellationType, ReasonCode or ReasonText,
//     CancelAmount.
//
// TerminalIdType and CancellationType must be 1 or 2, amounts must not be
// negative, and a NayaxTransactionId of 0 counts as missing.
func ValidateOutbound(call string, body []byte) error {
	r := newOutbound(call)
	if r == nil {
		return &DecodeError{Code: CodeValidation, Reason: "unknown call"}
	}
	return decode(body, r)
}

// CanonicalOutbound is body as call's request, checked as
// ValidateOutbound does and written again: each member of the call's
// schema at most once, spelled as the schema spells it, nothing else.
// Whoever checks a request it did not build (the relay, for a site's
// request) checks this and sends this, so that no second spelling of a
// member ("nayaxtransactionid", or one that only Unicode case folding
// equates) can carry another value past the check.
func CanonicalOutbound(call string, body []byte) (json.RawMessage, error) {
	r := newOutbound(call)
	if r == nil {
		return nil, &DecodeError{Code: CodeValidation, Reason: "unknown call"}
	}
	if err := decode(body, r); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // a string SiteId goes back byte for byte
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

// newOutbound is a new request of call's type, nil for an unknown call.
func newOutbound(call string) request {
	var r request
	switch call {
	case CallStartAuthentication:
		r = new(StartAuthenticationRequest)
	case CallTriggerTransaction:
		r = new(TriggerTransactionRequest)
	case CallSettlement:
		r = new(SettlementRequest)
	case CallCancelTransaction:
		r = new(CancelTransactionRequest)
	case CallExternalSettlement:
		r = new(ExternalSettlementRequest)
	case CallExternalCancel:
		r = new(ExternalCancelRequest)
	}
	return r
}

// unmarshalFields is the body of the lenient UnmarshalJSON methods: the
// struct p points to is zeroed, then decoded by its json tags. null
// changes nothing, as encoding/json expects of an Unmarshaler.
func unmarshalFields(b []byte, p any) error {
	if bytes.Equal(bytes.TrimSpace(b), null) {
		return nil
	}
	reflect.ValueOf(p).Elem().SetZero()
	if err := decodeObject(b, tagFields(p)); err != nil {
		return err
	}
	return nil
}

func invalid(field, reason string) *DecodeError {
	return &DecodeError{Code: CodeValidation, Field: field, Reason: reason}
}

func checkNayaxID(id Int64) *DecodeError {
	switch {
	case !id.Valid || id.V == 0:
		return missing("NayaxTransactionId")
	case id.V < 0:
		return invalid("NayaxTransactionId", "negative id")
	}
	return nil
}

func checkTerminal(id Text, typ Int64) *DecodeError {
	switch {
	case !present(id):
		return missing("TerminalId")
	case !typ.Valid:
		return missing("TerminalIdType")
	case typ.V != TerminalHWSerial && typ.V != TerminalMachineID:
		return invalid("TerminalIdType", "must be 1 (HW serial) or 2 (machine id)")
	}
	return nil
}

func checkCancellationType(t Int64) *DecodeError {
	switch {
	case !t.Valid:
		return missing("CancellationType")
	case t.V != CancellationPreAuth && t.V != CancellationPreSelection:
		return invalid("CancellationType", "must be 1 (pre-authorization cancel) or 2 (pre-selection void)")
	}
	return nil
}

func checkAmount(name string, a Amount) *DecodeError {
	switch {
	case !a.Valid:
		return missing(name)
	case a.V < 0:
		return invalid(name, "negative amount")
	}
	return nil
}

// wholeBlocks reports whether s is standard Base64 of one or more AES
// blocks, the only shape a Cipher can have.
func wholeBlocks(s string) bool {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	return err == nil && len(raw) > 0 && len(raw)%16 == 0
}
