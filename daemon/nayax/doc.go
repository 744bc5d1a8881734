// Package nayax speaks Nayax's side of sitelink: the JSON of the Spark
// callbacks the relay receives (StopCallback, TransactionCallback,
// DeclineCallback, TimeoutCallback) and of Cortina Prepaid Cancel and Void,
// the requests sitelink sends to Spark (StartAuthentication,
// TriggerTransaction, Settlement, CancelTransaction, ExternalSettlement,
// ExternalCancel) and their answers, Spark's Status and response codes,
// and the Client that sends those requests.
//
// Real Nayax payloads do not follow their own schema, so every field is
// decoded through a tolerant value type:
//
//   - Int64 takes a number or a numeric string and is parsed exactly from
//     the raw token; an id never passes through float64.
//   - Text takes a string, a number or a boolean, and keeps a number's
//     literal text ("2.3658433596983443e+35" stays as written).
//   - Amount takes a number or a numeric string, and keeps it as written
//     (Amount.Decimal) for an exact conversion to minor units.
//   - Literal keeps a token byte for byte, for SiteId, which must be echoed
//     to Nayax exactly as it came.
//
// The Decode functions turn a body into a request or a *DecodeError whose
// Code is the code to answer with: for Spark, CodeValidation (26) for a
// body that is too large, not a JSON object, or has a field of the wrong
// type, and CodeMissingMandatory (997) for a missing mandatory field; for
// Cortina (DecodeCortinaCancel), CortinaFormatError (8) and
// CortinaMissingMandatory (997). DeclineFor and CortinaDeclineFor turn
// any such error into the answer; relay and edge use nothing else.
// Field names match case-insensitively and unknown fields are ignored, as
// Nayax adds fields over time. ValidateOutbound applies the same rules to
// the requests sitelink sends, for tests and a Nayax simulator; the
// request and response types unmarshal the same tolerant way.
//
// # Card data and forwarding
//
// The relay publishes what Nayax sent on MQTT, but only through the
// Forward methods, which write an allowlist: a StopCallback or
// TransactionCallback without CardUid and with CardHash replaced by its
// keyed hash (CardKey.Hash, the fleet's relay.card_key_file: Nayax's
// CardHash never travels, only CardLast4Digits does, for display), a
// Decline or TimeoutCallback as is, and of a Cortina cancel only ids,
// amounts, reason and references (never CardData — PAN, Track 2, EMV
// data, holder name, ID number — nor PaymentInfo.Token, ActorInfo,
// CustomData or locations; DecodeCortinaCancel does not even read them).
// What Forward writes decodes back with the matching Decode function to
// the same value, but for CardUid (gone) and CardHash (keyed).
//
// # Calling Spark
//
// Client.Do sends a request body the edge built. Before the first call on
// a SparkTransactionId it runs StartAuthentication: a Random from
// NewRandom, a Cipher (Base64 of AES-256-ECB/PKCS#7 of
// "{SparkTransactionId}={Random}{yyMMddHHmm UTC}", keyed by the 32
// rightmost characters of the Secret Token, see CipherKey), and a check
// that Nayax answers HashSparkID of the id. Every request carries the
// IntegratorId and TransactionSignature (Signature) headers. Network
// errors, timeouts and HTTP 5xx are retried with jittered exponential
// backoff; a code-33 answer (authentication failed) triggers one new
// authentication. Any 2xx answer with a Status is returned as a Response,
// Approved or Declined; everything else is an error wrapping ErrBadRequest,
// ErrTransport, ErrBadResponse or ErrAuth.
//
// # Caveats
//
// A terminal's HwSerial may lose its leading zeros on the way (it arrives
// as a number); compare serials with SameSerial (or key them by
// NormSerial), never with ==, and send them as configured, never
// normalized.
//
// Request types carry CardHash, CardLast4Digits and CardUid. None of them
// may be logged; CardUid never leaves the relay, CardHash leaves it only
// keyed (CardKey.Hash), and the edge stores only its own keyed digest of
// that. DecodeError
// reasons never quote field values, so they are safe to log and to return.
// The Client never logs a request or answer body, a key or a signature.
//
// An empty string in an Int64 or Amount field counts as absent, and a
// mandatory text field holding only spaces counts as missing. In Cortina
// bodies and outbound requests a NayaxTransactionId of 0 counts as absent
// too (the Cortina reference example sends 0 for "none"), and so does a
// Cortina MachineInfo.Id of 0. Status verdicts are compared
// case-insensitively (Status.IsApproved); anything but Approved is a
// decline.
//
// ValidateOutbound requires SiteId for ExternalSettlement and
// ExternalCancel although the schema marks it optional: the reference text
// lists it among the identifiers Nayax matches the transaction on.
//
// The cipher timestamp has minute resolution and Nayax rejects one more
// than 5 minutes old (code 31): the relay's clock must be synchronised.
// A successful StartAuthentication is reused for ClientConfig.AuthTTL per
// process; replicas do not share it, which costs at most one extra
// StartAuthentication (or one code-33 retry) per replica and transaction.
// ErrTransport and ErrBadResponse mean the outcome is unknown: Nayax may
// have acted. Send the same request again later; Nayax answers a repeat
// with "already cancelled/completed" (28, or 50/51 with that meaning),
// which the caller treats as success.
//
// ServiceStationNumber on TransactionCallbackRequest is a sitelink
// extension: Nayax does not send it; the relay or the app adds it.
//
// Of sitelink's packages this one imports only daemon/retry, a leaf, for
// the Client's backoff: config, relay, edge and the simulator all depend
// on nayax, so it must never depend on them.
package nayax
