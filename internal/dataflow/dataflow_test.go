package dataflow

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/threads"
	"github.com/parsl-go/parsl/internal/failure"
	"github.com/parsl-go/parsl/internal/registry"
)

// White-box tests of the kernel. Apps are built as *registry.App values
// without registering them: the kernel only needs Invoke and Kind.

const dfTimeout = 60 * time.Second

// dfVal is a plain-value Source.
type dfVal struct{ v any }

func (v dfVal) Dep() *Task { return nil }
func (v dfVal) Value() any { return v.v }

func dfApp(name string, fn func(ctx context.Context, args []any) (any, error)) *registry.App {
	return &registry.App{Name: name, Kind: registry.Go, Result: registry.ParamOf[int64](), Invoke: fn}
}

func dfNew(t testing.TB, execs ...executor.Executor) *DFK {
	t.Helper()
	if len(execs) == 0 {
		execs = []executor.Executor{threads.New(threads.Options{MaxThreads: 8})}
	}
	k, err := New(context.Background(), Config{RunDir: t.TempDir(), Executors: execs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dfTimeout)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return k
}

func dfWait(t testing.TB, k *DFK) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dfTimeout)
	defer cancel()
	if err := k.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v (outstanding %d, counts %v)", err, k.Outstanding(), k.Counts())
	}
}

// dfCheckCounts checks that no counter is negative, no task is left in a
// non-final state, and the final states add up to total.
func dfCheckCounts(t testing.TB, k *DFK, total int64) map[State]int64 {
	t.Helper()
	c := k.Counts()
	var final int64
	for s, n := range c {
		if n < 0 {
			t.Errorf("Counts()[%v] = %d < 0", s, n)
		}
		if s.Final() {
			final += n
		} else if n != 0 {
			t.Errorf("Counts()[%v] = %d after every task completed", s, n)
		}
	}
	if final != total {
		t.Errorf("final states add up to %d, want %d (counts %v)", final, total, c)
	}
	if n := k.Outstanding(); n != 0 {
		t.Errorf("Outstanding() = %d, want 0", n)
	}
	return c
}

