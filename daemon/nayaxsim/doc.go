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
// that another process can tap cards and inspect state.
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
// decimals as written; Random must be 17 alphanumerics; Remote Start
// transactions must end with Settlement/CancelTransaction and external
// ones with ExternalSettlement/ExternalCancel. ReasonCode, a string in
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
// and declines and timeouts happen only when asked for. State lives in
// memory and is lost on Close.
//
// Cards are fake: a card name maps to a Luhn-valid test number that
// never leaves the package; only its SHA-256 (CardHash), last four
// digits and a derived CardUid are sent. The card number handed to
// CortinaCancel goes to the relay but is redacted in the Callbacks
// record, and nothing logs card data.
package nayaxsim
