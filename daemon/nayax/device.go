package nayax

import "encoding/json"

// Device Start (FLOWS.md): the consumer picks a station on the terminal
// and taps; Nayax calls StartSession, InfoQuery (or AvailabilityCheck),
// then TransactionNotify. Device Stop by StopNotify: Nayax leaves the
// card matching to the integrator.

// Service station availability in InfoQuery / AvailabilityCheck answers.
const (
	StationAvailable    = 1 // free: the terminal asks for the card
	StationBusy         = 2 // in session: the terminal offers a Device Stop
	StationOutOfService = 3 // faulted, disabled, unknown, or the site offline
)

// StartSessionRequest opens a Device Start transaction: the integrator
// creates its SparkTransactionId and proves it holds the token secret
// with the Cipher built from Random.
type StartSessionRequest struct {
	HwSerial  Text  `json:"HwSerial,omitzero"`
	MachineId Int64 `json:"MachineId,omitzero"`
	TokenId   Int64 `json:"TokenId,omitzero"`
	Random    Text  `json:"Random,omitzero"`
}

func (r *StartSessionRequest) check() *DecodeError {
	switch {
	case !r.MachineId.Valid && !present(r.HwSerial):
		return missing("MachineId or HwSerial")
	case !r.TokenId.Valid:
		return missing("TokenId")
	case !present(r.Random):
		return missing("Random")
	case !validRandom(r.Random.S):
		return invalid("Random", "must be 17 letters or digits")
	}
	return nil
}

// StartSessionResponse answers StartSession.
type StartSessionResponse struct {
	Cipher             string `json:"Cipher,omitempty"`
	SparkTransactionId string `json:"SparkTransactionId,omitempty"`
	Status             Status `json:"Status"`
}

// DecodeStartSession decodes and checks a StartSession body. Mandatory:
// MachineId or HwSerial, TokenId, Random (17 letters or digits).
func DecodeStartSession(b []byte) (StartSessionRequest, error) {
	var r StartSessionRequest
	err := decode(b, &r)
	return r, err
}

// InfoQueryRequest asks whether a station is available, what to show and
// what to pre-authorize. AvailabilityCheck is the same call with the
// terminal's estimated Amount.
type InfoQueryRequest struct {
	HwSerial             Text    `json:"HwSerial,omitzero"`
	MachineId            Int64   `json:"MachineId,omitzero"`
	SparkTransactionId   Text    `json:"SparkTransactionId,omitzero"`
	ServiceStationNumber Text    `json:"ServiceStationNumber,omitzero"`
	SiteId               Literal `json:"SiteId,omitzero"`
	Amount               Amount  `json:"Amount,omitzero"`
}

func (r *InfoQueryRequest) check() *DecodeError {
	if err := checkSession(r.SparkTransactionId, r.MachineId, r.HwSerial); err != nil {
		return err
	}
	if r.Amount.Valid && r.Amount.V < 0 {
		return invalid("Amount", "negative amount")
	}
	return nil
}

// DecodeInfoQuery decodes and checks an InfoQuery or AvailabilityCheck
// body. Mandatory: SparkTransactionId, MachineId or HwSerial.
func DecodeInfoQuery(b []byte) (InfoQueryRequest, error) {
	var r InfoQueryRequest
	err := decode(b, &r)
	return r, err
}

// Forward returns the body the relay may publish for this query (the
// `info` command): all of it, no card data in it (k is not used).
func (r InfoQueryRequest) Forward(k CardKey) json.RawMessage { return forward(&r) }

// InfoQueryResponse answers InfoQuery and AvailabilityCheck.
type InfoQueryResponse struct {
	SparkTransactionId         string  `json:"SparkTransactionId,omitempty"`
	HwSerial                   string  `json:"HwSerial,omitempty"`
	MachineId                  int64   `json:"MachineId,omitempty"`
	ServiceStationNumber       string  `json:"ServiceStationNumber,omitempty"`
	ServiceStationAvailability int     `json:"ServiceStationAvailability"`
	PosDisplay                 string  `json:"PosDisplay,omitempty"`
	Amount                     Amount  `json:"Amount,omitzero"`
	SiteId                     Literal `json:"SiteId,omitzero"`
	Status                     Status  `json:"Status"`
}

// TransactionNotifyRequest is the authorized Device Start transaction.
type TransactionNotifyRequest struct {
	HwSerial             Text    `json:"HwSerial,omitzero"`
	MachineId            Int64   `json:"MachineId,omitzero"`
	NayaxTransactionId   Int64   `json:"NayaxTransactionId,omitzero"`
	SparkTransactionId   Text    `json:"SparkTransactionId,omitzero"`
	Amount               Amount  `json:"Amount,omitzero"`
	CardLast4Digits      Text    `json:"CardLast4Digits,omitzero"`
	CardHash             Text    `json:"CardHash,omitzero"`
	CardUid              Text    `json:"CardUid,omitzero"`
	ServiceStationNumber Text    `json:"ServiceStationNumber,omitzero"`
	SiteId               Literal `json:"SiteId,omitzero"`
	MachineAuTime        Text    `json:"MachineAuTime,omitzero"`
}

