package htex_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/executor/threads"
	"github.com/parsl-go/parsl/internal/registry"
)

// Serialization safety (issue 12, items 1-3): values that cannot cross to
// a worker fail their own task with a *SerializationError, on the driver
// for arguments and on the worker for results; they never kill the
// driver, a pool, or take other tasks down with them; and threads and
// htex agree on what crosses.

type serCyc struct {
	N int
	P *serCyc
}

type serDeep struct {
	Next *serDeep
}

func serDeepList(n int) *serDeep {
	var d *serDeep
	for i := 0; i < n; i++ {
		d = &serDeep{Next: d}
	}
	return d
}

func serNestedAny(n int) any {
	var v any = 1
	for i := 0; i < n; i++ {
		v = []any{v}
	}
	return v
}

type serPoint struct {
	X, Y int
}

var (
	serAny    = parsl.Register1("htextest.ser.any", func(_ context.Context, v any) (int, error) { return 1, nil })
	serCycle  = parsl.Register1("htextest.ser.cyc", func(_ context.Context, c *serCyc) (int, error) { return c.N, nil })
	serCyclic = parsl.Register1("htextest.ser.cycresult", func(_ context.Context, n int) (*serCyc, error) {
		c := &serCyc{N: n}
		c.P = c
		return c, nil
	})
	serCached = parsl.Register1("htextest.ser.cached", func(_ context.Context, c *serCyc) (int, error) { return 1, nil },
		parsl.WithCache(true))
	serDeepArg  = parsl.Register1("htextest.ser.deeparg", func(_ context.Context, d *serDeep) (int, error) { return 1, nil })
	serDeepRes  = parsl.Register1("htextest.ser.deepres", func(_ context.Context, n int) (*serDeep, error) { return serDeepList(n), nil })
	serInts     = parsl.Register1("htextest.ser.ints", func(_ context.Context, xs []int) (int, error) { return len(xs), nil })
	serManyInts = parsl.Register1("htextest.ser.manyints", func(_ context.Context, n int) ([]int, error) { return make([]int, n), nil })
	serAnyRes   = parsl.Register1("htextest.ser.anyres", func(_ context.Context, kind string) (any, error) {
		switch kind {
		case "struct":
			return serPoint{1, 2}, nil
		case "int64":
			return int64(3), nil
		}
		return map[string]any{"n": 7, "f": 2.5, "s": "x", "l": []any{1, "two", nil, true}, "b": []byte("hi")}, nil
	})
	serEcho = parsl.Register1("htextest.ser.echo", func(_ context.Context, v any) (any, error) { return v, nil })
)

