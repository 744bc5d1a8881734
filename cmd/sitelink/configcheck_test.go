package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
)

// TestConfigCheckFiles: configurations that are right on paper (Check
// passes) but name files or ports the daemon cannot use at start. `config
// check` reports each as FILE:LINE: key: problem, in text and -json, with
// the exit status the lead's scripts rely on (1 on an error, 0 on
// warnings only), and `sitelink run` / `sitelink relay` refuse the same
// file with the same line.
func TestConfigCheckFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f := mqtttest.MakeTLS(t, "n1")
	other := mqtttest.MakeTLS(t, "n2") // a key that belongs to another certificate
	pw := write("mqtt.password", "s3cret\n")
	garbage := write("garbage.pem", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
	text := write("notpem.txt", "this is not PEM\n")
	missing := filepath.Join(dir, "missing")
	noPort := "/dev/ttySITELINK-none"

	// edge is an edge config whose keys sit on fixed lines: 8
	// password_file, 10 ca_file, 11 cert_file, 12 key_file, 15 port.
	edge := func(pwFile, ca, cert, key, port string) string {
		return fmt.Sprintf(`node:
  id: n1
  data_dir: %[1]s/data
  api_socket: %[1]s/api.sock
mqtt:
  broker: "ssl://127.0.0.1:8883"
  username: n1
  password_file: %[2]s
  tls:
    ca_file: %[3]s
    cert_file: %[4]s
    key_file: %[5]s
buses:
  - name: rs485-1
    port: %[6]s
stations:
  - number: "1"
    driver: sim
tariff: {price_per_kwh: 0.39}
`, dir, pwFile, ca, cert, key, port)
	}
	signKey := write("sign.key", nayaxsim.DefaultSignKey+"\n")
	token := write("token.secret", nayaxsim.DefaultTokenSecret+"\n")
	cardKey := write("card.key", testCardKey+"\n")
	header := write("header.secret", "h3ader\n")
	// relay is a relay config: 3 card_key_file, 4 value_file, 5
	// tls_cert_file, 6 tls_key_file, 10 sign_key_file, 12
	// token_secret_file.
	relay := func(card, value, cert, key, sign string) string {
		return fmt.Sprintf(`relay:
  id: relay-1
  card_key_file: %s
  callback_headers: [{name: X-Auth, value_file: %s}]
  tls_cert_file: %s
  tls_key_file: %s
nayax:
  base_url: "https://nayax.example/api"
  integrator_id: i1
  sign_key_file: %s
  token_id: 7
  token_secret_file: %s
`, card, value, cert, key, sign, token)
	}

	type want struct {
		line     int
		key      string
		problem  string // a substring of the problem
		severity string
	}
	cases := []struct {
		name      string
		src       string
		elsewhere bool
		code      int
		want      []want // every problem, in order
		start     string // "run" or "relay": the daemon refuses it too, with want[0]
	}{
		{name: "all files there", src: edge(pw, f.CAFile, f.ClientCert, f.ClientKey, "/dev/null")},
		{name: "missing password_file", src: edge(missing, f.CAFile, f.ClientCert, f.ClientKey, "/dev/null"), code: 1, start: "run",
			want: []want{{8, "mqtt.password_file", "no such file or directory", "error"}}},
		{name: "empty password_file", src: edge(write("empty", "\n"), f.CAFile, f.ClientCert, f.ClientKey, "/dev/null"), code: 1,
			want: []want{{8, "mqtt.password_file", "empty secret", "error"}}},
		{name: "missing ca_file", src: edge(pw, missing, f.ClientCert, f.ClientKey, "/dev/null"), code: 1, start: "run",
			want: []want{{10, "mqtt.tls.ca_file", "no such file or directory", "error"}}},
		{name: "ca_file not PEM", src: edge(pw, text, f.ClientCert, f.ClientKey, "/dev/null"), code: 1,
			want: []want{{10, "mqtt.tls.ca_file", "no PEM certificates in", "error"}}},
		{name: "ca_file garbage PEM", src: edge(pw, garbage, f.ClientCert, f.ClientKey, "/dev/null"), code: 1,
			want: []want{{10, "mqtt.tls.ca_file", "certificate 1:", "error"}}},
		{name: "ca_file holds a key", src: edge(pw, f.ClientKey, f.ClientCert, f.ClientKey, "/dev/null"), code: 1,
			want: []want{{10, "mqtt.tls.ca_file", "not a CERTIFICATE", "error"}}},
		{name: "cert_file garbage PEM", src: edge(pw, f.CAFile, garbage, f.ClientKey, "/dev/null"), code: 1,
			want: []want{{11, "mqtt.tls.cert_file", "garbage.pem", "error"}}},
		{name: "key does not match cert", src: edge(pw, f.CAFile, f.ClientCert, other.ClientKey, "/dev/null"), code: 1, start: "run",
			want: []want{{12, "mqtt.tls.key_file", "private key does not match public key", "error"}}},
		{name: "key_file not a key", src: edge(pw, f.CAFile, f.ClientCert, text, "/dev/null"), code: 1,
			want: []want{{12, "mqtt.tls.key_file", "notpem.txt", "error"}}},
		{name: "missing serial port", src: edge(pw, f.CAFile, f.ClientCert, f.ClientKey, noPort), code: 1,
			want: []want{{15, "buses[0].port", "serial port " + noPort + ": no such file or directory", "error"}}},
		{name: "serial port a plain file", src: edge(pw, f.CAFile, f.ClientCert, f.ClientKey, pw), code: 1,
			want: []want{{15, "buses[0].port", "not a serial device", "error"}}},
		{name: "elsewhere: missing port and file are warnings", src: edge(missing, f.CAFile, f.ClientCert, f.ClientKey, noPort), elsewhere: true,
			want: []want{{8, "mqtt.password_file", "no such file", "warning"}, {15, "buses[0].port", "no such file", "warning"}}},
		{name: "elsewhere: a bad key is still an error", src: edge(pw, f.CAFile, f.ClientCert, other.ClientKey, noPort), elsewhere: true, code: 1,
			want: []want{{12, "mqtt.tls.key_file", "does not match", "error"}, {15, "buses[0].port", "no such file", "warning"}}},
		{name: "relay: all files there", src: relay(cardKey, header, f.ServerCert, f.ServerKey, signKey)},
		{name: "relay: missing card key", src: relay(missing, header, f.ServerCert, f.ServerKey, signKey), code: 1, start: "relay",
			want: []want{{3, "relay.card_key_file", "no such file", "error"}}},
		{name: "relay: short card key", src: relay(write("short.key", "short\n"), header, f.ServerCert, f.ServerKey, signKey), code: 1,
			want: []want{{3, "relay.card_key_file", "5 bytes, want at least 32", "error"}}},
		{name: "relay: missing header value file", src: relay(cardKey, missing, f.ServerCert, f.ServerKey, signKey), code: 1, start: "relay",
			want: []want{{4, "relay.callback_headers[0].value_file", "no such file", "error"}}},
		{name: "relay: server key of another certificate", src: relay(cardKey, header, f.ServerCert, other.ServerKey, signKey), code: 1,
			want: []want{{6, "relay.tls_key_file", "does not match", "error"}}},
		{name: "relay: missing sign key", src: relay(cardKey, header, f.ServerCert, f.ServerKey, missing), code: 1, start: "relay",
			want: []want{{10, "nayax.sign_key_file", "no such file", "error"}}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := write(fmt.Sprintf("case%d.yaml", i), c.src)
			args := []string{"config", "check"}
			if c.elsewhere {
				args = append(args, "-elsewhere")
			}
			args = append(args, file)

			// Text: one FILE:LINE: key: problem per line on stderr.
			var out, errb bytes.Buffer
			if code := exitOf(run(args, &out, &errb)); code != c.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, out.String(), errb.String())
			}
			lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
			if errb.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(c.want) {
				t.Fatalf("%d problems, want %d:\n%s", len(lines), len(c.want), errb.String())
			}
			for j, w := range c.want {
				sev := ""
				if w.severity == "warning" {
					sev = "warning: "
				}
				prefix := fmt.Sprintf("%s:%d: %s%s: ", file, w.line, sev, w.key)
				if !strings.HasPrefix(lines[j], prefix) || !strings.Contains(lines[j], w.problem) {
					t.Errorf("problem %d = %q, want %q...%q", j, lines[j], prefix, w.problem)
				}
			}
			if c.code == 0 && !strings.Contains(out.String(), file+": ok (") {
				t.Errorf("no ok line:\n%s", out.String())
			}

			// -json, after the file: the same problems as an array.
			out.Reset()
			errb.Reset()
			if code := exitOf(run(append(args, "-json"), &out, &errb)); code != c.code {
				t.Fatalf("-json: exit %d, want %d\n%s", code, c.code, errb.String())
			}
			var got []checkedProblem
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("-json output %q: %v", out.String(), err)
			}
			if got == nil || len(got) != len(c.want) {
				t.Fatalf("-json: %+v, want %d problems (and [] for none)", got, len(c.want))
			}
			for j, w := range c.want {
				g := got[j]
				if g.File != file || g.Line != w.line || g.Key != w.key || g.Severity != w.severity || !strings.Contains(g.Problem, w.problem) {
					t.Errorf("-json problem %d = %+v, want %v", j, g, w)
				}
			}

			// The daemon refuses the file at start, with the same line.
			if c.start != "" {
				var stderr bytes.Buffer
				err := run([]string{c.start, "-config", file}, &out, &stderr)
				if err == nil || !strings.Contains(err.Error(), lines[0]) {
					t.Errorf("sitelink %s: %v, want it to contain %q", c.start, err, lines[0])
				}
			}
		})
	}
}

