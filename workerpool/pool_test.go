package workerpool_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/internal/registry"
	"github.com/parsl-go/parsl/internal/wire"
	"github.com/parsl-go/parsl/workerpool"
)

func TestMain(m *testing.M) {
	// The process test re-executes this binary as a pool.
	if os.Getenv("PARSL_ROLE") == "pool" {
		os.Exit(workerpool.Main())
	}
	goleak.VerifyTestMain(m)
}

func goApp(name string, params []registry.Param, result registry.Param, f func(ctx context.Context, args []any) (any, error)) *registry.App {
	return registry.Register(&registry.App{Name: name, Version: "1", Kind: registry.Go, Params: params, Result: result, Invoke: f})
}

var (
	_ = goApp("test.pool.noop", nil, registry.ParamOf[int](),
		func(context.Context, []any) (any, error) { return 0, nil })
	_ = goApp("test.pool.big", []registry.Param{registry.ParamOf[int]()}, registry.ParamOf[[]byte](),
		func(_ context.Context, a []any) (any, error) { return make([]byte, a[0].(int)), nil })
	_ = goApp("test.pool.add", []registry.Param{registry.ParamOf[int](), registry.ParamOf[int]()}, registry.ParamOf[int](),
		func(_ context.Context, a []any) (any, error) { return a[0].(int) + a[1].(int), nil })
	_ = goApp("test.pool.fail", []registry.Param{registry.ParamOf[string]()}, registry.ParamOf[int](),
		func(_ context.Context, a []any) (any, error) { return nil, errors.New(a[0].(string)) })
	_ = goApp("test.pool.panic", nil, registry.ParamOf[int](),
		func(context.Context, []any) (any, error) { panic("boom") })
	_ = goApp("test.pool.chan", nil, registry.ParamOf[any](),
		func(context.Context, []any) (any, error) { return make(chan int), nil })
	// sleepy ignores its context, like an app stuck in a computation.
	_ = goApp("test.pool.sleepy", []registry.Param{registry.ParamOf[int]()}, registry.ParamOf[int](),
		func(_ context.Context, a []any) (any, error) {
			time.Sleep(time.Duration(a[0].(int)) * time.Millisecond)
			return 1, nil
		})
	_ = goApp("test.pool.whoami", nil, registry.ParamOf[string](),
		func(ctx context.Context, _ []any) (any, error) {
			w, ok := workerpool.WorkerFromContext(ctx)
			if !ok {
				return nil, errors.New("no worker in context")
			}
			return fmt.Sprintf("%d/%d %s %s %s", w.Rank, w.Count, w.Accelerator, w.BlockID, w.PoolID), nil
		})
	_ = goApp("test.pool.block", nil, registry.ParamOf[int](),
		func(ctx context.Context, _ []any) (any, error) { <-ctx.Done(); return nil, ctx.Err() })
)

func TestManyTasksBatched(t *testing.T) {
	f := startPool(t, 4, nil)
	if f.Hello.Workers != 4 || f.Hello.BlockID != "7" || f.Hello.Manager == "" || f.Hello.Digest != registry.Digest() {
		t.Errorf("hello: %+v", f.Hello)
	}
	const n, batch = 20000, 1000
	sent := make(chan struct{})
	defer func() { <-sent }() // before the cleanup's TShutdown uses f.w
	go func() {
		defer close(sent)
		// Sent from another goroutine so that the pool's results do not
		// wait behind our writes.
		for i := 0; i < n; i += batch {
			ts := make([]wire.Task, batch)
			for j := range ts {
				id := int64(i + j)
				ts[j] = wire.Task{ID: id, Try: 1, App: "test.pool.add", Args: argsOf(int(id), 1)}
			}
			_ = wire.WriteFrame(f.w, wire.TTasks, wire.Tasks{Tasks: ts})
		}
		_ = f.w.Flush()
	}()
	got, frames := f.results(n, 20*time.Second)
	for id, r := range got {
		if v := decode[int](t, r); v != int(id)+1 || r.Try != 1 {
			t.Fatalf("task %d: result %d try %d", id, v, r.Try)
		}
	}
	if frames >= n/10 {
		t.Errorf("%d results came in %d frames; want them batched", n, frames)
	}
	t.Logf("%d results in %d frames", n, frames)
}

