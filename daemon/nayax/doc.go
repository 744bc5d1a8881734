// Package nayax holds the JSON wire types of the Nayax Spark callbacks
// that sitelink receives (StopCallback, TransactionCallback,
// DeclineCallback, TimeoutCallback), their answers, Spark's Status and
// response codes, and the TransactionSignature of the calls sitelink makes.
//
// Real Nayax payloads do not follow their own schema, so every field is
// decoded through a tolerant value type:
//
//   - Int64 takes a number or a numeric string and is parsed exactly from
//     the raw token; an id never passes through float64.
//   - Text takes a string, a number or a boolean, and keeps a number's
//     literal text ("2.3658433596983443e+35" stays as written).
//   - Amount takes a number or a numeric string.
//   - Literal keeps a token byte for byte, for SiteId, which must be echoed
//     to Nayax exactly as it came.
//
// The Decode functions turn a body into a request or a *DecodeError whose
// Code is the Spark code to answer with: CodeValidation (26) for a body
// that is too large, not a JSON object, or has a field of the wrong type;
// CodeMissingMandatory (997) for a missing mandatory field. Field names
// match case-insensitively and unknown fields are ignored, as Nayax adds
// fields over time.
//
// # Caveats
//
// A terminal's HwSerial may lose its leading zeros on the way (it arrives
// as a number); compare serials with SameSerial, never with ==.
//
// Request types carry CardHash, CardLast4Digits and CardUid. They are what
// a session is matched on, but none of them may be logged, and only the
// session engine's keyed digest of CardHash may be stored. DecodeError
// reasons never quote field values, so they are safe to log and to return.
//
// An empty string in an Int64 or Amount field counts as absent, and a
// mandatory text field holding only spaces counts as missing. Status
// verdicts are compared case-insensitively (Status.IsApproved); anything
// but Approved is a decline.
//
// ServiceStationNumber on TransactionCallbackRequest is a sitelink
// extension: Nayax does not send it; the relay or the app adds it.
package nayax
