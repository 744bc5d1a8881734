package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A file key may name a systemd credential: $CREDENTIALS_DIRECTORY and
// ${CREDENTIALS_DIRECTORY} are expanded when the file is decoded, in
// every *_file key of either config; unset, the key's line says so.
func TestCredentialsDirectory(t *testing.T) {
	edge, err := os.ReadFile(filepath.Join("..", "..", "configs", "edge.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	relay, err := os.ReadFile(filepath.Join("..", "..", "configs", "relay.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const creds = "/run/credentials/sitelink.service"
	cases := []struct {
		name      string
		relay     bool
		from, to  string // replaced in the example
		env       string // CREDENTIALS_DIRECTORY
		key, want string // the decoded value, or the problem
	}{
		{"edge braces", false, "username: \"\"\n  password_file: \"\"", "username: site\n  password_file: ${CREDENTIALS_DIRECTORY}/mqtt-password", creds, "mqtt.password_file", creds + "/mqtt-password"},
		{"edge bare", false, "username: \"\"\n  password_file: \"\"", "username: site\n  password_file: $CREDENTIALS_DIRECTORY/mqtt-password", creds + "/", "mqtt.password_file", creds + "/mqtt-password"},
		{"relay sign key", true, `sign_key_file: /etc/sitelink/nayax-sign.key`, `sign_key_file: "${CREDENTIALS_DIRECTORY}/nayax-sign-key"`, creds, "nayax.sign_key_file", creds + "/nayax-sign-key"},
		{"relay header", true, `value_file: /etc/sitelink/callback-auth.secret`, `value_file: ${CREDENTIALS_DIRECTORY}/callback-auth`, creds, "relay.callback_headers[0].value_file", creds + "/callback-auth"},
		{"not a prefix", false, "username: \"\"\n  password_file: \"\"", "username: site\n  password_file: /etc/x$CREDENTIALS_DIRECTORY", "", "mqtt.password_file", "/etc/x$CREDENTIALS_DIRECTORY"},
		{"another variable", false, "username: \"\"\n  password_file: \"\"", "username: site\n  password_file: $CREDENTIALS_DIRECTORYX/p", "", "mqtt.password_file", "$CREDENTIALS_DIRECTORYX/p"},
		{"unset", false, "username: \"\"\n  password_file: \"\"", "username: site\n  password_file: ${CREDENTIALS_DIRECTORY}/mqtt-password", "", "", "mqtt.password_file: $CREDENTIALS_DIRECTORY is not set"},
		{"unset relay", true, `card_key_file: /etc/sitelink/card.key`, `card_key_file: $CREDENTIALS_DIRECTORY/card-key`, "", "", "relay.card_key_file: $CREDENTIALS_DIRECTORY is not set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(CredentialsDirectory, c.env)
			src := edge
			if c.relay {
				src = relay
			}
			if !strings.Contains(string(src), c.from) {
				t.Fatalf("the example lacks %q", c.from)
			}
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(string(src), c.from, c.to, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			var got string
			if c.relay {
				r, err := LoadRelay(path)
				if err == nil {
					got = map[string]string{"nayax.sign_key_file": r.Nayax.SignKeyFile, "relay.callback_headers[0].value_file": r.Relay.CallbackHeaders[0].ValueFile}[c.key]
				}
				err = wantErr(t, err, path, c.key, c.want)
			} else {
				e, err := LoadEdge(path)
				if err == nil {
					got = map[string]string{"mqtt.password_file": e.MQTT.PasswordFile}[c.key]
				}
				err = wantErr(t, err, path, c.key, c.want)
			}
			if c.key != "" && got != c.want {
				t.Errorf("%s = %q, want %q", c.key, got, c.want)
			}
		})
	}
}

// wantErr checks err against a case: none when key is set, else a line
// `FILE:N: want`.
func wantErr(t *testing.T, err error, path, key, want string) error {
	t.Helper()
	if key != "" {
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		return nil
	}
	if err == nil {
		t.Fatalf("loaded; want %q", want)
	}
	for l := range strings.Lines(err.Error()) {
		if rest, ok := strings.CutPrefix(l, path+":"); ok && rest != "" && rest[0] >= '1' && rest[0] <= '9' && strings.Contains(rest, ": "+want) {
			return err
		}
	}
	t.Fatalf("error lacks %q on a FILE:LINE line:\n%v", want, err)
	return err
}

// The operating commands find the socket in a file naming credentials
// only the service can expand: they read node.api_socket alone.
func TestEdgeAPISocket(t *testing.T) {
	t.Setenv(CredentialsDirectory, "")
	dir := t.TempDir()
	for _, tc := range []struct{ name, file, want string }{
		{"named", "node: {id: a, api_socket: /run/x/api.sock}\nmqtt:\n  password_file: ${CREDENTIALS_DIRECTORY}/p\n", "/run/x/api.sock"},
		{"default", "node: {id: a}\n", Default().Node.APISocket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".yaml")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			if got, err := EdgeAPISocket(path); err != nil || got != tc.want {
				t.Fatalf("EdgeAPISocket = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := EdgeAPISocket(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("a missing file gave a socket")
	}
}
