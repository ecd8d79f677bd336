package monitoring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parsl-go/parsl/internal/dataflow"
	"github.com/parsl-go/parsl/monitoring/store"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// emit sends what the kernel sends for n short tasks, from workers
// goroutines, as the threads executor does: pending at submit, launched,
// then exec_done (every 10th task fails once first, every 100th fails).
func emit(h *Hub, first, n int64, workers int) {
	var wg sync.WaitGroup
	per := (n + int64(workers) - 1) / int64(workers)
	for w := range int64(workers) {
		wg.Go(func() {
			for id := first + w*per; id < min(first+(w+1)*per, first+n); id++ {
				h.TaskEvent(dataflow.Event{Time: time.Now(), TaskID: id, App: "bench.noop", State: dataflow.Pending})
				try := 0
				if id%10 == 3 {
					h.TaskEvent(dataflow.Event{Time: time.Now(), TaskID: id, App: "bench.noop", State: dataflow.Launched, Executor: "threads"})
					h.TaskEvent(dataflow.Event{Time: time.Now(), TaskID: id, Try: 0, App: "bench.noop", State: dataflow.FailRetryable,
						Err: errors.New("transient")})
					h.TaskEvent(dataflow.Event{Time: time.Now(), TaskID: id, Try: 1, App: "bench.noop", State: dataflow.Pending})
					try = 1
				}
				h.TaskEvent(dataflow.Event{Time: time.Now(), TaskID: id, Try: try, App: "bench.noop", State: dataflow.Launched, Executor: "threads"})
				final := dataflow.ExecDone
				var err error
				if id%100 == 7 {
					final, err = dataflow.Failed, errors.New("broken")
				}
				h.TaskEvent(dataflow.Event{Time: time.Now(), TaskID: id, Try: try, App: "bench.noop", State: final, Err: err})
			}
		})
	}
	wg.Wait()
}

// TestHubRecordsEveryEvent: every task and status reaches the database,
// through concurrent emitters and Close.
func TestHubRecordsEveryEvent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "monitoring.db")
	h, err := NewHub(context.Background(), Options{DBPath: path, WorkflowName: "t", BatchEvents: 1000, FlushDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	emit(h, 0, n, 4)
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	counts, err := st.TaskCounts(ctx, h.RunID())
	if err != nil || counts["exec_done"] != n-n/100 || counts["failed"] != n/100 {
		t.Errorf("counts = %v, %v", counts, err)
	}
	w, err := st.Workflow(ctx, h.RunID())
	if err != nil || w.Tasks != n || w.TasksCompletedCount != n-n/100 || w.TasksFailedCount != n/100 || w.Running() {
		t.Errorf("workflow = %+v, %v", w, err)
	}
	d, err := st.Task(ctx, h.RunID(), 13)
	if err != nil || len(d.Statuses) != 6 || len(d.Tries) != 2 || d.Tries[0].FailHistory != "transient" ||
		d.Tries[1].Executor != "threads" || d.FailCount != 1 || d.State != "exec_done" {
		t.Errorf("task 13 = %+v, %v", d, err)
	}
}

// TestHubDependenciesAndClose: dependencies reach task_depends, and events
// sent while Close runs are either recorded or ignored, never half
// written: every task that has a row has its pending status.
func TestHubDependenciesAndClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "monitoring.db")
	h, err := NewHub(context.Background(), Options{DBPath: path, FlushDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h.TaskEvent(dataflow.Event{Time: time.Now(), TaskID: 0, App: "a", State: dataflow.Pending})
	h.TaskEvent(dataflow.Event{Time: time.Now(), TaskID: 1, App: "b", State: dataflow.Pending, Depends: []int64{0}})
	h.TaskEvent(dataflow.Event{Time: time.Now(), TaskID: 2, App: "b", State: dataflow.Pending, Depends: []int64{0, 1}})
	var wg sync.WaitGroup
	for g := range int64(2) {
		wg.Go(func() {
			for i := int64(0); i < 20000; i++ {
				h.TaskEvent(dataflow.Event{Time: time.Now(), TaskID: 100 + g*100000 + i, App: "c", State: dataflow.Pending})
			}
		})
	}
	time.Sleep(time.Millisecond)
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	h.TaskEvent(dataflow.Event{Time: time.Now(), TaskID: 7, App: "late", State: dataflow.Pending}) // ignored
	if err := h.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v", err)
	}
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	d, err := st.Task(ctx, h.RunID(), 2)
	if err != nil || d.Depends != "0,1" || d.FuncName != "b" || d.State != "pending" {
		t.Errorf("task 2 = %+v, %v", d, err)
	}
	if _, err := st.Task(ctx, h.RunID(), 7); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("event after Close recorded: %v", err)
	}
	counts, err := st.TaskCounts(ctx, h.RunID())
	if err != nil || len(counts) != 1 {
		t.Errorf("counts = %v, %v; want pending tasks only", counts, err)
	}
}

// TestHubCloseGivesUp: when Close's context ends before the writer is
// done, Close returns at once with how many events were not written.
func TestHubCloseGivesUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "monitoring.db")
	h, err := NewHub(context.Background(), Options{DBPath: path, BatchEvents: 100})
	if err != nil {
		t.Fatal(err)
	}
	emit(h, 0, 20000, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	err = h.Close(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v", err)
	}
	t.Log(err)
}

// BenchmarkHub emits the events of 1,000,000 short tasks from two
// goroutines, as fast as they can, then closes the hub. It reports the
// emitters' rate (the kernel's view: the cost of monitoring on its hot
// path), the time Close took to write the backlog, the CPU time per task
// of the whole process and the database size per task.
func BenchmarkHub(b *testing.B) {
	n := int64(1_000_000)
	if v := os.Getenv("PARSL_BENCH_TASKS"); v != "" {
		fmt.Sscan(v, &n)
	}
	for b.Loop() {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "monitoring.db")
		h, err := NewHub(context.Background(), Options{DBPath: path})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start, cpu := time.Now(), cpuTime()
		emit(h, 0, n, 2)
		emitted := time.Since(start)
		closeStart := time.Now()
		if err := h.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/emitted.Seconds(), "emitted_tasks/s")
		b.ReportMetric(time.Since(closeStart).Seconds(), "close_s")
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(n), "cpu_us/task")
		var size int64
		for _, p := range []string{path, path + "-wal"} {
			if fi, err := os.Stat(p); err == nil {
				size += fi.Size()
			}
		}
		b.ReportMetric(float64(size)/float64(n), "bytes/task")
	}
}

// BenchmarkTaskEvent measures TaskEvent, the hub's cost on the kernel's hot
// path, from as many goroutines as CPUs, with the writer running as it
// does in a workflow.
func BenchmarkTaskEvent(b *testing.B) {
	path := filepath.Join(b.TempDir(), "monitoring.db")
	h, err := NewHub(context.Background(), Options{DBPath: path})
	if err != nil {
		b.Fatal(err)
	}
	var goroutines atomic.Int64
	now := time.Now()
	states := []dataflow.State{dataflow.Pending, dataflow.Launched, dataflow.ExecDone}
	b.RunParallel(func(pb *testing.PB) {
		i := goroutines.Add(1) << 26 // each goroutine its own tasks
		for pb.Next() {
			h.TaskEvent(dataflow.Event{Time: now, TaskID: i / 3, App: "bench.noop", Executor: "threads", State: states[i%3]})
			i++
		}
	})
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_ = h.Close(ctx) // the backlog is not the point here
}