func (r *TransactionNotifyRequest) check() *DecodeError {
	switch {
	case !present(r.SparkTransactionId):
		return missing("SparkTransactionId")
	case !r.MachineId.Valid && !present(r.HwSerial):
		return missing("MachineId or HwSerial")
	}
	if err := checkNayaxID(r.NayaxTransactionId); err != nil {
		return err
	}
	switch {
	case !r.Amount.Valid:
		return missing("Amount")
	case r.Amount.V < 0:
		return invalid("Amount", "negative amount")
	case !present(r.CardHash):
		return missing("CardHash")
	}
	return nil
}

// DecodeTransactionNotify decodes and checks a TransactionNotify body.
// Mandatory: SparkTransactionId, MachineId or HwSerial,
// NayaxTransactionId, a non-negative Amount and CardHash.
func DecodeTransactionNotify(b []byte) (TransactionNotifyRequest, error) {
	var r TransactionNotifyRequest
	err := decode(b, &r)
	return r, err
}

// Callback is the TransactionCallback this authorized Device Start
// transaction amounts to: sitelink serves both with one authorize path
// (the same checks and durability), the flow told apart by the relay.
func (r TransactionNotifyRequest) Callback() TransactionCallbackRequest {
	return TransactionCallbackRequest{
		NayaxTransactionId: r.NayaxTransactionId, SparkTransactionId: r.SparkTransactionId, SiteId: r.SiteId,
		MachineId: r.MachineId, HwSerial: r.HwSerial, MachineAuTime: r.MachineAuTime,
		AuthStatus: &Status{Verdict: VerdictApproved}, CardLast4Digits: r.CardLast4Digits, CardHash: r.CardHash,
		CardUid: r.CardUid, Amount: r.Amount, ServiceStationNumber: r.ServiceStationNumber,
	}
}

// TransactionNotifyResponse answers TransactionNotify, the ids echoed.
type TransactionNotifyResponse struct {
	NayaxTransactionId   int64   `json:"NayaxTransactionId,omitempty"`
	SparkTransactionId   string  `json:"SparkTransactionId,omitempty"`
	HwSerial             string  `json:"HwSerial,omitempty"`
	MachineId            int64   `json:"MachineId,omitempty"`
	SiteId               Literal `json:"SiteId,omitzero"`
	ServiceStationNumber string  `json:"ServiceStationNumber,omitempty"`
	Status               Status  `json:"Status"`
}

// StopNotifyRequest is a card presented to stop a session that Nayax did
// not match: the integrator finds the session this card paid for.
type StopNotifyRequest struct {
	StopSiteId           Literal `json:"StopSiteId,omitzero"`
	MachineId            Int64   `json:"MachineId,omitzero"`
	HwSerial             Text    `json:"HwSerial,omitzero"`
	CardLast4Digits      Text    `json:"CardLast4Digits,omitzero"`
	CardHash             Text    `json:"CardHash,omitzero"`
	CardUid              Text    `json:"CardUid,omitzero"`
	ServiceStationNumber Text    `json:"ServiceStationNumber,omitzero"`
}

func (r *StopNotifyRequest) check() *DecodeError {
	switch {
	case !r.MachineId.Valid && !present(r.HwSerial):
		return missing("MachineId or HwSerial")
	case !present(r.CardHash):
		return missing("CardHash")
	}
	return nil
}

// DecodeStopNotify decodes and checks a StopNotify body. Mandatory:
// MachineId or HwSerial, CardHash.
func DecodeStopNotify(b []byte) (StopNotifyRequest, error) {
	var r StopNotifyRequest
	err := decode(b, &r)
	return r, err
}

// Forward returns the body the relay may publish for this StopNotify
// (the `stop-notify` command): CardUid left out, CardHash keyed with k as
// StopCallbackRequest.Forward does.
func (r StopNotifyRequest) Forward(k CardKey) json.RawMessage {
	r.CardUid = Text{}
	r.CardHash = k.text(r.CardHash)
	return forward(&r)
}

// StopNotifyResponse answers StopNotify: the matched session's ids, or a
// Declined status.
type StopNotifyResponse struct {
	SparkTransactionId string  `json:"SparkTransactionId,omitempty"`
	NayaxTransactionId int64   `json:"NayaxTransactionId,omitempty"`
	SiteId             Literal `json:"SiteId,omitzero"`
	StopSiteId         Literal `json:"StopSiteId,omitzero"`
	MachineId          int64   `json:"MachineId,omitempty"`
	HwSerial           string  `json:"HwSerial,omitempty"`
	MachineAuTime      string  `json:"MachineAuTime,omitempty"`
	Status             Status  `json:"Status"`
}
