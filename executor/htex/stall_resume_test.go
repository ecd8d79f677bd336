package htex_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/provider/local"
)

// mark records in dir that task id started in this process, waits ms
// (or until cancelled) and records that it ended: the side effects a
// stalled pool must not repeat once its tasks were given to another.
// It is run through the executor by name (htextest.mark).
var _ = parsl.Register3("htextest.stallmark", func(ctx context.Context, dir string, id, ms int) (int, error) {
	pid := os.Getpid()
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("start-%d-%d", id, pid)), nil, 0o644); err != nil {
		return 0, err
	}
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("end-%d-%d", id, pid)), nil, 0o644); err != nil {
		return 0, err
	}
	return id, nil
})

// holdingProvider is a local provider whose Cancel of held jobs fails
// until release: a batch system that cannot kill a job, so that a stopped
// pool can be resumed after its manager was dropped and its lost tries
// were retried elsewhere (the executor retries a lost try only once its
// block's Cancel has returned, and reports a failed Cancel with it).
type holdingProvider struct {
	*local.Provider
	mu      sync.Mutex
	held    map[string]bool
	release chan struct{}
	asked   chan string
}

func (p *holdingProvider) Cancel(ctx context.Context, ids []string) error {
	p.mu.Lock()
	hold := false
	for _, id := range ids {
		hold = hold || p.held[id]
	}
	p.mu.Unlock()
	if hold {
		for _, id := range ids {
			select {
			case p.asked <- id:
			default:
			}
		}
		select {
		case <-p.release:
		default:
			return errors.New("holdingProvider: the scheduler could not cancel the job")
		}
	}
	return p.Provider.Cancel(ctx, ids)
}

// TestResumedPoolCannotDeliverOrRun: a stopped pool whose manager was
// dropped, and whose block's cancel failed, is resumed (SIGCONT) after
// its tasks were given to the replacement block. It must deliver none of
// its late results, start none of the tasks it still held, and exit.
func TestResumedPoolCannotDeliverOrRun(t *testing.T) {
	hp := &holdingProvider{Provider: local.New(local.Options{}), held: map[string]bool{}, release: make(chan struct{}), asked: make(chan string, 4)}
	ex := htex.New(htex.Options{InitBlocks: 1, MaxBlocks: 1, MaxWorkersPerNode: 2, Prefetch: 6,
		HeartbeatPeriod: 100 * time.Millisecond, HeartbeatThreshold: time.Second, Provider: hp})
	startDirect(t, ex, nil)
	released := false
	releaseOnce := func() {
		if !released {
			released = true
			close(hp.release)
		}
	}
	t.Cleanup(releaseOnce) // before Shutdown's cancel, which runs later
	waitFor(t, 30*time.Second, "a pool connected", func() bool { return len(ex.Managers()) == 1 })
	job := ex.JobIDs()[0]
	pid := jobPid(t, job)
	hp.mu.Lock()
	hp.held[job] = true
	hp.mu.Unlock()
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	dir := t.TempDir()
	app := lookupApp(t, "htextest.stallmark")
	const n = 40
	s := newCountingSink(ex, n, func(id int64) any { return int(id) })
	opts := &executor.Options{}
	for i := range n {
		if err := ex.Submit(&executor.Task{ID: int64(i), App: app, Args: []any{dir, i, 300}, Opts: opts, Sink: s}); err != nil {
			t.Fatal(err)
		}
	}
	startsOf := func(pid int) map[string]bool {
		es, _ := os.ReadDir(dir)
		out := map[string]bool{}
		for _, e := range es {
			if strings.HasPrefix(e.Name(), "start-") && strings.HasSuffix(e.Name(), fmt.Sprintf("-%d", pid)) {
				out[e.Name()] = true
			}
		}
		return out
	}
	// Stop the pool while two tasks run and six wait in its queue.
	waitFor(t, 30*time.Second, "two tasks started and six queued in the pool", func() bool {
		ms := ex.Managers()
		return len(startsOf(pid)) >= 2 && len(ms) == 1 && ms[0].InFlight == 8
	})
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	before := startsOf(pid)
	select {
	case <-hp.asked:
	case <-time.After(20 * time.Second):
		t.Fatal("the stopped block was not cancelled")
	}
	// Its tasks now run on the replacement; resume the stopped pool.
	waitFor(t, 30*time.Second, "a replacement pool connected", func() bool { return len(ex.Managers()) == 1 })
	waitFor(t, 30*time.Second, "the stopped pool's tasks re-run", func() bool {
		for f := range before {
			id := strings.Split(f, "-")[1]
			es, _ := filepath.Glob(filepath.Join(dir, "start-"+id+"-*"))
			if len(es) < 2 {
				return false
			}
		}
		return true
	})
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.allDone:
	case <-time.After(60 * time.Second):
		t.Fatal("workload not done")
	}
	// The resumed pool exits by itself (it lost its connection).
	waitFor(t, 10*time.Second, "the resumed pool exited", func() bool {
		st, err := hp.Status(context.Background(), []string{job})
		return err == nil && st[0].State.Terminal()
	})
	if after := startsOf(pid); len(after) != len(before) {
		t.Errorf("the resumed pool started tasks after its manager was dropped: before %v, after %v", before, after)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, c := range s.results {
		if c != 1 {
			t.Errorf("task %d delivered %d times", id, c)
		}
	}
	if len(s.errs) > 0 {
		t.Errorf("errors: %v", s.errs)
	}
	if s.lostTries == 0 {
		t.Errorf("no try was lost with the stopped pool")
	}
	releaseOnce()
}
