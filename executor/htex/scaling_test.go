package htex_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/local"
)

// loadScaling is load with the run's scaling settings.
func loadScaling(t *testing.T, o htex.Options, cfg parsl.Config) (*parsl.DFK, *htex.Executor) {
	t.Helper()
	ex := htex.New(fast(o))
	cfg.Executors = []executor.Executor{ex}
	cfg.RunDir = t.TempDir()
	dfk, err := parsl.Load(ctxT(t, 20*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = dfk.Close(ctx)
		assertNoPools(t, ex)
	})
	return dfk, ex
}

// TestScaleOutToMaxAndBackToMin: a burst of tasks makes the simple
// strategy add a second block; once the work is done and the executor has
// been idle for MaxIdleTime, both blocks are scaled in (min 0), their jobs
// are cancelled and their pool processes are gone, before Close.
func TestScaleOutToMaxAndBackToMin(t *testing.T) {
	t.Parallel()
	prov := local.New(local.Options{})
	dfk, ex := loadScaling(t, htex.Options{InitBlocks: 1, MinBlocks: 0, MaxBlocks: 2, Provider: prov},
		parsl.Config{StrategyPeriod: 100 * time.Millisecond, MaxIdleTime: 500 * time.Millisecond})
	fs := make([]*parsl.Future[int], 24)
	for i := range fs {
		fs[i] = nap.Submit(dfk, parsl.Val(150))
	}
	ctx := ctxT(t, 20*time.Second)
	maxPools := 0
	for _, f := range fs {
	wait:
		for {
			maxPools = max(maxPools, len(ex.Managers()))
			select {
			case <-f.Done():
				break wait
			case <-time.After(5 * time.Millisecond):
			}
		}
		if _, err := f.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if maxPools != 2 {
		t.Fatalf("at most %d pools connected during the burst, want MaxBlocks 2", maxPools)
	}
	if n := len(ex.JobIDs()); n != 2 {
		t.Fatalf("%d blocks started, want 2 (MaxBlocks)", n)
	}
	ended := time.Now()
	deadline := ended.Add(3 * time.Second)
	for {
		sts, err := prov.Status(ctx, ex.JobIDs())
		if err != nil {
			t.Fatal(err)
		}
		gone := len(ex.Managers()) == 0
		for _, st := range sts {
			gone = gone && st.State == provider.Cancelled
		}
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("blocks not scaled in %s after the load ended: %+v, managers %+v", time.Since(ended), sts, ex.Managers())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(ended); d < 400*time.Millisecond {
		t.Fatalf("blocks scaled in %s after the load ended, before MaxIdleTime", d)
	}
	assertNoPools(t, ex)
}

// TestInitBlocksStartAtLoad: with a strategy period far longer than the
// test, the initial block is submitted by Load itself, and a task
// submitted right after Load runs on it.
func TestInitBlocksStartAtLoad(t *testing.T) {
	t.Parallel()
	dfk, ex := loadScaling(t, htex.Options{InitBlocks: 1, MaxBlocks: 2}, parsl.Config{StrategyPeriod: time.Hour})
	if n := len(ex.JobIDs()); n != 1 {
		t.Fatalf("%d blocks started by Load, want InitBlocks 1", n)
	}
	start := time.Now()
	v, err := double.Submit(dfk, parsl.Val(21)).Get(ctxT(t, 10*time.Second))
	if err != nil || v != 42 {
		t.Fatalf("double(21) = %d, %v", v, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("first task took %s", d)
	}
	if n := len(ex.JobIDs()); n != 1 {
		t.Fatalf("%d blocks, want 1", n)
	}
}

// TestRepeatedBlockFailuresMarkBad: a pool that dies at start is replaced
// until three blocks have failed with none ever running; then the
// executor is bad and its tasks fail with an ExecutorError carrying the
// blocks' stderr.
func TestRepeatedBlockFailuresMarkBad(t *testing.T) {
	t.Parallel()
	dfk, ex := loadScaling(t, htex.Options{
		InitBlocks: 1, MaxBlocks: 1,
		PoolCommand: []string{"/bin/sh", "-c", "echo scaling-test: no module named parsl_pool >&2; exit 4"},
	}, parsl.Config{StrategyPeriod: 100 * time.Millisecond})
	start := time.Now()
	_, err := double.Submit(dfk, parsl.Val(1)).Get(ctxT(t, 10*time.Second))
	var ee *parsl.ExecutorError
	var be *htex.BadStateError
	if !errors.As(err, &ee) || !errors.As(err, &be) {
		t.Fatalf("err = %v, want an ExecutorError wrapping a BadStateError", err)
	}
	for _, want := range []string{"3 blocks failed", "exit code 4", "scaling-test: no module named parsl_pool"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v; want it to contain %q", err, want)
		}
	}
	if n := len(ex.JobIDs()); n != 3 {
		t.Fatalf("%d blocks started, want 3", n)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("marking bad took %s", d)
	}
}

// TestStrategyNoneKeepsInitBlocks: strategy "none" starts the initial
// blocks and never adds or removes one, however long the queue or idle
// time.
func TestStrategyNoneKeepsInitBlocks(t *testing.T) {
	t.Parallel()
	dfk, ex := loadScaling(t, htex.Options{InitBlocks: 1, MaxBlocks: 3},
		parsl.Config{Strategy: "none", StrategyPeriod: 50 * time.Millisecond, MaxIdleTime: 100 * time.Millisecond})
	fs := make([]*parsl.Future[int], 12)
	for i := range fs {
		fs[i] = nap.Submit(dfk, parsl.Val(50))
	}
	ctx := ctxT(t, 20*time.Second)
	for _, f := range fs {
		if _, err := f.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(400 * time.Millisecond)
	if n := len(ex.JobIDs()); n != 1 {
		t.Fatalf("%d blocks started, want 1", n)
	}
	if n := len(ex.Managers()); n != 1 {
		t.Fatalf("%d pools connected after idling, want 1", n)
	}
}

// TestExpiringBlockReplaced: blocks with a 2 s walltime drain before it
// ends; while work remains, each is replaced once its walltime is nearly
// over, so every task finishes, and no task is lost or failed.
func TestExpiringBlockReplaced(t *testing.T) {
	t.Parallel()
	dfk, ex := loadScaling(t, htex.Options{InitBlocks: 1, MaxBlocks: 1, MaxWorkersPerNode: 1, Walltime: 2 * time.Second},
		parsl.Config{StrategyPeriod: 100 * time.Millisecond})
	fs := make([]*parsl.Future[int], 12)
	for i := range fs {
		fs[i] = nap.Submit(dfk, parsl.Val(200), parsl.Walltime(time.Second))
	}
	ctx := ctxT(t, 20*time.Second)
	for i, f := range fs {
		if _, err := f.Get(ctx); err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
	}
	if n := len(ex.JobIDs()); n < 2 {
		t.Fatalf("%d blocks started, want the expiring block replaced", n)
	}
}