// TestConcurrentSubmitRandomDAG submits a random DAG from 8 goroutines at
// once; every task must run once, complete once and get the right value.
func TestConcurrentSubmitRandomDAG(t *testing.T) {
	const (
		gs  = 8
		per = 10000
		mod = 1_000_000_007
		n   = gs * per
	)
	k := dfNew(t)
	var (
		tasks    = make([]*Task, n)
		expected = make([]int64, n)
		calls    = make([]atomic.Int32, n)
		notified = make([]atomic.Int32, n)
		pubLen   [gs]atomic.Int64 // tasks[g*per : g*per+pubLen[g]] are set
	)
	app := dfApp("test.dataflow.sum", func(_ context.Context, args []any) (any, error) {
		id := args[0].(int)
		calls[id].Add(1)
		sum := int64(id)
		for _, a := range args[1:] {
			sum = (sum*31 + a.(int64)) % mod
		}
		return sum, nil
	})
	var wg sync.WaitGroup
	for g := range gs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			for i := range per {
				id := g*per + i
				srcs := []Source{dfVal{id}}
				want := int64(id)
				for range rng.IntN(4) {
					// An earlier task of this goroutine or of another one.
					og := rng.IntN(gs)
					avail := int(pubLen[og].Load())
					if og == g {
						avail = i
					}
					if avail == 0 {
						continue
					}
					// Half the time a recent task, likely still running,
					// so that inputs complete while t is being submitted.
					pick := rng.IntN(avail)
					if rng.IntN(2) == 0 {
						pick = max(0, avail-1-rng.IntN(8))
					}
					dep := og*per + pick
					if rng.IntN(10) == 0 {
						// Through a gather node of the dependency and itself.
						gt := new(Task)
						NewGather(gt, []Source{tasks[dep], tasks[dep]}, func(vals []any) any {
							return (vals[0].(int64) + vals[1].(int64)) % mod
						})
						srcs = append(srcs, gt)
						want = (want*31 + 2*expected[dep]%mod) % mod
						continue
					}
					srcs = append(srcs, tasks[dep])
					want = (want*31 + expected[dep]) % mod
				}
				tk := new(Task)
				expected[id] = want
				k.Submit(tk, app, srcs, nil)
				if !OnDone(tk, func(*Task) { notified[id].Add(1) }) {
					notified[id].Add(1)
				}
				tasks[id] = tk
				pubLen[g].Store(int64(i + 1))
			}
		}()
	}
	wg.Wait()
	dfWait(t, k)
	// A task counts as settled before its waiters run (they are called
	// after its lock is released), so Wait can return while the last
	// OnDone callbacks are still on their way: give them a moment.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		all := true
		for id := range notified {
			if notified[id].Load() == 0 {
				all = false
				break
			}
		}
		if all {
			break
		}
	}
	bad := 0
	for id, tk := range tasks {
		if !tk.IsDone() {
			t.Fatalf("task %d not done after Wait", id)
		}
		res, err := tk.Outcome()
		if err != nil || res != expected[id] || tk.State() != ExecDone ||
			calls[id].Load() != 1 || notified[id].Load() != 1 {
			bad++
			if bad <= 10 {
				t.Errorf("task %d: result %v, err %v, state %v, body ran %d times, notified %d times; want %d once",
					id, res, err, tk.State(), calls[id].Load(), notified[id].Load(), expected[id])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d tasks wrong", bad, n)
	}
	c := dfCheckCounts(t, k, n)
	if c[ExecDone] != n {
		t.Errorf("Counts()[exec_done] = %d, want %d", c[ExecDone], n)
	}
	ids := map[int64]bool{}
	for _, tk := range tasks {
		ids[tk.ID()] = true
	}
	if len(ids) != n {
		t.Errorf("%d distinct task IDs for %d tasks", len(ids), n)
	}
}

// TestLongFailureChain fails the head of a 100,000-task chain after the
// whole chain is submitted: the failure must reach the tail without
// recursion and without quadratic work.
func TestLongFailureChain(t *testing.T) {
	const n = 100_000
	k := dfNew(t)
	boom := errors.New("boom")
	head := dfApp("test.dataflow.head", func(context.Context, []any) (any, error) { return nil, boom })
	var ran atomic.Int64
	link := dfApp("test.dataflow.link", func(_ context.Context, args []any) (any, error) {
		ran.Add(1)
		return args[0], nil
	})
	gate := new(Task)
	NewPromise(gate)
	tasks := make([]*Task, n)
	tasks[0] = new(Task)
	k.Submit(tasks[0], head, []Source{gate}, nil)
	for i := 1; i < n; i++ {
		tasks[i] = new(Task)
		k.Submit(tasks[i], link, []Source{tasks[i-1]}, nil)
	}
	if k.Outstanding() != n {
		t.Fatalf("Outstanding() = %d before the gate opens, want %d", k.Outstanding(), n)
	}
	start := time.Now()
	Resolve(gate, int64(1), nil)
	dfWait(t, k)
	t.Logf("failure went down %d tasks in %v", n, time.Since(start))
	if ran.Load() != 0 {
		t.Errorf("%d tasks ran downstream of a failure", ran.Load())
	}
	if _, err := tasks[0].Outcome(); !errors.Is(err, boom) || tasks[0].State() != Failed {
		t.Fatalf("head: %v, %v", tasks[0].State(), err)
	}
	for _, i := range []int{1, n / 2, n - 1} {
		_, err := tasks[i].Outcome()
		var de *failure.DependencyError
		if !errors.As(err, &de) || tasks[i].State() != DepFail {
			t.Fatalf("task %d: %v (%T), state %v; want a DependencyError", i, err, err, tasks[i].State())
		}
		if len(de.Failed) != 1 || de.Failed[0].TaskID != tasks[i-1].ID() {
			t.Errorf("task %d: Failed = %+v, want its direct dependency %d", i, de.Failed, tasks[i-1].ID())
		}
		if !errors.Is(err, boom) {
			t.Errorf("task %d: the root cause is not reachable with errors.Is", i)
		}
		var ae *failure.AppError
		if !errors.As(err, &ae) || ae.TaskID != tasks[0].ID() {
			t.Errorf("task %d: no AppError of the head task in %v", i, err)
		}
		if len(err.Error()) > 1000 {
			t.Errorf("task %d: error message grows with the chain (%d bytes)", i, len(err.Error()))
		}
	}
	c := dfCheckCounts(t, k, n)
	if c[Failed] != 1 || c[DepFail] != n-1 {
		t.Errorf("Counts() = %v; want 1 failed, %d dep_fail", c, n-1)
	}
}

// TestSubmitAfterFailedDeps submits tasks whose inputs have already failed;
// they must settle inside Submit, even in a long chain.
func TestSubmitAfterFailedDeps(t *testing.T) {
	const n = 50_000
	k := dfNew(t)
	p := new(Task)
	NewPromise(p)
	Resolve(p, nil, errors.New("upstream"))
	link := dfApp("test.dataflow.link2", func(_ context.Context, args []any) (any, error) { return args[0], nil })
	prev := p
	for range n {
		tk := new(Task)
		k.Submit(tk, link, []Source{prev}, nil)
		if !tk.IsDone() || tk.State() != DepFail {
			t.Fatalf("task on a failed input: done %v, state %v", tk.IsDone(), tk.State())
		}
		prev = tk
	}
	dfCheckCounts(t, k, n)
}

// TestCloseCancelsBlockedTasks closes a DFK whose tasks wait forever on an
// unresolved promise or run until cancelled; Close must give up at its
// deadline and fail every one of them with ErrDFKClosed.
func TestCloseCancelsBlockedTasks(t *testing.T) {
	k := dfNew(t)
	p := new(Task)
	NewPromise(p)
	var started sync.WaitGroup
	blocker := dfApp("test.dataflow.blocker", func(ctx context.Context, args []any) (any, error) {
		started.Done()
		<-ctx.Done()
		return nil, ctx.Err()
	})
	noop := dfApp("test.dataflow.noop", func(_ context.Context, args []any) (any, error) { return int64(len(args)), nil })

	done := new(Task)
	k.Submit(done, noop, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), dfTimeout)
	defer cancel()
	if err := done.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	var blocked []*Task
	for i := range 50 {
		tk := new(Task)
		srcs := []Source{p}
		if i%2 == 0 {
			srcs = append(srcs, done, dfVal{i})
		}
		k.Submit(tk, noop, srcs, nil)
		blocked = append(blocked, tk)
	}
	for i := range 50 { // second level
		tk := new(Task)
		k.Submit(tk, noop, []Source{blocked[i], blocked[(i+1)%50]}, nil)
		blocked = append(blocked, tk)
	}
	g := new(Task)
	NewGather(g, []Source{blocked[0], p}, func(v []any) any { return v })
	tk := new(Task)
	k.Submit(tk, noop, []Source{g}, nil)
	blocked = append(blocked, tk)
	started.Add(2)
	for range 2 {
		tk := new(Task)
		k.Submit(tk, blocker, nil, nil)
		blocked = append(blocked, tk)
	}
	started.Wait()

	closeCtx, cancelClose := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelClose()
	errc := make(chan error, 1)
	go func() { errc <- k.Close(closeCtx) }()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(dfTimeout):
		t.Fatal("Close did not return")
	}
	for i, tk := range blocked {
		if !tk.IsDone() {
			t.Errorf("task %d (%d) not done after Close", i, tk.ID())
			continue
		}
		if _, err := tk.Outcome(); !errors.Is(err, failure.ErrDFKClosed) {
			t.Errorf("task %d (%d, state %v): error %v, want ErrDFKClosed", i, tk.ID(), tk.State(), err)
		}
	}
	if res, err := done.Outcome(); err != nil || res != int64(0) {
		t.Errorf("task completed before Close lost its result: %v, %v", res, err)
	}
	total := int64(len(blocked) + 1)
	c := dfCheckCounts(t, k, total)

	// Resolving the promise now changes nothing.
	if !Resolve(p, int64(1), nil) {
		t.Error("Resolve of the promise returned false")
	}
	time.Sleep(10 * time.Millisecond)
	if c2 := dfCheckCounts(t, k, total); fmt.Sprint(c2) != fmt.Sprint(c) {
		t.Errorf("Counts changed after resolving the promise: %v then %v", c, c2)
	}
	for i, tk := range blocked {
		if _, err := tk.Outcome(); !errors.Is(err, failure.ErrDFKClosed) {
			t.Errorf("task %d changed outcome after Close: %v", i, err)
		}
		if !tk.State().Final() {
			t.Errorf("task %d has state %v after Close", i, tk.State())
		}
	}

	// Submitting after Close fails at once.
	late := new(Task)
	k.Submit(late, noop, nil, nil)
	if _, err := late.Outcome(); !late.IsDone() || !errors.Is(err, failure.ErrDFKClosed) {
		t.Errorf("submit after Close: done %v, err %v", late.IsDone(), err)
	}
	// A second Close returns the first result.
	if err := k.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWaitReturnsWhenIdle(t *testing.T) {
	k := dfNew(t)
	ctx, cancel := context.WithTimeout(context.Background(), dfTimeout)
	defer cancel()
	if err := k.Wait(ctx); err != nil {
		t.Fatalf("Wait on an idle DFK: %v", err)
	}
	noop := dfApp("test.dataflow.noop2", func(_ context.Context, args []any) (any, error) { return int64(1), nil })
	for round := range 3 {
		p := new(Task)
		NewPromise(p)
		var ts []*Task
		for range 20 {
			tk := new(Task)
			k.Submit(tk, noop, []Source{p}, nil)
			ts = append(ts, tk)
		}
		waited := make(chan error, 1)
		go func() { waited <- k.Wait(ctx) }()
		// Wait cannot return while tasks are outstanding.
		select {
		case err := <-waited:
			t.Fatalf("round %d: Wait returned %v with %d tasks outstanding", round, err, k.Outstanding())
		case <-time.After(20 * time.Millisecond):
		}
		// A Wait whose context ends returns its error.
		short, cancelShort := context.WithCancel(context.Background())
		cancelShort()
		if err := k.Wait(short); !errors.Is(err, context.Canceled) {
			t.Errorf("Wait with a cancelled context = %v", err)
		}
		Resolve(p, int64(round), nil)
		select {
		case err := <-waited:
			if err != nil {
				t.Fatalf("round %d: Wait = %v", round, err)
			}
		case <-time.After(dfTimeout):
			t.Fatalf("round %d: Wait did not return when outstanding reached 0", round)
		}
		for _, tk := range ts {
			if !tk.IsDone() {
				t.Fatal("Wait returned before a task completed")
			}
		}
		if k.Outstanding() != 0 {
			t.Errorf("Outstanding() = %d after Wait", k.Outstanding())
		}
	}
	dfCheckCounts(t, k, 60)
}

