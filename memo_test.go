package parsl_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/memo"
)

// App caching tests. Apps are named "test.memo.*"; every app takes a tag
// (the test's name) as its first argument and counts its calls per tag, so
// that tests can run in parallel and still know how often a body ran.

const memoTimeout = 60 * time.Second

// memoCalls counts app body calls per (app, tag).
var memoCalls sync.Map // string → *atomic.Int64

func memoCounter(app, tag string) *atomic.Int64 {
	c, _ := memoCalls.LoadOrStore(app+"\x00"+tag, new(atomic.Int64))
	return c.(*atomic.Int64)
}

func memoCount(app, tag string) int64 { return memoCounter(app, tag).Load() }

var (
	memoSq = parsl.Register2("test.memo.sq", func(_ context.Context, tag string, x int) (int, error) {
		memoCounter("sq", tag).Add(1)
		return x * x, nil
	}, parsl.WithCache(true))

	memoPlain = parsl.Register2("test.memo.plain", func(_ context.Context, tag string, x int) (int, error) {
		memoCounter("plain", tag).Add(1)
		return x + 1, nil
	})

	memoIdentity = parsl.Register1("test.memo.identity", func(_ context.Context, x int) (int, error) {
		return x, nil
	})

	// memoFlaky fails on its first call for a tag and succeeds after.
	memoFlaky = parsl.Register2("test.memo.flaky", func(_ context.Context, tag string, x int) (int, error) {
		if memoCounter("flaky", tag).Add(1) == 1 {
			return 0, errors.New("first call fails")
		}
		return x * 10, nil
	}, parsl.WithCache(true))

	memoMapSum = parsl.Register2("test.memo.mapsum", func(_ context.Context, tag string, m map[string]int) (int, error) {
		memoCounter("mapsum", tag).Add(1)
		s := 0
		for _, v := range m {
			s += v
		}
		return s, nil
	}, parsl.WithCache(true))

	memoInner = parsl.Register2("test.memo.inner", func(_ context.Context, tag string, x int) (int, error) {
		memoCounter("inner", tag).Add(1)
		return x * 3, nil
	})

	memoJoin = parsl.RegisterJoin2("test.memo.join", func(_ context.Context, dfk *parsl.DFK, tag string, x int) (*parsl.Future[int], error) {
		memoCounter("join", tag).Add(1)
		return memoInner.Submit(dfk, parsl.Val(tag), parsl.Val(x)), nil
	}, parsl.WithCache(true))

	// memoVersioned takes its version from the environment, so that a child
	// process can run it as a different version of the same app.
	memoVersioned = parsl.Register2("test.memo.versioned", func(_ context.Context, tag string, x int) (int, error) {
		memoCounter("versioned", tag).Add(1)
		return x + 1000, nil
	}, parsl.WithCache(true), parsl.WithVersion(memoEnvOr("PARSL_TEST_MEMO_VERSION", "1")))
)

func memoEnvOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func memoLoad(t testing.TB, cfg parsl.Config) *parsl.DFK {
	t.Helper()
	if cfg.RunDir == "" {
		cfg.RunDir = t.TempDir()
	}
	dfk, err := parsl.Load(context.Background(), cfg)
	if err != nil {
		t.Fatalf("parsl.Load: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), memoTimeout)
		defer cancel()
		if err := dfk.Close(ctx); err != nil {
			t.Errorf("dfk.Close: %v", err)
		}
	})
	return dfk
}

func memoGet[T any](t testing.TB, f *parsl.Future[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), memoTimeout)
	defer cancel()
	v, err := f.Get(ctx)
	if err != nil {
		t.Fatalf("task %d: %v", f.TaskID(), err)
	}
	return v
}

func memoWantState[T any](t testing.TB, f *parsl.Future[T], want parsl.State) {
	t.Helper()
	if got := f.State(); got != want {
		t.Errorf("task %d state = %v, want %v", f.TaskID(), got, want)
	}
}

