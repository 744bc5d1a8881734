// Package nayaxsim is a local stand-in for Nayax, for sitelink's tests,
// `sitelink demo`, and integrators without sandbox access. It plays both
// of Nayax's roles toward the relay:
//
//   - the Spark DMZ the relay calls (URL() ends in /api): StartAuthentication,
//     TriggerTransaction, Settlement, CancelTransaction, ExternalSettlement
//     and ExternalCancel, POST, paths case-insensitive, with or without /api;
//   - the caller of the relay's callbacks: Tap sends TransactionCallback or
//     StopCallback like a card presented at a terminal, Decline and Timeout
//     send DeclineCallback and TimeoutCallback, CortinaCancel sends a
//     Cortina Prepaid Cancel or Void.
//
// # Device Start and StopNotify
//
// A Terminal says how its integration is set up at Nayax: DeviceStart
// (the consumer starts at the terminal), StopNotify (a stop is a
// StopNotify, not a StopCallback), AvailabilityCheck (Device Start asks
// AvailabilityCheck with an estimated Amount instead of InfoQuery). The
// simulator remembers these per terminal, from Options.Terminals or the
// first tap that sets them; once set they stay set.
//
// Tap on a DeviceStart terminal, with no TriggerTransaction pending there
// and no transaction open at the site paid with that card, plays Device
// Start (FLOWS.md) against the relay, with the callback headers:
//
//  1. StartSession {HwSerial, MachineId, TokenId, Random}: a fresh Random of
//     17 [A-Za-z0-9]. The answer is checked as Nayax would: HTTP 2xx,
//     Status Approved, SparkTransactionId a 36-character GUID not used
//     before, and a Cipher that decrypts under the token secret to
//     "{SparkTransactionId}={Random}{yyMMddHHmm UTC}" with this id, this
//     Random, and a time within 5 minutes. Otherwise the tap ends
//     "refused" with a Reason and nothing else is sent.
//  2. InfoQuery {HwSerial, MachineId, SparkTransactionId,
//     ServiceStationNumber, SiteId} (AvailabilityCheck: plus the tap's
//     amount as Amount). ServiceStationAvailability, PosDisplay and Amount
//     go into the TapResult; unless it is 1 and the Status Approved, the
//     tap ends "unavailable".
//  3. The card is authorized for the answer's Amount (else the tap's,
//     else 15), a Txn with Flow "device-start" is registered, and
//     TransactionNotify carries it. Approved: "authorize", Acked.
//     Otherwise "declined": the station is free, and the transaction stays
//     authorized, as at Nayax, until the integrator's CancelTransaction.
//
// A Device Start transaction ends like a Remote Start one, with
// Settlement or CancelTransaction (its StartSession stands for
// StartAuthentication); ExternalSettlement and ExternalCancel for it are
// Declined 32, as is every call of the wrong flow.
//
// Tap with a card that has an open transaction (on a DeviceStart
// terminal: paid with this card anywhere at the site; otherwise: open on
// the station) sends a stop; StopTap sends only a stop, also for a card
// that paid for nothing. On a StopNotify terminal the stop is StopNotify
// {StopSiteId, MachineId, HwSerial, CardLast4Digits, CardHash, CardUid,
// ServiceStationNumber (left out when empty)}, with no transaction ids:
// the relay must find the session. An Approved answer must name, by
// SparkTransactionId and NayaxTransactionId, a transaction this card has
// open (then it is stopped); anything else is reported in the TapResult's
// Reason and stops nothing. TapResult.Calls lists every call a tap made,
// with its answer and response time.
//
// Every Spark request is checked the way Spark documents it: the
// IntegratorId header; the TransactionSignature header,
// hex(SHA-256(UTF-8("{SparkTransactionId};{SignKey}"))); a JSON body of
// the schema's types (a missing mandatory field is 997, a wrong type or
// value 26); a StartAuthentication whose Cipher decrypts (AES-256-ECB,
// PKCS#7, Base64) to "{SparkTransactionId}={Random}{yyMMddHHmm UTC}"
// within five minutes, before any other call for that id (else 33); and
// the transaction itself: unknown or mismatched identifiers are 32, a
// second settle or cancel is 28, an amount above the authorized one is 26.
// Failures answer like Spark: HTTP 200 with a Declined Status.
//
// The simulator remembers what it did: Requests and Callbacks are the
// exchanges in order, Txn and Txns the transactions with their state and
// how many settles and cancels reached them. Fail makes the next requests
// of a call answer 5xx, late, or with a Spark ErrorCode, for retry tests.
//
// The same server has a control API under /_sim/ (see ControlClient), so
// that another process can tap cards (tap, stop-tap) and inspect state.
//
// The cipher, signature and schema checks are this package's own,
// written from the public specification and not shared with package
// nayax: a simulator that reused the client's code would agree with its
// mistakes instead of catching them.
//
// # Caveats
//
// This is not Nayax. Its behaviour comes from Nayax's public Spark and
// Cortina OpenAPI specifications and sitelink's DESIGN.md; where those are silent it picks something
// plausible, and the real service may differ. Passing against the
// simulator is necessary, not sufficient: certify against Nayax's sandbox.
//
// It is stricter than Spark may be, on purpose: TerminalIdType is
// required on every call; ids must be JSON integers and TerminalId a JSON
// string (a number would lose leading zeros); amounts may have at most two
// decimals as written; Random must be 17 alphanumerics; Remote Start and
// Device Start transactions must end with Settlement/CancelTransaction
// and external ones with ExternalSettlement/ExternalCancel. ReasonCode, a string in
// ExternalCancel and an integer in CancelTransaction, is accepted as
// either in both. SiteId and MachineAuTime are optional, but when given
// must equal what the TransactionCallback said. A request without a JSON
// Content-Type is answered 415, as ASP.NET would.
//
// Its answers carry Spark's documented quirks: " No Errors " padded
// descriptions, and AuthCode, NayaxRRN and CurrencyNumeric as JSON
// numbers in Settlement and CancelTransaction answers. The Cortina body
// keeps the example's number-typed ids (SrvTranId 2.3658433596983443e+35)
// and dates in ddMMyyHHmmss; its BasicInfo.TransactionId carries the
// SparkTransactionId.
//
// The simulator never acts on its own: a TriggerTransaction waits for a
// Tap however long it takes (TransactionTimeout is checked, not enforced),
// and declines and timeouts happen only when asked for. Device Start
// runs its three calls back to back: no consumer pauses between
// InfoQuery and the tap, and an unanswered TransactionNotify is not
// retried. State lives in
// memory and is lost on Close.
//
// Cards are fake: a card name maps to a Luhn-valid test number that
// never leaves the package; only its SHA-256 (CardHash), last four
// digits and a derived CardUid are sent. The card number handed to
// CortinaCancel goes to the relay but is redacted in the Callbacks
// record, and nothing logs card data.
package nayaxsim
