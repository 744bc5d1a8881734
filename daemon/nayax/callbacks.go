package nayax

import "strings"

// StopCallbackRequest is what Spark posts when a card is tapped to stop a
// session. Nayax has already matched the card to the session; sitelink
// still checks that ids, machine and CardHash agree with it.
type StopCallbackRequest struct {
	StopSiteId           Literal `json:"StopSiteId,omitzero"`
	MachineId            Int64   `json:"MachineId,omitzero"`
	HwSerial             Text    `json:"HwSerial,omitzero"`
	CardLast4Digits      Text    `json:"CardLast4Digits,omitzero"`
	CardHash             Text    `json:"CardHash,omitzero"`
	SparkTransactionId   Text    `json:"SparkTransactionId,omitzero"`
	NayaxTransactionId   Int64   `json:"NayaxTransactionId,omitzero"`
	CardUid              Text    `json:"CardUid,omitzero"`
	MachineAuTime        Text    `json:"MachineAuTime,omitzero"`
	ServiceStationNumber Text    `json:"ServiceStationNumber,omitzero"`
}

func (r *StopCallbackRequest) check() *DecodeError {
	switch {
	case !present(r.SparkTransactionId) && !r.NayaxTransactionId.Valid:
		return missing("SparkTransactionId or NayaxTransactionId")
	case !r.MachineId.Valid && !present(r.HwSerial):
		return missing("MachineId or HwSerial")
	case !present(r.CardHash):
		return missing("CardHash")
	}
	return nil
}

// StopCallbackOutcome is the answer to a StopCallback. Nayax only needs a
// 200 within 5 s; the body tells it whether the stop was accepted.
type StopCallbackOutcome struct {
	Status               Status `json:"Status"`
	SparkTransactionId   string `json:"SparkTransactionId,omitempty"`
	ServiceStationNumber string `json:"ServiceStationNumber,omitempty"`
}

// TransactionCallbackRequest is what Spark posts when the card for a
// session sitelink triggered has been authorized (or not: see
// AuthStatus).
type TransactionCallbackRequest struct {
	NayaxTransactionId Int64   `json:"NayaxTransactionId,omitzero"`
	SparkTransactionId Text    `json:"SparkTransactionId,omitzero"`
	SiteId             Literal `json:"SiteId,omitzero"`
	TerminalId         Text    `json:"TerminalId,omitzero"`
	MachineId          Int64   `json:"MachineId,omitzero"`
	HwSerial           Text    `json:"HwSerial,omitzero"`
	MachineAuTime      Text    `json:"MachineAuTime,omitzero"`
	AuthStatus         *Status `json:"AuthStatus,omitempty"`
	CardLast4Digits    Text    `json:"CardLast4Digits,omitzero"`
	CardHash           Text    `json:"CardHash,omitzero"`
	CardUid            Text    `json:"CardUid,omitzero"`
	Amount             Amount  `json:"Amount,omitzero"`
	// ServiceStationNumber is a sitelink extension, not sent by Nayax: the
	// station the session is for, added by the relay or the app.
	ServiceStationNumber Text `json:"ServiceStationNumber,omitzero"`
}

func (r *TransactionCallbackRequest) check() *DecodeError {
	switch {
	case r.AuthStatus == nil:
		return missing("AuthStatus")
	case strings.TrimSpace(r.AuthStatus.Verdict) == "":
		return missing("AuthStatus.Verdict")
	case !present(r.SparkTransactionId) && !r.NayaxTransactionId.Valid:
		return missing("SparkTransactionId or NayaxTransactionId")
	case !r.MachineId.Valid && !present(r.HwSerial):
		return missing("MachineId or HwSerial")
	}
	if !r.AuthStatus.IsApproved() {
		return nil
	}
	// An approval commits money: everything needed to settle or cancel
	// it later must be there now.
	switch {
	case !r.NayaxTransactionId.Valid:
		return missing("NayaxTransactionId")
	case !r.Amount.Valid:
		return missing("Amount")
	case r.Amount.V < 0:
		return &DecodeError{Code: CodeValidation, Field: "Amount", Reason: "negative amount"}
	case !present(r.CardHash):
		return missing("CardHash")
	}
	return nil
}

