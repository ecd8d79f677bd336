package parsl_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parsl-go/parsl"
)

// Core semantics, after Parsl's test_python_apps (parsl-features.md §11.1).

type corePoint struct {
	X, Y int
	Tag  string
}

var (
	coreIdent  = parsl.Register1("test.core.ident", func(_ context.Context, x int) (int, error) { return x, nil })
	coreDouble = parsl.Register1("test.core.double", func(_ context.Context, x int) (int, error) { return 2 * x, nil })
	coreInc    = parsl.Register1("test.core.inc", func(_ context.Context, x int) (int, error) { return x + 1, nil })
	coreAdd    = parsl.Register2("test.core.add", func(_ context.Context, a, b int) (int, error) { return a + b, nil })
	coreMul    = parsl.Register2("test.core.mul", func(_ context.Context, a, b int) (int, error) { return a * b, nil })
	coreSum    = parsl.Register1("test.core.sum", func(_ context.Context, xs []int) (int, error) {
		s := 0
		for _, x := range xs {
			s += x
		}
		return s, nil
	})
	coreHello = parsl.Register1("test.core.hello", func(_ context.Context, name string) (string, error) {
		return "Hello, " + name + "!", nil
	})
	coreConst = parsl.Register0("test.core.const", func(context.Context) (int, error) { return 42, nil })
	corePt    = parsl.Register3("test.core.point", func(_ context.Context, x, y int, tag string) (corePoint, error) {
		return corePoint{x, y, tag}, nil
	})
	coreNorm1 = parsl.Register1("test.core.norm1", func(_ context.Context, p corePoint) (int, error) {
		return abs(p.X) + abs(p.Y), nil
	})
	coreConcat = parsl.Register3("test.core.concat", func(_ context.Context, a string, b int, c []string) (string, error) {
		return fmt.Sprintf("%s-%d-%s", a, b, strings.Join(c, "+")), nil
	})
	// coreSleep sleeps ms milliseconds, respecting its context, and returns ms.
	coreSleep = parsl.Register1("test.core.sleep", func(ctx context.Context, ms int) (int, error) {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return ms, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	// coreHold blocks until the gate named key opens (or its context ends).
	coreHold = parsl.Register1("test.core.hold", func(ctx context.Context, key string) (string, error) {
		select {
		case <-coreGate(key):
			return key, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	coreFail = parsl.Register1("test.core.fail", func(_ context.Context, msg string) (int, error) {
		return 0, errors.New(msg)
	})
)

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestSimpleResults(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	ints := []struct {
		name string
		f    *parsl.Future[int]
		want int
	}{
		{"no args", coreConst.Submit(dfk), 42},
		{"one arg", coreDouble.Submit(dfk, parsl.Val(21)), 42},
		{"two args", coreAdd.Submit(dfk, parsl.Val(40), parsl.Val(2)), 42},
		{"negative", coreMul.Submit(dfk, parsl.Val(-6), parsl.Val(7)), -42},
		{"slice arg", coreSum.Submit(dfk, parsl.Val([]int{1, 2, 3, 4})), 10},
		{"nil slice arg", coreSum.Submit(dfk, parsl.Val[[]int](nil)), 0},
		{"struct arg", coreNorm1.Submit(dfk, parsl.Val(corePoint{X: -3, Y: 4})), 7},
	}
	for _, tc := range ints {
		t.Run(tc.name, func(t *testing.T) {
			if got := coreGet(t, tc.f); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
			if !tc.f.IsDone() || tc.f.Err() != nil {
				t.Errorf("IsDone=%v Err=%v after Get", tc.f.IsDone(), tc.f.Err())
			}
			select {
			case <-tc.f.Done():
			default:
				t.Error("Done channel not closed after Get")
			}
		})
	}
	t.Run("string", func(t *testing.T) {
		if got := coreGet(t, coreHello.Submit(dfk, parsl.Val("Ada"))); got != "Hello, Ada!" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("struct result", func(t *testing.T) {
		want := corePoint{1, 2, "p"}
		if got := coreGet(t, corePt.Submit(dfk, parsl.Val(1), parsl.Val(2), parsl.Val("p"))); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("mixed types", func(t *testing.T) {
		got := coreGet(t, coreConcat.Submit(dfk, parsl.Val("a"), parsl.Val(7), parsl.Val([]string{"x", "y"})))
		if got != "a-7-x+y" {
			t.Errorf("got %q", got)
		}
	})
}

func TestParallelFor(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	const n = 1000
	fs := make([]*parsl.Future[int], n)
	for i := range fs {
		fs[i] = coreDouble.Submit(dfk, parsl.Val(i))
	}
	for i, f := range fs {
		if got := coreGet(t, f); got != 2*i {
			t.Fatalf("task %d: got %d, want %d", i, got, 2*i)
		}
	}
	if err := dfk.Wait(coreCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := dfk.Counts()[parsl.StateExecDone]; got != n {
		t.Errorf("Counts()[exec_done] = %d, want %d", got, n)
	}
	if got := dfk.Outstanding(); got != 0 {
		t.Errorf("Outstanding() = %d after Wait", got)
	}
}

func TestLinearChain(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	// A → B → … : each stage doubles then adds one; intermediate futures
	// keep their own values.
	const n = 20
	f := coreIdent.Submit(dfk, parsl.Val(1))
	stages := []*parsl.Future[int]{f}
	for i := 0; i < n; i++ {
		f = coreInc.Submit(dfk, coreDouble.Submit(dfk, f))
		stages = append(stages, f)
	}
	want := 1
	for i, s := range stages {
		if got := coreGet(t, s); got != want {
			t.Fatalf("stage %d: got %d, want %d", i, got, want)
		}
		want = 2*want + 1
	}
}

func TestDiamondDAG(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	// As Parsl's test_dependencies: k → (k·3, k·5) → product.
	k := coreIdent.Submit(dfk, parsl.Val(2))
	left := coreMul.Submit(dfk, k, parsl.Val(3))
	right := coreMul.Submit(dfk, k, parsl.Val(5))
	top := coreMul.Submit(dfk, left, right)
	if got, want := coreGet(t, top), (2*3)*(2*5); got != want {
		t.Errorf("diamond = %d, want %d", got, want)
	}
	if coreGet(t, left) != 6 || coreGet(t, right) != 10 {
		t.Errorf("branches = %d, %d; want 6, 10", coreGet(t, left), coreGet(t, right))
	}
}

func TestWideFanIn(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	const n = 10000
	args := make([]parsl.Arg[int], n)
	for i := range args {
		args[i] = coreIdent.Submit(dfk, parsl.Val(i))
	}
	all := parsl.All(args...)
	total := coreSum.Submit(dfk, all)
	vals := coreGet(t, all)
	if len(vals) != n {
		t.Fatalf("All gave %d values, want %d", len(vals), n)
	}
	for i, v := range vals {
		if v != i {
			t.Fatalf("All()[%d] = %d: order not kept", i, v)
		}
	}
	if got, want := coreGet(t, total), n*(n-1)/2; got != want {
		t.Errorf("sum = %d, want %d", got, want)
	}
	if all.TaskID() != -1 {
		t.Errorf("All future TaskID = %d, want -1", all.TaskID())
	}
}

func TestAllMixesValuesAndFutures(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	got := coreGet(t, parsl.All(parsl.Val(1), coreDouble.Submit(dfk, parsl.Val(5)), parsl.Val(3)))
	if !slices.Equal(got, []int{1, 10, 3}) {
		t.Errorf("All = %v, want [1 10 3]", got)
	}
	empty := coreGet(t, parsl.All[int]())
	if len(empty) != 0 {
		t.Errorf("All() = %v, want empty", empty)
	}
	// All of All: nested gathers.
	nested := coreGet(t, parsl.All[[]int](parsl.All(parsl.Val(1)), parsl.All(parsl.Val(2), parsl.Val(3))))
	if len(nested) != 2 || !slices.Equal(nested[1], []int{2, 3}) {
		t.Errorf("nested All = %v", nested)
	}
}

func TestDeepChain(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	// Parsl asserts a 100-long chain launches with bounded stack; the Go
	// kernel must not recurse per dependency at all, so go much deeper.
	const depth = 100000
	f := coreIdent.Submit(dfk, parsl.Val(0))
	first := f
	for i := 0; i < depth; i++ {
		f = coreInc.Submit(dfk, f)
	}
	if got := coreGet(t, f); got != depth {
		t.Errorf("end of chain = %d, want %d", got, depth)
	}
	if got := coreGet(t, first); got != 0 {
		t.Errorf("start of chain = %d", got)
	}
	if f.TaskID() != depth {
		t.Errorf("last TaskID = %d, want %d", f.TaskID(), depth)
	}
}

func TestDeepChainDependencyFailure(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	// A failure at the head of a long chain settles the whole chain without
	// recursion, and the root cause is still reachable at the end.
	const depth = 20000
	head := coreFail.Submit(dfk, parsl.Val("head of chain"))
	f := head
	for i := 0; i < depth; i++ {
		f = coreInc.Submit(dfk, f)
	}
	err := coreErr(t, f)
	de := coreAs[*parsl.DependencyError](t, err)
	if ids := de.TaskIDs(); !slices.Equal(ids, []int64{depth - 1}) {
		t.Errorf("TaskIDs() = %v, want [%d]", ids, depth-1)
	}
	ae := coreAs[*parsl.AppError](t, err)
	if ae.TaskID != head.TaskID() || ae.Message != "head of chain" {
		t.Errorf("root cause = %+v, want task %d 'head of chain'", ae, head.TaskID())
	}
	if err := dfk.Wait(coreCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := dfk.Counts()[parsl.StateDepFail]; got != depth {
		t.Errorf("Counts()[dep_fail] = %d, want %d", got, depth)
	}
}

func TestFuturesAsArgs(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	tests := []struct {
		name string
		f    func() *parsl.Future[int]
		want int
	}{
		{"future then value", func() *parsl.Future[int] {
			return coreAdd.Submit(dfk, coreDouble.Submit(dfk, parsl.Val(3)), parsl.Val(4))
		}, 10},
		{"value then future", func() *parsl.Future[int] {
			return coreAdd.Submit(dfk, parsl.Val(4), coreDouble.Submit(dfk, parsl.Val(3)))
		}, 10},
		{"same future twice", func() *parsl.Future[int] {
			x := coreDouble.Submit(dfk, parsl.Val(5))
			return coreMul.Submit(dfk, x, x)
		}, 100},
		{"future already done", func() *parsl.Future[int] {
			x := coreDouble.Submit(dfk, parsl.Val(5))
			coreGet(t, x)
			return coreInc.Submit(dfk, x)
		}, 11},
		{"slow future", func() *parsl.Future[int] {
			return coreInc.Submit(dfk, coreSleep.Submit(dfk, parsl.Val(50)))
		}, 51},
		{"struct future", func() *parsl.Future[int] {
			return coreNorm1.Submit(dfk, corePt.Submit(dfk, parsl.Val(2), parsl.Val(-5), parsl.Val("q")))
		}, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := coreGet(t, tc.f()); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPromiseAsDependency(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})

	t.Run("resolve later", func(t *testing.T) {
		p := parsl.NewPromise[int]()
		f := coreDouble.Submit(dfk, p.Future())
		g := coreAdd.Submit(dfk, f, p.Future())
		time.Sleep(20 * time.Millisecond)
		if f.IsDone() || g.IsDone() {
			t.Fatal("task completed before the promise it depends on")
		}
		if st := f.State(); st != parsl.StatePending {
			t.Errorf("waiting task state = %v, want pending", st)
		}
		if p.Future().TaskID() != -1 {
			t.Errorf("promise TaskID = %d, want -1", p.Future().TaskID())
		}
		if !p.Resolve(21) {
			t.Fatal("first Resolve returned false")
		}
		if p.Resolve(1) || p.Fail(errors.New("late")) {
			t.Error("second Resolve/Fail returned true")
		}
		if got := coreGet(t, f); got != 42 {
			t.Errorf("got %d, want 42", got)
		}
		if got := coreGet(t, g); got != 63 {
			t.Errorf("got %d, want 63", got)
		}
		if got := coreGet(t, p.Future()); got != 21 {
			t.Errorf("promise value %d", got)
		}
	})

	t.Run("resolved before submit", func(t *testing.T) {
		p := parsl.NewPromise[int]()
		p.Resolve(5)
		if got := coreGet(t, coreInc.Submit(dfk, p.Future())); got != 6 {
			t.Errorf("got %d, want 6", got)
		}
	})

	t.Run("fail", func(t *testing.T) {
		p := parsl.NewPromise[int]()
		f := coreDouble.Submit(dfk, p.Future())
		g := coreInc.Submit(dfk, f)
		sentinel := errors.New("upstream system is down")
		p.Fail(sentinel)
		err := coreErr(t, f)
		de := coreAs[*parsl.DependencyError](t, err)
		if ids := de.TaskIDs(); !slices.Equal(ids, []int64{-1}) {
			t.Errorf("TaskIDs() = %v, want [-1] (an external future)", ids)
		}
		if !errors.Is(err, sentinel) {
			t.Errorf("errors.Is(err, sentinel) = false for %v", err)
		}
		coreContains(t, "error", err.Error(), "external future", "upstream system is down")
		if f.State() != parsl.StateDepFail {
			t.Errorf("state = %v, want dep_fail", f.State())
		}
		gerr := coreErr(t, g)
		if !errors.Is(gerr, sentinel) {
			t.Errorf("second level: errors.Is(err, sentinel) = false for %v", gerr)
		}
		if gde := coreAs[*parsl.DependencyError](t, gerr); !slices.Equal(gde.TaskIDs(), []int64{f.TaskID()}) {
			t.Errorf("second level TaskIDs() = %v, want [%d]", gde.TaskIDs(), f.TaskID())
		}
		if _, perr := p.Future().Get(coreCtx(t)); !errors.Is(perr, sentinel) {
			t.Errorf("promise Get error = %v", perr)
		}
	})

	t.Run("fail with nil error", func(t *testing.T) {
		p := parsl.NewPromise[int]()
		p.Fail(nil)
		err := coreErr(t, coreInc.Submit(dfk, p.Future()))
		coreAs[*parsl.DependencyError](t, err)
	})
}

func TestAsCompleted(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})

	t.Run("yields all", func(t *testing.T) {
		delays := []int{60, 0, 30, 10, 50, 0, 20, 40}
		fs := make([]*parsl.Future[int], len(delays))
		for i, d := range delays {
			fs[i] = coreSleep.Submit(dfk, parsl.Val(d))
		}
		seen := map[*parsl.Future[int]]bool{}
		ctx := coreCtx(t)
		for f := range parsl.AsCompleted(ctx, fs...) {
			if !f.IsDone() {
				t.Errorf("AsCompleted yielded task %d before it was done", f.TaskID())
			}
			if seen[f] {
				t.Errorf("task %d yielded twice", f.TaskID())
			}
			seen[f] = true
		}
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		if len(seen) != len(fs) {
			t.Errorf("yielded %d futures, want %d", len(seen), len(fs))
		}
	})

	t.Run("failed and already done futures", func(t *testing.T) {
		done := coreIdent.Submit(dfk, parsl.Val(1))
		coreGet(t, done)
		bad := coreFail.Submit(dfk, parsl.Val("boom"))
		n := 0
		for f := range parsl.AsCompleted(coreCtx(t), done, nil, bad) {
			n++
			if f == nil {
				t.Error("yielded a nil future")
			}
		}
		if n != 2 {
			t.Errorf("yielded %d futures, want 2 (nil skipped)", n)
		}
	})

	t.Run("early break", func(t *testing.T) {
		fs := []*parsl.Future[int]{coreIdent.Submit(dfk, parsl.Val(1)), coreIdent.Submit(dfk, parsl.Val(2))}
		for range parsl.AsCompleted(coreCtx(t), fs...) {
			break
		}
	})

	t.Run("ctx ends", func(t *testing.T) {
		p := parsl.NewPromise[int]()
		ok := coreIdent.Submit(dfk, parsl.Val(7))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		n := 0
		for range parsl.AsCompleted(ctx, p.Future(), ok) {
			n++
		}
		if n != 1 || ctx.Err() == nil {
			t.Errorf("yielded %d with ctx.Err()=%v; want 1 and a done ctx", n, ctx.Err())
		}
		p.Resolve(0)
	})
}

func TestIndependentDFKs(t *testing.T) {
	t.Parallel()
	const k = 4
	dfks := make([]*parsl.DFK, k)
	for i := range dfks {
		dfks[i] = coreLoad(t, parsl.Config{})
	}
	dirs := map[string]bool{}
	for _, d := range dfks {
		if dirs[d.RunDir()] {
			t.Errorf("two DFKs share run directory %s", d.RunDir())
		}
		dirs[d.RunDir()] = true
	}
	var wg sync.WaitGroup
	errs := make(chan error, k)
	for i, d := range dfks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fs := make([]*parsl.Future[int], 200)
			for j := range fs {
				fs[j] = coreAdd.Submit(d, parsl.Val(i*1000), parsl.Val(j))
				if got := fs[j].TaskID(); got != int64(j) {
					errs <- fmt.Errorf("DFK %d: task %d has TaskID %d; IDs must count from 0 per DFK", i, j, got)
					return
				}
			}
			for j, f := range fs {
				v, err := f.Get(context.Background())
				if err != nil || v != i*1000+j {
					errs <- fmt.Errorf("DFK %d task %d: %d, %v", i, j, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Closing one DFK leaves the others working.
	if err := dfks[0].Close(coreCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := coreGet(t, coreDouble.Submit(dfks[1], parsl.Val(4))); got != 8 {
		t.Errorf("after closing another DFK: got %d", got)
	}
	if _, err := coreDouble.Submit(dfks[0], parsl.Val(4)).Get(coreCtx(t)); !errors.Is(err, parsl.ErrDFKClosed) {
		t.Errorf("closed DFK: %v, want ErrDFKClosed", err)
	}
}

func TestStateNames(t *testing.T) {
	t.Parallel()
	names := []struct {
		s    parsl.State
		name string
	}{
		{parsl.StateUnsched, "unsched"},
		{parsl.StatePending, "pending"},
		{parsl.StateRunning, "running"},
		{parsl.StateExecDone, "exec_done"},
		{parsl.StateFailed, "failed"},
		{parsl.StateDepFail, "dep_fail"},
		{parsl.StateLaunched, "launched"},
		{parsl.StateFailRetryable, "fail_retryable"},
		{parsl.StateMemoDone, "memo_done"},
		{parsl.StateJoining, "joining"},
		{parsl.StateRunningEnded, "running_ended"},
	}
	for _, tc := range names {
		if got := tc.s.String(); got != tc.name {
			t.Errorf("State(%d).String() = %q, want %q", int(tc.s), got, tc.name)
		}
	}
	// Parsl's numbers, which monitoring databases store.
	nums := map[parsl.State]int{parsl.StatePending: 0, parsl.StateRunning: 2, parsl.StateExecDone: 3,
		parsl.StateFailed: 4, parsl.StateDepFail: 5, parsl.StateLaunched: 7, parsl.StateFailRetryable: 8,
		parsl.StateMemoDone: 9, parsl.StateJoining: 10, parsl.StateRunningEnded: 11, parsl.StateUnsched: -1}
	for s, n := range nums {
		if int(s) != n {
			t.Errorf("%v = %d, want %d", s, int(s), n)
		}
	}
}

func TestTaskStatesAndIDs(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	key := coreKey(t)
	p := parsl.NewPromise[int]()

	held := coreHold.Submit(dfk, parsl.Val(key))  // 0: running, held
	waiting := coreDouble.Submit(dfk, p.Future()) // 1: waits on the promise
	ok := coreIdent.Submit(dfk, parsl.Val(1))     // 2
	bad := coreFail.Submit(dfk, parsl.Val("no"))  // 3
	dep := coreInc.Submit(dfk, bad)               // 4
	all := parsl.All[int](ok, parsl.Val(2))       // gather: no ID
	after := coreSum.Submit(dfk, all)             // 5

	for i, id := range []int64{held.TaskID(), waiting.TaskID(), ok.TaskID(), bad.TaskID(), dep.TaskID(), after.TaskID()} {
		if id != int64(i) {
			t.Errorf("task %d has TaskID %d; IDs count from 0 in submit order", i, id)
		}
	}
	coreGet(t, ok)
	coreErr(t, bad)
	coreErr(t, dep)
	coreGet(t, after)

	finals := []struct {
		name string
		got  parsl.State
		want parsl.State
	}{
		{"ok", ok.State(), parsl.StateExecDone},
		{"bad", bad.State(), parsl.StateFailed},
		{"dep", dep.State(), parsl.StateDepFail},
		{"after", after.State(), parsl.StateExecDone},
		{"waiting", waiting.State(), parsl.StatePending},
	}
	for _, tc := range finals {
		if tc.got != tc.want {
			t.Errorf("%s: state %v, want %v", tc.name, tc.got, tc.want)
		}
		if tc.got.String() != tc.want.String() {
			t.Errorf("%s: state name %q, want %q", tc.name, tc.got.String(), tc.want.String())
		}
	}
	// The held task has been handed to the executor.
	if st := held.State(); st != parsl.StateLaunched && st != parsl.StateRunning {
		t.Errorf("held: state %v, want launched", st)
	}
	// Counters are updated as tasks settle, which may be just after their
	// futures complete.
	var counts map[parsl.State]int64
	if !coreEventually(func() bool {
		counts = dfk.Counts()
		return counts[parsl.StateExecDone] == 2 && counts[parsl.StateFailed] == 1 && counts[parsl.StateDepFail] == 1 &&
			counts[parsl.StatePending] == 1 && dfk.Outstanding() == 2
	}) {
		t.Errorf("Counts() = %v, Outstanding() = %d; want exec_done 2, failed 1, dep_fail 1, pending 1; 2 outstanding",
			counts, dfk.Outstanding())
	}
	close(coreGate(key))
	p.Resolve(4)
	if coreGet(t, held) != key || coreGet(t, waiting) != 8 {
		t.Error("held tasks gave wrong results")
	}
	if err := dfk.Wait(coreCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := dfk.Counts()[parsl.StateExecDone]; got != 4 {
		t.Errorf("Counts()[exec_done] = %d, want 4", got)
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	if err := dfk.Wait(coreCtx(t)); err != nil {
		t.Fatalf("Wait with no tasks: %v", err)
	}
	fs := make([]*parsl.Future[int], 20)
	for i := range fs {
		fs[i] = coreSleep.Submit(dfk, parsl.Val(i))
	}
	if err := dfk.Wait(coreCtx(t)); err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if !f.IsDone() {
			t.Errorf("task %d not done after Wait", f.TaskID())
		}
	}
	// Wait honours its context.
	p := parsl.NewPromise[int]()
	coreInc.Submit(dfk, p.Future())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := dfk.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with a task blocked on a promise: %v, want DeadlineExceeded", err)
	}
	p.Resolve(1)
	if err := dfk.Wait(coreCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestGetHonoursContext(t *testing.T) {
	t.Parallel()
	p := parsl.NewPromise[int]()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Future().Get(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Get on a cancelled ctx: %v, want context.Canceled", err)
	}
	if p.Future().Err() != nil || p.Future().IsDone() {
		t.Error("unresolved promise reports done or an error")
	}
}

// TestCloseLeavesNoGoroutines checks that Close stops every goroutine the
// DFK started: executor workers, the internal executor, the signal watcher,
// the periodic checkpointer, bash process waiters. It must not run in
// parallel with other tests (no t.Parallel), since their goroutines would
// be counted.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	t.Run("after normal work", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		ctx := coreCtx(t)
		dfk, err := parsl.Load(ctx, parsl.Config{
			RunDir:           t.TempDir(),
			CheckpointMode:   parsl.CheckpointPeriodic,
			CheckpointPeriod: 10 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		p := parsl.NewPromise[int]()
		var (
			fs   []*parsl.Future[int]
			args []parsl.Arg[int]
		)
		for i := 0; i < 50; i++ {
			f := coreDouble.Submit(dfk, parsl.Val(i))
			fs = append(fs, f)
			args = append(args, f)
		}
		fs = append(fs,
			coreSum.Submit(dfk, parsl.All(args...)),
			coreInc.Submit(dfk, p.Future()),
			coreSleep.Submit(dfk, parsl.Val(5), parsl.Walltime(time.Second)),
			coreSleep.Submit(dfk, parsl.Val(1000), parsl.Walltime(10*time.Millisecond)),
			coreFail.Submit(dfk, parsl.Val("x")),
			bashEcho.Submit(dfk, parsl.Val("leak check")),
			joinDouble.Submit(dfk, parsl.Val(3)),
		)
		p.Resolve(1)
		for range parsl.AsCompleted(ctx, fs...) {
		}
		if err := dfk.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("close that cancels", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		key := coreKey(t)
		held := coreHold.Submit(dfk, parsl.Val(key))
		p := parsl.NewPromise[int]()
		blocked := coreInc.Submit(dfk, p.Future())
		sleeper := bashSleep.Submit(dfk, parsl.Val(30))
		// Let the held tasks start.
		for held.State() == parsl.StatePending || sleeper.State() == parsl.StatePending {
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = dfk.Close(ctx)
		for _, f := range []interface{ Err() error }{held, blocked, sleeper} {
			if err := f.Err(); !errors.Is(err, parsl.ErrDFKClosed) {
				t.Errorf("task cancelled by Close: err %v, want ErrDFKClosed", err)
			}
		}
		// Resolving the promise now changes nothing and starts nothing.
		p.Resolve(1)
		if err := blocked.Err(); !errors.Is(err, parsl.ErrDFKClosed) {
			t.Errorf("after a late Resolve: %v", err)
		}
		close(coreGate(key))
	})
}

// TestDependencyCompletesDuringSubmit submits tasks whose first input
// completes while the submit is still registering the later ones. A task
// must not start until every input is done: here the second input is a
// promise resolved only after the submit, so the result proves it waited.
func TestDependencyCompletesDuringSubmit(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	const n = 3000
	fs := make([]*parsl.Future[int], n)
	gs := make([]*parsl.Future[[]int], n) // the same through All
	ps := make([]*parsl.Promise[int], n)
	for i := range fs {
		ps[i] = parsl.NewPromise[int]()
		fs[i] = coreAdd.Submit(dfk, coreIdent.Submit(dfk, parsl.Val(i)), ps[i].Future())
		gs[i] = parsl.All[int](coreIdent.Submit(dfk, parsl.Val(i)), ps[i].Future())
	}
	early := 0
	for i := range fs {
		if fs[i].IsDone() || gs[i].IsDone() {
			early++
		}
	}
	if early > 0 {
		t.Errorf("%d tasks completed before their promise input was resolved", early)
	}
	for i, p := range ps {
		p.Resolve(1_000_000)
		if got := coreGet(t, fs[i]); got != i+1_000_000 {
			t.Fatalf("task %d = %d, want %d", i, got, i+1_000_000)
		}
		if got := coreGet(t, gs[i]); !slices.Equal(got, []int{i, 1_000_000}) {
			t.Fatalf("All %d = %v, want [%d 1000000]", i, got, i)
		}
	}
}
