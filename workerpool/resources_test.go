package workerpool_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/internal/wire"
	"github.com/parsl-go/parsl/workerpool"
)

// startMonitoredPool starts a pool whose configuration asks for
// monitoring, joined to a fake interchange that accepts it when accept is
// true.
func startMonitoredPool(t *testing.T, workers int, interval time.Duration, accept bool) *fakeIX {
	t.Helper()
	f := newFake(t, fakeOpts{})
	f.Welcome.Monitor = accept
	cfg := f.config(workers)
	cfg.Monitor, cfg.MonitorInterval = true, interval
	s := serve(context.Background(), cfg, workerpool.Options{})
	f.mustAccept()
	t.Cleanup(func() {
		f.send(wire.TShutdown, nil)
		if err := s.wait(t, 10*time.Second); err != nil {
			t.Errorf("Serve after TShutdown: %v", err)
		}
	})
	return f
}

// monitored is what a pool sent for some tasks: its monitoring messages,
// each task's samples, and the order of samples and results.
type monitored struct {
	nodes   []wire.NodeInfo
	samples map[int64][]wire.ResourceSample
	results map[int64]wire.Result
	// late counts samples of a task that arrived after its result.
	late int
}

// collect reads frames until results for all of ids have arrived.
func collect(t *testing.T, f *fakeIX, timeout time.Duration, ids ...int64) monitored {
	t.Helper()
	m := monitored{samples: map[int64][]wire.ResourceSample{}, results: map[int64]wire.Result{}}
	deadline := time.Now().Add(timeout)
	for len(m.results) < len(ids) {
		typ, p, err := f.next(time.Until(deadline))
		if err != nil {
			t.Fatalf("after %d of %d results: %v", len(m.results), len(ids), err)
		}
		switch typ {
		case wire.TResults:
			var rs wire.Results
			if err := wire.Decode(typ, p, &rs); err != nil {
				t.Fatal(err)
			}
			for _, r := range rs.Results {
				m.results[r.ID] = r
			}
		case wire.TMonitor:
			var mon wire.Monitor
			if err := wire.Decode(typ, p, &mon); err != nil {
				t.Fatal(err)
			}
			if mon.Node != nil {
				m.nodes = append(m.nodes, *mon.Node)
			}
			for _, s := range mon.Resources {
				if _, done := m.results[s.TaskID]; done {
					m.late++
				}
				m.samples[s.TaskID] = append(m.samples[s.TaskID], s)
			}
		}
	}
	return m
}

// TestResourceSamples runs a bash task with a process tree, a bash task
// that burns CPU and a Go task on a monitored pool with a 100 ms
// interval, and checks what the pool reports: its node once, samples of
// each task before its result, a bash task's own processes and the pool
// process for the Go task.
func TestResourceSamples(t *testing.T) {
	f := startMonitoredPool(t, 3, 100*time.Millisecond, true)
	f.sendTasks(
		wire.Task{ID: 1, Try: 2, App: "tree", Command: "sleep 0.7 & sleep 0.7; wait"},
		wire.Task{ID: 2, App: "burn", Command: "timeout 0.6 sh -c 'while :; do :; done'; true"},
		wire.Task{ID: 3, App: "test.pool.sleepy", Args: []codec.RawMessage{raw(t, 400)}},
	)
	m := collect(t, f, 20*time.Second, 1, 2, 3)
	for id, r := range m.results {
		if r.Err != nil {
			t.Fatalf("task %d failed: %+v", id, *r.Err)
		}
	}
	if len(m.nodes) != 1 {
		t.Fatalf("%d node descriptions, want 1", len(m.nodes))
	}
	if n := m.nodes[0]; n.CPUs <= 0 || n.MemoryBytes <= 0 || !strings.HasPrefix(n.Runtime, "go") {
		t.Errorf("node %+v", n)
	}
	if m.late > 0 {
		t.Errorf("%d samples arrived after their task's result", m.late)
	}
	self := os.Getpid() // the pool runs in this test process

	tree := m.samples[1]
	if len(tree) < 3 {
		t.Fatalf("%d samples of a 0.7 s bash task at a 100 ms interval, want at least 3: %+v", len(tree), tree)
	}
	maxProcs := 0
	for i, s := range tree {
		if s.Try != 2 || s.Pool || s.PID == self || s.PID <= 0 || s.RSS <= 0 || s.VMS <= 0 || s.Threads < 1 || s.Interval != 100*time.Millisecond {
			t.Errorf("bash sample %d: %+v", i, s)
		}
		if i > 0 && s.Time <= tree[i-1].Time {
			t.Errorf("samples out of order: %d then %d", tree[i-1].Time, s.Time)
		}
		maxProcs = max(maxProcs, s.Processes)
	}
	if maxProcs < 3 {
		t.Errorf("the tree had at most %d processes, want bash and two sleeps", maxProcs)
	}

	burn := m.samples[2]
	if len(burn) == 0 {
		t.Fatal("no samples of the CPU-bound bash task")
	}
	// Once a reading has seen the spinning shell (bash, timeout, sh),
	// the last reading must show CPU. On a loaded machine (the race
	// detector, other test binaries) every reading may fall before the
	// shell got going; then there is nothing to check.
	sawSpin := false
	for _, b := range burn {
		sawSpin = sawSpin || b.Processes >= 3
	}
	if last := burn[len(burn)-1]; !sawSpin {
		t.Logf("no reading saw the spinning shell (%d readings); not checking CPU", len(burn))
	} else if last.UserSeconds+last.SystemSeconds <= 0 {
		// Any CPU at all: how much a 0.6 s spin gets depends on how
		// loaded the machine is (0.04 s seen with other tests running).
		t.Errorf("last sample of a task that spun for 0.6 s shows %.2f s of CPU: %+v", last.UserSeconds+last.SystemSeconds, last)
	}

	goTask := m.samples[3]
	if len(goTask) < 2 {
		t.Fatalf("%d samples of a 400 ms Go task, want start, periodic and end", len(goTask))
	}
	for i, s := range goTask {
		if !s.Pool || s.PID != self || s.RSS <= 0 || s.Threads < 1 || s.Status == "" {
			t.Errorf("Go sample %d: %+v", i, s)
		}
	}
}

