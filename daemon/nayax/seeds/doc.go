// Package seeds holds the Nayax example payloads of the Spark reference
// (spark.openapi.yaml) as files, so that tests, fuzz targets and the demo
// all start from the same real-shaped JSON.
//
// File names are "NNN_call_direction.json": 000_stopcallback_request.json
// and 000_stopcallback_response.json (StopCallback and its outcome),
// 001_transactioncallback_request.json (TransactionCallback, Approved),
// 003_externalcancel_request.json (ExternalCancel, built from the
// reference's per-field examples), 004_cortina_prepaid_cancel_request.json
// and 004_cortina_prepaid_cancel_response.json (Cortina Prepaid Cancel and
// its answer, from cortina.openapi.yaml).
//
// # Caveats
//
// The payloads are the reference examples verbatim, not captures. The
// Spark ones show the documented shapes (HwSerial as a string with its
// leading zero), not the quirks real traffic has; tests of the quirks
// build their own variants. The Cortina cancel is hand-written JSON of the
// YAML example so that its number literals stay exactly as documented:
// TransactionId and SrvTranId 2.3658433596983443e+35, AuthCode 333333,
// CurrencyNumeric 376, a NayaxTransactionId of 0, and CardData and
// PaymentInfo.Token filled with placeholder text. Get panics on an unknown name because a wrong seed name is a
// programming error in a test or demo, never a runtime condition.
package seeds
