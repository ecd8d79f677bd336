package parsl_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
)

// Join apps, after Parsl's test_join.py and test_fibonacci_*.py (§1.5, §11.1).

var (
	// joinDouble returns the future of one inner task.
	joinDouble = parsl.RegisterJoin1("test.join.double", func(_ context.Context, dfk *parsl.DFK, x int) (*parsl.Future[int], error) {
		return coreDouble.Submit(dfk, parsl.Val(x)), nil
	})
	// joinMany returns parsl.All of n inner tasks; those at positions in
	// fail fail.
	joinMany = parsl.RegisterJoin2("test.join.many", func(_ context.Context, dfk *parsl.DFK, n int, fail []int) (*parsl.Future[[]int], error) {
		args := make([]parsl.Arg[int], n)
		for i := range args {
			args[i] = errorsFailIf.Submit(dfk, parsl.Val(i), parsl.Val(slices.Contains(fail, i)))
		}
		return parsl.All(args...), nil
	})
	joinNil = parsl.RegisterJoin0("test.join.nil", func(context.Context, *parsl.DFK) (*parsl.Future[int], error) {
		return nil, nil
	})
	joinErr = parsl.RegisterJoin1("test.join.err", func(_ context.Context, _ *parsl.DFK, msg string) (*parsl.Future[int], error) {
		return nil, errors.New(msg)
	})
	joinPanic = parsl.RegisterJoin0("test.join.panic", func(context.Context, *parsl.DFK) (*parsl.Future[int], error) {
		panic("join body panicked")
	})
	// joinHeld returns the future of a task held at the gate key.
	joinHeld = parsl.RegisterJoin1("test.join.held", func(_ context.Context, dfk *parsl.DFK, key string) (*parsl.Future[string], error) {
		return coreHold.Submit(dfk, parsl.Val(key)), nil
	})
	// joinOfJoin returns another join app's future.
	joinOfJoin = parsl.RegisterJoin1("test.join.ofjoin", func(_ context.Context, dfk *parsl.DFK, x int) (*parsl.Future[int], error) {
		return joinDouble.Submit(dfk, parsl.Val(x+1)), nil
	})
	// joinInnerFail returns the future of a failing inner task.
	joinInnerFail = parsl.RegisterJoin1("test.join.innerfail", func(_ context.Context, dfk *parsl.DFK, user string) (*parsl.Future[int], error) {
		return errorsCustom.Submit(dfk, parsl.Val(user)), nil
	})
	// joinWithBash runs a bash app inside a join.
	joinWithBash = parsl.RegisterJoin1("test.join.bash", func(_ context.Context, dfk *parsl.DFK, cmd string) (*parsl.Future[int], error) {
		return bashRun.Submit(dfk, parsl.Val(cmd)), nil
	})
)

// joinFib computes Fibonacci numbers recursively with join apps: each call
// returns the future of an add of two join futures.
var joinFib *parsl.JoinApp1[int, int]

func init() {
	joinFib = parsl.RegisterJoin1("test.join.fib", func(_ context.Context, dfk *parsl.DFK, n int) (*parsl.Future[int], error) {
		if n < 2 {
			return coreIdent.Submit(dfk, parsl.Val(n)), nil
		}
		return coreAdd.Submit(dfk, joinFib.Submit(dfk, parsl.Val(n-1)), joinFib.Submit(dfk, parsl.Val(n-2))), nil
	})
}

func TestJoinSingleFuture(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	f := joinDouble.Submit(dfk, parsl.Val(21))
	if got := coreGet(t, f); got != 42 {
		t.Errorf("got %d, want 42", got)
	}
	if f.State() != parsl.StateExecDone {
		t.Errorf("state %v, want exec_done", f.State())
	}
	// A join future is an argument like any other.
	if got := coreGet(t, coreInc.Submit(dfk, joinDouble.Submit(dfk, f))); got != 85 {
		t.Errorf("got %d, want 85", got)
	}
	// Join apps take futures as arguments too.
	if got := coreGet(t, joinDouble.Submit(dfk, coreInc.Submit(dfk, parsl.Val(1)))); got != 4 {
		t.Errorf("got %d, want 4", got)
	}
}

