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
	for _, seed := range []string{
		string(example),
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
	} {
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
