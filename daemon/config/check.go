package config

import (
	"fmt"
	"os"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// Kinds of configuration file, as returned by Check.
const (
	KindEdge  = "edge"  // read by `sitelink run`
	KindRelay = "relay" // read by `sitelink relay`
)

// relayKeys are the top-level keys that only a relay configuration has.
// nayax counts as well as relay, so that a relay file whose relay block is
// missing is reported as such ("relay.id: required") rather than as an edge
// file full of unknown keys.
var relayKeys = map[string]bool{"relay": true, "nayax": true}

// relayKeyRE finds a relay key in a file too broken to parse, so that even a
// syntax error is reported against the right kind.
var relayKeyRE = regexp.MustCompile(`(?m)^(relay|nayax)[ \t]*:`)

// Check parses a configuration of either kind, for `sitelink config check`.
// The kind is decided by the top-level keys: a relay (or nayax) key makes it
// KindRelay, anything else KindEdge. err is nil or the Problems that
// ParseRelay or ParseEdge reports; kind is set either way.
func Check(data []byte) (kind string, err error) {
	kind = detectKind(data)
	if kind == KindRelay {
		_, err = ParseRelay(data)
	} else {
		_, err = ParseEdge(data)
	}
	return kind, err
}

// CheckOptions are what `sitelink config check` asks of CheckHost beyond
// Check: the
// files and devices the configuration names are always looked up; these
// say how.
type CheckOptions struct {
	// Elsewhere says that the check runs on another machine than the
	// target: a file or serial port that cannot be reached here (missing,
	// or not permitted) is a warning instead of an error. What a file
	// holds (a certificate, a key, a secret) is judged either way.
	Elsewhere bool
	// GPIOLine, when set, says whether this host has a GPIO line, and
	// every line the configuration names is looked up (Edge.CheckPins).
	// Nil: GPIO lines are not checked.
	GPIOLine func(name string) bool
}

// CheckFile reads the file at path and runs Check on it. A read error is
// wrapped, names the path and comes with an empty kind; problems have
// their File set. The files the configuration names are not read: see
// CheckHost.
func CheckFile(path string) (kind string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read config: %w", err)
	}
	kind, err = Check(data)
	if probs, ok := err.(Problems); ok {
		return kind, probs.inFile(path)
	}
	return kind, err
}

// CheckHost checks the configuration file at path as Check does, and then
// what it names on this host, as the daemon would find it when it starts:
// the files (readable; secrets not empty; certificates, keys and CA files
// parse and each key matches its certificate) and the buses' serial ports.
// probs has every problem, warnings included, with File and Line set; it
// is nil when there is none. err is set only when path cannot be read
// (kind is then empty).
func CheckHost(path string, o CheckOptions) (kind string, probs Problems, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("read config: %w", err)
	}
	c := &hostCheck{ports: true, elsewhere: o.Elsewhere, gpioLine: o.GPIOLine}
	kind = detectKind(data)
	if kind == KindRelay {
		r := DefaultRelay()
		probs = parseChecked(data, &r, nil, func() Problems { c.relay(&r); return c.probs })
	} else {
		e := Default()
		probs = parseChecked(data, &e, e.fillSimDefaults, func() Problems { c.edge(&e); return c.probs })
	}
	return kind, probs.inFile(path), nil
}

// LoadEdgeChecked is LoadEdge and then the files the configuration names,
// checked as `sitelink config check` (CheckHost) checks them: `sitelink run` refuses
// to start on the same problems, worded the same. Serial ports are not
// looked up: a missing adapter faults its stations, not the daemon.
func LoadEdgeChecked(path string) (*Edge, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read edge config: %w", err)
	}
	e := Default()
	c := &hostCheck{}
	if probs := parseChecked(data, &e, e.fillSimDefaults, func() Problems { c.edge(&e); return c.probs }); probs != nil {
		return nil, probs.inFile(path)
	}
	return &e, nil
}

// LoadRelayChecked is LoadRelay and then the files the configuration
// names, checked as `sitelink config check` (CheckHost) checks them, for `sitelink
// relay`'s start.
func LoadRelayChecked(path string) (*Relay, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read relay config: %w", err)
	}
	r := DefaultRelay()
	c := &hostCheck{}
	if probs := parseChecked(data, &r, nil, func() Problems { c.relay(&r); return c.probs }); probs != nil {
		return nil, probs.inFile(path)
	}
	return &r, nil
}

func detectKind(data []byte) string {
	root, prob := parseNodes(data)
	if prob != nil {
		if relayKeyRE.Match(data) {
			return KindRelay
		}
		return KindEdge
	}
	if root == nil || root.Kind != yaml.MappingNode {
		return KindEdge
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind == yaml.ScalarNode && relayKeys[k.Value] {
			return KindRelay
		}
	}
	return KindEdge
}

// EdgeAPISocket reads only node.api_socket (or its default) from an edge
// config file, for the operating commands (`sitelink status -config F`):
// they need nothing else, and the file may name things only the service
// can resolve (${CREDENTIALS_DIRECTORY}, files readable by its user), so
// the rest is not checked here.
func EdgeAPISocket(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var f struct {
		Node struct {
			APISocket string `yaml:"api_socket"`
		} `yaml:"node"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if f.Node.APISocket == "" {
		return Default().Node.APISocket, nil
	}
	return f.Node.APISocket, nil
}