func TestJoinAll(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	tests := []struct {
		n    int
		want []int
	}{
		{0, []int{}},
		{1, []int{0}},
		{5, []int{0, 1, 2, 3, 4}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			got := coreGet(t, joinMany.Submit(dfk, parsl.Val(tc.n), parsl.Val[[]int](nil)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// Many of them at once.
	const n = 100
	big := joinMany.Submit(dfk, parsl.Val(n), parsl.Val[[]int](nil))
	if got := coreGet(t, big); len(got) != n || got[n-1] != n-1 {
		t.Errorf("len %d", len(got))
	}
}

func TestJoinInnerFailures(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})

	t.Run("many", func(t *testing.T) {
		f := joinMany.Submit(dfk, parsl.Val(6), parsl.Val([]int{1, 4, 5}))
		err := coreErr(t, f)
		je := coreAs[*parsl.JoinError](t, err)
		if je.TaskID != f.TaskID() || je.App != "test.join.many" {
			t.Errorf("JoinError = %+v", je)
		}
		if len(je.Failed) != 3 {
			t.Fatalf("JoinError lists %d failures, want 3: %v", len(je.Failed), err)
		}
		var msgs []string
		for _, fd := range je.Failed {
			if fd.App != "test.errors.failif" || fd.TaskID <= f.TaskID() {
				t.Errorf("failed inner task %+v", fd)
			}
			ae := coreAs[*parsl.AppError](t, fd.Err)
			msgs = append(msgs, ae.Message)
			coreContains(t, "error", err.Error(), fmt.Sprintf("task %d", fd.TaskID))
		}
		slices.Sort(msgs)
		if want := []string{"failif 1", "failif 4", "failif 5"}; !slices.Equal(msgs, want) {
			t.Errorf("inner failures %v, want %v", msgs, want)
		}
		coreContains(t, "error", err.Error(), "3 inner task(s) failed")
		if f.State() != parsl.StateFailed {
			t.Errorf("state %v, want failed", f.State())
		}
		// Downstream of a failed join: a DependencyError naming the join.
		derr := coreErr(t, coreSum.Submit(dfk, f))
		de := coreAs[*parsl.DependencyError](t, derr)
		if !slices.Equal(de.TaskIDs(), []int64{f.TaskID()}) {
			t.Errorf("TaskIDs() = %v, want [%d]", de.TaskIDs(), f.TaskID())
		}
		coreAs[*parsl.JoinError](t, derr)
	})

	t.Run("single", func(t *testing.T) {
		err := coreErr(t, joinInnerFail.Submit(dfk, parsl.Val("grace")))
		je := coreAs[*parsl.JoinError](t, err)
		if len(je.Failed) != 1 {
			t.Errorf("JoinError lists %d failures, want 1", len(je.Failed))
		}
		if q := coreAs[*errorsQuota](t, err); q.User != "grace" {
			t.Errorf("inner custom error %+v", q)
		}
	})

	t.Run("not retried at the join level", func(t *testing.T) {
		rdfk := coreLoad(t, parsl.Config{Retries: 2})
		key := coreKey(t)
		err := coreErr(t, joinRetryCount.Submit(rdfk, parsl.Val(key)))
		coreAs[*parsl.JoinError](t, err)
		if n := coreCounter(key).Load(); n != 1 {
			t.Errorf("join body ran %d times, want 1", n)
		}
	})
}

// joinRetryCount counts its body's runs and returns a failing inner task.
var joinRetryCount = parsl.RegisterJoin1("test.join.retrycount", func(_ context.Context, dfk *parsl.DFK, key string) (*parsl.Future[int], error) {
	coreCounter(key).Add(1)
	return errorsFailIf.Submit(dfk, parsl.Val(0), parsl.Val(true)), nil
})

func TestJoinBadBodies(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	err := coreErr(t, joinNil.Submit(dfk))
	coreContains(t, "error", err.Error(), "nil future", "test.join.nil")

	err = coreErr(t, joinErr.Submit(dfk, parsl.Val("join body failed")))
	if ae := coreAs[*parsl.AppError](t, err); ae.Message != "join body failed" {
		t.Errorf("AppError = %+v", ae)
	}
	if _, ok := errors.AsType[*parsl.JoinError](err); ok {
		t.Error("a join body's own error must not be a JoinError")
	}

	err = coreErr(t, joinPanic.Submit(dfk))
	if ae := coreAs[*parsl.AppError](t, err); !ae.Panicked {
		t.Errorf("AppError = %+v", ae)
	}
}

func TestJoinOfJoins(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{InternalThreads: 2})
	if got := coreGet(t, joinOfJoin.Submit(dfk, parsl.Val(4))); got != 10 {
		t.Errorf("join of join = %d, want 10", got)
	}
	fib := []int{0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144}
	for n, want := range fib {
		if got := coreGet(t, joinFib.Submit(dfk, parsl.Val(n))); got != want {
			t.Errorf("fib(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestJoinState(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	key := coreKey(t)
	f := joinHeld.Submit(dfk, parsl.Val(key))
	ctx := coreCtx(t)
	for f.State() != parsl.StateJoining {
		if ctx.Err() != nil {
			t.Fatalf("join task never reached joining; state %v", f.State())
		}
		if f.IsDone() {
			t.Fatalf("join task completed while its inner task is held: %v", f.Err())
		}
		// The body runs on the internal executor; wait for it.
		time.Sleep(time.Millisecond)
	}
	if f.IsDone() {
		t.Fatal("joining task reports done")
	}
	close(coreGate(key))
	if got := coreGet(t, f); got != key {
		t.Errorf("got %q", got)
	}
	if f.State() != parsl.StateExecDone {
		t.Errorf("state %v, want exec_done", f.State())
	}
}

func TestJoinWithBash(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	if got := coreGet(t, joinWithBash.Submit(dfk, parsl.Val("true"))); got != 0 {
		t.Errorf("got %d", got)
	}
	err := coreErr(t, joinWithBash.Submit(dfk, parsl.Val("exit 7")))
	je := coreAs[*parsl.JoinError](t, err)
	if be := coreAs[*parsl.BashExitError](t, err); be.ExitCode != 7 || len(je.Failed) != 1 {
		t.Errorf("BashExitError %+v, JoinError %+v", be, je)
	}
	if !strings.Contains(err.Error(), "exit code 7") {
		t.Errorf("error %q", err)
	}
}

// TestCloseWaitsForJoins closes the DFK right after submitting join apps:
// Close waits for outstanding tasks, and the inner tasks a join body
// submits while Close waits are part of them, not new work to refuse.
func TestCloseWaitsForJoins(t *testing.T) {
	t.Parallel()
	dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	single := joinDouble.Submit(dfk, parsl.Val(4))
	fib := joinFib.Submit(dfk, parsl.Val(10))
	many := joinMany.Submit(dfk, parsl.Val(20), parsl.Val[[]int](nil))
	if err := dfk.Close(coreCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := coreGet(t, single); got != 8 {
		t.Errorf("join = %d, want 8", got)
	}
	if got := coreGet(t, fib); got != 55 {
		t.Errorf("fib(10) = %d, want 55", got)
	}
	if got := coreGet(t, many); len(got) != 20 {
		t.Errorf("join of All: %d results", len(got))
	}
	// After Close, a new join fails at submit.
	if err := coreErr(t, joinDouble.Submit(dfk, parsl.Val(1))); !errors.Is(err, parsl.ErrDFKClosed) {
		t.Errorf("join after Close: %v", err)
	}
}
