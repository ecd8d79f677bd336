package store

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// realisticRun writes what a run of n tasks produces without resource
// monitoring: per task, the DFK's task row at submit and its update at
// completion, a try (launch, the worker's running report, return) and four
// statuses (pending, launched, running, exec_done). It returns the number
// of status rows.
func realisticRun(tb testing.TB, s *Store, n int) int {
	tb.Helper()
	ctx := context.Background()
	enq := func(r Record) {
		if err := s.Enqueue(ctx, r); err != nil {
			tb.Fatal(err)
		}
	}
	enq(&Workflow{RunID: run, WorkflowName: "bench", TimeBegan: t0, Host: "login1", User: "parsl", RunDir: "runinfo/000"})
	apps := []string{"simulate", "analyse", "stage_in", "reduce"}
	for i := range int64(n) {
		start := t0.Add(time.Duration(i) * time.Millisecond)
		app := apps[i%int64(len(apps))]
		enq(&Task{RunID: run, TaskID: i, FuncName: app, TimeInvoked: start, Inputs: "[]", Outputs: "[]"})
		enq(&Status{RunID: run, TaskID: i, State: "pending", Timestamp: start})
		enq(&Try{RunID: run, TaskID: i, TryID: 0, Executor: "htex", TimeLaunched: start.Add(time.Millisecond)})
		enq(&Status{RunID: run, TaskID: i, State: "launched", Timestamp: start.Add(time.Millisecond)})
		enq(&Try{RunID: run, TaskID: i, TryID: 0, BlockID: "3", Hostname: "nid001234", TimeRunning: start.Add(2 * time.Millisecond)})
		enq(&Status{RunID: run, TaskID: i, State: "running", Timestamp: start.Add(2 * time.Millisecond)})
		enq(&Try{RunID: run, TaskID: i, TryID: 0, TimeReturned: start.Add(3 * time.Millisecond)})
		enq(&Status{RunID: run, TaskID: i, State: "exec_done", Timestamp: start.Add(3 * time.Millisecond)})
		enq(&Task{RunID: run, TaskID: i, FuncName: app, TimeReturned: start.Add(3 * time.Millisecond)})
	}
	enq(&Workflow{RunID: run, TimeBegan: t0, Host: "login1", User: "parsl", RunDir: "runinfo/000",
		TimeCompleted: t0.Add(time.Hour), TasksCompletedCount: int64(n)})
	return 4 * n
}

func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	var total int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			total += fi.Size()
		}
	}
	return total
}

