package edge

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sitelink/sitelink/store"
)

// BenchmarkStopHandle times the engine's handling of a StopCallback
// without a broker, for profiling what the engine adds to the stop path:
// decode, dedupe, contactor, the stop's commit (with fsync) and the reply
// queued. Each stop's session was authorized and charges first, and the
// events before it were acknowledged, as at a site.
// (`go test -run '^$' -bench BenchmarkStopHandle -cpuprofile cpu.out ./daemon/edge`)
func BenchmarkStopHandle(b *testing.B) {
	r := newRig(b, nil)
	b.ReportAllocs()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		spark, nayax := uuid.NewString(), 5_000_000+i
		r.command("authorize", authBody(b, "5", map[string]any{"SparkTransactionId": spark, "NayaxTransactionId": nayax}))
		r.e.stationChanges(time.Now())
		time.Sleep(2 * time.Millisecond) // the vehicle draws
		r.e.stationChanges(time.Now())
		es, err := r.st.OutboxHead(0)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range es {
			r.st.OutboxAcked(e.Seq)
		}
		b.StartTimer()
		r.command("stop", stopBody(b, map[string]any{"SparkTransactionId": spark, "NayaxTransactionId": nayax}))
		b.StopTimer()
		var s store.Session
		if err := r.st.View(func(tx *store.Tx) error { s, err = tx.Session(spark); return err }); err != nil {
			b.Fatal(err)
		}
		if s.State != store.Settling && s.State != store.Cancelling {
			b.Fatalf("after the stop: %s", s.State)
		}
	}
}
