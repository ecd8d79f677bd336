package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/internal/dataflow"
)

func ev(id int64, try int, st dataflow.State, ex string, at time.Time) dataflow.Event {
	return dataflow.Event{Time: at, TaskID: id, Try: try, App: "test.metrics.unit", State: st, Executor: ex}
}

func TestCollectorCountsStates(t *testing.T) {
	c := New()
	t0 := time.Unix(1000, 0)
	feed := []dataflow.Event{
		// Task 1: a retry, then success on the second try.
		ev(1, 0, dataflow.Pending, "", t0),
		ev(1, 0, dataflow.Launched, "threads", t0),
		ev(1, 0, dataflow.FailRetryable, "", t0.Add(time.Second)),
		ev(1, 1, dataflow.Pending, "", t0.Add(time.Second)),
		ev(1, 1, dataflow.Launched, "threads", t0.Add(2*time.Second)),
		ev(1, 1, dataflow.ExecDone, "", t0.Add(4*time.Second)),
		// Task 2: fails for good on its first try.
		ev(2, 0, dataflow.Pending, "", t0),
		ev(2, 0, dataflow.Launched, "pool", t0),
		ev(2, 0, dataflow.Failed, "", t0.Add(500*time.Millisecond)),
		// Task 3: its dependency failed; never launched.
		ev(3, 0, dataflow.Pending, "", t0),
		ev(3, 0, dataflow.DepFail, "", t0),
		// Task 4: still running.
		ev(4, 0, dataflow.Pending, "", t0),
		ev(4, 0, dataflow.Launched, "threads", t0),
		// Task 5: a join app waiting on its inner task.
		ev(5, 0, dataflow.Pending, "", t0),
		ev(5, 0, dataflow.Launched, "_parsl_internal", t0),
		ev(5, 0, dataflow.Joining, "", t0),
		// Task 6: memoized.
		ev(6, 0, dataflow.Pending, "", t0),
		ev(6, 0, dataflow.MemoDone, "", t0),
		// Task 7: pending.
		ev(7, 0, dataflow.Pending, "", t0),
	}
	for _, e := range feed {
		c.TaskEvent(e)
	}
	for st, want := range map[string]float64{"exec_done": 1, "failed": 1, "dep_fail": 1, "memo_done": 1} {
		if got := testutil.ToFloat64(c.total.WithLabelValues(st)); got != want {
			t.Errorf("parsl_tasks_total{state=%q} = %v, want %v", st, got, want)
		}
	}
	for st, want := range map[string]float64{"pending": 1, "launched": 1, "joining": 1, "fail_retryable": 0} {
		if got := testutil.ToFloat64(c.current.WithLabelValues(st)); got != want {
			t.Errorf("parsl_tasks{state=%q} = %v, want %v", st, got, want)
		}
	}
	// One retried try of task 1 and task 2's final failure.
	if got := testutil.ToFloat64(c.tries); got != 2 {
		t.Errorf("parsl_task_tries_total = %v, want 2", got)
	}
	if n := testutil.CollectAndCount(c.duration); n != 2 {
		t.Errorf("duration series = %d, want 2 (threads, pool)", n)
	}
	// Task 1's last try ran 2s (its first try's second is not counted).
	body := scrape(t, c)
	for _, line := range []string{
		`parsl_task_duration_seconds_sum{executor="threads"} 2`,
		`parsl_task_duration_seconds_count{executor="threads"} 1`,
		`parsl_task_duration_seconds_sum{executor="pool"} 0.5`,
		`parsl_tasks_total{state="exec_done"} 1`,
		`go_goroutines`,
		`process_`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("exposition lacks %q", line)
		}
	}
	// Finishing the live ones empties the gauges.
	c.TaskEvent(ev(4, 0, dataflow.ExecDone, "", t0))
	c.TaskEvent(ev(5, 0, dataflow.ExecDone, "", t0))
	c.TaskEvent(ev(7, 0, dataflow.Failed, "", t0))
	for _, st := range []string{"pending", "launched", "joining"} {
		if got := testutil.ToFloat64(c.current.WithLabelValues(st)); got != 0 {
			t.Errorf("after all ended parsl_tasks{state=%q} = %v, want 0", st, got)
		}
	}
	// A task failing before launch is not a failed try.
	if got := testutil.ToFloat64(c.tries); got != 2 {
		t.Errorf("parsl_task_tries_total = %v, want 2", got)
	}
	for i := range c.live {
		if n := len(c.live[i].m); n != 0 {
			t.Fatalf("shard %d keeps %d ended tasks", i, n)
		}
	}
}

func scrape(t *testing.T, c *Collector) string {
	t.Helper()
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type fakePool struct{ ms []interchange.ManagerInfo }

func (fakePool) Label() string                         { return "htex" }
func (f fakePool) Managers() []interchange.ManagerInfo { return f.ms }

func TestCollectorPools(t *testing.T) {
	c := New(fakePool{ms: []interchange.ManagerInfo{
		{BlockID: "0", Workers: 4, InFlight: 6}, // prefetched past its workers
		{BlockID: "0", Workers: 4, InFlight: 1},
		{BlockID: "1", Workers: 2},
	}}, errors.New("not an executor"))
	body := scrape(t, c)
	for _, line := range []string{
		`parsl_managers{executor="htex"} 3`,
		`parsl_blocks{executor="htex"} 2`,
		`parsl_workers_busy{executor="htex"} 5`,
		`parsl_workers_idle{executor="htex"} 5`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("exposition lacks %q", line)
		}
	}
}

// BenchmarkObserver measures the cost of one event on the kernel's hot
// path. Each iteration is one whole task (pending, launched, exec_done);
// the ns/event metric is the per-event cost. "parallel" sends tasks from
// every CPU at once, as the kernel does under load, and so also measures
// contention on the shared counters.
func BenchmarkObserver(b *testing.B) {
	task := func(c *Collector, id int64, now time.Time) {
		c.TaskEvent(dataflow.Event{Time: now, TaskID: id, State: dataflow.Pending})
		c.TaskEvent(dataflow.Event{Time: now, TaskID: id, State: dataflow.Launched, Executor: "threads"})
		c.TaskEvent(dataflow.Event{Time: now, TaskID: id, State: dataflow.ExecDone})
	}
	b.Run("serial", func(b *testing.B) {
		c, now := New(), time.Now()
		b.ReportAllocs()
		for i := range b.N {
			task(c, int64(i), now)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(3*b.N), "ns/event")
	})
	b.Run("parallel", func(b *testing.B) {
		c, now := New(), time.Now()
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				task(c, next.Add(1), now)
			}
		})
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(3*b.N), "ns/event")
	})
}
