package nayax_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

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

func ExampleDeclineFor() {
	_, err := nayax.DecodeTransactionCallback([]byte(`{"MachineId":"abc"}`))
	if err != nil {
		out, _ := json.Marshal(nayax.TransactionCallbackOutcome{Status: nayax.DeclineFor(err)})
		fmt.Println(string(out))
	}
	// Output: {"Status":{"Verdict":"Declined","ErrorCode":26,"ErrorDescription":"MachineId: expected an integer"}}
}

func ExampleSignature() {
	fmt.Println(nayax.Signature("123456789123456789abcdefghijklmnopqr", "RbtdDsiVNjkAeRty"))
	// Output: 1b7dd1c4010698824de66f13e1387efc28a4bba00b720d4be8cdb3b598b9603e
}

func ExampleCipher() {
	// The StartAuthentication example of the Spark reference.
	key, _ := nayax.CipherKey("…wRvTVTkungMIKThTVbj_fiXdfoGclhn0")
	at := time.Date(2023, 6, 6, 10, 21, 0, 0, time.UTC)
	c, err := nayax.Cipher("12c7cec2-c690-4425-9a1f-db0db60e2d8c", "123456789qwertyui", at, key)
	if err != nil {
		panic(err)
	}
	fmt.Println(c)
	plain, _ := nayax.DecryptCipher(c, key)
	fmt.Println(plain)
	// Output:
	// X305dITNTAw2vHsxE+taVcn6UvgBC3fdI6QbqeABgHbo8CKsoZhqISJfslehCiA+L7XYrqvKFci7C6BNj/trzBuNJwBEjgBzKhhgpJ5ggnw=
	// 12c7cec2-c690-4425-9a1f-db0db60e2d8c=123456789qwertyui2306061021
}

func ExampleDecodeCortinaCancel() {
	body := []byte(`{"BasicInfo":{"TransactionId":2.3658433596983443e+35,"NayaxTransactionId":0,"SiteId":12},
		"MachineInfo":{"Id":869761713},"CardData":{"CardNumber":"4111111111111111","CardHolderName":"A B"},
		"PaymentInfo":{"AuthCode":333333,"Token":"secret"},"ReasonCode":999}`)
	c, err := nayax.DecodeCortinaCancel(body)
	if err != nil {
		out, _ := json.Marshal(nayax.CortinaResponse{Status: nayax.CortinaDeclineFor(err)})
		fmt.Println(string(out))
		return
	}
	// Cortina carries no card hash: the relay's card key changes nothing.
	fmt.Println(string(c.Forward(nayax.CardKey{})))
	// Output: {"BasicInfo":{"TransactionId":"2.3658433596983443e+35","SiteId":12},"MachineInfo":{"Id":869761713},"ReasonCode":999,"PaymentInfo":{"AuthCode":"333333"}}
}

func ExampleClient_Do() {
	// A stand-in for Spark that approves everything and proves it knows
	// the id, as Nayax does.
	spark := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ SparkTransactionId string }
		json.NewDecoder(r.Body).Decode(&req)
		json.NewEncoder(w).Encode(map[string]any{
			"HashedSparkTransactionId": nayax.HashSparkID(req.SparkTransactionId),
			"Status":                   map[string]string{"Verdict": "Approved"},
		})
	}))
	defer spark.Close()

	key, _ := nayax.CipherKey("example-66-character-secret-token-wRvTVTkungMIKThTVbj_fiXdfoGclhn0")
	c, err := nayax.NewClient(nayax.ClientConfig{
		BaseURL: spark.URL + "/api", IntegratorID: "integrator", SignKey: "RbtdDsiVNjkAeRty",
		TokenID: 116383, TokenSecret: key,
	})
	if err != nil {
		panic(err)
	}
	resp, err := c.Do(context.Background(), nayax.CallTriggerTransaction, json.RawMessage(`{
		"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c",
		"TerminalId":"0434334921100366","TerminalIdType":1,"Amount":15,"TransactionTimeout":60}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Status.IsApproved(), resp.Attempts)
	// Output: true 1
}
