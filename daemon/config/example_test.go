package config_test

import (
	"errors"
	"fmt"

	"github.com/sitelink/sitelink/daemon/config"
)

// A configuration check lists every problem at once, each with its line
// and key path.
func ExampleParseEdge() {
	_, err := config.ParseEdge([]byte(`
node:
  data_dir: /var/lib/sitelink
mqtt:
  brokr: tcp://127.0.0.1:1883
terminals:
  - machine_id: 71234996
    stations: ["5", "9"]
stations:
  - number: 5
  - number: "5"
policy:
  plug_timeout: 2 minutes
tariff:
  price_per_kwh: 0.39
`))
	var probs config.Problems
	if errors.As(err, &probs) {
		for _, p := range probs {
			fmt.Println(p)
		}
	}
	// Output:
	// line 2: node.id: required
	// line 5: mqtt.brokr: unknown key
	// line 8: terminals[0].stations[1]: unknown station "9"
	// line 11: stations[1].number: duplicate station number "5"
	// line 13: policy.plug_timeout: invalid duration "2 minutes"
}

func ExampleEdge_TerminalFor() {
	e, err := config.LoadEdge("../../configs/edge.example.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Nayax sometimes drops the serial's leading zero.
	t, ok := e.TerminalFor(0, "434334921100366")
	fmt.Println(ok, t.MachineID, t.HasStation("6"))
	// Output: true 71234996 true
}

// `sitelink config check` takes either kind of file; the kind follows from
// its top-level keys.
func ExampleCheck() {
	kind, err := config.Check([]byte(`
relay:
  id: relay-1
  ack_budget: 5s
  callback_headers:
    - name: X-Sitelink-Auth
      value: s3cret
      value_file: /etc/sitelink/callback-auth.secret
  card_key_file: /etc/sitelink/card.key
nayax:
  base_url: https://nayax-spark-dmz.nayax.com/api
  integrator_id: my-sign-key-id
  sign_key_file: /etc/sitelink/nayax-sign.key
  token_secret_file: /etc/sitelink/nayax-token.secret
`))
	fmt.Println(kind)
	fmt.Println(err)
	// Output:
	// relay
	// line 4: relay.ack_budget: must be below 5s (Nayax waits 5 s for an answer), got "5s"
	// line 6: relay.callback_headers[0]: exactly one of value and value_file
	// line 10: nayax.token_id: required
}