// TestBytesPerTask measures the database size per task for a realistic run
// without resource samples and logs where the bytes go. The issue's
// target is 500 bytes per task; the compact tables take about 170 (Parsl's
// own representation, text run ids and timestamps in every row, took 750).
func TestBytesPerTask(t *testing.T) {
	n := 20000
	if testing.Short() || raceEnabled {
		n = 5000
	}
	s, path, _ := testOpen(t, Options{})
	realisticRun(t, s, n)
	closeOK(t, s)
	per := float64(fileSize(t, path)) / float64(n)
	t.Logf("%d tasks: %.0f bytes per task", n, per)
	if per > 500 {
		t.Errorf("%.0f bytes per task, want <= 500", per)
	}
	db := rawDB(t, path)
	rows, err := db.Query(`SELECT name, sum(pgsize), sum(payload) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var size, payload int64
		if err := rows.Scan(&name, &size, &payload); err != nil {
			t.Fatal(err)
		}
		t.Logf("  %-26s %6.1f bytes/task (payload %6.1f)", name, float64(size)/float64(n), float64(payload)/float64(n))
	}
	rows.Close()
	c, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, c)
	counts, err := c.TaskCounts(context.Background(), run)
	if err != nil || counts["exec_done"] != int64(n) {
		t.Errorf("counts = %v, %v", counts, err)
	}
}

// BenchmarkInsertStatus writes a realistic run of 250,000 tasks, i.e.
// 1,000,000 status rows (plus 250,000 task and try rows, written twice and
// three times), one Enqueue per row, and reports status rows per second,
// all rows per second, CPU time per task (of the whole process: the
// caller's and the writer's) and database bytes per task. Run with
// -benchtime=1x.
func BenchmarkInsertStatus(b *testing.B) {
	const tasks = 250_000
	for b.Loop() {
		b.StopTimer()
		s, path, _ := testOpen(b, Options{})
		b.StartTimer()
		start, cpu := time.Now(), cpuTime()
		statuses := realisticRun(b, s, tasks)
		closeOK(b, s)
		el := time.Since(start)
		b.ReportMetric(float64(statuses)/el.Seconds(), "status_rows/s")
		b.ReportMetric(float64(s.Stats().Written)/el.Seconds(), "rows/s")
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/tasks, "cpu_us/task")
		b.ReportMetric(float64(fileSize(b, path))/tasks, "bytes/task")
	}
}

// BenchmarkInsertBatch writes the rows of BenchmarkInsertStatus in Batch
// records of 4,096 tasks, as the monitoring hub does.
func BenchmarkInsertBatch(b *testing.B) {
	const tasks, per = 250_000, 4096
	for b.Loop() {
		b.StopTimer()
		s, path, _ := testOpen(b, Options{})
		ctx := context.Background()
		b.StartTimer()
		start, cpu := time.Now(), cpuTime()
		apps := []string{"simulate", "analyse", "stage_in", "reduce"}
		for first := int64(0); first < tasks; first += per {
			batch := &Batch{}
			for i := first; i < min(first+per, tasks); i++ {
				start := t0.Add(time.Duration(i) * time.Millisecond)
				app := apps[i%int64(len(apps))]
				batch.Tasks = append(batch.Tasks, Task{RunID: run, TaskID: i, FuncName: app, TimeInvoked: start, Inputs: "[]", Outputs: "[]"},
					Task{RunID: run, TaskID: i, FuncName: app, TimeReturned: start.Add(3 * time.Millisecond)})
				batch.Tries = append(batch.Tries, Try{RunID: run, TaskID: i, TryID: 0, Executor: "htex", TimeLaunched: start.Add(time.Millisecond)},
					Try{RunID: run, TaskID: i, TryID: 0, BlockID: "3", Hostname: "nid001234", TimeRunning: start.Add(2 * time.Millisecond)},
					Try{RunID: run, TaskID: i, TryID: 0, TimeReturned: start.Add(3 * time.Millisecond)})
				for j, st := range []string{"pending", "launched", "running", "exec_done"} {
					batch.Statuses = append(batch.Statuses, Status{RunID: run, TaskID: i, State: st, Timestamp: start.Add(time.Duration(j) * time.Millisecond)})
				}
			}
			if err := s.Enqueue(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		closeOK(b, s)
		el := time.Since(start)
		b.ReportMetric(tasks/el.Seconds(), "tasks/s")
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/tasks, "cpu_us/task")
		b.ReportMetric(float64(fileSize(b, path))/tasks, "bytes/task")
	}
}

// BenchmarkTasksPage reads pages deep into a 1,000,000-task run (filtered
// and not) and task counts; the database is built once (a few minutes).
func BenchmarkTasksPage(b *testing.B) {
	const tasks = 1_000_000
	s, _, _ := testOpen(b, Options{})
	defer closeOK(b, s)
	realisticRun(b, s, tasks)
	syncOK(b, s)
	ctx := context.Background()
	for _, f := range []TaskFilter{{}, {State: "exec_done"}, {App: "analyse"}, {App: "analyse", State: "exec_done"}} {
		b.Run(fmt.Sprintf("app=%s,state=%s", f.App, f.State), func(b *testing.B) {
			for b.Loop() {
				p, err := s.Tasks(ctx, run, f, 4000, 50) // rows 200,000..200,049
				if err != nil || len(p.Tasks) != 50 {
					b.Fatal(len(p.Tasks), err)
				}
			}
		})
	}
	b.Run("counts", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.TaskCounts(ctx, run); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("apps", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.AppSummaries(ctx, run); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("task", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Task(ctx, run, 777_777); err != nil {
				b.Fatal(err)
			}
		}
	})
}
