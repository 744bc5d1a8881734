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

// CheckFile reads the file at path and runs Check on it. A read error is
// wrapped, names the path and comes with an empty kind.
func CheckFile(path string) (kind string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read config: %w", err)
	}
	return Check(data)
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
