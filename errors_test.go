package parsl_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/threads"
)

// Error propagation, after Parsl's test_exception.py, test_fail.py,
// test_depfail_propagation.py and test_python_walltime.py (§11.1, §11.3).

// errorsQuota is a custom error type; apps return it by pointer.
type errorsQuota struct {
	User  string
	Limit int
}

func (e *errorsQuota) Error() string { return fmt.Sprintf("user %s over quota %d", e.User, e.Limit) }

var errorsSentinel = errors.New("errors_test sentinel")

var (
	errorsCustom = parsl.Register1("test.errors.custom", func(_ context.Context, user string) (int, error) {
		return 0, &errorsQuota{User: user, Limit: 10}
	})
	errorsWrapped = parsl.Register1("test.errors.wrapped", func(_ context.Context, x int) (int, error) {
		return 0, fmt.Errorf("while handling %d: %w", x, errorsSentinel)
	})
	errorsPanic = parsl.Register1("test.errors.panic", func(_ context.Context, x int) (int, error) {
		if x%2 == 1 {
			panic(fmt.Sprintf("odd input %d", x))
		}
		return x, nil
	})
	errorsNilDeref = parsl.Register1("test.errors.nilderef", func(_ context.Context, p *corePoint) (int, error) {
		return p.X, nil // p is nil: a runtime error panic
	})
	errorsFailIf = parsl.Register2("test.errors.failif", func(_ context.Context, x int, fail bool) (int, error) {
		if fail {
			return 0, fmt.Errorf("failif %d", x)
		}
		return x, nil
	})
	errorsFunc = parsl.Register2("test.errors.func", func(_ context.Context, x int, f func()) (int, error) {
		return x, nil
	})
	errorsAny = parsl.Register2("test.errors.any", func(_ context.Context, x int, v any) (int, error) {
		return x, nil
	})
	errorsAnySlice = parsl.Register1("test.errors.anyslice", func(_ context.Context, v []any) (int, error) {
		return len(v), nil
	})
	// errorsObedient sleeps ms milliseconds but stops when its context ends.
	errorsObedient = parsl.Register1("test.errors.obedient", func(ctx context.Context, ms int) (int, error) {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return ms, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	// errorsStubborn ignores its context.
	errorsStubborn = parsl.Register1("test.errors.stubborn", func(_ context.Context, ms int) (int, error) {
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return ms, nil
	})

	errorsDupFirst = parsl.Register0("test.errors.dup", func(context.Context) (int, error) { return 1, nil })
	// errorsDupPanic is the panic of registering a second app with the same
	// name. It is caught at package initialisation because registration is
	// frozen after the first Load. The reference to errorsDupFirst makes
	// sure the first registration has happened.
	errorsDupPanic = func() (msg string) {
		_ = errorsDupFirst
		defer func() { msg = fmt.Sprint(recover()) }()
		parsl.Register1("test.errors.dup", func(_ context.Context, x string) (string, error) { return x, nil })
		return "no panic"
	}()
)

func TestCustomErrorType(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	f := errorsCustom.Submit(dfk, parsl.Val("ada"))
	err := coreErr(t, f)
	ae := coreAs[*parsl.AppError](t, err)
	if ae.TaskID != f.TaskID() || ae.App != "test.errors.custom" || ae.Panicked {
		t.Errorf("AppError = %+v", ae)
	}
	q := coreAs[*errorsQuota](t, err)
	if q.User != "ada" || q.Limit != 10 {
		t.Errorf("custom error = %+v", q)
	}
	if ae.Unwrap() != error(q) {
		t.Errorf("AppError.Unwrap() = %v, want the app's own error", ae.Unwrap())
	}
	if ae.Kind != "*parsl_test.errorsQuota" {
		t.Errorf("Kind = %q, want the Go type name", ae.Kind)
	}
	coreContains(t, "error", err.Error(), "test.errors.custom", "user ada over quota 10", fmt.Sprint("task ", f.TaskID()))
	if f.State() != parsl.StateFailed {
		t.Errorf("state %v, want failed", f.State())
	}

	werr := coreErr(t, errorsWrapped.Submit(dfk, parsl.Val(3)))
	if !errors.Is(werr, errorsSentinel) {
		t.Errorf("errors.Is through AppError and %%w: false for %v", werr)
	}
}

func TestPanicBecomesAppError(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	fs := make([]*parsl.Future[int], 20)
	for i := range fs {
		fs[i] = errorsPanic.Submit(dfk, parsl.Val(i))
	}
	for i, f := range fs {
		v, err := f.Get(coreCtx(t))
		if i%2 == 0 {
			if err != nil || v != i {
				t.Errorf("task %d (no panic): %d, %v", i, v, err)
			}
			continue
		}
		ae := coreAs[*parsl.AppError](t, err)
		if !ae.Panicked || ae.Kind != "panic" {
			t.Errorf("task %d: Panicked=%v Kind=%q", i, ae.Panicked, ae.Kind)
		}
		if want := fmt.Sprintf("odd input %d", i); ae.Message != want {
			t.Errorf("task %d: Message %q, want %q", i, ae.Message, want)
		}
		if !strings.Contains(ae.Stack, "errors_test.go") {
			t.Errorf("task %d: Stack does not show the panicking code:\n%s", i, ae.Stack)
		}
		coreContains(t, "error", err.Error(), "panicked", "odd input")
	}
	// A runtime panic (nil dereference) is caught too, and the executor
	// keeps working.
	err := coreErr(t, errorsNilDeref.Submit(dfk, parsl.Val[*corePoint](nil)))
	if ae := coreAs[*parsl.AppError](t, err); !ae.Panicked || !strings.Contains(ae.Message, "nil pointer") {
		t.Errorf("nil dereference: %+v", ae)
	}
	if got := coreGet(t, coreDouble.Submit(dfk, parsl.Val(8))); got != 16 {
		t.Errorf("after panics: got %d", got)
	}
}

func TestDependencyFailure(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})

	t.Run("chain", func(t *testing.T) {
		root := errorsCustom.Submit(dfk, parsl.Val("chain"))
		a := coreInc.Submit(dfk, root)
		b := coreInc.Submit(dfk, a)
		c := coreDouble.Submit(dfk, b)
		for _, tc := range []struct {
			f, upstream *parsl.Future[int]
		}{{a, root}, {b, a}, {c, b}} {
			err := coreErr(t, tc.f)
			de := coreAs[*parsl.DependencyError](t, err)
			if !slices.Equal(de.TaskIDs(), []int64{tc.upstream.TaskID()}) {
				t.Errorf("task %d: TaskIDs() = %v, want [%d]", tc.f.TaskID(), de.TaskIDs(), tc.upstream.TaskID())
			}
			if de.TaskID != tc.f.TaskID() {
				t.Errorf("DependencyError.TaskID = %d, want %d", de.TaskID, tc.f.TaskID())
			}
			coreContains(t, "error", err.Error(), fmt.Sprintf("task %d", tc.upstream.TaskID()))
			// The root cause is reachable from every level.
			if q := coreAs[*errorsQuota](t, err); q.User != "chain" {
				t.Errorf("root cause %+v", q)
			}
			if ae := coreAs[*parsl.AppError](t, err); ae.TaskID != root.TaskID() {
				t.Errorf("root AppError from task %d, want %d", ae.TaskID, root.TaskID())
			}
			if tc.f.State() != parsl.StateDepFail {
				t.Errorf("state %v, want dep_fail", tc.f.State())
			}
		}
	})

	t.Run("branches", func(t *testing.T) {
		// Two failing roots and one good input feed one task: it names both
		// failed inputs, and both root causes are reachable.
		bad1 := errorsFailIf.Submit(dfk, parsl.Val(1), parsl.Val(true))
		bad2 := errorsWrapped.Submit(dfk, parsl.Val(2))
		good := errorsFailIf.Submit(dfk, parsl.Val(3), parsl.Val(false))
		sum := coreSum.Submit(dfk, parsl.All[int](bad1, good, bad2))
		two := coreAdd.Submit(dfk, bad1, bad2)
		for _, f := range []*parsl.Future[int]{sum, two} {
			err := coreErr(t, f)
			de := coreAs[*parsl.DependencyError](t, err)
			ids := de.TaskIDs()
			slices.Sort(ids)
			if want := []int64{bad1.TaskID(), bad2.TaskID()}; !slices.Equal(ids, want) {
				t.Errorf("task %d: TaskIDs() = %v, want %v", f.TaskID(), ids, want)
			}
			if !errors.Is(err, errorsSentinel) {
				t.Errorf("errors.Is(sentinel) false for %v", err)
			}
			coreContains(t, "error", err.Error(), fmt.Sprintf("task %d", bad1.TaskID()), fmt.Sprintf("task %d", bad2.TaskID()))
		}
		if got := coreGet(t, good); got != 3 {
			t.Errorf("good branch = %d", got)
		}
		// A branch that does not depend on the failure still runs.
		if got := coreGet(t, coreInc.Submit(dfk, good)); got != 4 {
			t.Errorf("independent branch = %d", got)
		}
	})

	t.Run("All", func(t *testing.T) {
		bad := errorsFailIf.Submit(dfk, parsl.Val(1), parsl.Val(true))
		all := parsl.All[int](parsl.Val(0), bad, coreIdent.Submit(dfk, parsl.Val(2)))
		err := coreErr(t, all)
		de := coreAs[*parsl.DependencyError](t, err)
		if !slices.Equal(de.TaskIDs(), []int64{bad.TaskID()}) {
			t.Errorf("All: TaskIDs() = %v, want [%d]", de.TaskIDs(), bad.TaskID())
		}
	})
}

