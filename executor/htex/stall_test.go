package htex_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/internal/failure"
	"github.com/parsl-go/parsl/internal/registry"
	"github.com/parsl-go/parsl/monitoring/store"
	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/local"
)

// countingSink plays the kernel for tests that drive the executor
// directly: it retries a try lost with its manager (as Config.Retries
// does) and counts every outcome per task, so that a result delivered
// twice is seen rather than hidden by a future that resolves once.
type countingSink struct {
	ex   *htex.Executor
	want func(id int64) any

	mu        sync.Mutex
	results   map[int64]int // successful outcomes per task
	finals    map[int64]int // final outcomes (success or error) per task
	lostTries int
	lastAt    map[int64]time.Time // when each task's final outcome came
	errs      []error
	left      int
	allDone   chan struct{}
}

func newCountingSink(ex *htex.Executor, n int, want func(int64) any) *countingSink {
	return &countingSink{ex: ex, want: want, results: map[int64]int{}, finals: map[int64]int{}, lastAt: map[int64]time.Time{}, left: n, allDone: make(chan struct{})}
}

func (s *countingSink) TaskDone(t *executor.Task, res any, err error) {
	var ml *failure.ManagerLostError
	if errors.As(err, &ml) && t.Try < 5 {
		s.mu.Lock()
		s.lostTries++
		s.mu.Unlock()
		nt := *t
		nt.Try++
		if serr := s.ex.Submit(&nt); serr == nil {
			return
		} else {
			err = serr
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.results[t.ID]++
		if w := s.want(t.ID); res != w {
			s.errs = append(s.errs, fmt.Errorf("task %d = %v, want %v", t.ID, res, w))
		}
	} else if len(s.errs) < 10 {
		s.errs = append(s.errs, fmt.Errorf("task %d try %d: %w", t.ID, t.Try, err))
	}
	s.finals[t.ID]++
	s.lastAt[t.ID] = time.Now()
	if s.finals[t.ID] == 1 {
		s.left--
		if s.left == 0 {
			close(s.allDone)
		}
	}
}

func (s *countingSink) delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.results)
}

// blockRows is a Monitor that keeps the block rows.
type blockRows struct {
	mu   sync.Mutex
	rows []store.Block
}

func (m *blockRows) Block(_ context.Context, b store.Block) error {
	m.mu.Lock()
	m.rows = append(m.rows, b)
	m.mu.Unlock()
	return nil
}
func (m *blockRows) Node(context.Context, store.Node) error         { return nil }
func (m *blockRows) Resource(context.Context, store.Resource) error { return nil }

func (m *blockRows) states(id string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.rows {
		if r.BlockID == id {
			out = append(out, r.Status)
		}
	}
	return out
}

// startDirect starts ex as the kernel would, with a fast scaling loop and
// the test's log, and shuts it down at cleanup, checking that no pool
// process is left.
func startDirect(t *testing.T, ex *htex.Executor, mon htex.Monitor) {
	t.Helper()
	if mon != nil {
		ex.SetMonitor(mon)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "driver.log"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := ex.Start(ctxT(t, 20*time.Second), executor.Env{RunDir: t.TempDir(), Logger: log, StrategyPeriod: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = ex.Shutdown(ctx)
		assertNoPools(t, ex)
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("driver log (tail):\n%s", b)
		}
	})
}