// exitOf is the exit status run's error stands for.
func exitOf(err error) int {
	if ec, ok := err.(exitCode); ok {
		return int(ec)
	}
	if err != nil {
		return 1
	}
	return 0
}

// The examples agree with this build: `config check -elsewhere` finds
// nothing but the files and ports they name that this machine lacks
// (warnings, exit 0). The packaged template is refused, by the check and
// by `sitelink run`, with the message saying what to set.
func TestConfigCheckShipped(t *testing.T) {
	examples, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(examples) < 5 {
		t.Fatalf("configs: %v %v", examples, err)
	}
	for _, path := range examples {
		if filepath.Base(path) == "sitelink.yaml" {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := exitOf(run([]string{"config", "check", "-elsewhere", "-json", path}, &out, &errb)); code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
			}
			var probs []checkedProblem
			if err := json.Unmarshal(out.Bytes(), &probs); err != nil {
				t.Fatal(err)
			}
			for _, p := range probs {
				if p.Severity != "warning" || !strings.Contains(p.Problem, "no such file or directory") {
					t.Errorf("%+v: want only warnings about files or ports missing here", p)
				}
			}
		})
	}

	const template = "../../configs/sitelink.yaml"
	for _, args := range [][]string{{"config", "check", template}, {"run", "-config", template}} {
		var out, errb bytes.Buffer
		err := run(args, &out, &errb)
		if exitOf(err) != 1 {
			t.Fatalf("%v: exit %d, want 1", args, exitOf(err))
		}
		all := errb.String()
		if err != nil {
			all += err.Error()
		}
		for _, w := range []string{
			template + ": this is the packaged template, not yet edited: set the 9 values marked CHANGE-ME below",
			template + ":26: node.id: not set yet",
			template + ":80: tariff.price_per_kwh: not set yet",
		} {
			if !strings.Contains(all, w) {
				t.Errorf("%v: output lacks %q:\n%s", args, w, all)
			}
		}
	}
}
