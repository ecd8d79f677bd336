package htex_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
)

func TestMain(m *testing.M) {
	parsl.Main()
	// Close must leave no goroutine of the executor or interchange behind.
	goleak.VerifyTestMain(m)
}

// Apps are registered at package level, so that the pools (this test
// binary started with PARSL_ROLE=pool) have them too.
var (
	double = parsl.Register1("htextest.double", func(ctx context.Context, x int) (int, error) { return 2 * x, nil })
	nap    = parsl.Register1("htextest.nap", func(ctx context.Context, ms int) (int, error) {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return ms, nil
	})
	boom = parsl.Register1("htextest.boom", func(ctx context.Context, s string) (int, error) { panic("boom: " + s) })
	echo = parsl.RegisterBash1("htextest.echo", func(ctx context.Context, s string) (string, error) {
		return "echo " + s, nil
	})
	fails = parsl.RegisterBash0("htextest.fails", func(ctx context.Context) (string, error) { return "exit 7", nil })
)

func fast(o htex.Options) htex.Options {
	if o.HeartbeatPeriod == 0 {
		o.HeartbeatPeriod = 200 * time.Millisecond
	}
	if o.HeartbeatThreshold == 0 {
		o.HeartbeatThreshold = 2 * time.Second
	}
	if o.MaxWorkersPerNode == 0 {
		o.MaxWorkersPerNode = 2
	}
	return o
}