func TestDependencyFailureCounts(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	root := errorsFailIf.Submit(dfk, parsl.Val(0), parsl.Val(true))
	var last *parsl.Future[int]
	for i, f := 0, root; i < 5; i++ {
		f = coreInc.Submit(dfk, f)
		last = f
	}
	side := coreDouble.Submit(dfk, root)
	coreErr(t, last)
	coreErr(t, side)
	if err := dfk.Wait(coreCtx(t)); err != nil {
		t.Fatal(err)
	}
	c := dfk.Counts()
	if c[parsl.StateDepFail] != 6 || c[parsl.StateFailed] != 1 {
		t.Errorf("Counts() = %v; want dep_fail 6, failed 1", c)
	}
}

func TestNilArgument(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	var nilFuture *parsl.Future[int]
	tests := []struct {
		name string
		f    func() *parsl.Future[int]
		arg  string
	}{
		{"nil *Future first", func() *parsl.Future[int] { return coreAdd.Submit(dfk, nilFuture, parsl.Val(1)) }, "argument 1"},
		{"nil *Future second", func() *parsl.Future[int] { return coreAdd.Submit(dfk, parsl.Val(1), nilFuture) }, "argument 2"},
		{"nil Arg", func() *parsl.Future[int] { return coreInc.Submit(dfk, nil) }, "argument 1"},
		{"nil in All", func() *parsl.Future[int] {
			return coreSum.Submit(dfk, parsl.All[int](parsl.Val(1), nilFuture))
		}, "nil"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f *parsl.Future[int]
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("Submit panicked: %v", r)
					}
				}()
				f = tc.f()
			}()
			err := coreErr(t, f)
			coreContains(t, "error", err.Error(), "nil", tc.arg)
			if _, ok := errors.AsType[*parsl.AppError](err); !ok {
				if _, ok := errors.AsType[*parsl.DependencyError](err); !ok {
					t.Errorf("error %T is neither an AppError nor a DependencyError", err)
				}
			}
		})
	}
	// A nil Future's methods fail clearly rather than hanging.
	if got := coreGet(t, coreInc.Submit(dfk, parsl.Val(1))); got != 2 {
		t.Errorf("DFK unusable after nil arguments: %d", got)
	}
}

