package parsl_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/memo"
)

// Serialization safety on the threads executor (issue 12, items 1-3; the
// htex cases are in executor/htex/serial_test.go).

type serialCyc struct{ Next *serialCyc }

type serialHidden struct {
	Name string
	n    int //lint:ignore U1000 the point of the test: a field the encoder skips
}

var (
	serialCycApp = parsl.Register1("test.serial.cyc", func(_ context.Context, tag string) (*serialCyc, error) {
		memoCounter("serial.cyc", tag).Add(1)
		c := &serialCyc{}
		c.Next = c
		return c, nil
	}, parsl.WithCache(true))
	serialBash = parsl.RegisterBash1("test.serial.bash", func(_ context.Context, h serialHidden) (string, error) {
		return "true", nil
	})
)

// TestCkptCyclicResultOnThreads: on threads a cyclic result is handed over
// as it is, but checkpointing encodes it, which overflowed the stack and
// killed the program. It is kept for this run only, and the journal stays
// good for the results after it.
func TestCkptCyclicResultOnThreads(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	base := t.TempDir()
	run1 := ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointTaskExit}, func(dfk *parsl.DFK) {
		if c := memoGet(t, serialCycApp.Submit(dfk, parsl.Val(tag))); c == nil || c.Next != c {
			t.Fatalf("cyclic result = %v", c)
		}
		memoGet(t, ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(3)))
	})
	sq := ckptCount("sq", tag)
	ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointTaskExit,
		CheckpointFiles: []string{filepath.Join(run1, memo.Dir)}}, func(dfk *parsl.DFK) {
		f := ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(3))
		if v := memoGet(t, f); v != 9 {
			t.Errorf("sq(3) = %d", v)
		}
		memoWantState(t, f, parsl.StateMemoDone)
		// The cyclic one runs again: it was never journaled.
		memoGet(t, serialCycApp.Submit(dfk, parsl.Val(tag)))
	})
	if got := ckptCount("sq", tag); got != sq {
		t.Errorf("sq ran again in run 2 (%d calls, want %d)", got, sq)
	}
	if got := memoCount("serial.cyc", tag); got != 2 {
		t.Errorf("cyclic app ran %d times, want 2", got)
	}
	coreContains(t, "run 1 log", ckptLog(t, run1), "cannot be checkpointed", "refers back to itself")
}

// TestCachedBashAppWithLossyArgument: a bash app's arguments stay on the
// driver, but a cached one's memo key would ignore an unexported field,
// so two different values would share a cached result.
func TestCachedBashAppWithLossyArgument(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	if _, err := serialBash.Submit(dfk, parsl.Val(serialHidden{Name: "a"})).Get(coreCtx(t)); err != nil {
		t.Fatalf("uncached: %v", err)
	}
	err := coreErr(t, serialBash.Submit(dfk, parsl.Val(serialHidden{Name: "a"}), parsl.Cache(true)))
	var se *parsl.SerializationError
	if !errors.As(err, &se) || se.Arg != 1 || se.App != "test.serial.bash" {
		t.Fatalf("err = %v, want a SerializationError for argument 1", err)
	}
	coreContains(t, "error", err.Error(), "memo key", "serialHidden.n")
}