func argsOf(a, b int) []codec.RawMessage {
	x, _ := codec.Marshal(a)
	y, _ := codec.Marshal(b)
	return []codec.RawMessage{x, y}
}

// TestLargeBatchSplit: results of many big tasks go out in frames below
// the interchange's limit.
func TestLargeBatchSplit(t *testing.T) {
	f := startPool(t, 2, nil)
	var ts []wire.Task
	for i := range 40 {
		ts = append(ts, wire.Task{ID: int64(i), App: "test.pool.big", Args: []codec.RawMessage{raw(t, 200<<10)}})
	}
	f.sendTasks(ts...)
	deadline := time.Now().Add(10 * time.Second)
	for got := 0; got < len(ts); {
		typ, p, err := f.next(time.Until(deadline))
		if err != nil {
			t.Fatal(err)
		}
		if typ != wire.TResults {
			continue
		}
		if len(p) > 2<<20 {
			t.Errorf("results frame of %d bytes", len(p))
		}
		var rs wire.Results
		if err := wire.Decode(typ, p, &rs); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs.Results {
			if len(decode[[]byte](t, r)) != 200<<10 {
				t.Fatalf("task %d: wrong result", r.ID)
			}
		}
		got += len(rs.Results)
	}
}

func TestGoAppErrors(t *testing.T) {
	f := startPool(t, 2, func(c *wire.PoolConfig) { c.MaxFrame = 4096 })

	e := wantErr(t, f.result1(wire.Task{ID: 1, App: "test.pool.fail", Args: []codec.RawMessage{raw(t, "disk full")}}), wire.ErrApp)
	if e.Message != "disk full" || e.Type != "*errors.errorString" || e.Panicked {
		t.Errorf("app error: %+v", *e)
	}

	e = wantErr(t, f.result1(wire.Task{ID: 2, App: "test.pool.panic"}), wire.ErrApp)
	if !e.Panicked || e.Message != "boom" || !strings.Contains(e.Stack, "goroutine") {
		t.Errorf("panic: %+v", *e)
	}

	e = wantErr(t, f.result1(wire.Task{ID: 3, App: "test.pool.nosuch"}), wire.ErrUnknownApp)
	if !strings.Contains(e.Message, `"test.pool.nosuch"`) || !strings.Contains(e.Message, "not registered in this pool's binary") {
		t.Errorf("unknown app: %+v", *e)
	}

	e = wantErr(t, f.result1(wire.Task{ID: 4, App: "test.pool.add", Args: []codec.RawMessage{raw(t, 1), raw(t, "two")}}), wire.ErrSerialization)
	if e.Arg != 2 {
		t.Errorf("bad argument: %+v", *e)
	}

	e = wantErr(t, f.result1(wire.Task{ID: 5, App: "test.pool.add", Args: []codec.RawMessage{raw(t, 1)}}), wire.ErrSerialization)
	if e.Arg != 2 || !strings.Contains(e.Message, "1 arguments, the app takes 2") {
		t.Errorf("missing argument: %+v", *e)
	}

	e = wantErr(t, f.result1(wire.Task{ID: 6, App: "test.pool.chan"}), wire.ErrSerialization)
	if e.Arg != 0 {
		t.Errorf("unencodable result: %+v", *e)
	}

	start := time.Now()
	wantErr(t, f.result1(wire.Task{ID: 7, App: "test.pool.sleepy", Args: []codec.RawMessage{raw(t, 1000)}, Walltime: 100 * time.Millisecond}), wire.ErrWalltime)
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Errorf("walltime error after %s; want it at the deadline although the app ignores its context", d)
	}

	if v := decode[int](t, f.result1(wire.Task{ID: 8, App: "test.pool.sleepy", Args: []codec.RawMessage{raw(t, 1)}, Walltime: 5 * time.Second})); v != 1 {
		t.Errorf("sleepy within walltime: %d", v)
	}

	e = wantErr(t, f.result1(wire.Task{ID: 10, App: "test.pool.big", Args: []codec.RawMessage{raw(t, 5000)}}), wire.ErrSerialization)
	if e.Arg != 0 || !strings.Contains(e.Message, "frame limit") {
		t.Errorf("oversized result: %+v", *e)
	}

	out := filepath.Join(t.TempDir(), "missing")
	e = wantErr(t, f.result1(wire.Task{ID: 9, App: "test.pool.add", Args: argsOf(1, 2), Outputs: []string{out}}), wire.ErrMissingOutputs)
	if len(e.Paths) != 1 || e.Paths[0] != out {
		t.Errorf("missing outputs: %+v", *e)
	}
}

