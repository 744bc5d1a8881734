package nayax

import "errors"

// Errors of this package, matched with errors.Is. A *DecodeError matches
// ErrInvalid or ErrMissing by its Code; the Client's errors wrap one of
// the others with the call and the cause.
var (
	// ErrInvalid is a body that is not usable as sent: too large, not a
	// JSON object, or a field of the wrong type (Spark code 26, Cortina
	// code 8).
	ErrInvalid = errors.New("invalid Nayax request")
	// ErrMissing is a body that lacks a mandatory field (code 997 in Spark
	// and Cortina alike).
	ErrMissing = errors.New("missing mandatory field")

	// ErrCipher is a Cipher that cannot be built or read: a key that is
	// not 32 bytes, a SparkTransactionId or Random of the wrong shape, a
	// cipher text that is not Base64 of whole AES blocks, or bad padding.
	ErrCipher = errors.New("bad Spark cipher")

	// ErrCardKey is a card key (NewCardKey) shorter than MinCardKey.
	ErrCardKey = errors.New("card key too short")

	// ErrBadRequest is a request the Client refused before sending
	// anything: an unknown call, a body that is not a JSON object, or one
	// without SparkTransactionId, TerminalId and TerminalIdType. Retrying
	// the same body cannot help.
	ErrBadRequest = errors.New("bad Spark request")
	// ErrTransport is a call whose outcome is unknown: every attempt
	// failed in the network, timed out or got an HTTP 5xx, 408 or 429, or
	// the caller's context ended. Nayax may or may not have acted on it;
	// send the same request again later (the relay reports the error and
	// the edge retries).
	ErrTransport = errors.New("no answer from Nayax Spark")
	// ErrBadResponse is an answer the Client could not read: not JSON,
	// no Status object, too large, or an HTTP status other than 2xx that
	// is not retried. Like ErrTransport, the outcome is unknown.
	ErrBadResponse = errors.New("bad answer from Nayax Spark")
	// ErrAuth is an authentication that failed: StartAuthentication was
	// declined or answered with the wrong HashedSparkTransactionId, the
	// call was refused with code 33 even after authenticating again, or
	// Nayax answered HTTP 401 or 403. It points at configuration (token,
	// keys, clock); the call itself was not carried out.
	ErrAuth = errors.New("authentication with Nayax Spark failed")
)
