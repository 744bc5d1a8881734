package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestProblems covers every problem class: each case lists exactly the
// problems expected ("path: reason"), so noise is caught as well as misses.
func TestProblems(t *testing.T) {
	const twoStations = "node: {id: n1}\nstations: [{number: \"5\"}, {number: \"6\"}]\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		// Syntax and document shape.
		{"syntax error", "node: {id: n1\n", []string{"invalid YAML: did not find expected ',' or '}'"}},
		{"tab indentation", "node:\n\tid: n1\n", []string{"invalid YAML: found character that cannot start any token"}},
		{"two documents", minimal + "---\nnode: {id: n2}\n", []string{"invalid YAML: more than one document (remove the extra '---')"}},
		{"root is a list", "- a\n- b\n", []string{"expected a mapping of keys, got a list"}},
		{"root is a scalar", "hello\n", []string{`expected a mapping of keys, got "hello"`}},
		{"empty file", "", []string{"node.id: required", "stations: at least one station required", "tariff.price_per_kwh: must be > 0 unless tariff.session_fee is: every session would cost 0.00 (its hold cancelled, the energy given away)"}},
		{"comments only", "# nothing\n", []string{"node.id: required", "stations: at least one station required", "tariff.price_per_kwh: must be > 0 unless tariff.session_fee is: every session would cost 0.00 (its hold cancelled, the energy given away)"}},
		{"unknown anchor", minimal + "policy: *nope\n", []string{"invalid YAML: unknown anchor 'nope' referenced"}},

		// Unknown and duplicate keys, at every depth.
		{"unknown top-level key", minimal + "nodes: {}\n", []string{"nodes: unknown key"}},
		{"unknown mqtt key", minimal + "mqtt: {brokr: x}\n", []string{"mqtt.brokr: unknown key"}},
		{"unknown tls key", minimal + "mqtt: {tls: {ca: x}}\n", []string{"mqtt.tls.ca: unknown key"}},
		{"unknown key in list element", "node: {id: n1}\nstations: [{number: \"1\", numbr: \"2\"}]\n", []string{"stations[0].numbr: unknown key"}},
		{"unknown key in sim block", "node: {id: n1}\nstations:\n  - number: \"1\"\n    sim: {colour: red}\n", []string{"stations[0].sim.colour: unknown key"}},
		{"unknown key in terminal", twoStations + "terminals: [{machine_id: 1, station: [\"5\"], stations: [\"5\"]}]\n", []string{"terminals[0].station: unknown key"}},
		{"odd key is quoted", minimal + "\"a b.c\": 1\n", []string{`"a b.c": unknown key`}},
		{"non-scalar key", minimal + "? [a]\n: 1\n", []string{"keys must be plain names, got a list"}},
		{"duplicate key", "node: {id: n1, id: n2}\nstations: [{number: \"1\"}]\n", []string{"node.id: duplicate key (first at line 1)"}},

		// Values of the wrong type.
		{"block is a scalar", minimal + "mqtt: fast\n", []string{`mqtt: expected a mapping of keys, got "fast"`}},
		{"list is a mapping", "node: {id: n1}\nstations: {number: \"1\"}\n", []string{"stations: expected a list, got a mapping"}},
		{"string is a list", "node: {id: [a]}\nstations: [{number: \"1\"}]\n", []string{"node.id: expected a string, got a list"}},
		{"integer is text", twoStations + "terminals: [{machine_id: abc, stations: [\"5\"]}]\n", []string{`terminals[0].machine_id: expected an integer, got "abc"`}},
		{"integer is a float", twoStations + "terminals: [{machine_id: 1.5, stations: [\"5\"]}]\n", []string{`terminals[0].machine_id: expected an integer, got "1.5"`}},
		{"integer is a list", minimal + "tariff: {decimal_place: [1], price_per_kwh: 0.39}\n", []string{"tariff.decimal_place: expected an integer, got a list"}},
		{"integer overflows", twoStations + "terminals: [{machine_id: \"99999999999999999999\", stations: [\"5\"]}]\n", []string{`terminals[0].machine_id: expected an integer, got "99999999999999999999"`}},
		{"number is text", minimal + "tariff: {price_per_kwh: cheap}\n", []string{`tariff.price_per_kwh: expected a number, got "cheap"`}},
		{"number is infinite", minimal + "tariff: {price_per_kwh: .inf}\n", []string{`tariff.price_per_kwh: expected a finite number, got ".inf"`}},
		{"number is NaN", minimal + "policy: {min_energy_wh: .nan}\n", []string{`policy.min_energy_wh: expected a finite number, got ".nan"`}},
		{"pointer block is a scalar", "node: {id: n1}\nstations: [{number: \"1\", sim: fast}]\n", []string{`stations[0].sim: expected a mapping of keys, got "fast"`}},
		{"station list element is a scalar", "node: {id: n1}\nstations: [\"5\"]\n", []string{`stations[0]: expected a mapping of keys, got "5"`}},
		{"terminal station is a mapping", twoStations + "terminals: [{machine_id: 1, stations: [{n: 5}]}]\n", []string{"terminals[0].stations[0]: expected a string, got a mapping"}},
		{"bad merge value", "node: {id: n1}\nstations: [{<<: 5, number: \"1\"}]\n", []string{`stations[0].<<: merge value must be a mapping or a list of mappings, got "5"`}},
		{"self-referencing merge", "node: &n {id: n1, <<: *n}\nstations: [{number: \"1\"}]\n", []string{"node.<<: alias *n refers to a block that contains it"}},

		// node
		{"node.id missing", "stations: [{number: \"1\"}]\ntariff: {price_per_kwh: 0.39}\n", []string{"node.id: required"}},
		{"node.id with slash", "node: {id: site/1}\nstations: [{number: \"1\"}]\n", []string{`node.id: invalid node id "site/1": use 1 to 64 letters, digits, '.', '_' or '-' (it is an MQTT topic level)`}},
		{"node.id wildcard", "node: {id: \"site+\"}\nstations: [{number: \"1\"}]\n", []string{`node.id: invalid node id "site+": use 1 to 64 letters, digits, '.', '_' or '-' (it is an MQTT topic level)`}},
		{"node.id too long", "node: {id: " + strings.Repeat("a", 65) + "}\nstations: [{number: \"1\"}]\n", []string{`node.id: invalid node id "` + strings.Repeat("a", 64) + `"...: use 1 to 64 letters, digits, '.', '_' or '-' (it is an MQTT topic level)`}},
		{"node.id 64 chars ok", "node: {id: " + strings.Repeat("a", 64) + "}\nstations: [{number: \"1\"}]\n", nil},
		{"relative data_dir", minimal + "node: {data_dir: data}\n", []string{"node: duplicate key (first at line 1)"}},
		{"relative data_dir and empty socket", "node: {id: n1, data_dir: data, api_socket: \"\"}\nstations: [{number: \"1\"}]\n", []string{`node.data_dir: must be an absolute path, got "data"`, "node.api_socket: required"}},
		{"socket path too long", "node: {id: n1, api_socket: /" + strings.Repeat("s", 107) + "}\nstations: [{number: \"1\"}]\n", []string{"node.api_socket: too long for a unix socket (108 bytes, at most 107)"}},

		// storage
		{"retention 90d", minimal + "storage: {retention: 90d}\n", nil},
		{"retention 0 keeps all", minimal + "storage: {retention: 0}\n", nil},
		{"retention 7d", minimal + "storage: {retention: 168h}\n", nil},
		{"retention too short", minimal + "storage: {retention: 2d}\n", []string{`storage.retention: must be at least 7d (Nayax's late callbacks must still find their session), or 0 to keep every session in the ledger, got "48h0m0s"`}},
		{"retention negative", minimal + "storage: {retention: -1h}\n", []string{`storage.retention: must be at least 7d (Nayax's late callbacks must still find their session), or 0 to keep every session in the ledger, got "-1h0m0s"`}},
		{"compact never", minimal + "storage: {compact_free_percent: 0, compact_min_mb: 0}\n", nil},
		{"compact percent", minimal + "storage: {compact_free_percent: 95, compact_min_mb: -1}\n", []string{
			"storage.compact_free_percent: must be 0 (never compact) or between 10 and 90, got 95",
			"storage.compact_min_mb: must be >= 0, got -1",
		}},

		// mqtt
		{"broker empty", minimal + "mqtt: {broker: \"\"}\n", []string{"mqtt.broker: required"}},
		{"broker scheme", minimal + "mqtt: {broker: \"http://b:1883\"}\n", []string{`mqtt.broker: unsupported scheme in "http://b:1883" (want tcp, ssl, tls, mqtt, mqtts, ws or wss)`}},
		{"broker without scheme", minimal + "mqtt: {broker: \"127.0.0.1:1883\"}\n", []string{`mqtt.broker: invalid URL "127.0.0.1:1883"`}},
		{"broker without port", minimal + "mqtt: {broker: \"tcp://b\"}\n", []string{`mqtt.broker: want tcp://host:port, got "tcp://b"`}},
		{"broker without host", minimal + "mqtt: {broker: \"tcp://:1883\"}\n", []string{`mqtt.broker: want tcp://host:port, got "tcp://:1883"`}},
		{"broker port zero", minimal + "mqtt: {broker: \"tcp://b:0\"}\n", []string{`mqtt.broker: invalid port "0"`}},
		{"broker credentials", minimal + "mqtt: {broker: \"tcp://u:p@b:1883\"}\n", []string{"mqtt.broker: must not carry credentials; use mqtt.username and mqtt.password_file"}},
		{"broker schemes accepted", minimal + "mqtt: {broker: \"wss://b.example:443/mqtt\", tls: {ca_file: /etc/ca.pem}}\n", nil},
		{"broker ipv6", minimal + "mqtt: {broker: \"mqtts://[::1]:8883\"}\n", nil},
		{"topic_prefix wildcard", minimal + "mqtt: {topic_prefix: \"a/+/b\"}\n", []string{`mqtt.topic_prefix: must not contain the wildcards '+' or '#', got "a/+/b"`}},
		{"topic_prefix hash", minimal + "mqtt: {topic_prefix: \"a/#\"}\n", []string{`mqtt.topic_prefix: must not contain the wildcards '+' or '#', got "a/#"`}},
		{"topic_prefix leading slash", minimal + "mqtt: {topic_prefix: /a}\n", []string{`mqtt.topic_prefix: must not start or end with '/', got "/a"`}},
		{"topic_prefix trailing slash", minimal + "mqtt: {topic_prefix: a/}\n", []string{`mqtt.topic_prefix: must not start or end with '/', got "a/"`}},
		{"topic_prefix empty level", minimal + "mqtt: {topic_prefix: a//b}\n", []string{`mqtt.topic_prefix: must not contain an empty level ('//'), got "a//b"`}},
		{"topic_prefix dollar", minimal + "mqtt: {topic_prefix: $SYS/x}\n", []string{`mqtt.topic_prefix: must not start with '$' (reserved by brokers), got "$SYS/x"`}},
		{"topic_prefix empty", minimal + "mqtt: {topic_prefix: \"\"}\n", []string{"mqtt.topic_prefix: required"}},
		{"group with slash", minimal + "mqtt: {group: a/b}\n", []string{`mqtt.group: invalid group "a/b": use 1 to 64 letters, digits, '.', '_' or '-' (it is an MQTT topic level)`}},
		{"password without user", minimal + "mqtt: {password_file: /etc/sitelink/pw}\n", []string{"mqtt.password_file: set without mqtt.username"}},
		{"cert without key", minimal + "mqtt: {broker: \"ssl://b:8883\", tls: {cert_file: /c.pem}}\n", []string{"mqtt.tls.key_file: required when cert_file is set"}},
		{"key without cert", minimal + "mqtt: {broker: \"ssl://b:8883\", tls: {key_file: /k.pem}}\n", []string{"mqtt.tls.cert_file: required when key_file is set"}},
		{"tls on plain scheme", minimal + "mqtt: {tls: {ca_file: /ca.pem}}\n", []string{`mqtt.tls: set, but broker "tcp://127.0.0.1:1883" does not use TLS (use ssl://, mqtts:// or wss://)`}},
		{"keepalive too short", minimal + "mqtt: {keepalive: 500ms}\n", []string{`mqtt.keepalive: must be at least 1s, got "500ms"`}},
		{"keepalive too long", minimal + "mqtt: {keepalive: 19h}\n", []string{`mqtt.keepalive: must be at most 18h12m15s (MQTT limit), got "19h0m0s"`}},
		{"connect_timeout zero", minimal + "mqtt: {connect_timeout: 0s}\n", []string{`mqtt.connect_timeout: must be > 0, got "0s"`}},
		{"reconnect min above max", minimal + "mqtt: {reconnect_min: 2m, reconnect_max: 1m}\n", []string{`mqtt.reconnect_min: must not exceed reconnect_max ("1m0s"), got "2m0s"`}},
		{"reconnect zero", minimal + "mqtt: {reconnect_min: 0s, reconnect_max: -1s}\n", []string{`mqtt.reconnect_min: must be > 0, got "0s"`, `mqtt.reconnect_max: must be > 0, got "-1s"`}},

		// terminals
		{"terminal without id", twoStations + "terminals: [{stations: [\"5\"]}]\n", []string{"terminals[0]: machine_id or hw_serial required"}},
		{"terminal with serial only", twoStations + "terminals: [{hw_serial: \"0042\", stations: [\"5\"]}]\n", nil},
		{"negative machine_id", twoStations + "terminals: [{machine_id: -3, stations: [\"5\"]}]\n", []string{"terminals[0].machine_id: must be > 0, got -3"}},
		{"duplicate machine_id", twoStations + "terminals: [{machine_id: 7, stations: [\"5\"]}, {machine_id: \"7\", stations: [\"6\"]}]\n", []string{"terminals[1].machine_id: duplicate machine_id 7"}},
		{"duplicate hw_serial ignoring zeros", twoStations + "terminals: [{hw_serial: 0434334921100366, stations: [\"5\"]}, {hw_serial: \"434334921100366\", stations: [\"6\"]}]\n", []string{`terminals[1].hw_serial: duplicate hw_serial "434334921100366" (leading zeros and case are ignored)`}},
		{"hw_serial with space", twoStations + "terminals: [{hw_serial: \"04 34\", stations: [\"5\"]}]\n", []string{`terminals[0].hw_serial: invalid hw_serial "04 34"`}},
		{"device start ok", twoStations + "terminals: [{machine_id: 1, flow: pre-authorization, start: device, stop: notify, preauth_amount: 25.50, stations: [\"5\"]}]\n", nil},
		{"unknown start", twoStations + "terminals: [{machine_id: 1, flow: pre-authorization, start: terminal, stations: [\"5\"]}]\n", []string{`terminals[0].start: unknown start "terminal" (want remote or device)`}},
		{"unknown stop", twoStations + "terminals: [{machine_id: 1, flow: pre-authorization, stop: card, stations: [\"5\"]}]\n", []string{`terminals[0].stop: unknown stop "card" (want callback or notify)`}},
		{"device start with pre-selection", twoStations + "terminals: [{machine_id: 1, flow: pre-selection, start: device, stations: [\"5\"]}]\n", []string{`terminals[0].start: Device Start is pre-authorization only; this terminal's flow is "pre-selection"`}},
		{"preauth amount without device start", twoStations + "terminals: [{machine_id: 1, flow: pre-authorization, preauth_amount: 20, stations: [\"5\"]}]\n", []string{"terminals[0].preauth_amount: only a Device Start terminal (start: device) pre-authorizes an amount of its own; remote starts use policy.start_amount"}},
		{"preauth amount beyond the currency", twoStations + "terminals: [{machine_id: 1, flow: pre-authorization, start: device, preauth_amount: 20.005, stations: [\"5\"]}]\n", []string{"terminals[0].preauth_amount: must have at most 2 decimals (tariff.decimal_place), got 20.005"}},
		{"pos display without the price", minimal + "tariff: {price_per_kwh: 0.39, pos_display: \"Station {station}\"}\n", []string{"tariff.pos_display: must show {price}: the price per kWh before the session starts (EU AFIR)"}},
		{"pos display unknown field", minimal + "tariff: {price_per_kwh: 0.39, pos_display: \"{price} {vat}\"}\n", []string{`tariff.pos_display: unknown field in "{price} {vat}": use {station}, {price}, {currency}, {fee}`}},
		{"reservation zero", minimal + "policy: {reservation: 0s}\n", []string{`policy.reservation: must be > 0, got "0s"`}},
		{"unknown flow", twoStations + "terminals: [{machine_id: 1, flow: prepaid, stations: [\"5\"]}]\n", []string{`terminals[0].flow: unknown flow "prepaid" (want pre-authorization or pre-selection)`}},
		{"terminal without stations", twoStations + "terminals: [{machine_id: 1}]\n", []string{"terminals[0].stations: at least one station required"}},
		{"unknown station", twoStations + "terminals: [{machine_id: 1, stations: [\"5\", \"9\"]}]\n", []string{`terminals[0].stations[1]: unknown station "9"`}},
		{"station listed twice", twoStations + "terminals: [{machine_id: 1, stations: [\"5\", 5]}]\n", []string{`terminals[0].stations[1]: station "5" listed twice`}},
		{"station claimed twice", twoStations + "terminals: [{machine_id: 1, stations: [\"5\"]}, {machine_id: 2, stations: [\"6\", \"5\"]}]\n", []string{`terminals[1].stations[1]: station "5" already claimed by terminals[0]`}},

		// stations
		{"no stations", "node: {id: n1}\n", []string{"stations: at least one station required"}},
		{"empty station list", "node: {id: n1}\nstations: []\n", []string{"stations: at least one station required"}},
		{"station number missing", "node: {id: n1}\nstations: [{driver: sim}]\n", []string{"stations[0].number: required"}},
		{"station null element", "node: {id: n1}\nstations: [~]\n", []string{"stations[0].number: required"}},
		{"station number invalid", "node: {id: n1}\nstations: [{number: \"5#\"}]\n", []string{`stations[0].number: invalid station number "5#": use 1 to 64 letters, digits, '.', '_' or '-' (it is an MQTT topic level)`}},
		{"duplicate station number", "node: {id: n1}\nstations: [{number: 5}, {number: \"5\"}]\n", []string{`stations[1].number: duplicate station number "5"`}},
		{"driver gpio without its block", "node: {id: n1}\nstations: [{number: \"1\", driver: gpio}]\n", []string{"stations[0].gpio: required with driver gpio", "stations[0].meter: required with driver gpio (GPIO lines cannot measure energy)"}},
		{"driver modbus without its block", "node: {id: n1}\nstations: [{number: \"1\", driver: modbus}]\n", []string{"stations[0].modbus: required with driver modbus"}},
		{"driver unknown", "node: {id: n1}\nstations: [{number: \"1\", driver: ocpp}]\n", []string{`stations[0].driver: unknown driver "ocpp" (want sim, gpio or modbus)`}},
		{"sim block on gpio", "node: {id: n1}\nstations: [{number: \"1\", driver: gpio, sim: {power_kw: 3}}]\n", []string{"stations[0].gpio: required with driver gpio", "stations[0].meter: required with driver gpio (GPIO lines cannot measure energy)", `stations[0].sim: only used with driver sim (this station's driver is "gpio")`}},
		{"sim vehicle", "node: {id: n1}\nstations: [{number: \"1\", sim: {vehicle: maybe}}]\n", []string{`stations[0].sim.vehicle: unknown vehicle state "maybe" (want present or absent)`}},
		{"sim power zero", "node: {id: n1}\nstations: [{number: \"1\", sim: {power_kw: 0}}]\n", []string{"stations[0].sim.power_kw: must be > 0 and <= 350, got 0"}},
		{"sim power too high", "node: {id: n1}\nstations: [{number: \"1\", sim: {power_kw: 350.5}}]\n", []string{"stations[0].sim.power_kw: must be > 0 and <= 350, got 350.5"}},
		{"sim power max ok", "node: {id: n1}\nstations: [{number: \"1\", max_power_kw: 350, sim: {power_kw: 350, time_scale: 3600}}]\n", nil},
		{"sim power above max_power_kw", "node: {id: n1}\nstations: [{number: \"1\", sim: {power_kw: 50}}]\n", []string{"stations[0].sim.power_kw: exceeds the station's max_power_kw (22); raise max_power_kw"}},
		{"sim power at raised max_power_kw", "node: {id: n1}\nstations: [{number: \"1\", max_power_kw: 50, sim: {power_kw: 50}}]\n", nil},
		{"sim time_scale low", "node: {id: n1}\nstations: [{number: \"1\", sim: {time_scale: 0.5}}]\n", []string{"stations[0].sim.time_scale: must be between 1 and 3600, got 0.5"}},
		{"sim time_scale high", "node: {id: n1}\nstations: [{number: \"1\", sim: {time_scale: 3601}}]\n", []string{"stations[0].sim.time_scale: must be between 1 and 3600, got 3601"}},

		// policy
		{"policy durations", minimal + "policy: {plug_timeout: 0s, contactor_timeout: -1s, energy_checkpoint: 0s}\n", []string{
			`policy.plug_timeout: must be > 0, got "0s"`,
			`policy.contactor_timeout: must be > 0, got "-1s"`,
			`policy.energy_checkpoint: must be > 0, got "0s"`,
		}},
		{"policy bad duration", minimal + "policy: {plug_timeout: 2 minutes}\n", []string{`policy.plug_timeout: invalid duration "2 minutes"`}},
		{"min_energy_wh negative", minimal + "policy: {min_energy_wh: -1}\n", []string{"policy.min_energy_wh: must be >= 0, got -1"}},
		{"budget_stop_at zero", minimal + "policy: {budget_stop_at: 0}\n", []string{"policy.budget_stop_at: must be a percentage of the authorized amount above 0 and at most 100, got 0"}},
		{"budget_stop_at above 100", minimal + "policy: {budget_stop_at: 101}\n", []string{"policy.budget_stop_at: must be a percentage of the authorized amount above 0 and at most 100, got 101"}},
		{"min_energy_wh zero ok", minimal + "policy: {min_energy_wh: 0}\n", nil},

		// tariff
		{"currency lower case", minimal + "tariff: {currency: eur, price_per_kwh: 0.39}\n", []string{`tariff.currency: invalid currency "eur": want a 3-letter upper-case ISO 4217 code such as "EUR"`}},
		{"currency too long", minimal + "tariff: {currency: EURO, price_per_kwh: 0.39}\n", []string{`tariff.currency: invalid currency "EURO": want a 3-letter upper-case ISO 4217 code such as "EUR"`}},
		{"decimal_place high", minimal + "tariff: {decimal_place: 4, price_per_kwh: 0.39}\n", []string{"tariff.decimal_place: must be between 0 and 3, got 4"}},
		{"decimal_place negative", minimal + "tariff: {decimal_place: -1, price_per_kwh: 0.39}\n", []string{"tariff.decimal_place: must be between 0 and 3, got -1"}},
		{"decimal_place zero ok", minimal + "tariff: {currency: JPY, decimal_place: 0, price_per_kwh: 45}\n", nil},
		{"negative price and fee", minimal + "tariff: {price_per_kwh: -0.01, session_fee: -1}\n", []string{
			"tariff.price_per_kwh: must be >= 0, got -0.01",
			"tariff.session_fee: must be >= 0, got -1",
		}},
		// a site without a price gives energy away: refused
		{"price zero", minimal + "tariff: {price_per_kwh: 0}\n", []string{
			"tariff.price_per_kwh: must be > 0 unless tariff.session_fee is: every session would cost 0.00 (its hold cancelled, the energy given away)",
		}},
		{"no price", minimal + "tariff: {currency: EUR}\n", []string{
			"tariff.price_per_kwh: must be > 0 unless tariff.session_fee is: every session would cost 0.00 (its hold cancelled, the energy given away)",
		}},
		{"price zero with a fee ok", minimal + "tariff: {price_per_kwh: 0, session_fee: 0.50}\n", nil},
		// money is integers in the ledger: what it cannot hold exactly is refused
		{"price with six decimals ok", minimal + "tariff: {price_per_kwh: 0.392501, session_fee: 0.000001}\n", nil},
		{"price finer than a millionth", minimal + "tariff: {price_per_kwh: 0.3925001}\n", []string{
			"tariff.price_per_kwh: must have at most 6 decimals (millionths of the currency unit), got 0.3925001",
		}},
		{"fee finer than a millionth", minimal + "tariff: {session_fee: \"0.0000005\"}\n", []string{
			"tariff.session_fee: must have at most 6 decimals (millionths of the currency unit), got 0.0000005",
		}},
		{"largest price ok, fee too large", minimal + "tariff: {price_per_kwh: 999999999.999999, session_fee: 1e300}\n", []string{
			"tariff.session_fee: must be at most 999999999.999999, got 1e+300",
		}},
		{"price just too large", minimal + "tariff: {price_per_kwh: 1000000000}\n", []string{
			"tariff.price_per_kwh: must be at most 999999999.999999, got 1e+09",
		}},
		{"start_amount in cents ok", minimal + "policy: {start_amount: 12.34}\n", nil},
		{"start_amount finer than the currency", minimal + "policy: {start_amount: 12.345}\n", []string{
			"policy.start_amount: must have at most 2 decimals (tariff.decimal_place), got 12.345",
		}},
		{"start_amount in yen", minimal + "policy: {start_amount: 2000.5}\ntariff: {currency: JPY, decimal_place: 0, price_per_kwh: 45}\n", []string{
			"policy.start_amount: must have at most 0 decimals (tariff.decimal_place), got 2000.5",
		}},
		{"start_amount in dinar ok", minimal + "policy: {start_amount: 5.125}\ntariff: {currency: KWD, decimal_place: 3, price_per_kwh: 0.125}\n", nil},
		{"start_amount too large", minimal + "policy: {start_amount: 1e13}\n", []string{
			"policy.start_amount: must be at most 9999999999999.99, got 1e+13",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemsOf(t, tt.src)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestAllProblemsReported checks that one file with many mistakes gets all
// of them, each at its line, in file order.
func TestAllProblemsReported(t *testing.T) {
	src := `node:
  data_dir: var/lib
mqtt:
  brokr: tcp://127.0.0.1:1883
  tls: {cert_file: /a.pem}
terminals:
  - machine_id: "71234996"
    hw_serial: 0434334921100366
    stations: ["5", "9"]
  - machine_id: 71234996
    flow: pay
    stations: [5]
stations:
  - number: 5
    sim: {colour: red, power_kw: 0}
  - number: "5"
    driver: gpio
  - number: {a: 1}
policy:
  plug_timeout: 2 minutes
tariff: {currency: eur}
`
	want := []string{
		"line 1: node.id: required",
		`line 2: node.data_dir: must be an absolute path, got "var/lib"`,
		"line 4: mqtt.brokr: unknown key",
		"line 5: mqtt.tls.key_file: required when cert_file is set",
		`line 5: mqtt.tls: set, but broker "tcp://127.0.0.1:1883" does not use TLS (use ssl://, mqtts:// or wss://)`,
		`line 9: terminals[0].stations[1]: unknown station "9"`,
		"line 10: terminals[1].machine_id: duplicate machine_id 71234996",
		`line 11: terminals[1].flow: unknown flow "pay" (want pre-authorization or pre-selection)`,
		`line 12: terminals[1].stations[0]: station "5" already claimed by terminals[0]`,
		"line 15: stations[0].sim.colour: unknown key",
		"line 15: stations[0].sim.power_kw: must be > 0 and <= 350, got 0",
		`line 16: stations[1].number: duplicate station number "5"`,
		"line 16: stations[1].gpio: required with driver gpio",
		"line 16: stations[1].meter: required with driver gpio (GPIO lines cannot measure energy)",
		"line 18: stations[2].number: expected a string, got a mapping",
		`line 20: policy.plug_timeout: invalid duration "2 minutes"`,
		`line 21: tariff.currency: invalid currency "eur": want a 3-letter upper-case ISO 4217 code such as "EUR"`,
		"line 21: tariff.price_per_kwh: must be > 0 unless tariff.session_fee is: every session would cost 0.00 (its hold cancelled, the energy given away)",
	}
	_, err := ParseEdge([]byte(priced(src)))
	if err == nil {
		t.Fatal("no problems reported")
	}
	got := strings.Split(err.Error(), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestProblemLines(t *testing.T) {
	tests := []struct {
		name string
		src  string
		path string
		line int
	}{
		{"syntax error", "tariff: {price_per_kwh: 0.39}\nnode:\n  id: n1\n  x: [\n", "", 4},
		{"second document", minimal + "---\na: 1\n", "", 3},
		{"unknown key", minimal + "\n\nmqtt:\n  brokr: x\n", "mqtt.brokr", 6},
		{"missing key at its block", "stations: [{number: \"1\"}]\nnode:\n  data_dir: /x\n", "node.id", 2},
		{"missing block", "stations: [{number: \"1\"}]\ntariff: {price_per_kwh: 0.39}\n", "node.id", 0},
		{"list element", "node: {id: n1}\nstations:\n  - number: \"1\"\n  - number: \"1\"\n", "stations[1].number", 4},
		{"price finer than a millionth", "node: {id: n1}\nstations: [{number: \"1\"}]\ntariff:\n  currency: EUR\n  price_per_kwh: 0.1234567\n", "tariff.price_per_kwh", 5},
		{"terminal station entry", "node: {id: n1}\nstations: [{number: \"1\"}]\nterminals:\n  - machine_id: 1\n    stations:\n      - \"1\"\n      - \"2\"\n", "terminals[0].stations[1]", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEdge([]byte(priced(tt.src)))
			probs, _ := err.(Problems)
			if len(probs) != 1 || probs[0].Path != tt.path || probs[0].Line != tt.line {
				t.Errorf("problems = %#v, want one at %q line %d", probs, tt.path, tt.line)
			}
		})
	}
}

// TestRunawayDocuments checks that alias bombs and garbage are cut short
// with a report instead of exhausting memory or time.
func TestRunawayDocuments(t *testing.T) {
	var b strings.Builder
	b.WriteString("node: {id: n1}\nstations:\n  - number: \"0\"\n    sim: &m0 {power_kw: 1, junk: 1}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  - number: \"%d\"\n    sim: &m%d {<<: [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*m%d", i-1)
		}
		b.WriteString("]}\n")
	}
	_, err := ParseEdge([]byte(priced(b.String())))
	probs, _ := err.(Problems)
	if len(probs) != maxProblems+2 {
		t.Fatalf("got %d problems, want %d", len(probs), maxProblems+2)
	}
	if got := probs[len(probs)-2].Reason; !strings.HasPrefix(got, "document too complex") {
		t.Errorf("second to last problem = %q, want the runaway report", got)
	}
	if got := probs[len(probs)-1].Reason; got != fmt.Sprintf("too many problems; only the first %d are shown", maxProblems) {
		t.Errorf("last problem = %q", got)
	}

	// A runaway merge without other mistakes is reported on its own.
	b.Reset()
	b.WriteString("node: {id: n1}\nstations:\n  - number: \"0\"\n    sim: &m0 {power_kw: 1}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  - number: \"%d\"\n    sim: &m%d {<<: [*m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d]}\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	_, err = ParseEdge([]byte(priced(b.String())))
	if probs, _ := err.(Problems); len(probs) != 1 || !strings.HasPrefix(probs[0].Reason, "document too complex") {
		t.Errorf("clean merge bomb: problems = %v", err)
	}

	var many strings.Builder
	many.WriteString(minimal)
	for i := range 500 {
		fmt.Fprintf(&many, "k%d: 1\n", i)
	}
	_, err = ParseEdge([]byte(priced(many.String())))
	if probs, _ := err.(Problems); len(probs) != maxProblems+1 {
		t.Errorf("500 unknown keys: got %d problems, want %d", len(probs), maxProblems+1)
	}
}
