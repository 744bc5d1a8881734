package nayaxsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// ppCancelExample is the PPCancelRequest example of
// cortina.openapi.yaml, quirks included: TransactionId and SrvTranId as
// 2.3658433596983443e+35, AuthCode, RRN and CurrencyNumeric as numbers.
// CortinaCancel overrides the transaction's own fields.
const ppCancelExample = `{
  "ActorInfo": {
    "Country": {"Alpha2Code": "string", "Alpha3Code": "string", "Name": "string", "NumericCode": "string"},
    "GeoLocation": {"Address": "string", "City": "string", "CountryCode": "string", "Latitude": 32.8198988,
      "Longitude": 34.998819, "State": "string", "ZipCode": "string"},
    "Id": 2001102296, "MerchantId": 10011, "Name": "Far East Dev Zone", "OperatorId": 2000305191, "OperatorName": "TanyaT_OP"
  },
  "BasicInfo": {
    "Amount": 0.1, "CurrencyCode": "USD", "CurrencyNumeric": 376, "IsProductSelected": true, "MachineAuTime": "string",
    "NayaxTransactionId": 0, "SiteId": 12, "TimeoutMS": 15000, "TransactionId": 2.3658433596983443e+35
  },
  "CardData": {
    "BrandInfo": {"PrimaryDescription": "string", "PrimaryId": "string", "SecondaryDescription": "string", "SecondaryId": "string"},
    "CardHolderName": "Test Card Holder", "CardNumber": "string", "EMVData": "string", "EntryMode": "string",
    "ExpMonth": "string", "ExpYear": "string", "IDNumber": "string", "RandomNumber": "string"
  },
  "CustomData": {"Actor": 12312312, "DirectActor": 12312312, "Distributor": "superDistributor", "Machine": 131231348, "Operator": 123121434134},
  "DeviceInfo": {"FWVersion": "string", "HwSerial": "string", "Type": "ONYX"},
  "MachineInfo": {
    "City": "string",
    "Country": {"Alpha2Code": "US", "Alpha3Code": "USA", "Name": "United States of America", "NumericCode": 840},
    "DecimalPlace": 2,
    "GeoLocation": {"Address": "string", "City": "string", "CountryCode": "string", "Latitude": 32.8198988,
      "Longitude": 34.998819, "State": "string", "ZipCode": "string"},
    "GroupId": "Beverages", "Id": 869761713, "Name": "TestPayStaticQR V2", "Offset": 2, "OperatorId": 12345,
    "Region": "string", "TerminalId": 987654321, "ZipCode": 10001
  },
  "PaymentInfo": {
    "AdditionalData": "string", "AuthAmount": 0.1, "AuthCode": 333333, "AuthDateTime": 230221101008, "AuthSource": 555555,
    "IsGatewayTimeout": true, "RRN": 111111, "SettAmount": 0.1, "SettDateTime": 230221101009,
    "SrvTranId": 2.3658433596983443e+35, "Token": "string", "TraceNumber": 4444
  },
  "ReasonCode": 999,
  "ReasonText": "General exception"
}`

// cortinaTime formats t as Cortina's ddMMyyHHmmss.
func cortinaTime(t time.Time) string { return t.UTC().Format("020106150405") }

// cortinaBody builds the Cancel/Void body for tx and a copy for the
// record with the card data replaced: the simulator keeps no card number,
// even a test one.
func cortinaBody(tx Txn, cardNumber string) (body, redacted []byte, err error) {
	m, err := decodeTree(ppCancelExample)
	if err != nil {
		return nil, nil, err
	}
	basic := m["BasicInfo"].(map[string]any)
	basic["Amount"] = tx.Amount
	basic["CurrencyCode"] = "EUR"
	basic["CurrencyNumeric"] = json.Number("978")
	basic["MachineAuTime"] = cortinaTime(tx.AuthorizedAt)
	basic["NayaxTransactionId"] = tx.NayaxTransactionID
	basic["SiteId"] = tx.SiteID
	basic["TransactionId"] = tx.SparkTransactionID
	machine := m["MachineInfo"].(map[string]any)
	machine["Id"] = tx.MachineID
	device := m["DeviceInfo"].(map[string]any)
	if tx.HwSerial != "" {
		machine["TerminalId"] = tx.HwSerial
		device["HwSerial"] = tx.HwSerial
	} else {
		delete(machine, "TerminalId")
		delete(device, "HwSerial")
	}
	pay := m["PaymentInfo"].(map[string]any)
	pay["AuthAmount"] = tx.Amount
	pay["SettAmount"] = 0
	pay["AuthDateTime"] = json.Number(tx.AuthorizedAt.UTC().Format("060102150405"))
	cardData := m["CardData"].(map[string]any)
	cardData["CardNumber"] = cardNumber
	if body, err = json.Marshal(m); err != nil {
		return nil, nil, fmt.Errorf("encode cortina body: %w", err)
	}
	for _, k := range []string{"CardNumber", "EMVData", "CardHolderName", "IDNumber", "ExpMonth", "ExpYear"} {
		cardData[k] = "[redacted]"
	}
	pay["Token"] = "[redacted]"
	if redacted, err = json.Marshal(m); err != nil {
		return nil, nil, fmt.Errorf("encode cortina body: %w", err)
	}
	return body, redacted, nil
}

// decodeTree decodes a JSON object keeping numbers as written.
func decodeTree(s string) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode cortina example: %w", err)
	}
	return m, nil
}