func TestBashTasks(t *testing.T) {
	f := startPool(t, 2, nil)
	dir := t.TempDir()

	if r := f.result1(wire.Task{ID: 1, App: "b", Command: "true"}); r.Err != nil {
		t.Fatalf("true: %+v", *r.Err)
	}

	e := wantErr(t, f.result1(wire.Task{ID: 2, App: "b", Command: "exit 3"}), wire.ErrBashExit)
	if e.ExitCode != 3 {
		t.Errorf("exit code: %+v", *e)
	}

	so, se := filepath.Join(dir, "sub", "out.txt"), filepath.Join(dir, "err.txt")
	if r := f.result1(wire.Task{ID: 3, App: "b", Command: "echo hello; echo oops >&2", Stdout: so, Stderr: se}); r.Err != nil {
		t.Fatalf("std files: %+v", *r.Err)
	}
	if b, _ := os.ReadFile(so); string(b) != "hello\n" {
		t.Errorf("stdout file: %q", b)
	}
	if b, _ := os.ReadFile(se); !strings.HasSuffix(string(b), "oops\n") {
		t.Errorf("stderr file: %q", b)
	}

	start := time.Now()
	wantErr(t, f.result1(wire.Task{ID: 4, App: "b", Command: "sleep 30", Walltime: 200 * time.Millisecond}), wire.ErrWalltime)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("walltime kill took %s", d)
	}

	made, missing := filepath.Join(dir, "made"), filepath.Join(dir, "never")
	if r := f.result1(wire.Task{ID: 5, App: "b", Command: "touch " + made, Outputs: []string{made}}); r.Err != nil {
		t.Errorf("outputs made: %+v", *r.Err)
	}
	e = wantErr(t, f.result1(wire.Task{ID: 6, App: "b", Command: "true", Outputs: []string{made, missing}}), wire.ErrMissingOutputs)
	if len(e.Paths) != 1 || e.Paths[0] != missing {
		t.Errorf("missing outputs: %+v", *e)
	}
}

func TestWorkerEnvAndAccelerators(t *testing.T) {
	f := startPool(t, 8, func(c *wire.PoolConfig) { c.Accelerators = []string{"gpu0", "gpu1"} })
	if f.Hello.Workers != 2 {
		t.Fatalf("8 workers with 2 accelerators: hello says %d workers, want 2", f.Hello.Workers)
	}
	dir := t.TempDir()
	var ts []wire.Task
	for i := range 2 {
		// The sleep keeps the first worker busy so the second takes the
		// other task.
		ts = append(ts, wire.Task{ID: int64(i), App: "b", Stdout: filepath.Join(dir, fmt.Sprint(i)),
			Command: `echo $PARSL_WORKER_RANK $PARSL_WORKER_COUNT $PARSL_WORKER_POOL_ID $PARSL_WORKER_BLOCK_ID $CUDA_VISIBLE_DEVICES $ROCR_VISIBLE_DEVICES $ZE_AFFINITY_MASK; sleep 0.3`})
	}
	f.sendTasks(ts...)
	f.results(2, 10*time.Second)
	var lines []string
	for i := range 2 {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSpace(string(b)))
	}
	sort.Strings(lines)
	m := f.Hello.Manager
	want := []string{"0 2 " + m + " 7 gpu0 gpu0 gpu0", "1 2 " + m + " 7 gpu1 gpu1 gpu1"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("per-task environment:\n got %q\nwant %q", lines, want)
	}

	// Resources asked for reach the command as PARSL_<KEY>.
	res := filepath.Join(dir, "res")
	f.result1(wire.Task{ID: 5, App: "b", Stdout: res, Resources: executor.ResourceSpec{Cores: 2, GPUs: 1},
		Command: `echo "$PARSL_CORES $PARSL_GPUS $PARSL_MEMORY_MB"`})
	if b, _ := os.ReadFile(res); string(b) != "2 1 \n" {
		t.Errorf("resource environment: %q", b)
	}

	// Go apps get the same through their context.
	var who []string
	for i := range 2 {
		f.sendTasks(wire.Task{ID: int64(10 + i), App: "test.pool.whoami"}, wire.Task{ID: int64(20 + i), App: "b", Command: "sleep 0.2"})
		rs, _ := f.results(2, 10*time.Second)
		who = append(who, decode[string](t, rs[int64(10+i)]))
	}
	for _, w := range who {
		if !strings.HasSuffix(w, " 7 "+m) || !(strings.HasPrefix(w, "0/2 gpu0") || strings.HasPrefix(w, "1/2 gpu1")) {
			t.Errorf("WorkerFromContext: %q", w)
		}
	}
	if _, ok := workerpool.WorkerFromContext(context.Background()); ok {
		t.Error("WorkerFromContext outside a pool reports a worker")
	}
}