func TestUnencodableArgument(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	tests := []struct {
		name string
		f    func() *parsl.Future[int]
		app  string
		arg  int
	}{
		{"func param", func() *parsl.Future[int] {
			return errorsFunc.Submit(dfk, parsl.Val(1), parsl.Val(func() {}))
		}, "test.errors.func", 2},
		{"func param nil", func() *parsl.Future[int] {
			return errorsFunc.Submit(dfk, parsl.Val(1), parsl.Val[func()](nil))
		}, "test.errors.func", 2},
		{"chan in any", func() *parsl.Future[int] {
			return errorsAny.Submit(dfk, parsl.Val(1), parsl.Val[any](make(chan int)))
		}, "test.errors.any", 2},
		{"typed map in any", func() *parsl.Future[int] {
			// It would come back from a worker as a map[string]any, so it
			// is refused on every executor (see "What can cross").
			return errorsAny.Submit(dfk, parsl.Val(1), parsl.Val[any](map[string]int{"a": 1}))
		}, "test.errors.any", 2},
		{"func in []any", func() *parsl.Future[int] {
			return errorsAnySlice.Submit(dfk, parsl.Val([]any{1, "x", func() {}}))
		}, "test.errors.anyslice", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f()
			// The error is there at submit, without waiting for anything.
			if !f.IsDone() {
				t.Fatal("future not completed at submit")
			}
			err := coreErr(t, f)
			se := coreAs[*parsl.SerializationError](t, err)
			if se.App != tc.app || se.Arg != tc.arg || se.TaskID != f.TaskID() {
				t.Errorf("SerializationError = %+v; want app %s arg %d task %d", se, tc.app, tc.arg, f.TaskID())
			}
			coreContains(t, "error", err.Error(), tc.app, fmt.Sprintf("argument %d", tc.arg))
		})
	}
	t.Run("encodable any", func(t *testing.T) {
		if got := coreGet(t, errorsAny.Submit(dfk, parsl.Val(5), parsl.Val[any](map[string]any{"a": 1}))); got != 5 {
			t.Errorf("got %d", got)
		}
		if got := coreGet(t, errorsAnySlice.Submit(dfk, parsl.Val([]any{1, "x", nil}))); got != 3 {
			t.Errorf("got %d", got)
		}
	})
}

