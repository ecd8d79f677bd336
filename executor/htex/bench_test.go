package htex_test

import (
	"context"
	"os"
	"testing"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
)

func benchDFK(b *testing.B, o htex.Options) *parsl.DFK {
	b.Helper()
	dfk, err := parsl.Load(context.Background(), parsl.Config{Executors: []executor.Executor{htex.New(o)}, RunDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = dfk.Close(context.Background()) })
	return dfk
}

// BenchmarkRoundTrip is the sequential latency of parsl perf: one task
// submitted and its result fetched before the next, through one real pool.
func BenchmarkRoundTrip(b *testing.B) {
	dfk := benchDFK(b, htex.Options{MaxWorkersPerNode: 2, WorkerEnv: benchPoolEnv()})
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		_, _ = double.Submit(dfk, parsl.Val(i)).Get(ctx)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := double.Submit(dfk, parsl.Val(i)).Get(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkThroughput submits b.N tasks, then waits for all of them.
func BenchmarkThroughput(b *testing.B) {
	dfk := benchDFK(b, htex.Options{MaxWorkersPerNode: 2, Prefetch: 1024})
	ctx := context.Background()
	fs := make([]*parsl.Future[int], b.N)
	b.ResetTimer()
	for i := range fs {
		fs[i] = double.Submit(dfk, parsl.Val(i))
	}
	for _, f := range fs {
		if _, err := f.Get(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func benchPoolEnv() []string {
	if v := os.Getenv("HTEXBENCH_POOL_GOMAXPROCS"); v != "" {
		return []string{"GOMAXPROCS=" + v}
	}
	return nil
}