func TestMemoCacheReuses(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	dfk := memoLoad(t, parsl.Config{})

	f1 := memoSq.Submit(dfk, parsl.Val(tag), parsl.Val(7))
	if v := memoGet(t, f1); v != 49 {
		t.Fatalf("first call = %d, want 49", v)
	}
	memoWantState(t, f1, parsl.StateExecDone)

	f2 := memoSq.Submit(dfk, parsl.Val(tag), parsl.Val(7))
	if v := memoGet(t, f2); v != 49 {
		t.Fatalf("second call = %d, want 49", v)
	}
	memoWantState(t, f2, parsl.StateMemoDone)
	if n := memoCount("sq", tag); n != 1 {
		t.Errorf("body ran %d times, want 1", n)
	}
	if f1.TaskID() == f2.TaskID() {
		t.Errorf("a memo hit must still be its own task; both have ID %d", f1.TaskID())
	}

	// The key is taken from argument values at launch, so a future that
	// resolves to 7 hits the entry made with a plain 7.
	f3 := memoSq.Submit(dfk, parsl.Val(tag), memoIdentity.Submit(dfk, parsl.Val(7)))
	if v := memoGet(t, f3); v != 49 {
		t.Fatalf("call with a future argument = %d, want 49", v)
	}
	memoWantState(t, f3, parsl.StateMemoDone)

	// Different arguments miss.
	if v := memoGet(t, memoSq.Submit(dfk, parsl.Val(tag), parsl.Val(8))); v != 64 {
		t.Fatalf("call with 8 = %d", v)
	}
	if n := memoCount("sq", tag); n != 2 {
		t.Errorf("body ran %d times after a new argument, want 2", n)
	}

	if err := dfk.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := dfk.Counts()
	if c[parsl.StateMemoDone] != 2 || c[parsl.StateExecDone] != 3 {
		t.Errorf("Counts() = %v; want 2 memo_done and 3 exec_done", c)
	}
}

func TestMemoDependentsOfAHit(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	dfk := memoLoad(t, parsl.Config{})
	memoGet(t, memoSq.Submit(dfk, parsl.Val(tag), parsl.Val(3)))
	// A memo hit feeds its dependents like any result.
	hit := memoSq.Submit(dfk, parsl.Val(tag), parsl.Val(3))
	next := memoPlain.Submit(dfk, parsl.Val(tag), hit)
	if v := memoGet(t, next); v != 10 {
		t.Errorf("dependent of a memo hit = %d, want 10", v)
	}
	memoWantState(t, hit, parsl.StateMemoDone)
}

func TestMemoOffByDefault(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	dfk := memoLoad(t, parsl.Config{})
	for i := 0; i < 3; i++ {
		f := memoPlain.Submit(dfk, parsl.Val(tag), parsl.Val(1))
		if v := memoGet(t, f); v != 2 {
			t.Fatalf("call %d = %d, want 2", i, v)
		}
		memoWantState(t, f, parsl.StateExecDone)
	}
	if n := memoCount("plain", tag); n != 3 {
		t.Errorf("uncached app ran %d times for 3 identical calls, want 3", n)
	}
}

func TestMemoDisableAppCache(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	dfk := memoLoad(t, parsl.Config{DisableAppCache: true})
	for i := 0; i < 2; i++ {
		f := memoSq.Submit(dfk, parsl.Val(tag), parsl.Val(5))
		memoGet(t, f)
		memoWantState(t, f, parsl.StateExecDone)
	}
	if n := memoCount("sq", tag); n != 2 {
		t.Errorf("with DisableAppCache a cached app ran %d times for 2 calls, want 2", n)
	}
	// The global switch wins over a per-call request, as Parsl's
	// memoize=False does.
	for i := 0; i < 2; i++ {
		f := memoPlain.Submit(dfk, parsl.Val(tag), parsl.Val(5), parsl.Cache(true))
		memoGet(t, f)
		memoWantState(t, f, parsl.StateExecDone)
	}
	if n := memoCount("plain", tag); n != 2 {
		t.Errorf("with DisableAppCache, Cache(true) calls ran %d times for 2 calls, want 2", n)
	}
}