func TestSubmitAfterClose(t *testing.T) {
	t.Parallel()
	dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	before := coreDouble.Submit(dfk, parsl.Val(21))
	failedBefore := errorsFailIf.Submit(dfk, parsl.Val(1), parsl.Val(true))
	if err := dfk.Close(coreCtx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close waited for them: results are kept.
	if got := coreGet(t, before); got != 42 {
		t.Errorf("future completed before Close: %d", got)
	}
	if got := coreGet(t, before); got != 42 {
		t.Errorf("second Get: %d", got)
	}
	if err := coreErr(t, failedBefore); !strings.Contains(err.Error(), "failif 1") {
		t.Errorf("failed future before Close: %v", err)
	}
	after := []*parsl.Future[int]{
		coreDouble.Submit(dfk, parsl.Val(1)),
		coreInc.Submit(dfk, before),
		bashEcho.Submit(dfk, parsl.Val("after close")),
		joinDouble.Submit(dfk, parsl.Val(1)),
	}
	for _, f := range after {
		if err := coreErr(t, f); !errors.Is(err, parsl.ErrDFKClosed) {
			t.Errorf("submit after Close: %v, want ErrDFKClosed", err)
		}
	}
	// Close is idempotent.
	if err := dfk.Close(coreCtx(t)); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestUnknownExecutor(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f := coreDouble.Submit(dfk, parsl.Val(1), parsl.Executor("nope"))
	_, err := f.Get(ctx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unknown executor: %v, want an ExecutorError at once", err)
	}
	ee := coreAs[*parsl.ExecutorError](t, err)
	if ee.Executor != "nope" {
		t.Errorf("ExecutorError.Executor = %q", ee.Executor)
	}
	coreContains(t, "error", err.Error(), "nope", "threads")
	// Also when the task first waits on a dependency.
	p := parsl.NewPromise[int]()
	g := coreDouble.Submit(dfk, p.Future(), parsl.Executor("nope"))
	if !g.IsDone() {
		t.Error("the bad label should fail the submit before waiting on inputs")
	}
	p.Resolve(1)
	if _, err := g.Get(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dependent task with unknown executor: %v", err)
	}
	// The default label works.
	if got := coreGet(t, coreDouble.Submit(dfk, parsl.Val(2), parsl.Executor("threads"))); got != 4 {
		t.Errorf("Executor(\"threads\"): %d", got)
	}
}

func TestUnwritableRunDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, runDir := range []string{blocker, filepath.Join(blocker, "runinfo")} {
		dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: runDir})
		if err == nil {
			dfk.Close(context.Background())
			t.Fatalf("Load with RunDir %s under a regular file succeeded", runDir)
		}
		coreContains(t, "Load error", err.Error(), runDir)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  parsl.Config
		msg  string
	}{
		{"bad checkpoint mode", parsl.Config{CheckpointMode: "sometimes"}, "sometimes"},
		{"periodic without period", parsl.Config{CheckpointMode: parsl.CheckpointPeriodic}, "CheckpointPeriod"},
		{"duplicate executor labels", parsl.Config{Executors: []executor.Executor{
			threads.New(threads.Options{Label: "same"}), threads.New(threads.Options{Label: "same"})}}, "same"},
		{"nil executor", parsl.Config{Executors: []executor.Executor{nil}}, "nil"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.RunDir = t.TempDir()
			dfk, err := parsl.Load(context.Background(), tc.cfg)
			if err == nil {
				dfk.Close(context.Background())
				t.Fatal("Load succeeded")
			}
			coreAs[*parsl.ConfigError](t, err)
			coreContains(t, "error", err.Error(), tc.msg)
		})
	}
}