func TestHeartbeats(t *testing.T) {
	f := startPool(t, 1, nil)
	deadline := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, _, err := f.next(time.Until(deadline)); err != nil {
			break
		}
	}
	if f.Heartbeats < 4 {
		t.Errorf("%d heartbeats in 400ms with a 50ms period", f.Heartbeats)
	}
}

func TestSilentInterchange(t *testing.T) {
	f := newFake(t, fakeOpts{})
	cfg := f.config(1)
	cfg.HeartbeatThreshold = 300 * time.Millisecond
	s := serve(context.Background(), cfg, workerpool.Options{})
	f.mustAccept()
	f.sendTasks(wire.Task{ID: 1, App: "b", Command: "sleep 30"})
	start := time.Now()
	// Read (heartbeats) but never answer.
	err := s.wait(t, 5*time.Second)
	if !errors.Is(err, workerpool.ErrInterchangeLost) || workerpool.ExitCode(err) != workerpool.ExitLost {
		t.Fatalf("Serve: %v; want ErrInterchangeLost", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s to give up (threshold 300ms) and kill the running command", d)
	}
}

func TestInterchangeClosesConnection(t *testing.T) {
	f := newFake(t, fakeOpts{})
	s := serve(context.Background(), f.config(1), workerpool.Options{})
	f.mustAccept()
	f.conn.Close()
	if err := s.wait(t, 5*time.Second); !errors.Is(err, workerpool.ErrInterchangeLost) {
		t.Fatalf("Serve: %v; want ErrInterchangeLost", err)
	}
}

func TestDrainPeriod(t *testing.T) {
	f := newFake(t, fakeOpts{})
	cfg := f.config(2)
	cfg.DrainPeriod = 200 * time.Millisecond
	start := time.Now()
	s := serve(context.Background(), cfg, workerpool.Options{})
	f.mustAccept()
	f.sendTasks(wire.Task{ID: 1, App: "b", Command: "sleep 0.4"})
	f.waitFor(wire.TDrain, 5*time.Second)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("drained after %s, before the drain period", d)
	}
	// In-flight work still finishes and reports.
	if rs, _ := f.results(1, 5*time.Second); rs[1].Err != nil {
		t.Errorf("in-flight task: %+v", *rs[1].Err)
	}
	f.send(wire.TShutdown, nil)
	if err := s.wait(t, 5*time.Second); err != nil {
		t.Fatalf("Serve after drain and shutdown: %v", err)
	}
}

