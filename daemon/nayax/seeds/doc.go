// Package seeds holds the Nayax example payloads of the Spark reference
// (spark.openapi.yaml) as files, so that tests, fuzz targets and the demo
// all start from the same real-shaped JSON.
//
// File names are "NNN_call_direction.json": 000_stopcallback_request.json
// and 000_stopcallback_response.json (StopCallback and its outcome),
// 001_transactioncallback_request.json (TransactionCallback, Approved).
//
// # Caveats
//
// The payloads are the reference examples verbatim, not captures: they
// show the documented shapes (HwSerial as a string with its leading zero),
// not the quirks real traffic has. Tests of the quirks build their own
// variants. Get panics on an unknown name because a wrong seed name is a
// programming error in a test or demo, never a runtime condition.
package seeds