// errorsPinned may only run on an executor that is not configured.
var errorsPinned = parsl.Register1("test.errors.pinned", func(_ context.Context, x int) (int, error) { return x, nil },
	parsl.WithExecutors("gpu"))

func TestExecutorLabels(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{Executors: []executor.Executor{
		threads.New(threads.Options{Label: "cpu"}), threads.New(threads.Options{Label: "io", MaxThreads: 1}),
	}})
	// An app restricted to a label that is not configured fails at submit.
	err := coreErr(t, errorsPinned.Submit(dfk, parsl.Val(1)))
	if ee := coreAs[*parsl.ExecutorError](t, err); ee.Executor != "gpu" {
		t.Errorf("ExecutorError = %+v", ee)
	}
	// Every configured label works, and so does the default spread.
	for _, opts := range [][]parsl.CallOption{{parsl.Executor("cpu")}, {parsl.Executor("io")}, nil} {
		if got := coreGet(t, coreDouble.Submit(dfk, parsl.Val(3), opts...)); got != 6 {
			t.Errorf("got %d", got)
		}
	}
	// "threads" is only the default label.
	err = coreErr(t, coreDouble.Submit(dfk, parsl.Val(3), parsl.Executor("threads")))
	coreAs[*parsl.ExecutorError](t, err)
}

func TestDuplicateAppName(t *testing.T) {
	t.Parallel()
	coreContains(t, "panic", errorsDupPanic, "test.errors.dup", "twice")
}