// TestManyWaiters runs several Waits at once while tasks complete.
func TestManyWaiters(t *testing.T) {
	k := dfNew(t)
	slow := dfApp("test.dataflow.slow", func(_ context.Context, args []any) (any, error) {
		time.Sleep(time.Millisecond)
		return int64(0), nil
	})
	for range 200 {
		k.Submit(new(Task), slow, nil, nil)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dfWait(t, k)
		}()
	}
	wg.Wait()
	dfCheckCounts(t, k, 200)
}

// goExec is a minimal executor: each task runs on its own goroutine and
// reports from there, so Done arrives on arbitrary goroutines.
type goExec struct {
	label string
	wg    sync.WaitGroup
}

func (e *goExec) Label() string                             { return e.label }
func (e *goExec) Start(context.Context, executor.Env) error { return nil }
func (e *goExec) Submit(t *executor.Task) error {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		res, err := t.App.Invoke(context.Background(), t.Args)
		t.Done(res, err)
	}()
	return nil
}
func (e *goExec) Shutdown(context.Context) error { e.wg.Wait(); return nil }

// TestRetriesAndCountsWithCustomExecutor mixes retries, failures and
// successes on a goroutine-per-task executor and checks the counters.
func TestRetriesAndCountsWithCustomExecutor(t *testing.T) {
	ex := &goExec{label: "go"}
	k, err := New(context.Background(), Config{RunDir: t.TempDir(), Executors: []executor.Executor{ex}, Retries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(context.Background())
	const n = 600
	tries := make([]atomic.Int32, n)
	app := dfApp("test.dataflow.flaky", func(_ context.Context, args []any) (any, error) {
		id := args[0].(int)
		try := tries[id].Add(1)
		switch id % 3 {
		case 0:
			return int64(id), nil
		case 1: // succeeds on the second try
			if try == 1 {
				return nil, errors.New("transient")
			}
			return int64(id), nil
		default: // always fails: 3 tries
			return nil, errors.New("permanent")
		}
	})
	ts := make([]*Task, n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := w; id < n; id += 4 {
				ts[id] = new(Task)
				k.Submit(ts[id], app, []Source{dfVal{id}}, nil)
			}
		}()
	}
	wg.Wait()
	dfWait(t, k)
	for id, tk := range ts {
		res, err := tk.Outcome()
		switch id % 3 {
		case 0, 1:
			if err != nil || res != int64(id) {
				t.Errorf("task %d: %v, %v", id, res, err)
			}
		default:
			var re *failure.RetryError
			if !errors.As(err, &re) || len(re.Attempts) != 3 || tries[id].Load() != 3 {
				t.Errorf("task %d: %v after %d tries; want a RetryError of 3 attempts", id, err, tries[id].Load())
			}
		}
	}
	c := dfCheckCounts(t, k, n)
	if c[ExecDone] != 2*n/3 || c[Failed] != n/3 {
		t.Errorf("Counts() = %v", c)
	}
}
