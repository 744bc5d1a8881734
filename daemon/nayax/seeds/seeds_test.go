package seeds

import (
	"encoding/json"
	"testing"
)

func TestSeedsAreJSONObjects(t *testing.T) {
	names := Names()
	if len(names) < 3 {
		t.Fatalf("Names() = %v, want at least the three Spark examples", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(Get(name), &m); err != nil {
				t.Fatalf("seed is not a JSON object: %v", err)
			}
		})
	}
}

func TestGetReturnsACopy(t *testing.T) {
	a := Get("000_stopcallback_request.json")
	a[0] = 'x'
	if b := Get("000_stopcallback_request.json"); b[0] != '{' {
		t.Fatalf("Get shares its buffer: first byte %q after caller's write", b[0])
	}
}

func TestGetUnknownPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Get of an unknown name did not panic")
		}
	}()
	Get("nope.json")
}
