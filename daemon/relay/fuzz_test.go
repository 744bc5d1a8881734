package relay_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/relay"
)

// FuzzCallbackHTTP posts arbitrary bodies to every endpoint of a relay
// with no broker: whatever arrives, the answer is well-formed JSON with a
// Status, and nothing panics.
func FuzzCallbackHTTP(f *testing.F) {
	r, err := relay.New(relay.Options{ID: "fuzz", Prefix: "sitelink/v1", AckBudget: 50 * time.Millisecond, CardKey: []byte(cardKey),
		Link: link.Options{Broker: "tcp://127.0.0.1:1"}, RateLimit: rate.Inf, InsecureAllowUnauthenticatedCallbacks: true})
	if err != nil {
		f.Fatal(err)
	}
	h := r.Handler()
	paths := []string{"/api/StopCallback", "/api/TransactionCallback", "/api/DeclineCallback", "/api/TimeoutCallback", "/Cortina/PrePaid/Cancel", "/Cortina/PrePaid/Void",
		"/api/StartSession", "/api/InfoQuery", "/api/AvailabilityCheck", "/api/TransactionNotify", "/api/StopNotify"}
	for _, name := range seeds.Names() {
		for i := range paths {
			f.Add(uint8(i), seeds.Get(name))
		}
	}
	f.Add(uint8(0), []byte(`{"MachineId":1e400}`))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		req := httptest.NewRequest(http.MethodPost, paths[int(which)%len(paths)], bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("HTTP %d", w.Code)
		}
		var out struct{ Status map[string]any }
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Status["Verdict"] == nil {
			t.Fatalf("answer without a Status: %s", w.Body.Bytes())
		}
	})
}