func lookupApp(t *testing.T, name string) *registry.App {
	t.Helper()
	a, ok := registry.Lookup(name)
	if !ok {
		t.Fatalf("app %s not registered", name)
	}
	return a
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func gone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

func jobPid(t *testing.T, job string) int {
	t.Helper()
	pid, err := strconv.Atoi(job)
	if err != nil {
		t.Fatalf("job id %q is not a pid", job)
	}
	return pid
}

// TestStoppedPoolReplaced: the only pool of a one-block run is stopped
// (SIGSTOP) in the middle of 20,000 short tasks. The interchange drops its
// manager at the heartbeat threshold; the executor must then cancel the
// block through the provider (which kills the stopped process), record it
// as failed, and start a replacement, so that every task completes, each
// delivered exactly once.
func TestStoppedPoolReplaced(t *testing.T) {
	for _, mode := range []string{htex.InterchangeInProcess, htex.InterchangeProcess} {
		name := mode
		if name == "" {
			name = "in-process"
		}
		t.Run(name, func(t *testing.T) { testStoppedPoolReplaced(t, mode) })
	}
}

func testStoppedPoolReplaced(t *testing.T, mode string) {
	prov := local.New(local.Options{})
	ex := htex.New(htex.Options{InitBlocks: 1, MinBlocks: 0, MaxBlocks: 1, MaxWorkersPerNode: 2, Prefetch: 32, Interchange: mode,
		HeartbeatPeriod: 100 * time.Millisecond, HeartbeatThreshold: time.Second, Provider: prov, NoResourceMonitoring: true})
	mon := &blockRows{}
	startDirect(t, ex, mon)
	app := lookupApp(t, "htextest.double")
	const n = 20000
	// Besides the short tasks, one long one (ID n) that is surely running
	// when the pool is stopped, so that a try is lost however fast the
	// short ones go.
	const long = 4000
	s := newCountingSink(ex, n+1, func(id int64) any {
		if id == n {
			return long
		}
		return int(2 * id)
	})
	opts := &executor.Options{}
	if err := ex.Submit(&executor.Task{ID: n, App: lookupApp(t, "htextest.nap"), Args: []any{long}, Opts: opts, Sink: s}); err != nil {
		t.Fatal(err)
	}
	submit := func(from, to int) {
		for i := from; i < to; i++ {
			if err := ex.Submit(&executor.Task{ID: int64(i), App: app, Args: []any{i}, Opts: opts, Sink: s}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Half the tasks first, and the other half just before the stop, so
	// that the pool is stopped with its hands full however fast it is.
	submit(0, n/2)
	waitFor(t, 30*time.Second, "1,000 results before the stop", func() bool { return s.delivered() >= 1000 })
	submit(n/2, n)
	s.mu.Lock()
	longDone := s.finals[n] > 0
	s.mu.Unlock()
	if longDone {
		t.Fatalf("the %d ms task ended before the stop: the machine is too slow for this test", long)
	}
	jobs := ex.JobIDs()
	if len(jobs) != 1 {
		t.Fatalf("blocks %v, want one", jobs)
	}
	pid := jobPid(t, jobs[0])
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	atStop := s.delivered()
	select {
	case <-s.allDone:
	case <-time.After(60 * time.Second):
		s.mu.Lock()
		missing := n + 1 - len(s.finals)
		s.mu.Unlock()
		t.Fatalf("%d of %d tasks never finished within 60 s of the stop (%d delivered before it); blocks %v, managers %d",
			missing, n+1, atStop, ex.JobIDs(), len(ex.Managers()))
	}
	took := time.Since(stopped)
	s.mu.Lock()
	for id, c := range s.results {
		if c != 1 {
			t.Errorf("task %d delivered %d times", id, c)
		}
	}
	if len(s.errs) > 0 {
		t.Errorf("errors: %v", s.errs)
	}
	lost := s.lostTries
	var shortDone time.Time
	for id, at := range s.lastAt {
		if id != n && at.After(shortDone) {
			shortDone = at
		}
	}
	s.mu.Unlock()
	if lost == 0 {
		t.Errorf("no try was lost with the stopped pool; the test did not stop it mid-run")
	}
	waitFor(t, 10*time.Second, "the stopped pool process killed and reaped", func() bool { return gone(pid) })
	sts, err := prov.Status(context.Background(), jobs)
	if err != nil || sts[0].State != provider.Cancelled {
		t.Errorf("stopped block's job: %+v, %v; want it cancelled through the provider", sts, err)
	}
	all := ex.JobIDs()
	if len(all) < 2 {
		t.Fatalf("blocks %v: the stopped block was not replaced", all)
	}
	waitFor(t, 5*time.Second, "block 0 recorded FAILED", func() bool {
		st := mon.states("0")
		return len(st) > 0 && st[len(st)-1] == provider.Failed.String()
	})
	t.Logf("all %d short tasks done %s after the stop, the long one (rerun) %s after (%d delivered before the stop, %d tries lost); blocks %v, block 0 %v, block 1 %v",
		n, shortDone.Sub(stopped).Round(time.Millisecond), took.Round(time.Millisecond), atStop, lost, all, mon.states("0"), mon.states("1"))
}

// TestStoppedPoolOfFourReplaced: with four blocks, one stopped pool is
// dropped and its block replaced, so that four pools serve again; the
// workload completes with every result delivered once.
func TestStoppedPoolOfFourReplaced(t *testing.T) {
	prov := local.New(local.Options{})
	ex := htex.New(htex.Options{Blocks: 4, MaxWorkersPerNode: 1,
		HeartbeatPeriod: 100 * time.Millisecond, HeartbeatThreshold: time.Second, Provider: prov})
	startDirect(t, ex, nil)
	waitFor(t, 30*time.Second, "four pools connected", func() bool { return len(ex.Managers()) == 4 })
	app := lookupApp(t, "htextest.nap")
	const n = 400
	s := newCountingSink(ex, n, func(int64) any { return 20 })
	opts := &executor.Options{}
	for i := range n {
		if err := ex.Submit(&executor.Task{ID: int64(i), App: app, Args: []any{20}, Opts: opts, Sink: s}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "20 results before the stop", func() bool { return s.delivered() >= 20 })
	victim := ex.Managers()[0].BlockID
	var pid int
	jobs := ex.JobIDs()
	id, _ := strconv.Atoi(victim)
	pid = jobPid(t, jobs[id])
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	stopped := time.Now()
	waitFor(t, 5*time.Second, "the stopped pool dropped", func() bool {
		for _, m := range ex.Managers() {
			if m.BlockID == victim {
				return false
			}
		}
		return true
	})
	capacity := func() int {
		blocks := map[string]bool{}
		for _, m := range ex.Managers() {
			if m.BlockID != victim {
				blocks[m.BlockID] = true
			}
		}
		return len(blocks)
	}
	deadline := time.Now().Add(30 * time.Second)
	for capacity() != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("capacity %d blocks 30 s after block %s's pool was stopped, want 4; blocks %v", capacity(), victim, ex.JobIDs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(stopped)
	select {
	case <-s.allDone:
	case <-time.After(60 * time.Second):
		t.Fatalf("workload not done")
	}
	s.mu.Lock()
	for id, c := range s.results {
		if c != 1 {
			t.Errorf("task %d delivered %d times", id, c)
		}
	}
	if len(s.errs) > 0 {
		t.Errorf("errors: %v", s.errs)
	}
	s.mu.Unlock()
	waitFor(t, 10*time.Second, "the stopped pool process killed", func() bool { return gone(pid) })
	t.Logf("capacity back to 4 blocks %s after the stop; blocks %v", took.Round(time.Millisecond), ex.JobIDs())
}

// TestStoppedPoolStrategyNone: with strategy "none" nothing replaces a
// block, so when the only block's pool is lost the executor goes bad:
// the tasks it held fail with an ExecutorError that says why, instead of
// waiting for ever, and the stopped process is killed.
func TestStoppedPoolStrategyNone(t *testing.T) {
	dfk, ex := loadScaling(t, htex.Options{InitBlocks: 1, MaxBlocks: 1, MaxWorkersPerNode: 1, HeartbeatThreshold: time.Second},
		parsl.Config{Strategy: "none", StrategyPeriod: 100 * time.Millisecond, Retries: 2})
	fs := make([]*parsl.Future[int], 50)
	for i := range fs {
		fs[i] = nap.Submit(dfk, parsl.Val(50))
	}
	ctx := ctxT(t, 60*time.Second)
	if _, err := fs[0].Get(ctx); err != nil {
		t.Fatal(err)
	}
	pid := jobPid(t, ex.JobIDs()[0])
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	_, err := fs[len(fs)-1].Get(ctx)
	var be *htex.BadStateError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "its pools were lost") {
		t.Fatalf("last task: %v; want an ExecutorError wrapping a BadStateError saying the pools were lost", err)
	}
	waitFor(t, 10*time.Second, "the stopped pool process killed", func() bool { return gone(pid) })
	if n := len(ex.JobIDs()); n != 1 {
		t.Fatalf("%d blocks started with strategy none, want 1", n)
	}
	t.Logf("last task: %v", err)
}