func TestMemoPerCallOverride(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	dfk := memoLoad(t, parsl.Config{})

	// Cache(false) on a cached app: no lookup and no entry.
	for i := 0; i < 2; i++ {
		f := memoSq.Submit(dfk, parsl.Val(tag), parsl.Val(4), parsl.Cache(false))
		memoGet(t, f)
		memoWantState(t, f, parsl.StateExecDone)
	}
	if n := memoCount("sq", tag); n != 2 {
		t.Fatalf("Cache(false) calls ran %d times, want 2", n)
	}
	f := memoSq.Submit(dfk, parsl.Val(tag), parsl.Val(4))
	memoGet(t, f)
	memoWantState(t, f, parsl.StateExecDone) // nothing was memoized by the Cache(false) calls
	f = memoSq.Submit(dfk, parsl.Val(tag), parsl.Val(4))
	memoGet(t, f)
	memoWantState(t, f, parsl.StateMemoDone)
	// Cache(false) also ignores an existing entry.
	f = memoSq.Submit(dfk, parsl.Val(tag), parsl.Val(4), parsl.Cache(false))
	memoGet(t, f)
	memoWantState(t, f, parsl.StateExecDone)
	if n := memoCount("sq", tag); n != 4 {
		t.Errorf("body ran %d times, want 4", n)
	}

	// Cache(true) on an uncached app memoizes that call.
	f = memoPlain.Submit(dfk, parsl.Val(tag), parsl.Val(9), parsl.Cache(true))
	if v := memoGet(t, f); v != 10 {
		t.Fatalf("= %d", v)
	}
	f = memoPlain.Submit(dfk, parsl.Val(tag), parsl.Val(9), parsl.Cache(true))
	if v := memoGet(t, f); v != 10 {
		t.Fatalf("= %d", v)
	}
	memoWantState(t, f, parsl.StateMemoDone)
	// …but a call without the option does not look.
	f = memoPlain.Submit(dfk, parsl.Val(tag), parsl.Val(9))
	memoGet(t, f)
	memoWantState(t, f, parsl.StateExecDone)
	if n := memoCount("plain", tag); n != 2 {
		t.Errorf("uncached app ran %d times, want 2", n)
	}
}

func TestMemoFailedNotMemoized(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	dfk := memoLoad(t, parsl.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), memoTimeout)
	defer cancel()

	f1 := memoFlaky.Submit(dfk, parsl.Val(tag), parsl.Val(2))
	if _, err := f1.Get(ctx); err == nil {
		t.Fatal("first call succeeded; want its error")
	}
	memoWantState(t, f1, parsl.StateFailed)

	// The failure was not cached: the same call runs again, and succeeds.
	f2 := memoFlaky.Submit(dfk, parsl.Val(tag), parsl.Val(2))
	if v, err := f2.Get(ctx); err != nil || v != 20 {
		t.Fatalf("second call = %d, %v; want 20 (a failure must not be memoized)", v, err)
	}
	memoWantState(t, f2, parsl.StateExecDone)
	// The success was.
	f3 := memoFlaky.Submit(dfk, parsl.Val(tag), parsl.Val(2))
	if v := memoGet(t, f3); v != 20 {
		t.Fatalf("third call = %d", v)
	}
	memoWantState(t, f3, parsl.StateMemoDone)
	if n := memoCount("flaky", tag); n != 2 {
		t.Errorf("body ran %d times, want 2", n)
	}
}

func TestMemoMapArgumentOrder(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	dfk := memoLoad(t, parsl.Config{})
	keys := "abcdefghijklmnopqrstuvwxyz"
	m1, m2 := map[string]int{}, map[string]int{}
	for i := range len(keys) {
		m1[keys[i:i+1]] = i
	}
	for i := len(keys) - 1; i >= 0; i-- {
		m2[keys[i:i+1]] = i
	}
	memoGet(t, memoMapSum.Submit(dfk, parsl.Val(tag), parsl.Val(m1)))
	for range 5 {
		f := memoMapSum.Submit(dfk, parsl.Val(tag), parsl.Val(m2))
		if v := memoGet(t, f); v != 325 {
			t.Fatalf("= %d, want 325", v)
		}
		memoWantState(t, f, parsl.StateMemoDone)
	}
	m2["a"] = 100
	f := memoMapSum.Submit(dfk, parsl.Val(tag), parsl.Val(m2))
	memoGet(t, f)
	memoWantState(t, f, parsl.StateExecDone)
	if n := memoCount("mapsum", tag); n != 2 {
		t.Errorf("body ran %d times, want 2", n)
	}
}