// TestResourceStartEnd: with interval 0 a Go task gets samples only at its
// start and end, a very short one none, and a bash task is still found and
// sampled.
func TestResourceStartEnd(t *testing.T) {
	f := startMonitoredPool(t, 2, 0, true)
	f.sendTasks(
		wire.Task{ID: 1, App: "sleep", Command: "sleep 0.5"},
		wire.Task{ID: 2, App: "test.pool.sleepy", Args: []codec.RawMessage{raw(t, 300)}},
	)
	m := collect(t, f, 20*time.Second, 1, 2)
	if n := len(m.samples[2]); n != 2 {
		t.Errorf("Go task of 300 ms: %d samples, want start and end", n)
	}
	if n := len(m.samples[1]); n < 1 || n > 2 {
		t.Errorf("bash task: %d samples, want 1 or 2", n)
	}
	for id, ss := range m.samples {
		for _, s := range ss {
			if s.Interval != 0 {
				t.Errorf("task %d: sample with interval %s", id, s.Interval)
			}
		}
	}

	// A no-op Go task has no samples: they would be the pool's, and cost
	// more than the task.
	f.sendTasks(wire.Task{ID: 3, App: "test.pool.noop"})
	m = collect(t, f, 10*time.Second, 3)
	if n := len(m.samples[3]); n != 0 {
		t.Errorf("no-op Go task: %d samples, want none", n)
	}
}

// TestResourcesNeedWelcome: a pool configured for monitoring sends nothing
// of it to an interchange that did not say it accepts it (an older one).
func TestResourcesNeedWelcome(t *testing.T) {
	f := startMonitoredPool(t, 1, 50*time.Millisecond, false)
	f.sendTasks(wire.Task{ID: 1, App: "s", Command: "sleep 0.3"})
	m := collect(t, f, 10*time.Second, 1)
	if len(m.nodes) != 0 || len(m.samples) != 0 {
		t.Errorf("monitoring sent without the interchange's consent: %d nodes, %d tasks sampled", len(m.nodes), len(m.samples))
	}
}

// TestResourcesOff: a negative interval sends the node's description and
// no samples (htex's NoResourceMonitoring).
func TestResourcesOff(t *testing.T) {
	f := startMonitoredPool(t, 1, -1, true)
	f.sendTasks(wire.Task{ID: 1, App: "s", Command: "sleep 0.3"}, wire.Task{ID: 2, App: "test.pool.sleepy", Args: []codec.RawMessage{raw(t, 100)}})
	m := collect(t, f, 10*time.Second, 1, 2)
	if len(m.nodes) != 1 || len(m.samples) != 0 {
		t.Errorf("%d node descriptions and %d tasks sampled; want the node only", len(m.nodes), len(m.samples))
	}
}
