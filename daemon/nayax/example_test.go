package nayax_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sitelink/sitelink/daemon/nayax"
)

func ExampleDecodeStopCallback() {
	// HwSerial arrives as a number and has lost its leading zero.
	body := []byte(`{"StopSiteId":4,"MachineId":71234996,"HwSerial":434334921100366,
		"CardHash":"7f20…","NayaxTransactionId":"2004545072"}`)
	r, err := nayax.DecodeStopCallback(body)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.NayaxTransactionId.V, nayax.SameSerial(r.HwSerial.S, "0434334921100366"))
	// Output: 2004545072 true
}

func ExampleDecodeError() {
	_, err := nayax.DecodeTransactionCallback([]byte(`{"MachineId":"abc"}`))
	var de *nayax.DecodeError
	if errors.As(err, &de) {
		out, _ := json.Marshal(nayax.TransactionCallbackOutcome{Status: de.Status()})
		fmt.Println(string(out))
	}
	// Output: {"Status":{"Verdict":"Declined","ErrorCode":26,"ErrorDescription":"MachineId: expected an integer"}}
}

func ExampleSignature() {
	fmt.Println(nayax.Signature("123456789123456789abcdefghijklmnopqr", "RbtdDsiVNjkAeRty"))
	// Output: 1b7dd1c4010698824de66f13e1387efc28a4bba00b720d4be8cdb3b598b9603e
}