func TestMemoJoinApp(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	dfk := memoLoad(t, parsl.Config{})
	f1 := memoJoin.Submit(dfk, parsl.Val(tag), parsl.Val(5))
	if v := memoGet(t, f1); v != 15 {
		t.Fatalf("join = %d, want 15", v)
	}
	memoWantState(t, f1, parsl.StateExecDone)
	f2 := memoJoin.Submit(dfk, parsl.Val(tag), parsl.Val(5))
	if v := memoGet(t, f2); v != 15 {
		t.Fatalf("cached join = %d, want 15", v)
	}
	memoWantState(t, f2, parsl.StateMemoDone)
	if j, i := memoCount("join", tag), memoCount("inner", tag); j != 1 || i != 1 {
		t.Errorf("join body ran %d times and inner app %d times; want 1 and 1", j, i)
	}
	f3 := memoJoin.Submit(dfk, parsl.Val(tag), parsl.Val(6))
	if v := memoGet(t, f3); v != 18 {
		t.Fatalf("join(6) = %d, want 18", v)
	}
}

// TestMemoVersionChange checks that a result checkpointed by version 2 of
// an app is not used by version 1, and that the same version is. The other
// version runs in a child process, where PARSL_TEST_MEMO_VERSION changes the
// registration.
func TestMemoVersionChange(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	tag := "version-test"
	for _, c := range []struct {
		childVersion string
		wantHit      bool
	}{{"2", false}, {"1", true}} {
		base := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestMemoVersionChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PARSL_TEST_MEMO_VERSION="+c.childVersion, "PARSL_TEST_MEMO_CHILD_DIR="+base)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child with version %s: %v\n%s", c.childVersion, err, out)
		}
		dirs, err := parsl.LastCheckpoint(base)
		if err != nil || len(dirs) != 1 {
			t.Fatalf("LastCheckpoint(%s) = %v, %v; the child wrote no checkpoint", base, dirs, err)
		}
		recs, err := memo.LoadDir(dirs[0], func(m string) { t.Errorf("warning: %s", m) })
		if err != nil || len(recs) != 1 || recs[0].App != "test.memo.versioned" {
			t.Fatalf("child checkpoint: %v, %v; want 1 record of test.memo.versioned", recs, err)
		}

		before := memoCount("versioned", tag)
		dfk := memoLoad(t, parsl.Config{RunDir: base, CheckpointFiles: dirs})
		f := memoVersioned.Submit(dfk, parsl.Val(tag), parsl.Val(5))
		if v := memoGet(t, f); v != 1005 {
			t.Fatalf("= %d, want 1005", v)
		}
		ran := memoCount("versioned", tag) - before
		if c.wantHit && (ran != 0 || f.State() != parsl.StateMemoDone) {
			t.Errorf("same version: body ran %d times, state %v; want the checkpointed result", ran, f.State())
		}
		if !c.wantHit && (ran != 1 || f.State() != parsl.StateExecDone) {
			t.Errorf("version 2 result used by version 1: body ran %d times, state %v", ran, f.State())
		}
	}
}

// TestMemoVersionChild is the child process of TestMemoVersionChange.
func TestMemoVersionChild(t *testing.T) {
	base := os.Getenv("PARSL_TEST_MEMO_CHILD_DIR")
	if base == "" {
		t.Skip("helper process for TestMemoVersionChange")
	}
	dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointTaskExit, NoSignalHandler: true})
	if err != nil {
		t.Fatal(err)
	}
	if v := memoGet(t, memoVersioned.Submit(dfk, parsl.Val("version-test"), parsl.Val(5))); v != 1005 {
		t.Fatalf("= %d", v)
	}
	if err := dfk.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dfk.RunDir(), memo.Dir, memo.FileName)); err != nil {
		t.Fatal(err)
	}
	fmt.Println("child wrote", memo.JournalPath(dfk.RunDir()))
}
