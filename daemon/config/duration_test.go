package config

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func nan() float64 { return math.NaN() }
func inf() float64 { return math.Inf(1) }

func TestDurationYAML(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		problem string // empty: valid
	}{
		{"120s", 120 * time.Second, ""},
		{"2m", 2 * time.Minute, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"90d", 90 * 24 * time.Hour, ""},
		{"1d", 24 * time.Hour, ""},
		{"1.5d", 0, `policy.plug_timeout: invalid duration "1.5d"`},
		{"d", 0, `policy.plug_timeout: invalid duration "d"`},
		{"-2d", 0, `policy.plug_timeout: invalid duration "-2d"`},
		{"999999d", 0, `policy.plug_timeout: invalid duration "999999d": at most 106751d`},
		{`"45s"`, 45 * time.Second, ""},
		{"0", 0, `policy.plug_timeout: must be > 0, got "0s"`},
		{"-5s", 0, `policy.plug_timeout: must be > 0, got "-5s"`},
		{"2 minutes", 0, `policy.plug_timeout: invalid duration "2 minutes"`},
		{"120", 0, `policy.plug_timeout: invalid duration "120": add a unit, e.g. "120s"`},
		{"1.5", 0, `policy.plug_timeout: invalid duration "1.5": add a unit, e.g. "1.5s"`},
		{"[1s]", 0, `policy.plug_timeout: expected a duration such as "120s", got a list`},
		{"{a: 1}", 0, `policy.plug_timeout: expected a duration such as "120s", got a mapping`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			src := minimal + "policy: {plug_timeout: " + tt.in + "}\n"
			got := problemsOf(t, src)
			if tt.problem != "" {
				if len(got) != 1 || got[0] != tt.problem {
					t.Errorf("problems = %q, want [%q]", got, tt.problem)
				}
				return
			}
			if got != nil {
				t.Fatalf("problems = %q", got)
			}
			e := mustParse(t, src)
			if time.Duration(e.Policy.PlugTimeout) != tt.want {
				t.Errorf("plug_timeout = %v, want %v", e.Policy.PlugTimeout, tt.want)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	type wrap struct {
		D Duration `json:"d"`
	}
	b, err := json.Marshal(wrap{Duration(90 * time.Second)})
	if err != nil || string(b) != `{"d":"1m30s"}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
	tests := []struct {
		in      string
		want    Duration
		wantErr bool
	}{
		{`{"d":"1m30s"}`, Duration(90 * time.Second), false},
		{`{"d":"250ms"}`, Duration(250 * time.Millisecond), false},
		{`{"d":null}`, Duration(7), false}, // null leaves the value alone
		{`{"d":120}`, 0, true},
		{`{"d":"soon"}`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			w := wrap{D: 7}
			err := json.Unmarshal([]byte(tt.in), &w)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && w.D != tt.want {
				t.Errorf("D = %v, want %v", w.D, tt.want)
			}
		})
	}
}