func TestRegisterAfterLoad(t *testing.T) {
	t.Parallel()
	coreLoad(t, parsl.Config{}) // registration is frozen from the first Load on
	var msg string
	func() {
		defer func() { msg = fmt.Sprint(recover()) }()
		parsl.Register1("test.errors.late", func(_ context.Context, x int) (int, error) { return x, nil })
	}()
	coreContains(t, "panic", msg, "test.errors.late", "after parsl.Load")
	func() {
		defer func() { msg = fmt.Sprint(recover()) }()
		parsl.RegisterBash0("test.errors.latebash", func(context.Context) (string, error) { return "true", nil })
	}()
	coreContains(t, "panic", msg, "test.errors.latebash")
}

func TestNilDFK(t *testing.T) {
	t.Parallel()
	err := coreErr(t, coreDouble.Submit(nil, parsl.Val(1)))
	coreContains(t, "error", err.Error(), "nil *DFK")
}

func TestWalltime(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})

	t.Run("app respects ctx", func(t *testing.T) {
		t.Parallel()
		f := errorsObedient.Submit(dfk, parsl.Val(10000), parsl.Walltime(50*time.Millisecond))
		err := coreErr(t, f)
		we := coreAs[*parsl.WalltimeError](t, err)
		if we.Walltime != 50*time.Millisecond || we.TaskID != f.TaskID() || we.App != "test.errors.obedient" {
			t.Errorf("WalltimeError = %+v", we)
		}
		coreContains(t, "error", err.Error(), "walltime")
		if f.State() != parsl.StateFailed {
			t.Errorf("state %v, want failed", f.State())
		}
	})

	t.Run("app ignores ctx", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		f := errorsStubborn.Submit(dfk, parsl.Val(2000), parsl.Walltime(50*time.Millisecond))
		err := coreErr(t, f)
		if d := time.Since(start); d > time.Second {
			t.Errorf("WalltimeError came after %s; the walltime must not wait for the app", d)
		}
		coreAs[*parsl.WalltimeError](t, err)
	})

	t.Run("longer walltime is fine", func(t *testing.T) {
		t.Parallel()
		if got := coreGet(t, errorsObedient.Submit(dfk, parsl.Val(20), parsl.Walltime(5*time.Second))); got != 20 {
			t.Errorf("got %d", got)
		}
		if got := coreGet(t, errorsStubborn.Submit(dfk, parsl.Val(20), parsl.Walltime(5*time.Second))); got != 20 {
			t.Errorf("got %d", got)
		}
	})

	t.Run("app error within walltime stays an AppError", func(t *testing.T) {
		t.Parallel()
		err := coreErr(t, errorsCustom.Submit(dfk, parsl.Val("w"), parsl.Walltime(5*time.Second)))
		if _, ok := errors.AsType[*parsl.WalltimeError](err); ok {
			t.Errorf("app error reported as walltime: %v", err)
		}
		coreAs[*errorsQuota](t, err)
	})

	t.Run("downstream of a walltime failure", func(t *testing.T) {
		t.Parallel()
		f := errorsObedient.Submit(dfk, parsl.Val(10000), parsl.Walltime(20*time.Millisecond))
		err := coreErr(t, coreInc.Submit(dfk, f))
		coreAs[*parsl.DependencyError](t, err)
		coreAs[*parsl.WalltimeError](t, err)
	})
}

// errorsCalls counts how often errorsCounted runs.
var errorsCalls atomic.Int64

var errorsCounted = parsl.Register1("test.errors.counted", func(_ context.Context, x int) (int, error) {
	errorsCalls.Add(1)
	return x, nil
})

func TestDependencyFailureSkipsApp(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{Retries: 3})
	before := errorsCalls.Load()
	bad := errorsFailIf.Submit(dfk, parsl.Val(1), parsl.Val(true))
	coreErr(t, errorsCounted.Submit(dfk, bad))
	if n := errorsCalls.Load() - before; n != 0 {
		t.Errorf("app of a task with a failed dependency ran %d times", n)
	}
}
