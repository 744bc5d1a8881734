package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sitelink/sitelink/daemon/mqtttest"
)

// `sitelink fleet terminals` against the broker as shipped: the fleet
// operator's certificate gives, lists, moves and removes terminals; a
// site's certificate is told that the broker did not keep its change.
func TestFleetTerminals(t *testing.T) {
	sb := mqtttest.StartShipped(t)
	creds := func(ca mqtttest.TLSFiles, url, cn string) []string {
		cert, key := ca.IssueClient(t, cn)
		serverCA := sb.CloudCA.CAFile
		if ca.CAFile == sb.NodeCA.CAFile {
			serverCA = sb.NodeCA.CAFile
		}
		return []string{"-broker", url, "-ca-file", serverCA, "-cert-file", cert, "-key-file", key, "-wait", "1s"}
	}
	fleet := creds(sb.CloudCA, sb.CloudURL, "fleet")
	site := creds(sb.NodeCA, sb.NodesURL, "site-b")
	cfg, _ := writeConfig(t, "tcp://127.0.0.1:1")
	fleetRun := func(creds []string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(append(append([]string{"fleet", "terminals"}, creds...), args...), &out, &errb)
		return out.String() + errb.String(), err
	}
	list := func() map[string]string {
		out, err := fleetRun(fleet, "-json")
		if err != nil {
			t.Fatalf("list: %v %s", err, out)
		}
		var rows []struct{ Key, Node string }
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("list output %q: %v", out, err)
		}
		owners := map[string]string{}
		for _, r := range rows {
			owners[r.Key] = r.Node
		}
		return owners
	}

	for _, step := range []struct {
		name  string
		creds []string
		args  []string
		err   string
		want  map[string]string
	}{
		{"give a site's terminals from its config", fleet, []string{"-give-from", cfg}, "", map[string]string{"m71234996": node}},
		{"a site's certificate cannot move it", site, []string{"-give", "site-b", "-machine-id", "71234996"}, "the broker did not keep", map[string]string{"m71234996": node}},
		{"the operator moves it", fleet, []string{"-give", "site-b", "-machine-id", "71234996", "-hw-serial", "0434334921100366"}, "", map[string]string{"m71234996": "site-b"}},
		{"given again by its serial alone: the machine id's entry goes", fleet, []string{"-give", "site-c", "-hw-serial", "0434334921100366"}, "", map[string]string{"s0434334921100366": "site-c"}},
		{"given back by both: the serial's entry goes", fleet, []string{"-give", "site-b", "-machine-id", "71234996", "-hw-serial", "0434334921100366"}, "", map[string]string{"m71234996": "site-b"}},
		{"and removes it", fleet, []string{"-remove", "-machine-id", "71234996"}, "", map[string]string{}},
		{"-give needs a terminal", fleet, []string{"-give", "site-b"}, "name the terminal", map[string]string{}},
	} {
		t.Run(step.name, func(t *testing.T) {
			out, err := fleetRun(step.creds, step.args...)
			if step.err == "" && err != nil || step.err != "" && (err == nil || !strings.Contains(err.Error(), step.err)) {
				t.Fatalf("err %v (want %q), output %s", err, step.err, out)
			}
			got := list()
			if len(got) != len(step.want) {
				t.Fatalf("registry %v, want %v", got, step.want)
			}
			for k, v := range step.want {
				if got[k] != v {
					t.Fatalf("registry %v, want %v", got, step.want)
				}
			}
		})
	}
}