// TransactionCallbackOutcome is the answer to a TransactionCallback.
type TransactionCallbackOutcome struct {
	SparkTransactionId string `json:"SparkTransactionId,omitempty"`
	Status             Status `json:"Status"`
}

// DeclineCallbackRequest is what Spark posts when a triggered transaction
// failed on the terminal (Status.ErrorCode 44 timeout, 45 cancelled).
type DeclineCallbackRequest struct {
	MachineId          Int64   `json:"MachineId,omitzero"`
	HwSerial           Text    `json:"HwSerial,omitzero"`
	SparkTransactionId Text    `json:"SparkTransactionId,omitzero"`
	Status             *Status `json:"Status,omitempty"`
}

func (r *DeclineCallbackRequest) check() *DecodeError {
	return checkSession(r.SparkTransactionId, r.MachineId, r.HwSerial)
}

// DeclineCallbackOutcome is the answer to a DeclineCallback.
type DeclineCallbackOutcome struct {
	SparkTransactionId string `json:"SparkTransactionId,omitempty"`
	Status             Status `json:"Status"`
}

// TimeoutCallbackRequest is what Spark posts when a pre-authorization
// session died of inactivity.
type TimeoutCallbackRequest struct {
	TerminalId         Text  `json:"TerminalId,omitzero"`
	MachineId          Int64 `json:"MachineId,omitzero"`
	HwSerial           Text  `json:"HwSerial,omitzero"`
	SparkTransactionId Text  `json:"SparkTransactionId,omitzero"`
}

func (r *TimeoutCallbackRequest) check() *DecodeError {
	return checkSession(r.SparkTransactionId, r.MachineId, r.HwSerial)
}

// TimeoutCallbackOutcome is the answer to a TimeoutCallback.
type TimeoutCallbackOutcome struct {
	SparkTransactionId string `json:"SparkTransactionId,omitempty"`
	Status             Status `json:"Status"`
}

func checkSession(spark Text, machine Int64, serial Text) *DecodeError {
	switch {
	case !present(spark):
		return missing("SparkTransactionId")
	case !machine.Valid && !present(serial):
		return missing("MachineId or HwSerial")
	}
	return nil
}

// request is a body decoded by its json tags (tagFields) and then
// checked for its mandatory fields.
type request interface {
	check() *DecodeError
}

// decode fills r from b and checks its mandatory fields. On a field error
// r keeps every field that did decode, so the caller can still echo ids.
func decode(b []byte, r request) error {
	if err := decodeObject(b, tagFields(r)); err != nil {
		return err
	}
	if err := r.check(); err != nil {
		return err
	}
	return nil
}

// DecodeStopCallback decodes and checks a StopCallback body. Mandatory:
// CardHash, SparkTransactionId or NayaxTransactionId, MachineId or
// HwSerial. Errors are *DecodeError; on a field error the request holds
// the fields that did decode.
func DecodeStopCallback(b []byte) (StopCallbackRequest, error) {
	var r StopCallbackRequest
	err := decode(b, &r)
	return r, err
}

// DecodeTransactionCallback decodes and checks a TransactionCallback body.
// Mandatory: AuthStatus with a Verdict, SparkTransactionId or
// NayaxTransactionId, MachineId or HwSerial; when approved also
// NayaxTransactionId, a non-negative Amount and CardHash. Errors are
// *DecodeError.
func DecodeTransactionCallback(b []byte) (TransactionCallbackRequest, error) {
	var r TransactionCallbackRequest
	err := decode(b, &r)
	return r, err
}

// DecodeDeclineCallback decodes and checks a DeclineCallback body.
// Mandatory: SparkTransactionId, MachineId or HwSerial. Errors are
// *DecodeError.
func DecodeDeclineCallback(b []byte) (DeclineCallbackRequest, error) {
	var r DeclineCallbackRequest
	err := decode(b, &r)
	return r, err
}

// DecodeTimeoutCallback decodes and checks a TimeoutCallback body.
// Mandatory: SparkTransactionId, MachineId or HwSerial. Errors are
// *DecodeError.
func DecodeTimeoutCallback(b []byte) (TimeoutCallbackRequest, error) {
	var r TimeoutCallbackRequest
	err := decode(b, &r)
	return r, err
}
