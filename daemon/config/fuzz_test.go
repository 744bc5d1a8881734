package config

import (
	"errors"
	"os"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseEdge checks that no input makes ParseEdge panic, that it returns
// either a valid configuration or a non-empty Problems, and that a valid
// configuration survives a marshal/parse round trip.
func FuzzParseEdge(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	seeds := []string{
		string(example),
		hwSample,
		minimal,
		"",
		"node: {id: n1\n",
		"- a\n",
		minimal + "---\nnode: {}\n",
		"node: &n {id: n1, <<: *n}\nstations: [{number: \"1\"}]\n",
		"node: {id: n1}\nstations:\n  - &st {number: \"1\", sim: {power_kw: 22}}\n  - <<: *st\n    number: \"2\"\n",
		"node: {id: n1}\nstations: [{number: 5, sim: {colour: red}}]\nterminals: [{hw_serial: 0434334921100366, machine_id: \"7\", stations: [5, 9]}]\n",
		"policy: {plug_timeout: 2 minutes, min_energy_wh: .nan}\ntariff: {decimal_place: 99999999999999999999}\n",
		"mqtt: {broker: \"tcp://u:p@[::1]:0\", tls: {cert_file: /c}, keepalive: 500ms}\n",
		"buses: [{name: b, port: /dev/x, baud: 1}, {name: b}]\nstations: [{number: 1, driver: gpio, gpio: {contactor: {pin: A, debounce: 1s}, vehicle: {pin: a}}, meter: {bus: b, unit: 0, profile: generic}}]\n",
		"buses: [{name: b, port: /dev/x}]\nstations: [{number: 1, driver: modbus, modbus: {bus: b, unit: 1, state: {function: 4, address: 0156}, enable: {address: 0xFFFF}, energy: {scale: 1e-3}}}]\n",
	}
	for _, path := range hardwareExamples {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, string(data))
	}
	for _, seed := range seeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEdge(data)
		if err != nil {
			var probs Problems
			if !errors.As(err, &probs) || len(probs) == 0 {
				t.Fatalf("error %T %q is not a non-empty Problems", err, err)
			}
			for _, p := range probs {
				if p.Reason == "" {
					t.Fatalf("problem without reason: %#v", p)
				}
			}
			if e != nil {
				t.Fatal("non-nil *Edge with an error")
			}
			return
		}
		if probs := e.Validate(); probs != nil {
			t.Fatalf("ParseEdge accepted a config that Validate rejects: %v", probs)
		}
		out, err := yaml.Marshal(e)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := ParseEdge(out)
		if err != nil {
			t.Fatalf("re-parse of marshalled config: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(e, back) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", back, e)
		}
	})
}

// FuzzParseRelay checks ParseRelay as FuzzParseEdge checks ParseEdge, and
// that Check agrees with it on relay files.
func FuzzParseRelay(f *testing.F) {
	example, err := os.ReadFile(relayExamplePath)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(example),
		minimalRelay,
		"",
		"relay: {id: r1\n",
		"relay: [a]\n",
		"relay: &r {id: r1, <<: *r}\n",
		minimalRelay + "---\nrelay: {}\n",
		"relay: {id: r1, listen: \":0\", ack_budget: 5s, callback_headers: [{name: \"X A\", value: \"a\\r\\n\", value_file: /v}, {name: host}, {}]}\n",
		"relay: {id: r1, tls_cert_file: /c}\nnayax: {base_url: \"ftp://u:p@x/?q#f\", token_id: 2147483648, attempts: 11, trigger_timeout: 1.5s, timeout: 10}\n",
		minimalRelay + "mqtt: {broker: \"tcp://u:p@[::1]:0\", group: \"a/b\", tls: {cert_file: /c}}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRelay(data)
		if kind, cerr := Check(data); kind == KindRelay && (cerr == nil) != (err == nil) {
			t.Fatalf("Check = %q, %v; ParseRelay error %v", kind, cerr, err)
		}
		if err != nil {
			var probs Problems
			if !errors.As(err, &probs) || len(probs) == 0 {
				t.Fatalf("error %T %q is not a non-empty Problems", err, err)
			}
			for _, p := range probs {
				if p.Reason == "" {
					t.Fatalf("problem without reason: %#v", p)
				}
			}
			if r != nil {
				t.Fatal("non-nil *Relay with an error")
			}
			return
		}
		if probs := r.Validate(); probs != nil {
			t.Fatalf("ParseRelay accepted a config that Validate rejects: %v", probs)
		}
		out, err := yaml.Marshal(r)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := ParseRelay(out)
		if err != nil {
			t.Fatalf("re-parse of marshalled config: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(r, back) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", back, r)
		}
	})
}
