package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as Go duration text ("120s", "2m",
// "500ms") in YAML and JSON, because a bare number of nanoseconds is
// unreadable for an operator and ambiguous about its unit.
type Duration time.Duration

var (
	_ json.Marshaler   = Duration(0)
	_ json.Unmarshaler = (*Duration)(nil)
	_ yaml.Marshaler   = Duration(0)
	_ yaml.Unmarshaler = (*Duration)(nil)
)

// String returns the duration in Go notation, e.g. "2m0s".
func (d Duration) String() string { return time.Duration(d).String() }

// parseDuration parses Go duration text, or a whole number of days ("90d",
// for retention periods). A bare number other than 0 is refused with a
// hint: "120" might mean seconds to the writer, and guessing wrong would
// turn a two-minute timeout into 120 ns.
func parseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" && strings.Trim(days, "0123456789") == "" {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n > maxDays {
			return 0, fmt.Errorf("invalid duration %s: at most %dd", quote(s), maxDays)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if isBareNumber(s) {
			return 0, fmt.Errorf("invalid duration %s: add a unit, e.g. %q", quote(s), s+"s")
		}
		return 0, fmt.Errorf("invalid duration %s", quote(s))
	}
	return Duration(d), nil
}

// maxDays is the most days a Duration holds (about 290 years).
const maxDays = int64(math.MaxInt64 / int64(24*time.Hour))

func isBareNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' && r != '-' && r != '+' {
			return false
		}
	}
	return true
}

// MarshalJSON writes the duration as a JSON string such as "2m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.String())
}

// UnmarshalJSON reads a JSON string such as "120s"; null leaves d unchanged,
// as encoding/json does for other types.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"120s\": %w", err)
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as text, so that a marshalled Edge can be
// read back by ParseEdge.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads duration text when an Edge is decoded with plain
// yaml.Unmarshal rather than ParseEdge.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration such as \"120s\"", n.Line)
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
