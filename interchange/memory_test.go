package interchange_test

import (
	"runtime"
	"testing"

	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/internal/wire"
)

// BenchmarkQueuedTaskMemory measures the interchange's heap per queued task
// with 1,000,000 tasks waiting and no pool connected: the payload of a
// no-op app with one int argument, as htex encodes it, plus the queue
// entry. Run with -benchtime=1x.
func BenchmarkQueuedTaskMemory(b *testing.B) {
	const n = 1_000_000
	arg, _ := codec.Marshal(7)
	for i := 0; i < b.N; i++ {
		ix, err := interchange.New(interchange.Options{Secret: secret, Deliver: func([]wire.Result, interchange.ManagerInfo) {}})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for id := int64(0); id < n; id++ {
			p, err := codec.Marshal(&wire.Task{ID: id, App: "parsl.perf.noop", Args: []codec.RawMessage{arg}})
			if err != nil {
				b.Fatal(err)
			}
			ix.Enqueue(interchange.Item{ID: id, Payload: p})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if ix.Queued() != n {
			b.Fatalf("queued %d, want %d", ix.Queued(), n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/queued-task")
		ix.Close()
	}
}
