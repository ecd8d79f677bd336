package parsl_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/threads"
)

// Benchmarks of the task path on the threads executor; `parsl perf` is the
// command-line counterpart. Run them with
//
//	go test -run XXX -bench . -benchmem -count 5 .
//
// Names carry a "bench" prefix because other files of this package are
// written by other people at the same time.

var (
	benchNoop = parsl.Register1("bench.noop", func(_ context.Context, _ int) (int, error) { return 7, nil })
	benchInc  = parsl.Register1("bench.inc", func(_ context.Context, x int) (int, error) { return x + 1, nil })
	benchMemo = parsl.Register1("bench.memo", func(_ context.Context, _ int) (int, error) { return 7, nil },
		parsl.WithCache(true))
)

// benchLoad starts a DFK with a threads executor of one worker per CPU,
// closed when the benchmark ends.
func benchLoad(b *testing.B) *parsl.DFK {
	b.Helper()
	dfk, err := parsl.Load(context.Background(), parsl.Config{
		Executors:       []executor.Executor{threads.New(threads.Options{})},
		RunDir:          b.TempDir(),
		NoSignalHandler: true,
	})
	if err != nil {
		b.Fatalf("parsl.Load: %v", err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dfk.Close(ctx); err != nil {
			b.Errorf("dfk.Close: %v", err)
		}
	})
	return dfk
}

func benchWant[T comparable](b *testing.B, f *parsl.Future[T], want T) {
	v, err := f.Get(context.Background())
	if err != nil {
		b.Fatalf("task %d: %v", f.TaskID(), err)
	}
	if v != want {
		b.Fatalf("task %d: got %v, want %v", f.TaskID(), v, want)
	}
}

// BenchmarkSubmitGetRoundTrip is one task at a time: submit, then Get.
func BenchmarkSubmitGetRoundTrip(b *testing.B) {
	dfk := benchLoad(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		benchWant(b, benchNoop.Submit(dfk, parsl.Val(i)), 7)
	}
}

// BenchmarkThroughput submits b.N tasks, then gets every result.
func BenchmarkThroughput(b *testing.B) {
	dfk := benchLoad(b)
	fs := make([]*parsl.Future[int], b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range fs {
		fs[i] = benchNoop.Submit(dfk, parsl.Val(i))
	}
	for _, f := range fs {
		benchWant(b, f, 7)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tasks/s")
}

// BenchmarkChain is a b.N-deep chain, each task the input of the next.
func BenchmarkChain(b *testing.B) {
	dfk := benchLoad(b)
	b.ReportAllocs()
	b.ResetTimer()
	f := benchInc.Submit(dfk, parsl.Val(0))
	for i := 1; i < b.N; i++ {
		f = benchInc.Submit(dfk, f)
	}
	benchWant(b, f, b.N)
}

// BenchmarkMemoHit is a submit+Get answered from the app cache.
func BenchmarkMemoHit(b *testing.B) {
	dfk := benchLoad(b)
	benchWant(b, benchMemo.Submit(dfk, parsl.Val(42)), 7)
	b.ReportAllocs()
	for b.Loop() {
		f := benchMemo.Submit(dfk, parsl.Val(42))
		benchWant(b, f, 7)
		if f.State() != parsl.StateMemoDone {
			b.Fatalf("state %s, want memo_done", f.State())
		}
	}
}

// BenchmarkBlockedTaskHeap submits b.N tasks waiting on one unresolved
// promise and reports the live heap they hold, per task (heap-B/task). The
// slice of futures is allocated before the baseline and not counted.
func BenchmarkBlockedTaskHeap(b *testing.B) {
	dfk := benchLoad(b)
	fs := make([]*parsl.Future[int], b.N)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	p := parsl.NewPromise[int]()
	for i := range fs {
		fs[i] = benchNoop.Submit(dfk, p.Future())
	}
	b.StopTimer()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/float64(b.N), "heap-B/task")
	p.Resolve(1)
	for _, f := range fs {
		benchWant(b, f, 7)
	}
}