// serLoad starts a DFK with a threads and an htex executor (one pool).
func serLoad(t *testing.T, retries int) (*parsl.DFK, *htex.Executor) {
	t.Helper()
	ex := htex.New(fast(htex.Options{Label: "htex"}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dfk, err := parsl.Load(ctx, parsl.Config{
		Executors: []executor.Executor{threads.New(threads.Options{Label: "threads"}), ex},
		RunDir:    t.TempDir(), Retries: retries,
	})
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

// serFails waits for f and checks that it failed with a SerializationError
// of app for argument arg (0: the result) for the rule, on its first try.
func serFails[T any](t *testing.T, f *parsl.Future[T], app string, arg int, rule string, words ...string) *parsl.SerializationError {
	t.Helper()
	v, err := f.Get(ctxT(t, 60*time.Second))
	if err == nil {
		t.Fatalf("task %d succeeded with %v; want a SerializationError", f.TaskID(), v)
	}
	se, ok := err.(*parsl.SerializationError)
	if !ok {
		// A RetryError here would mean the deterministic failure was
		// retried; a ManagerLostError, that a pool died of it.
		t.Fatalf("err = %v (%T), want a *parsl.SerializationError on the first try", err, err)
	}
	if se.App != app || se.Arg != arg || se.Rule != rule || se.TaskID != f.TaskID() {
		t.Errorf("SerializationError = {task %d app %q arg %d rule %q}, want {task %d app %q arg %d rule %q}: %v",
			se.TaskID, se.App, se.Arg, se.Rule, f.TaskID(), app, arg, rule, err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	return se
}

// serStillWorks checks that the executor (and its one pool) still runs
// tasks, and that no pool died: one block was ever started.
func serStillWorks(t *testing.T, dfk *parsl.DFK, ex *htex.Executor, label string) {
	t.Helper()
	if v, err := double.Submit(dfk, parsl.Val(21), parsl.Executor(label)).Get(ctxT(t, 60*time.Second)); err != nil || v != 42 {
		t.Fatalf("a plain task after the failure on %s: %v, %v", label, v, err)
	}
	if n := len(ex.JobIDs()); n != 1 {
		t.Errorf("%d blocks started, want 1: a pool died", n)
	}
}

func TestCyclicAndDeepArgumentsFailTheirTask(t *testing.T) {
	t.Parallel()
	dfk, ex := serLoad(t, 2)
	cyc := &serCyc{N: 1}
	cyc.P = cyc
	for _, label := range []string{"htex", "threads"} {
		t.Run(label, func(t *testing.T) {
			on := parsl.Executor(label)
			// In an interface, a pointer is not plain data: refused at
			// submit on both executors, before anything is encoded.
			serFails(t, serAny.Submit(dfk, parsl.Val[any](cyc), on), "htextest.ser.any", 1, "interface", "argument 1", "*htex_test.serCyc")
			// 2,000,000 levels of []any: refused without a stack overflow.
			serFails(t, serAny.Submit(dfk, parsl.Val(serNestedAny(2_000_000)), on), "htextest.ser.any", 1, "nesting", "nested more than")
			serStillWorks(t, dfk, ex, label)
		})
	}
	// A typed cycle: threads passes the pointer (nothing is encoded), htex
	// must refuse it.
	if v, err := serCycle.Submit(dfk, parsl.Val(cyc), parsl.Executor("threads")).Get(ctxT(t, 60*time.Second)); err != nil || v != 1 {
		t.Fatalf("cyclic pointer on threads: %v, %v", v, err)
	}
	se := serFails(t, serCycle.Submit(dfk, parsl.Val(cyc), parsl.Executor("htex")), "htextest.ser.cyc", 1, "cycle", "refers back to itself", "*htex_test.serCyc")
	t.Logf("htex, cyclic argument: %v", se)
	// With caching, the memo key is encoded on every executor.
	for _, label := range []string{"threads", "htex"} {
		se := serFails(t, serCached.Submit(dfk, parsl.Val(cyc), parsl.Executor(label)), "htextest.ser.cached", 1, "cycle", "memo key")
		t.Logf("%s, cached, cyclic argument: %v", label, se)
	}
	serStillWorks(t, dfk, ex, "htex")
}

func TestCyclicResultFailsItsTask(t *testing.T) {
	t.Parallel()
	dfk, ex := serLoad(t, 2)
	se := serFails(t, serCyclic.Submit(dfk, parsl.Val(5), parsl.Executor("htex")), "htextest.ser.cycresult", 0, "cycle", "result", "refers back to itself")
	t.Logf("htex, cyclic result: %v", se)
	serStillWorks(t, dfk, ex, "htex")
	// On threads the pointer is handed over as it is.
	if c, err := serCyclic.Submit(dfk, parsl.Val(5), parsl.Executor("threads")).Get(ctxT(t, 60*time.Second)); err != nil || c.P != c {
		t.Fatalf("cyclic result on threads: %v, %v", c, err)
	}
}

func TestValuesPastDecodeLimitsFailTheirTask(t *testing.T) {
	t.Parallel()
	dfk, ex := serLoad(t, 2)
	on := parsl.Executor("htex")
	// Arguments: checked on the driver.
	se := serFails(t, serInts.Submit(dfk, parsl.Val(make([]int, 17_000_000)), on), "htextest.ser.ints", 1, "array", "codec.MaxArrayElements", "file")
	t.Logf("17M-element []int argument: %v", se)
	se = serFails(t, serDeepArg.Submit(dfk, parsl.Val(serDeepList(100)), on), "htextest.ser.deeparg", 1, "nesting", "codec.MaxNesting")
	t.Logf("100-deep argument: %v", se)
	serFails(t, serAny.Submit(dfk, parsl.Val(serNestedAny(100)), on), "htextest.ser.any", 1, "nesting")
	serStillWorks(t, dfk, ex, "htex")
	// Results: checked on the worker.
	se = serFails(t, serDeepRes.Submit(dfk, parsl.Val(100), on), "htextest.ser.deepres", 0, "nesting", "codec.MaxNesting")
	t.Logf("100-deep result: %v", se)
	se = serFails(t, serManyInts.Submit(dfk, parsl.Val(17_000_000), on), "htextest.ser.manyints", 0, "array", "codec.MaxArrayElements")
	t.Logf("17M-element result: %v", se)
	serStillWorks(t, dfk, ex, "htex")
	// Up to the limits, values cross.
	if d, err := serDeepRes.Submit(dfk, parsl.Val(50), on).Get(ctxT(t, 60*time.Second)); err != nil || d == nil {
		t.Fatalf("50-deep result: %v, %v", d, err)
	}
	if n, err := serDeepArg.Submit(dfk, parsl.Val(serDeepList(50)), on).Get(ctxT(t, 60*time.Second)); err != nil || n != 1 {
		t.Fatalf("50-deep argument: %v, %v", n, err)
	}
}

func TestInterfacesHoldTheSameValuesOnBothExecutors(t *testing.T) {
	t.Parallel()
	dfk, ex := serLoad(t, 2)
	want := map[string]any{"n": 7, "f": 2.5, "s": "x", "l": []any{1, "two", nil, true}, "b": []byte("hi")}
	got := map[string]any{}
	for _, label := range []string{"threads", "htex"} {
		on := parsl.Executor(label)
		// A struct in an interface would come back from a pool as a map:
		// refused on both, as an argument and as a result.
		se := serFails(t, serAny.Submit(dfk, parsl.Val[any](serPoint{1, 2}), on), "htextest.ser.any", 1, "interface", "htex_test.serPoint", "map[string]any")
		t.Logf("%s, struct in an interface argument: %v", label, se)
		se = serFails(t, serAnyRes.Submit(dfk, parsl.Val("struct"), on), "htextest.ser.anyres", 0, "interface", "htex_test.serPoint")
		t.Logf("%s, struct in an interface result: %v", label, se)
		serFails(t, serAnyRes.Submit(dfk, parsl.Val("int64"), on), "htextest.ser.anyres", 0, "interface", "int64")
		// Plain data comes back as itself, ints as ints.
		v, err := serAnyRes.Submit(dfk, parsl.Val("plain"), on).Get(ctxT(t, 60*time.Second))
		if err != nil {
			t.Fatalf("%s: plain data: %v", label, err)
		}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("%s: plain result = %#v, want %#v", label, v, want)
		}
		got[label] = v
		e, err := serEcho.Submit(dfk, parsl.Val[any](want), on).Get(ctxT(t, 60*time.Second))
		if err != nil || !reflect.DeepEqual(e, want) {
			t.Errorf("%s: plain data through an argument and back = %#v, %v; want %#v", label, e, err, want)
		}
	}
	if !reflect.DeepEqual(got["threads"], got["htex"]) {
		t.Errorf("threads gave %#v, htex %#v", got["threads"], got["htex"])
	}
	serStillWorks(t, dfk, ex, "htex")
}

type serHidden struct {
	Name  string
	count int //lint:ignore U1000 the point: a field the encoder skips
}

type serMarshaled struct{ secret int }

func (m serMarshaled) MarshalBinary() ([]byte, error) { return []byte{byte(m.secret)}, nil }
func (m *serMarshaled) UnmarshalBinary(b []byte) error {
	if len(b) != 1 {
		return errors.New("bad length")
	}
	m.secret = int(b[0])
	return nil
}

type serSkipped struct {
	Name  string
	cache []int `cbor:"-"` //lint:ignore U1000 the point: a field that is declared not to cross
}

// TestRegisterRefusesTypesThatDoNotCross: a Go app whose argument or
// result would lose data on a worker is refused when it is registered,
// with a message naming the field, whatever the executor.
func TestRegisterRefusesTypesThatDoNotCross(t *testing.T) {
	mustPanic := func(name string, register func(), words ...string) {
		t.Helper()
		msg := func() (msg string) {
			defer func() { msg = fmt.Sprint(recover()) }()
			register()
			return ""
		}()
		if msg == "" || msg == "<nil>" {
			t.Errorf("%s: registered without a panic", name)
			return
		}
		for _, w := range words {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: panic %q does not say %q", name, msg, w)
			}
		}
	}
	mustPanic("unexported field in a result", func() {
		parsl.Register1("htextest.ser.reg.hidden", func(_ context.Context, n int) (serHidden, error) { return serHidden{}, nil })
	}, "htextest.ser.reg.hidden", "result", "serHidden.count", "unexported", "export the field")
	mustPanic("unexported field in an argument", func() {
		parsl.Register2("htextest.ser.reg.hiddenarg", func(_ context.Context, n int, h []*serHidden) (int, error) { return 0, nil })
	}, "parameter 2", "serHidden.count")
	mustPanic("error result", func() {
		parsl.Register1("htextest.ser.reg.error", func(_ context.Context, n int) (error, error) { return nil, nil })
	}, "result type error", "interface with methods")
	// A marshaler pair and a field tagged not to cross are fine. (Checked
	// on the parameter: registering here would give the driver an app its
	// pools do not have.)
	if err := registry.ParamOf[serMarshaled]().Lossy; err != nil {
		t.Errorf("a type with MarshalBinary/UnmarshalBinary refused: %v", err)
	}
	if err := registry.ParamOf[serSkipped]().Lossy; err != nil {
		t.Errorf("a type whose unexported field is tagged cbor:\"-\" refused: %v", err)
	}
}