func load(t *testing.T, o htex.Options, retries int) (*parsl.DFK, *htex.Executor) {
	t.Helper()
	ex := htex.New(fast(o))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dfk, err := parsl.Load(ctx, parsl.Config{Executors: []executor.Executor{ex}, RunDir: t.TempDir(), Retries: retries})
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

func assertNoPools(t *testing.T, ex *htex.Executor) {
	t.Helper()
	for _, id := range ex.JobIDs() {
		pid, err := strconv.Atoi(id)
		if err != nil {
			t.Errorf("job id %q is not a pid", id)
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pool process %d still exists after Close (kill 0: %v)", pid, err)
		}
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestManyTasksTwoPools(t *testing.T) {
	dfk, ex := load(t, htex.Options{Blocks: 2, Prefetch: 64}, 0)
	const n = 10000
	fs := make([]*parsl.Future[int], n)
	for i := range fs {
		fs[i] = double.Submit(dfk, parsl.Val(i))
	}
	ctx := ctxT(t, 30*time.Second)
	for i, f := range fs {
		v, err := f.Get(ctx)
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		if v != 2*i {
			t.Fatalf("task %d = %d, want %d", i, v, 2*i)
		}
	}
	if got := len(ex.JobIDs()); got != 2 {
		t.Fatalf("%d blocks started, want 2", got)
	}
}

func TestBashApps(t *testing.T) {
	t.Parallel()
	dfk, _ := load(t, htex.Options{}, 0)
	out := filepath.Join(t.TempDir(), "out.txt")
	ctx := ctxT(t, 20*time.Second)
	if _, err := echo.Submit(dfk, parsl.Val("hello htex"), parsl.Stdout(out)).Get(ctx); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if strings.TrimSpace(string(b)) != "hello htex" {
		t.Fatalf("stdout = %q", b)
	}
	_, err := fails.Submit(dfk).Get(ctx)
	var be *parsl.BashExitError
	if !errors.As(err, &be) || be.ExitCode != 7 {
		t.Fatalf("err = %v, want BashExitError with code 7", err)
	}
}

func TestPanicIsAppError(t *testing.T) {
	t.Parallel()
	dfk, _ := load(t, htex.Options{}, 0)
	_, err := boom.Submit(dfk, parsl.Val("x")).Get(ctxT(t, 20*time.Second))
	var ae *parsl.AppError
	if !errors.As(err, &ae) || !ae.Panicked || !strings.Contains(ae.Message, "boom: x") {
		t.Fatalf("err = %#v, want a panicked AppError", err)
	}
}

func TestWalltime(t *testing.T) {
	t.Parallel()
	dfk, _ := load(t, htex.Options{}, 0)
	start := time.Now()
	_, err := nap.Submit(dfk, parsl.Val(10000), parsl.Walltime(200*time.Millisecond)).Get(ctxT(t, 20*time.Second))
	var we *parsl.WalltimeError
	if !errors.As(err, &we) {
		t.Fatalf("err = %v, want WalltimeError", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("walltime took %s", d)
	}
}

// TestKilledPoolRetried kills one of two pools with SIGKILL while tasks run;
// with Retries the lost tasks go to the other pool and every task completes
// exactly once with its result.
func TestKilledPoolRetried(t *testing.T) {
	dfk, ex := load(t, htex.Options{Blocks: 2, Prefetch: 4}, 2)
	const n = 400
	fs := make([]*parsl.Future[int], n)
	for i := range fs {
		fs[i] = nap.Submit(dfk, parsl.Val(5+i%3))
	}
	ctx := ctxT(t, 30*time.Second)
	// Wait until both pools have work, then kill one.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms := ex.Managers()
		busy := 0
		for _, m := range ms {
			if m.InFlight > 0 {
				busy++
			}
		}
		if busy == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pools never both busy: %+v", ms)
		}
		time.Sleep(5 * time.Millisecond)
	}
	pid, _ := strconv.Atoi(ex.JobIDs()[0])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		v, err := f.Get(ctx)
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		if v != 5+i%3 {
			t.Fatalf("task %d = %d", i, v)
		}
	}
	for _, f := range fs {
		if f.State() != parsl.StateExecDone {
			t.Fatalf("task %d state %v", f.TaskID(), f.State())
		}
	}
}

func TestCloseWithTasksInFlight(t *testing.T) {
	ex := htex.New(fast(htex.Options{}))
	dfk, err := parsl.Load(ctxT(t, 20*time.Second), parsl.Config{Executors: []executor.Executor{ex}, RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var fs []*parsl.Future[int]
	for i := 0; i < 20; i++ {
		fs = append(fs, nap.Submit(dfk, parsl.Val(60000)))
	}
	for len(ex.Managers()) == 0 || ex.Managers()[0].InFlight == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = dfk.Close(ctx)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Close took %s", d)
	}
	for _, f := range fs {
		if _, err := f.Get(ctxT(t, time.Second)); err == nil {
			t.Fatal("a 60 s task succeeded after Close")
		}
	}
	assertNoPools(t, ex)
}

var (
	two = parsl.Register0("htextest.two", func(ctx context.Context) (int, error) { return 2, nil })
	mul = parsl.Register2("htextest.mul", func(ctx context.Context, a, b int) (int, error) { return a * b, nil })
)

// TestExampleStyleWorkflow is examples/diamond with Config.Executors set to
// htex and nothing else changed; plaintext TCP on the way.
func TestExampleStyleWorkflow(t *testing.T) {
	t.Parallel()
	off := false
	dfk, _ := load(t, htex.Options{Encrypted: &off}, 0)
	top := two.Submit(dfk)
	left := mul.Submit(dfk, top, parsl.Val(3))
	right := mul.Submit(dfk, top, parsl.Val(5))
	bottom := mul.Submit(dfk, left, right)
	v, err := bottom.Get(ctxT(t, 20*time.Second))
	if err != nil || v != 60 {
		t.Fatalf("diamond = %d, %v; want 60", v, err)
	}
}

func TestPriorityOnHtex(t *testing.T) {
	// One worker, no prefetch: tasks queue in the interchange, which hands
	// them out by priority.
	dfk, _ := load(t, htex.Options{MaxWorkersPerNode: 1}, 0)
	ctx := ctxT(t, 20*time.Second)
	gate := nap.Submit(dfk, parsl.Val(300)) // occupies the only worker
	var order []int
	done := make(chan int, 8)
	for _, p := range []int{0, 3, 1, 2} {
		p := p
		f := nap.Submit(dfk, parsl.Val(30), parsl.Priority(p))
		go func() { _, _ = f.Get(ctx); done <- p }()
	}
	if _, err := gate.Get(ctx); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		order = append(order, <-done)
	}
	if fmt.Sprint(order) != "[1 2 3 0]" {
		t.Fatalf("completion order by priority %v, want [1 2 3 0]", order)
	}
}

func TestBlockThatNeverJoinsFailsTasks(t *testing.T) {
	t.Parallel()
	dfk, _ := load(t, htex.Options{PoolCommand: []string{"/bin/sh", "-c", "echo cannot start the pool >&2; exit 9"}}, 0)
	_, err := double.Submit(dfk, parsl.Val(1)).Get(ctxT(t, 20*time.Second))
	var be *htex.BadStateError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "exit code 9") || !strings.Contains(err.Error(), "cannot start the pool") {
		t.Fatalf("err = %v, want a BadStateError with the exit code and stderr", err)
	}
}