func TestIdleTimeoutDrains(t *testing.T) {
	f := newFake(t, fakeOpts{})
	cfg := f.config(1)
	cfg.IdleTimeout = 150 * time.Millisecond
	s := serve(context.Background(), cfg, workerpool.Options{})
	f.mustAccept()
	f.waitFor(wire.TDrain, 5*time.Second)
	f.conn.Close() // a drained pool takes a closed connection as the end
	if err := s.wait(t, 5*time.Second); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestDrainOnRequest(t *testing.T) {
	f := newFake(t, fakeOpts{})
	drain := make(chan struct{})
	s := serve(context.Background(), f.config(1), workerpool.Options{Drain: drain})
	f.mustAccept()
	f.sendTasks(wire.Task{ID: 1, App: "b", Command: "sleep 0.2"})
	time.Sleep(50 * time.Millisecond)
	close(drain)
	f.waitFor(wire.TDrain, 5*time.Second)
	if rs, _ := f.results(1, 5*time.Second); rs[1].Err != nil {
		t.Errorf("in-flight task: %+v", *rs[1].Err)
	}
	// No TShutdown: a pool drained by its operator leaves once idle.
	if err := s.wait(t, 5*time.Second); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestShutdownStopsRunningTasks(t *testing.T) {
	f := newFake(t, fakeOpts{})
	s := serve(context.Background(), f.config(2), workerpool.Options{})
	f.mustAccept()
	f.sendTasks(wire.Task{ID: 1, App: "b", Command: "sleep 30"}, wire.Task{ID: 2, App: "test.pool.block"})
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	f.send(wire.TShutdown, nil)
	if err := s.wait(t, 5*time.Second); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("shutdown took %s", d)
	}
}

func TestContextCancel(t *testing.T) {
	f := newFake(t, fakeOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	s := serve(ctx, f.config(1), workerpool.Options{})
	f.mustAccept()
	cancel()
	err := s.wait(t, 5*time.Second)
	if !errors.Is(err, context.Canceled) || workerpool.ExitCode(err) != workerpool.ExitOK {
		t.Fatalf("Serve: %v", err)
	}
}

func TestMalformedFrame(t *testing.T) {
	f := newFake(t, fakeOpts{})
	s := serve(context.Background(), f.config(1), workerpool.Options{})
	f.mustAccept()
	f.send(wire.TTasks, "not a task batch")
	err := s.wait(t, 5*time.Second)
	var fe *wire.FrameError
	if !errors.As(err, &fe) || workerpool.ExitCode(err) != workerpool.ExitError {
		t.Fatalf("Serve: %v; want a *wire.FrameError", err)
	}
}

func TestRefused(t *testing.T) {
	f := newFake(t, fakeOpts{})
	s := serve(context.Background(), f.config(1), workerpool.Options{})
	var re *wire.RefusedError
	if err := f.accept(wire.Expect{BuildID: "another-build"}); !errors.As(err, &re) {
		t.Fatalf("fake interchange: %v", err)
	}
	err := s.wait(t, 5*time.Second)
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "another-build") || workerpool.ExitCode(err) != workerpool.ExitRefused {
		t.Fatalf("Serve: %v; want *wire.RefusedError naming the build", err)
	}
}

func TestWrongServerSecret(t *testing.T) {
	f := newFake(t, fakeOpts{})
	cfg := f.config(1)
	f.secret = wire.Nonce() // the interchange knows another secret
	s := serve(context.Background(), cfg, workerpool.Options{})
	if err := f.accept(wire.Expect{}); err == nil {
		t.Fatal("interchange accepted a pool with another secret")
	}
	var re *wire.RefusedError
	if err := s.wait(t, 5*time.Second); !errors.As(err, &re) || !strings.Contains(re.Reason, "authentication") {
		t.Fatalf("Serve: %v", err)
	}
}

// TestImpostorInterchange: an interchange that passes the pool's hello on
// but cannot prove it knows the secret gets no service.
func TestImpostorInterchange(t *testing.T) {
	f := newFake(t, fakeOpts{})
	s := serve(context.Background(), f.config(1), workerpool.Options{})
	c, err := f.ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	f.conn = c
	f.r, f.w = bufio.NewReader(c), bufio.NewWriter(c)
	f.send(wire.TChallenge, wire.Challenge{Protocol: wire.ProtocolVersion, Nonce: wire.Nonce()})
	if typ, _, err := f.next(5 * time.Second); err != nil || typ != wire.THello {
		t.Fatalf("hello: %v %v", typ, err)
	}
	f.send(wire.TWelcome, wire.Welcome{MAC: []byte("forged")})
	err = s.wait(t, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "could not prove") || workerpool.ExitCode(err) != workerpool.ExitError {
		t.Fatalf("Serve: %v", err)
	}
}

func TestTLS(t *testing.T) {
	f := newFake(t, fakeOpts{tls: true})
	s := serve(context.Background(), f.config(2), workerpool.Options{})
	f.mustAccept()
	if v := decode[int](t, f.result1(wire.Task{ID: 1, App: "test.pool.add", Args: argsOf(40, 2)})); v != 42 {
		t.Errorf("over TLS: %d", v)
	}
	f.send(wire.TShutdown, nil)
	if err := s.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestTLSWrongName(t *testing.T) {
	f := newFake(t, fakeOpts{tls: true})
	cfg := f.config(1)
	cfg.ServerName = "someone-else"
	s := serve(context.Background(), cfg, workerpool.Options{})
	go func() {
		if c, err := f.ln.Accept(); err == nil {
			_ = c.(interface{ Handshake() error }).Handshake()
			c.Close()
		}
	}()
	if err := s.wait(t, 5*time.Second); err == nil || !strings.Contains(err.Error(), "TLS handshake") {
		t.Fatalf("Serve: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	f := newFake(t, fakeOpts{})
	cfg := f.config(1)
	f.ln.Close()
	cfg.HeartbeatThreshold = 300 * time.Millisecond
	start := time.Now()
	err := workerpool.Serve(context.Background(), cfg, workerpool.Options{})
	var ce *workerpool.ConnectError
	if !errors.As(err, &ce) || workerpool.ExitCode(err) != workerpool.ExitUnreachable {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("gave up after %s; threshold 300ms", d)
	}
}

// TestRefusedGivesUp: a pool started after its interchange exited (every
// address refuses) gives up after RefusedGiveUp, not after the heartbeat
// threshold (2 minutes by default).
func TestRefusedGivesUp(t *testing.T) {
	f := newFake(t, fakeOpts{})
	dead := newFake(t, fakeOpts{})
	cfg := f.config(1)
	cfg.Addresses = []string{f.ln.Addr().String(), dead.ln.Addr().String()}
	f.ln.Close()
	dead.ln.Close()
	cfg.HeartbeatThreshold = 2 * time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	err := workerpool.Serve(ctx, cfg, workerpool.Options{})
	var ce *workerpool.ConnectError
	if !errors.As(err, &ce) || !ce.Refused || workerpool.ExitCode(err) != workerpool.ExitUnreachable {
		t.Fatalf("Serve: %v, want a ConnectError with Refused", err)
	}
	t.Logf("gave up after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

func TestSecondAddressWorks(t *testing.T) {
	f := newFake(t, fakeOpts{})
	dead := newFake(t, fakeOpts{})
	cfg := f.config(1)
	cfg.Addresses = []string{dead.ln.Addr().String(), f.ln.Addr().String()}
	dead.ln.Close()
	s := serve(context.Background(), cfg, workerpool.Options{})
	f.mustAccept()
	f.send(wire.TShutdown, nil)
	if err := s.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestGenericPool(t *testing.T) {
	f := startPool(t, 1, func(c *wire.PoolConfig) { c.Generic = true })
	if !f.Hello.Generic || f.Hello.BuildID != "" {
		t.Errorf("hello of a generic pool: %+v", f.Hello)
	}
	e := wantErr(t, f.result1(wire.Task{ID: 1, App: "test.pool.add", Args: argsOf(1, 2)}), wire.ErrUnknownApp)
	if !strings.Contains(e.Message, "generic pool") || !strings.Contains(e.Message, "only bash") {
		t.Errorf("Go task on a generic pool: %+v", *e)
	}
	if r := f.result1(wire.Task{ID: 2, App: "b", Command: "exit 0"}); r.Err != nil {
		t.Errorf("bash on a generic pool: %+v", *r.Err)
	}
}

func TestServeLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := newFake(t, fakeOpts{tls: true})
	s := serve(context.Background(), f.config(3), workerpool.Options{})
	f.mustAccept()
	f.sendTasks(wire.Task{ID: 1, App: "test.pool.add", Args: argsOf(1, 2)},
		wire.Task{ID: 2, App: "b", Command: "true"},
		wire.Task{ID: 3, App: "test.pool.sleepy", Args: []codec.RawMessage{raw(t, 300)}, Walltime: 50 * time.Millisecond})
	f.results(3, 5*time.Second)
	f.send(wire.TShutdown, nil)
	if err := s.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	f.conn.Close()
}

// TestProcess runs a real pool process: this test binary, re-executed
// with PARSL_ROLE=pool, as a driver would start the program's binary.
func TestProcess(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("refuse=%v", refuse), func(t *testing.T) {
			f := newFake(t, fakeOpts{tls: true})
			cfg := f.config(2)
			cfg.LogDir = t.TempDir()
			cfgPath := filepath.Join(t.TempDir(), "pool.json")
			if err := wire.WritePoolConfig(cfgPath, cfg); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "PARSL_ROLE=pool", wire.PoolConfigEnv+"="+cfgPath, wire.BlockIDEnv+"=42")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			defer func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
					<-waited
				}
			}()
			expect := wire.Expect{}
			if refuse {
				expect.Digest = "another-registry"
			}
			err := f.accept(expect)
			if refuse {
				if err == nil {
					t.Fatal("fake interchange did not refuse")
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if f.Hello.BlockID != "42" || f.Hello.Digest != registry.Digest() {
					t.Errorf("hello: %+v", f.Hello)
				}
				if v := decode[int](t, f.result1(wire.Task{ID: 1, App: "test.pool.add", Args: argsOf(2, 3)})); v != 5 {
					t.Errorf("result %d", v)
				}
				f.send(wire.TShutdown, nil)
			}
			select {
			case <-waited:
			case <-time.After(10 * time.Second):
				t.Fatal("pool process did not exit")
			}
			code := cmd.ProcessState.ExitCode()
			if refuse {
				if code != workerpool.ExitRefused || !strings.Contains(stderr.String(), "registry digest") {
					t.Errorf("refused pool: exit code %d, stderr:\n%s", code, stderr.String())
				}
			} else if code != 0 {
				t.Errorf("exit code %d, stderr:\n%s", code, stderr.String())
			}
			logs, _ := filepath.Glob(filepath.Join(cfg.LogDir, "42", "*.log"))
			if len(logs) != 1 {
				t.Errorf("log files: %v", logs)
			}
		})
	}
}

// BenchmarkNoopTasks measures the pool side alone: no-op Go tasks from a
// fake interchange, in batches as the interchange sends them.
func BenchmarkNoopTasks(b *testing.B) { benchNoop(b, false) }

// BenchmarkNoopTasksMonitored is BenchmarkNoopTasks with resource
// monitoring on (default 5 s interval): the cost is the start and end
// samples of every task and their TMonitor frames.
func BenchmarkNoopTasksMonitored(b *testing.B) { benchNoop(b, true) }

func benchNoop(b *testing.B, monitor bool) {
	f := newFake(b, fakeOpts{})
	f.Welcome.Monitor = monitor
	cfg := f.config(2)
	cfg.Monitor, cfg.MonitorInterval = monitor, 5*time.Second
	s := serve(context.Background(), cfg, workerpool.Options{})
	if err := f.accept(wire.Expect{}); err != nil {
		b.Fatal(err)
	}
	const batch = 1024
	ts := make([]wire.Task, batch)
	for i := range ts {
		ts[i] = wire.Task{ID: int64(i), App: "test.pool.noop"}
	}
	payload, err := codec.Marshal(wire.Tasks{Tasks: ts})
	if err != nil {
		b.Fatal(err)
	}
	n := (b.N + batch - 1) / batch * batch
	b.ReportAllocs()
	b.ResetTimer()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; i < n; i += batch {
			_ = wire.WriteRaw(f.w, wire.TTasks, payload)
		}
		_ = f.w.Flush()
	}()
	got := 0
	for got < n {
		typ, p, err := wire.ReadFrame(f.r, 0)
		if err != nil {
			b.Fatal(err)
		}
		if typ == wire.TResults {
			var rs wire.Results
			if err := wire.Decode(typ, p, &rs); err != nil {
				b.Fatal(err)
			}
			got += len(rs.Results)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tasks/s")
	<-sent
	f.send(wire.TShutdown, nil)
	if err := s.wait(b, 10*time.Second); err != nil {
		b.Fatal(err)
	}
}

// TestProcessSIGTERM: a pool process drains on SIGTERM (TDrain, in-flight
// task finished and reported) and exits 0 without waiting for the
// interchange.
func TestProcessSIGTERM(t *testing.T) {
	f := newFake(t, fakeOpts{})
	cfgPath := filepath.Join(t.TempDir(), "pool.json")
	if err := wire.WritePoolConfig(cfgPath, f.config(1)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PARSL_ROLE=pool", wire.PoolConfigEnv+"="+cfgPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-waited
		}
	}()
	f.mustAccept()
	f.sendTasks(wire.Task{ID: 1, App: "b", Command: "sleep 0.3"})
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	f.waitFor(wire.TDrain, 5*time.Second)
	if rs, _ := f.results(1, 5*time.Second); rs[1].Err != nil {
		t.Errorf("in-flight task: %+v", *rs[1].Err)
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("pool process did not exit after draining")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(stderr.String(), "draining") {
		t.Errorf("exit code %d, stderr:\n%s", code, stderr.String())
	}
}
