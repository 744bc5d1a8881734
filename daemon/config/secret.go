package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSecret caps what ReadSecret reads: Nayax keys and broker passwords are
// short, so a large file is a wrong path (a log, a device), not a secret.
const maxSecret = 64 << 10

// ReadSecret returns the secret held in the file at path (a Nayax sign key
// or token secret, a callback header value, a broker password). One
// trailing newline ("\n" or "\r\n"), which editors and `echo` add, is
// removed; nothing else is changed, so a secret may keep deliberate spaces.
// An empty secret is an error (ErrEmptySecret): it would turn the check or
// signature it feeds into a constant. Errors name the path, never the
// content.
func ReadSecret(path string) (string, error) {
	if path == "" {
		return "", errors.New("read secret: no file named")
	}
	f, err := openNamed(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	if len(data) > maxSecret {
		return "", fmt.Errorf("read secret %s: larger than %d KiB, not a secret file", path, maxSecret>>10)
	}
	s := string(data)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	if s == "" {
		return "", fmt.Errorf("read secret %s: %w", path, ErrEmptySecret)
	}
	return s, nil
}

// CredentialsDirectory is the variable systemd sets for a service with
// LoadCredential= (systemd.exec(5)): the private directory holding them.
const CredentialsDirectory = "CREDENTIALS_DIRECTORY"

// expandCredentials expands a leading $CREDENTIALS_DIRECTORY or
// ${CREDENTIALS_DIRECTORY} in a file key's value (every key ending in
// _file), so that a config names the secrets systemd passes the service:
// `password_file: ${CREDENTIALS_DIRECTORY}/mqtt-password`. Elsewhere a $
// is a character of the path. The variable unset is an error: the file
// would be looked up at the root.
func expandCredentials(path string) (string, error) {
	for _, v := range []string{"${" + CredentialsDirectory + "}", "$" + CredentialsDirectory} {
		rest, ok := strings.CutPrefix(path, v)
		if !ok || (rest != "" && rest[0] != '/') {
			continue
		}
		dir := os.Getenv(CredentialsDirectory)
		if dir == "" {
			return "", errors.New("$" + CredentialsDirectory + " is not set (systemd sets it for a service with LoadCredential=)")
		}
		return strings.TrimSuffix(dir, "/") + rest, nil
	}
	return path, nil
}