var blob = parsl.Register1("htextest.blob", func(ctx context.Context, b []byte) (int, error) { return len(b), nil })

func TestTaskAboveMaxFrameFails(t *testing.T) {
	t.Parallel()
	dfk, _ := load(t, htex.Options{MaxFrame: 1 << 16}, 0)
	ctx := ctxT(t, 20*time.Second)
	_, err := blob.Submit(dfk, parsl.Val(make([]byte, 1<<17))).Get(ctx)
	var se *parsl.SerializationError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "MaxFrame") {
		t.Fatalf("err = %v, want a SerializationError naming MaxFrame", err)
	}
	if n, err := blob.Submit(dfk, parsl.Val(make([]byte, 1000))).Get(ctx); err != nil || n != 1000 {
		t.Fatalf("small task after a too-large one: %d, %v", n, err)
	}
}

// TestSilentPoolLostByHeartbeat stops one of two pools (SIGSTOP: its
// connection stays open but it says nothing). After the heartbeat
// threshold the interchange gives it up and its tasks, retried, finish on
// the other pool.
func TestSilentPoolLostByHeartbeat(t *testing.T) {
	dfk, ex := load(t, htex.Options{Blocks: 2, Prefetch: 2, HeartbeatPeriod: 100 * time.Millisecond, HeartbeatThreshold: 700 * time.Millisecond}, 1)
	if !strings.HasPrefix(ex.Addr(), "127.0.0.1:") {
		t.Fatalf("default address %s, want loopback", ex.Addr())
	}
	var fs []*parsl.Future[int]
	for i := 0; i < 40; i++ {
		fs = append(fs, nap.Submit(dfk, parsl.Val(20)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(ex.Managers()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("pools never connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	pid, _ := strconv.Atoi(ex.JobIDs()[0])
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	ctx := ctxT(t, 20*time.Second)
	for i, f := range fs {
		if v, err := f.Get(ctx); err != nil || v != 20 {
			t.Fatalf("task %d: %d, %v", i, v, err)
		}
	}
	if n := len(ex.Managers()); n != 1 {
		t.Fatalf("%d managers after one went silent, want 1", n)
	}
}

// TestDrainPeriod: a pool drains DrainPeriod after it starts; the
// interchange lets it finish its tasks, then tells it to exit.
func TestDrainPeriod(t *testing.T) {
	t.Parallel()
	// Strategy "none": nothing replaces the drained block (with the
	// default strategy a new task would get a new block).
	dfk, ex := loadScaling(t, htex.Options{DrainPeriod: 400 * time.Millisecond, MaxWorkersPerNode: 1}, parsl.Config{Strategy: "none"})
	ctx := ctxT(t, 20*time.Second)
	f := nap.Submit(dfk, parsl.Val(600)) // still running when the drain starts
	if v, err := f.Get(ctx); err != nil || v != 600 {
		t.Fatalf("task running across the drain: %d, %v", v, err)
	}
	pid, _ := strconv.Atoi(ex.JobIDs()[0])
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil || len(ex.Managers()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("drained pool %d did not exit (managers %+v)", pid, ex.Managers())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// With its only block gone, new tasks fail instead of waiting forever.
	_, err := double.Submit(dfk, parsl.Val(1)).Get(ctx)
	var be *htex.BadStateError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "every block has ended") {
		t.Fatalf("after the only block drained: %v, want a BadStateError", err)
	}
}
