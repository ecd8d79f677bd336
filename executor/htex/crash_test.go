package htex_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
)

// crash ends the process it runs in: on htex, the whole pool.
var crash = parsl.Register1("htextest.crash", func(ctx context.Context, code int) (int, error) {
	os.Exit(code)
	return 0, nil
})

// TestAppThatKillsItsPool: a task that calls os.Exit takes its pool down.
// It fails with a ManagerLostError (after its retry, which kills a pool
// again), while the other tasks of the dead pools are retried on the
// replacement pools and all complete with the right result. Tasks that
// merely shared a pool with the crash can be hit by each of its tries, so
// the retry handler prices their losses low, as a user would.
func TestAppThatKillsItsPool(t *testing.T) {
	ex := htex.New(fast(htex.Options{Blocks: 2}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dfk, err := parsl.Load(ctx, parsl.Config{Executors: []executor.Executor{ex}, RunDir: t.TempDir(), Retries: 1,
		RetryHandler: func(err error, task parsl.TaskInfo) float64 {
			if task.App == "htextest.crash" {
				return 1
			}
			return 0.1
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer ccancel()
		_ = dfk.Close(cctx)
		assertNoPools(t, ex)
	})

	var fs []*parsl.Future[int]
	for i := 0; i < 40; i++ {
		fs = append(fs, nap.Submit(dfk, parsl.Val(20)))
	}
	bad := crash.Submit(dfk, parsl.Val(3))
	for i := 0; i < 40; i++ {
		fs = append(fs, double.Submit(dfk, parsl.Val(i)))
	}

	_, err = bad.Get(ctx)
	var lost *parsl.ManagerLostError
	if !errors.As(err, &lost) {
		t.Fatalf("crashing task: %v, want a ManagerLostError", err)
	}
	for i, f := range fs {
		v, err := f.Get(ctx)
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		want := 20
		if i >= 40 {
			want = 2 * (i - 40)
		}
		if v != want {
			t.Fatalf("task %d = %d, want %d", i, v, want)
		}
	}
}
