package edge

import (
	"context"
	"runtime/pprof"
	"syscall"
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
// (`go test -run '^$' -bench BenchmarkStopHandle -cpuprofile cpu.out ./daemon/edge`;
// the stops carry the profile label phase=stop, for `go tool pprof
// -tagfocus phase=stop`). cpu-ns/op is the process's CPU time (user and
// system, getrusage) over the stops alone: less noisy than ns/op, which
// includes waiting for the disk's fsyncs.
//
// The nosync variant skips the ledger's fsyncs: the engine's CPU alone,
// far less noisy on a shared machine than waiting for the disk.
func BenchmarkStopHandle(b *testing.B) {
	b.Run("fsync", benchmarkStopHandle)
	b.Run("nosync", func(b *testing.B) {
		rigNoSync = true
		defer func() { rigNoSync = false }()
		benchmarkStopHandle(b)
	})
}

func benchmarkStopHandle(b *testing.B) {
	r := newRig(b, nil)
	b.ReportAllocs()
	b.StopTimer()
	var cpu time.Duration
	stop := pprof.Labels("phase", "stop")
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
		body := stopBody(b, map[string]any{"SparkTransactionId": spark, "NayaxTransactionId": nayax})
		before := cpuTime(b)
		b.StartTimer()
		pprof.Do(context.Background(), stop, func(context.Context) { r.command("stop", body) })
		b.StopTimer()
		cpu += cpuTime(b) - before
		var s store.Session
		if err := r.st.View(func(tx *store.Tx) error { s, err = tx.Session(spark); return err }); err != nil {
			b.Fatal(err)
		}
		if s.State != store.Settling && s.State != store.Cancelling {
			b.Fatalf("after the stop: %s", s.State)
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
