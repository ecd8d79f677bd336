package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a log sink safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testOpen(t testing.TB, opts Options) (*Store, string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	path := filepath.Join(t.TempDir(), "monitoring.db")
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, path, logs
}

func closeOK(t testing.TB, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func syncOK(t testing.TB, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func put(t testing.TB, s *Store, recs ...Record) {
	t.Helper()
	for _, r := range recs {
		if err := s.Enqueue(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

// rawDB opens a second, plain connection, as a notebook would.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.Local)

func at(d time.Duration) time.Time { return t0.Add(d) }

const run = "6c1fbe54-0a4b-4d3c-9a53-1b8a1f0f0e2d"

func TestSchemaMatchesParsl(t *testing.T) {
	s, path, _ := testOpen(t, Options{})
	closeOK(t, s)
	db := rawDB(t, path)
	for table, want := range ParslColumns {
		var typ string
		if err := db.QueryRow(`SELECT type FROM sqlite_master WHERE name = ?`, table).Scan(&typ); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		rows, err := db.Query(fmt.Sprintf("PRAGMA table_info(%q)", table))
		if err != nil {
			t.Fatal(err)
		}
		var got []Column
		for rows.Next() {
			var cid, notnull, pk int
			var name, typ string
			var dflt sql.NullString
			if err := rows.Scan(&cid, &name, &typ, &notnull, &dflt, &pk); err != nil {
				t.Fatal(err)
			}
			got = append(got, Column{name, typ, notnull == 1, pk > 0})
		}
		rows.Close()
		if ViewTables[table] {
			// A view has Parsl's columns in Parsl's order; its types,
			// NOT NULL and keys are those of the compact tables.
			if typ != "view" {
				t.Errorf("%s is a %s, want a view", table, typ)
			}
			var names, wantNames []string
			for _, c := range got {
				names = append(names, c.Name)
			}
			for _, c := range want {
				wantNames = append(wantNames, c.Name)
			}
			if fmt.Sprint(names) != fmt.Sprint(wantNames) {
				t.Errorf("view %s:\n got  %v\n want %v", table, names, wantNames)
			}
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("table %s:\n got  %v\n want %v", table, got, want)
		}
	}
	for idx, cols := range map[string]string{
		"parslgo_task_hashsum":  "task_hashsum",
		"parslgo_task_by_state": "run_key,state,task_id",
	} {
		var got []string
		rows, err := db.Query(fmt.Sprintf("PRAGMA index_info(%q)", idx))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var seq, cid int
			var name string
			if err := rows.Scan(&seq, &cid, &name); err != nil {
				t.Fatal(err)
			}
			got = append(got, name)
		}
		rows.Close()
		if strings.Join(got, ",") != cols {
			t.Errorf("index %s = %v, want %s", idx, got, cols)
		}
	}
	// The clustered keys lead with the run.
	for table, lead := range map[string]string{"parslgo_task": "run_key,task_id",
		"resource": "run_id,task_id,try_id,timestamp", "block": "run_id,block_id"} {
		var sqlText string
		if err := db.QueryRow(`SELECT sql FROM sqlite_master WHERE type='table' AND name=?`, table).Scan(&sqlText); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.ReplaceAll(sqlText, " ", ""), "PRIMARYKEY("+lead) {
			t.Errorf("%s primary key does not lead with %s: %s", table, lead, sqlText)
		}
	}
	var v, mode string
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != fmt.Sprint(SchemaVersion) {
		t.Errorf("user_version = %q, %v", v, err)
	}
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v", mode, err)
	}
}

func sampleRun() []Record {
	return []Record{
		&Workflow{RunID: run, WorkflowName: "wf", WorkflowVersion: "1.0", TimeBegan: t0, Host: "h1", User: "u",
			RunDir: "runinfo/000"},
		&Task{RunID: run, TaskID: 0, FuncName: "double", Memoize: true, Hashsum: "abc", Inputs: "[1]",
			Outputs: "[]", Stdout: "out.txt", Stderr: "err.txt", Stdin: "in.txt", Depends: "", TimeInvoked: at(0)},
		&Try{RunID: run, TaskID: 0, TryID: 0, Executor: "htex", TimeLaunched: at(time.Second)},
		&Status{RunID: run, TaskID: 0, TryID: 0, State: "pending", Timestamp: at(0)},
		&Status{RunID: run, TaskID: 0, TryID: 0, State: "launched", Timestamp: at(time.Second)},
		// The worker's report fills in the try's running fields.
		&Try{RunID: run, TaskID: 0, TryID: 0, BlockID: "0", Hostname: "node7", TimeRunning: at(2 * time.Second)},
		&Status{RunID: run, TaskID: 0, TryID: 0, State: "running", Timestamp: at(2 * time.Second)},
		&Status{RunID: run, TaskID: 0, TryID: 0, State: "exec_done", Timestamp: at(3 * time.Second)},
		// running_ended carries a later worker clock; the task stays exec_done.
		&Status{RunID: run, TaskID: 0, TryID: 0, State: "running_ended", Timestamp: at(4 * time.Second)},
		&Try{RunID: run, TaskID: 0, TryID: 0, TimeReturned: at(3 * time.Second)},
		&Task{RunID: run, TaskID: 0, FuncName: "double", Memoize: true, TimeReturned: at(3 * time.Second)},
		// Task 1: depends on 0, failed once, still running (no completion).
		Task{RunID: run, TaskID: 1, FuncName: "inc", Depends: "0", TimeInvoked: at(0), FailCount: 1, FailCost: 1.5},
		Try{RunID: run, TaskID: 1, TryID: 0, Executor: "htex", TimeLaunched: at(time.Second), TimeReturned: at(2 * time.Second), FailHistory: "ValueError"},
		Try{RunID: run, TaskID: 1, TryID: 1, Executor: "htex", TimeLaunched: at(3 * time.Second)},
		Status{RunID: run, TaskID: 1, TryID: 0, State: "pending", Timestamp: at(0)},
		Status{RunID: run, TaskID: 1, TryID: 0, State: "fail_retryable", Timestamp: at(2 * time.Second)},
		Status{RunID: run, TaskID: 1, TryID: 1, State: "launched", Timestamp: at(3 * time.Second)},
		&Block{RunID: run, ExecutorLabel: "htex", BlockID: "0", JobID: "123", Timestamp: at(0), Status: "PENDING"},
		&Block{RunID: run, ExecutorLabel: "htex", BlockID: "0", Timestamp: at(5 * time.Second), Status: "SCALED_IN"},
		&Node{RunID: run, Hostname: "node7", UID: "m1", BlockID: "0", CPUCount: 8, TotalMemory: 1 << 34, Active: true,
			WorkerCount: 8, PythonV: "go1.26", Timestamp: at(time.Second), LastHeartbeat: at(time.Second)},
		&Resource{RunID: run, TaskID: 0, TryID: 0, Timestamp: at(2 * time.Second), MonitoringInterval: 30, PID: 4242,
			MemoryPercent: 1.5, ChildrenCount: 2, TimeUser: 0.25, TimeSystem: 0.125, MemoryVirtual: 1e9,
			MemoryResident: 5e8, DiskRead: 10, DiskWrite: 20, ProcessStatus: "running", CPUNum: "3",
			NumCtxSwitchesVoluntary: 7, NumCtxSwitchesInvoluntary: 1},
		&Workflow{RunID: run, TimeBegan: t0, Host: "h1", User: "u", RunDir: "runinfo/000",
			TimeCompleted: at(10 * time.Second), TasksCompletedCount: 1, TasksFailedCount: 0},
	}
}

func TestRoundTrip(t *testing.T) {
	s, path, _ := testOpen(t, Options{})
	put(t, s, sampleRun()...)
	syncOK(t, s)
	ctx := context.Background()

	wfs, err := s.ListWorkflows(ctx)
	if err != nil || len(wfs) != 1 {
		t.Fatalf("ListWorkflows = %v, %v", wfs, err)
	}
	w := wfs[0]
	want := Workflow{RunID: run, WorkflowName: "wf", WorkflowVersion: "1.0", TimeBegan: t0, Host: "h1", User: "u",
		RunDir: "runinfo/000", TimeCompleted: at(10 * time.Second), TasksCompletedCount: 1}
	if !equalWorkflow(w.Workflow, want) || w.Tasks != 2 || w.Running() {
		t.Errorf("workflow = %+v, want %+v with 2 tasks", w, want)
	}
	if _, err := s.Workflow(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Workflow(nope) err = %v", err)
	}

	counts, err := s.TaskCounts(ctx, run)
	if err != nil || counts["exec_done"] != 1 || counts["launched"] != 1 || len(counts) != 2 {
		t.Errorf("TaskCounts = %v, %v", counts, err)
	}
	apps, err := s.AppSummaries(ctx, run)
	if err != nil || len(apps) != 2 || apps[0].App != "double" || apps[0].ByState["exec_done"] != 1 ||
		apps[1].App != "inc" || apps[1].Tasks != 1 {
		t.Errorf("AppSummaries = %+v, %v", apps, err)
	}

	d, err := s.Task(ctx, run, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantTask := Task{RunID: run, TaskID: 0, FuncName: "double", Memoize: true, Hashsum: "abc", Inputs: "[1]",
		Outputs: "[]", Stdout: "out.txt", Stderr: "err.txt", Stdin: "in.txt", TimeInvoked: at(0), TimeReturned: at(3 * time.Second)}
	if !equalTask(d.Task, wantTask) || d.State != "exec_done" {
		t.Errorf("task 0 = %+v state %s", d.Task, d.State)
	}
	if len(d.Tries) != 1 {
		t.Fatalf("tries = %+v", d.Tries)
	}
	tr := d.Tries[0]
	if tr.BlockID != "0" || tr.Hostname != "node7" || tr.Executor != "htex" || !tr.TimeLaunched.Equal(at(time.Second)) ||
		!tr.TimeRunning.Equal(at(2*time.Second)) || !tr.TimeReturned.Equal(at(3*time.Second)) {
		t.Errorf("try = %+v", tr)
	}
	var names []string
	for _, st := range d.Statuses {
		names = append(names, st.State)
	}
	if strings.Join(names, ",") != "pending,launched,running,exec_done,running_ended" || !d.Statuses[0].Timestamp.Equal(t0) {
		t.Errorf("statuses = %+v", d.Statuses)
	}

	d1, err := s.Task(ctx, run, 1)
	if err != nil || d1.FailCount != 1 || d1.FailCost != 1.5 || d1.Depends != "0" || len(d1.Tries) != 2 ||
		d1.Tries[0].FailHistory != "ValueError" || !d1.TimeReturned.IsZero() || d1.State != "launched" {
		t.Errorf("task 1 = %+v, %v", d1, err)
	}
	if _, err := s.Task(ctx, run, 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("Task(99) err = %v", err)
	}
	closeOK(t, s)

	// Block, node and resource rows, read as Parsl's tools read them.
	db := rawDB(t, path)
	var blocks int
	var jobID sql.NullString
	if err := db.QueryRow(`SELECT count(*), max(job_id) FROM block WHERE run_id=? AND block_id='0'`, run).Scan(&blocks, &jobID); err != nil || blocks != 2 || jobID.String != "123" {
		t.Errorf("blocks = %d %v %v", blocks, jobID, err)
	}
	var host, ts string
	var mem int64
	var active bool
	if err := db.QueryRow(`SELECT hostname, total_memory, active, CAST(timestamp AS TEXT) FROM node`).Scan(&host, &mem, &active, &ts); err != nil ||
		host != "node7" || mem != 1<<34 || !active || ts != t0.Add(time.Second).Format("2006-01-02 15:04:05.000000") {
		t.Errorf("node = %s %d %v %s %v", host, mem, active, ts, err)
	}
	var rss, vol float64
	var pid int64
	var pst, cpu string
	if err := db.QueryRow(`SELECT psutil_process_memory_resident, psutil_process_pid, psutil_process_status, psutil_cpu_num,
		psutil_process_num_ctx_switches_voluntary FROM resource WHERE run_id=? AND task_id=0`, run).Scan(&rss, &pid, &pst, &cpu, &vol); err != nil ||
		rss != 5e8 || pid != 4242 || pst != "running" || cpu != "3" || vol != 7 {
		t.Errorf("resource = %v %v %v %v %v %v", rss, pid, pst, cpu, vol, err)
	}
	// Parsl's memoize column holds Python's bool as 1/0.
	var memo string
	if err := db.QueryRow(`SELECT task_memoize FROM task WHERE task_id=0`).Scan(&memo); err != nil || memo != "1" {
		t.Errorf("task_memoize = %q %v", memo, err)
	}
}

func equalWorkflow(a, b Workflow) bool {
	ok := a.TimeBegan.Equal(b.TimeBegan) && a.TimeCompleted.Equal(b.TimeCompleted)
	a.TimeBegan, a.TimeCompleted, b.TimeBegan, b.TimeCompleted = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return ok && a == b
}

func equalTask(a, b Task) bool {
	ok := a.TimeInvoked.Equal(b.TimeInvoked) && a.TimeReturned.Equal(b.TimeReturned)
	a.TimeInvoked, a.TimeReturned, b.TimeInvoked, b.TimeReturned = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return ok && a == b
}

func TestPartialRows(t *testing.T) {
	s, _, _ := testOpen(t, Options{})
	defer closeOK(t, s)
	ctx := context.Background()
	put(t, s,
		// A task row without completion, try or status.
		&Task{RunID: run, TaskID: 5, FuncName: "f", TimeInvoked: t0},
		// Statuses whose task row has not arrived.
		&Status{RunID: run, TaskID: 6, State: "launched", Timestamp: t0},
		// A worker's try report before the DFK's try row.
		&Try{RunID: run, TaskID: 6, TryID: 0, Hostname: "n1", TimeRunning: t0},
	)
	syncOK(t, s)
	p, err := s.Tasks(ctx, run, TaskFilter{}, 0, 10)
	if err != nil || p.Total != 2 || len(p.Tasks) != 2 {
		t.Fatalf("Tasks = %+v, %v", p, err)
	}
	if p.Tasks[0].TaskID != 5 || p.Tasks[0].State != "unsched" || p.Tasks[0].FuncName != "f" || !p.Tasks[0].TimeReturned.IsZero() {
		t.Errorf("task 5 = %+v", p.Tasks[0])
	}
	if p.Tasks[1].TaskID != 6 || p.Tasks[1].State != "launched" || p.Tasks[1].FuncName != "" {
		t.Errorf("task 6 = %+v", p.Tasks[1])
	}
	d, err := s.Task(ctx, run, 6)
	if err != nil || len(d.Tries) != 1 || d.Tries[0].Hostname != "n1" || d.State != "launched" {
		t.Errorf("task 6 detail = %+v, %v", d, err)
	}
	// The DFK's try row then completes it without losing the worker's fields.
	put(t, s, &Try{RunID: run, TaskID: 6, TryID: 0, Executor: "htex", TimeLaunched: t0})
	syncOK(t, s)
	d, err = s.Task(ctx, run, 6)
	if err != nil || d.Tries[0].Hostname != "n1" || d.Tries[0].Executor != "htex" || d.Tries[0].TimeRunning.IsZero() {
		t.Errorf("merged try = %+v, %v", d.Tries, err)
	}
}

func TestTasksPagingAndFilters(t *testing.T) {
	s, _, _ := testOpen(t, Options{})
	defer closeOK(t, s)
	ctx := context.Background()
	for i := range int64(50) {
		app := "even"
		if i%2 == 1 {
			app = "odd"
		}
		state := "exec_done"
		if i%5 == 0 {
			state = "failed"
		}
		put(t, s, &Task{RunID: run, TaskID: i, FuncName: app, TimeInvoked: t0},
			&Status{RunID: run, TaskID: i, State: "pending", Timestamp: t0},
			&Status{RunID: run, TaskID: i, State: state, Timestamp: at(time.Second)})
	}
	// Another run in the same file must not leak into this one.
	put(t, s, &Task{RunID: "other", TaskID: 1, FuncName: "even"})
	syncOK(t, s)
	cases := []struct {
		f           TaskFilter
		page, size  int
		total       int64
		first, rows int
	}{
		{TaskFilter{}, 0, 20, 50, 0, 20},
		{TaskFilter{}, 2, 20, 50, 40, 10},
		{TaskFilter{App: "odd"}, 1, 10, 25, 21, 10},
		{TaskFilter{State: "failed"}, 0, 100, 10, 0, 10},
		{TaskFilter{App: "odd", State: "failed"}, 0, 100, 5, 5, 5},
		{TaskFilter{App: "none"}, 0, 10, 0, -1, 0},
	}
	for _, c := range cases {
		p, err := s.Tasks(ctx, run, c.f, c.page, c.size)
		if err != nil || p.Total != c.total || len(p.Tasks) != c.rows || (c.rows > 0 && p.Tasks[0].TaskID != int64(c.first)) {
			t.Errorf("Tasks(%+v, %d, %d) = total %d, %d rows, %v", c.f, c.page, c.size, p.Total, len(p.Tasks), err)
		}
		for i := 1; i < len(p.Tasks); i++ {
			if p.Tasks[i].TaskID <= p.Tasks[i-1].TaskID {
				t.Errorf("Tasks(%+v) not ordered by id", c.f)
			}
		}
	}
}

// TestPagedQueryUsesIndexes checks the query plans: every filter walks the
// run's rows in task_id order, by primary key or by the partial state index
// (no full scan of the table, no sort), and fetches the page's rows by
// primary key, so pages stay fast at a million tasks.
func TestPagedQueryUsesIndexes(t *testing.T) {
	s, _, _ := testOpen(t, Options{})
	defer closeOK(t, s)
	for _, c := range []struct {
		f   TaskFilter
		idx string
	}{
		{TaskFilter{}, "PRIMARY KEY (run_key=?)"},
		{TaskFilter{App: "a"}, "PRIMARY KEY (run_key=?)"},
		{TaskFilter{State: "exec_done"}, "PRIMARY KEY (run_key=?)"},
		{TaskFilter{State: "failed"}, "INDEX parslgo_task_by_state (run_key=? AND state=?)"},
		{TaskFilter{App: "a", State: "failed"}, "INDEX parslgo_task_by_state (run_key=? AND state=?)"},
	} {
		where, args := tasksQuery(c.f, 1)
		q, qargs := pagedTasksSQL(where, append([]any{int64(1)}, args...), 3, 50)
		rows, err := s.db.Query("EXPLAIN QUERY PLAN "+q, qargs...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "\n")
		if strings.Contains(all, "TEMP B-TREE") || !strings.Contains(all, "SEARCH t USING PRIMARY KEY (run_key=? AND task_id=?)") {
			t.Errorf("filter %+v plan:\n%s", c.f, all)
		}
		for _, line := range plan {
			// SCAN p walks the page (at most pageSize rows) the inner query produced.
			if strings.HasPrefix(line, "SCAN") && line != "SCAN p" {
				t.Errorf("filter %+v full scan: %s\n%s", c.f, line, all)
			}
		}
		if !strings.Contains(all, "SEARCH t USING COVERING "+c.idx) && !strings.Contains(all, "SEARCH t USING "+c.idx) {
			t.Errorf("filter %+v does not use %s:\n%s", c.f, c.idx, all)
		}
	}
}

func TestBatching(t *testing.T) {
	var commits atomic.Int64
	s, _, _ := testOpen(t, Options{BatchSize: 10, FlushInterval: time.Hour,
		beforeCommit: func() error { commits.Add(1); return nil }})
	for i := range int64(25) {
		put(t, s, &Status{RunID: run, TaskID: i, State: "pending", Timestamp: t0})
	}
	waitFor(t, func() bool { return s.Stats().Written == 20 })
	time.Sleep(20 * time.Millisecond)
	if st := s.Stats(); st.Written != 20 || st.Batches != 2 || commits.Load() != 2 {
		t.Errorf("after 25 rows with batch 10: %+v, %d commits", st, commits.Load())
	}
	syncOK(t, s) // a barrier flushes the partial batch
	if st := s.Stats(); st.Written != 25 || st.Batches != 3 || st.Accepted != 25 {
		t.Errorf("after sync: %+v", st)
	}
	closeOK(t, s)

	// The interval flushes a partial batch without a barrier.
	s, _, _ = testOpen(t, Options{BatchSize: 1000, FlushInterval: 10 * time.Millisecond})
	put(t, s, &Status{RunID: run, TaskID: 1, State: "pending", Timestamp: t0})
	waitFor(t, func() bool { return s.Stats().Written == 1 })
	closeOK(t, s)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 30s")
		}
		time.Sleep(time.Millisecond)
	}
}

func countRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWriteFailureRetried: failing commits (as for a full disk) are logged,
// counted and retried; no accepted row is lost and callers never see it.
func TestWriteFailureRetried(t *testing.T) {
	var fails atomic.Int64
	fails.Store(3)
	diskFull := errors.New("simulated: database or disk is full")
	s, path, logs := testOpen(t, Options{RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond,
		beforeCommit: func() error {
			if fails.Add(-1) >= 0 {
				return diskFull
			}
			return nil
		}})
	for i := range int64(100) {
		put(t, s, &Task{RunID: run, TaskID: i, FuncName: "f"}, &Status{RunID: run, TaskID: i, State: "pending", Timestamp: t0})
	}
	closeOK(t, s)
	st := s.Stats()
	if st.WriteErrors != 3 || st.Written != 200 || st.Unwritten != 0 || st.Rejected != 0 {
		t.Errorf("stats = %+v", st)
	}
	if !strings.Contains(logs.String(), "retrying") || !strings.Contains(logs.String(), "disk is full") {
		t.Errorf("failure not logged:\n%s", logs)
	}
	db := rawDB(t, path)
	if n := countRows(t, db, "status"); n != 100 {
		t.Errorf("status rows = %d", n)
	}
	if n := countRows(t, db, "parslgo_task_state"); n != 100 {
		t.Errorf("index rows = %d", n)
	}
}

// TestLockedDatabaseRetried: another process holding the write lock (a
// notebook, Parsl's test_db_locks) makes writes fail with SQLITE_BUSY; the
// writer retries until the lock goes away.
func TestLockedDatabaseRetried(t *testing.T) {
	s, path, logs := testOpen(t, Options{BusyTimeout: 10 * time.Millisecond, RetryMin: 5 * time.Millisecond,
		RetryMax: 20 * time.Millisecond})
	other := rawDB(t, path)
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	put(t, s, &Workflow{RunID: run, TimeBegan: t0, Host: "h", User: "u", RunDir: "r"},
		&Status{RunID: run, TaskID: 1, State: "pending", Timestamp: t0})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	if err := s.Sync(ctx); err == nil {
		t.Error("Sync succeeded while the database was locked")
	}
	cancel()
	waitFor(t, func() bool { return s.Stats().WriteErrors >= 2 })
	if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	closeOK(t, s)
	if st := s.Stats(); st.Written != 2 || st.Unwritten != 0 {
		t.Errorf("stats = %+v", st)
	}
	if !strings.Contains(logs.String(), "database is locked") && !strings.Contains(logs.String(), "SQLITE_BUSY") {
		t.Errorf("lock not logged:\n%s", logs)
	}
	if n := countRows(t, other, "status"); n != 1 {
		t.Errorf("status rows = %d", n)
	}
}

// TestCloseGivesUp: when writes keep failing, Close returns at its deadline
// with an error counting every accepted row that is not in the database.
func TestCloseGivesUp(t *testing.T) {
	s, _, _ := testOpen(t, Options{RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond,
		beforeCommit: func() error { return errors.New("simulated: disk I/O error") }})
	for i := range int64(30) {
		put(t, s, &Status{RunID: run, TaskID: i, State: "pending", Timestamp: t0})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Close(ctx)
	var ue *UnwrittenError
	if !errors.As(err, &ue) || ue.Rows != 30 || !strings.Contains(err.Error(), "disk I/O error") {
		t.Fatalf("Close = %v", err)
	}
	if err := s.Enqueue(context.Background(), &Status{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Close = %v", err)
	}
	goleak.VerifyNone(t)
}

// TestBackpressure: a full queue blocks Enqueue until its context ends; the
// refused row is reported to the caller, accepted ones are all written.
func TestBackpressure(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	s, path, _ := testOpen(t, Options{QueueSize: 2, BatchSize: 1, beforeCommit: func() error {
		<-release
		return nil
	}})
	accepted := 0
	var refused error
	for i := range int64(10) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		err := s.Enqueue(ctx, &Status{RunID: run, TaskID: i, State: "pending", Timestamp: t0})
		cancel()
		if err != nil {
			refused = err
			break
		}
		accepted++
	}
	if !errors.Is(refused, context.DeadlineExceeded) || accepted > 3 {
		t.Errorf("accepted %d, then %v", accepted, refused)
	}
	once.Do(func() { close(release) })
	closeOK(t, s)
	if n := countRows(t, rawDB(t, path), "status"); n != accepted {
		t.Errorf("status rows = %d, accepted %d", n, accepted)
	}
}

func TestNewerSchemaRejected(t *testing.T) {
	s, path, _ := testOpen(t, Options{})
	closeOK(t, s)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(context.Background(), path, Options{})
	var oe *OpenError
	if !errors.Is(err, ErrNewerSchema) || !errors.As(err, &oe) || oe.Path != path || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(newer) = %v", err)
	}
	goleak.VerifyNone(t)
}

func TestCorruptFileRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "monitoring.db")
	garbage := bytes.Repeat([]byte("this is not a sqlite database\x00\xff"), 1000)
	if err := os.WriteFile(path, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path, Options{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(garbage) = %v", err)
	}
	goleak.VerifyNone(t)
}

func TestReopenKeepsData(t *testing.T) {
	s, path, _ := testOpen(t, Options{})
	put(t, s, sampleRun()...)
	closeOK(t, s)
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, s)
	c, err := s.TaskCounts(context.Background(), run)
	if err != nil || c["exec_done"] != 1 {
		t.Errorf("counts after reopen = %v, %v", c, err)
	}
}

func TestEnqueueConcurrentWithClose(t *testing.T) {
	s, path, _ := testOpen(t, Options{BatchSize: 7, FlushInterval: time.Millisecond})
	var wg sync.WaitGroup
	var ok atomic.Int64
	for g := range int64(4) {
		wg.Go(func() {
			for i := range int64(200) {
				if s.Enqueue(context.Background(), &Status{RunID: run, TaskID: g*1000 + i, State: "pending", Timestamp: t0}) == nil {
					ok.Add(1)
				}
			}
		})
	}
	time.Sleep(2 * time.Millisecond)
	closeOK(t, s)
	wg.Wait()
	if n := countRows(t, rawDB(t, path), "status"); int64(n) != ok.Load() {
		t.Errorf("status rows = %d, accepted %d", n, ok.Load())
	}
}

// parslDDL is the schema as Python Parsl's SQLAlchemy creates it (rowid
// tables, Parsl's primary-key order).
var parslDDL = []string{
	`CREATE TABLE workflow (run_id TEXT NOT NULL, workflow_name TEXT, workflow_version TEXT, time_began DATETIME NOT NULL,
	time_completed DATETIME, host TEXT NOT NULL, user TEXT NOT NULL, rundir TEXT NOT NULL,
	tasks_failed_count INTEGER NOT NULL, tasks_completed_count INTEGER NOT NULL, PRIMARY KEY (run_id))`,
	`CREATE TABLE status (task_id INTEGER NOT NULL, task_status_name TEXT NOT NULL, timestamp DATETIME NOT NULL,
	run_id TEXT NOT NULL, try_id INTEGER NOT NULL, PRIMARY KEY (task_id, run_id, task_status_name, timestamp),
	FOREIGN KEY(run_id) REFERENCES workflow (run_id))`,
	`CREATE TABLE task (task_id INTEGER NOT NULL, run_id TEXT NOT NULL, task_depends TEXT, task_func_name TEXT NOT NULL,
	task_memoize TEXT NOT NULL, task_hashsum TEXT, task_inputs TEXT, task_outputs TEXT, task_stdin TEXT, task_stdout TEXT,
	task_stderr TEXT, task_time_invoked DATETIME, task_time_returned DATETIME, task_fail_count INTEGER NOT NULL,
	task_fail_cost FLOAT NOT NULL, PRIMARY KEY (task_id, run_id))`,
	`CREATE INDEX ix_task_task_hashsum ON task (task_hashsum)`,
	`CREATE TABLE try (try_id INTEGER NOT NULL, task_id INTEGER NOT NULL, run_id TEXT NOT NULL, block_id TEXT, hostname TEXT,
	task_executor TEXT NOT NULL, task_try_time_launched DATETIME, task_try_time_running DATETIME,
	task_try_time_returned DATETIME, task_fail_history TEXT, task_joins TEXT, PRIMARY KEY (try_id, task_id, run_id))`,
	`INSERT INTO workflow VALUES ('py', 'wf', NULL, '2026-01-01 10:00:00.000000', NULL, 'h', 'u', 'r', 0, 1)`,
	`INSERT INTO task VALUES (0, 'py', '', 'legacy', 0, NULL, NULL, NULL, NULL, NULL, NULL,
	'2026-01-01 10:00:00.000000', '2026-01-01 10:00:03.000000', 0, 0.0)`,
	`INSERT INTO status VALUES (0, 'pending', '2026-01-01 10:00:00.000000', 'py', 0)`,
	`INSERT INTO status VALUES (0, 'exec_done', '2026-01-01 10:00:03.000000', 'py', 0)`,
	`INSERT INTO status VALUES (0, 'running_ended', '2026-01-01 10:00:04.000000', 'py', 0)`,
}

// TestParslDatabaseAdopted: a database made by Python Parsl (its tables,
// user_version 0) opens, its runs show in the dashboard, and new rows are
// written into its tables.
func TestParslDatabaseAdopted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "monitoring.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range parslDDL {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, s)
	ctx := context.Background()
	c, err := s.TaskCounts(ctx, "py")
	if err != nil || c["exec_done"] != 1 || len(c) != 1 {
		t.Errorf("counts = %v, %v", c, err)
	}
	put(t, s, &Task{RunID: "py", TaskID: 0, FuncName: "legacy", FailCount: 2},
		&Task{RunID: "py", TaskID: 1, FuncName: "legacy"},
		&Try{RunID: "py", TaskID: 1, TryID: 0, Executor: "threads"},
		&Status{RunID: "py", TaskID: 1, State: "launched", Timestamp: t0})
	syncOK(t, s)
	d, err := s.Task(ctx, "py", 0)
	if err != nil || d.FailCount != 2 || d.State != "exec_done" || len(d.Statuses) != 3 || d.TimeReturned.IsZero() {
		t.Errorf("task 0 = %+v, %v", d, err)
	}
	apps, err := s.AppSummaries(ctx, "py")
	if err != nil || len(apps) != 1 || apps[0].Tasks != 2 || apps[0].ByState["launched"] != 1 {
		t.Errorf("apps = %+v, %v", apps, err)
	}
}

// oddRecord is a Record the writer does not know, standing in for a row the
// database refuses for good.
type oddRecord struct{ Status }

// TestRejectedRow: a row that can never be written is logged and counted
// without holding back the rows batched with it; Close reports it.
func TestRejectedRow(t *testing.T) {
	s, path, logs := testOpen(t, Options{})
	put(t, s, &Status{RunID: run, TaskID: 1, State: "pending", Timestamp: t0}, oddRecord{},
		&Status{RunID: run, TaskID: 2, State: "pending", Timestamp: t0})
	err := s.Close(context.Background())
	var ue *UnwrittenError
	if !errors.As(err, &ue) || ue.Rows != 1 || s.Stats().Rejected != 1 || s.Stats().Written != 2 {
		t.Errorf("Close = %v, stats %+v", err, s.Stats())
	}
	if !strings.Contains(logs.String(), "rejected") {
		t.Errorf("not logged:\n%s", logs)
	}
	if n := countRows(t, rawDB(t, path), "status"); n != 2 {
		t.Errorf("status rows = %d", n)
	}
}

// TestParslViews reads the task, try and status views as Parsl's tools read
// the tables: SQLAlchemy's timestamp text, Parsl's state names, the
// columns' values.
func TestParslViews(t *testing.T) {
	s, path, _ := testOpen(t, Options{})
	put(t, s, sampleRun()...)
	put(t, s, &Status{RunID: run, TaskID: 1, TryID: 1, State: "a_state_from_the_future", Timestamp: at(9 * time.Second)})
	closeOK(t, s)
	db := rawDB(t, path)
	layout := "2006-01-02 15:04:05.000000"

	var invoked, returned, fn, memo, inputs string
	var failCount int64
	var failCost float64
	if err := db.QueryRow(`SELECT task_time_invoked, task_time_returned, task_func_name, task_memoize, task_inputs,
		task_fail_count, task_fail_cost FROM task WHERE run_id = ? AND task_id = 0`, run).
		Scan(&invoked, &returned, &fn, &memo, &inputs, &failCount, &failCost); err != nil {
		t.Fatal(err)
	}
	if invoked != t0.Format(layout) || returned != at(3*time.Second).Format(layout) || fn != "double" || memo != "1" ||
		inputs != "[1]" || failCount != 0 || failCost != 0 {
		t.Errorf("task 0 = %s %s %s %s %s %d %v", invoked, returned, fn, memo, inputs, failCount, failCost)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM task WHERE run_id = ?`, run).Scan(&n); err != nil || n != 2 {
		t.Errorf("task rows = %d, %v", n, err)
	}

	rows, err := db.Query(`SELECT task_id, task_status_name, timestamp, try_id FROM status WHERE run_id = ?
		ORDER BY task_id, timestamp`, run)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id, try int64
		var name, ts string
		if err := rows.Scan(&id, &name, &ts, &try); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s %s %d", id, name, ts, try))
	}
	rows.Close()
	want := []string{
		"0 pending " + t0.Format(layout) + " 0",
		"0 launched " + at(time.Second).Format(layout) + " 0",
		"0 running " + at(2*time.Second).Format(layout) + " 0",
		"0 exec_done " + at(3*time.Second).Format(layout) + " 0",
		"0 running_ended " + at(4*time.Second).Format(layout) + " 0",
		"1 pending " + t0.Format(layout) + " 0",
		"1 fail_retryable " + at(2*time.Second).Format(layout) + " 0",
		"1 launched " + at(3*time.Second).Format(layout) + " 1",
		"1 a_state_from_the_future " + at(9*time.Second).Format(layout) + " 1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("status view:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	var host, exec, launched, running string
	var block sql.NullString
	if err := db.QueryRow(`SELECT hostname, task_executor, block_id, task_try_time_launched, task_try_time_running
		FROM try WHERE run_id = ? AND task_id = 0 AND try_id = 0`, run).Scan(&host, &exec, &block, &launched, &running); err != nil {
		t.Fatal(err)
	}
	if host != "node7" || exec != "htex" || block.String != "0" || launched != at(time.Second).Format(layout) ||
		running != at(2*time.Second).Format(layout) {
		t.Errorf("try = %s %s %v %s %s", host, exec, block, launched, running)
	}
	// Parsl's pandas helpers join the tables on (run_id, task_id).
	if err := db.QueryRow(`SELECT count(*) FROM task JOIN try USING (run_id, task_id) JOIN status USING (run_id, task_id)
		WHERE task.run_id = ?`, run).Scan(&n); err != nil || n != 5+4*2 {
		t.Errorf("joined rows = %d, %v", n, err)
	}
}

// TestCountsFollowRows checks the per-state counts kept by triggers
// against the rows, through inserts, state changes and late task rows.
func TestCountsFollowRows(t *testing.T) {
	s, path, _ := testOpen(t, Options{BatchSize: 7, FlushInterval: time.Millisecond})
	for i := range int64(200) {
		app := []string{"a", "b", "c"}[i%3]
		put(t, s, &Status{RunID: run, TaskID: i, State: "pending", Timestamp: at(time.Duration(i))})
		if i%2 == 0 {
			put(t, s, &Task{RunID: run, TaskID: i, FuncName: app})
		}
		if i%5 != 0 {
			put(t, s, &Status{RunID: run, TaskID: i, State: "launched", Timestamp: at(time.Duration(i) + time.Second)})
		}
		if i%7 == 0 {
			syncOK(t, s)
		}
		if i%3 == 0 {
			put(t, s, &Status{RunID: run, TaskID: i, State: "exec_done", Timestamp: at(time.Duration(i) + 2*time.Second)},
				&Task{RunID: run, TaskID: i, FuncName: app})
		}
	}
	put(t, s, &Task{RunID: run, TaskID: 999, FuncName: "a"})
	closeOK(t, s)
	db := rawDB(t, path)
	rows, err := db.Query(`SELECT coalesce(app_key, -1), coalesce(state, -1000), count(*) FROM parslgo_task GROUP BY 1, 2
		EXCEPT SELECT app_key, state, n FROM parslgo_count WHERE n > 0`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var app, state, n int64
		if err := rows.Scan(&app, &state, &n); err != nil {
			t.Fatal(err)
		}
		t.Errorf("app %d state %d: %d rows, not counted so", app, state, n)
	}
	rows.Close()
	var total int64
	if err := db.QueryRow(`SELECT sum(n) FROM parslgo_count`).Scan(&total); err != nil || total != 201 {
		t.Errorf("counted %d tasks, %v; want 201", total, err)
	}
}

// TestBatchRecord: a Batch writes the same rows as its records one by one.
func TestBatchRecord(t *testing.T) {
	var b Batch
	for _, r := range sampleRun() {
		switch r := r.(type) {
		case *Task:
			b.Tasks = append(b.Tasks, *r)
		case Task:
			b.Tasks = append(b.Tasks, r)
		case *Try:
			b.Tries = append(b.Tries, *r)
		case Try:
			b.Tries = append(b.Tries, r)
		case *Status:
			b.Statuses = append(b.Statuses, *r)
		case Status:
			b.Statuses = append(b.Statuses, r)
		}
	}
	one, _, _ := testOpen(t, Options{})
	put(t, one, sampleRun()...)
	syncOK(t, one)
	batched, _, _ := testOpen(t, Options{})
	put(t, batched, &b)
	syncOK(t, batched)
	if st := batched.Stats(); st.Accepted != b.rows() || st.Written != b.rows() || st.Batches != 1 {
		t.Errorf("stats = %+v, want %d rows in one transaction", st, b.rows())
	}
	ctx := context.Background()
	for _, id := range []int64{0, 1} {
		want, err1 := one.Task(ctx, run, id)
		got, err2 := batched.Task(ctx, run, id)
		if err1 != nil || err2 != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("task %d:\n batched %+v %v\n one by one %+v %v", id, got, err2, want, err1)
		}
	}
	closeOK(t, one)
	closeOK(t, batched)
}

// TestVersion1Migrated: a database written by schema version 1 (Parsl's
// tables as plain tables, and our old dashboard index) opens, keeps its
// rows and is migrated.
func TestVersion1Migrated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "monitoring.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	v1 := append(append([]string{}, parslDDL...),
		`CREATE TABLE parslgo_run (run_key INTEGER PRIMARY KEY, run_id TEXT NOT NULL UNIQUE)`,
		`CREATE TABLE parslgo_app (app_key INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)`,
		`CREATE TABLE parslgo_task_state (run_key INTEGER NOT NULL, task_id INTEGER NOT NULL, app_key INTEGER,
			state INTEGER, ts INTEGER, PRIMARY KEY (run_key, task_id)) WITHOUT ROWID`,
		`CREATE INDEX parslgo_task_state_state ON parslgo_task_state (run_key, state, task_id)`,
		`INSERT INTO parslgo_run VALUES (1, 'py')`,
		`INSERT INTO try VALUES (0, 0, 'py', '3', 'nid7', 'htex', '2026-01-01 10:00:01.250000', NULL,
			'2026-01-01 10:00:03.000000', NULL, NULL)`,
		`PRAGMA user_version = 1`)
	for _, q := range v1 {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, err := s.Task(ctx, "py", 0)
	if err != nil || d.FuncName != "legacy" || d.State != "exec_done" || len(d.Statuses) != 3 || len(d.Tries) != 1 ||
		d.Tries[0].Hostname != "nid7" || d.Tries[0].TimeLaunched.Format("15:04:05.000000") != "10:00:01.250000" {
		t.Errorf("task 0 = %+v, %v", d, err)
	}
	closeOK(t, s)
	db = rawDB(t, path)
	var ts string
	if err := db.QueryRow(`SELECT timestamp FROM status WHERE run_id = 'py' AND task_status_name = 'running_ended'`).Scan(&ts); err != nil ||
		ts != "2026-01-01 10:00:04.000000" {
		t.Errorf("status timestamp = %q, %v", ts, err)
	}
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != SchemaVersion {
		t.Errorf("user_version = %d, %v", v, err)
	}
}

// TestOtherDatabaseRejected: a SQLite file of another program is not
// taken over.
func TestOtherDatabaseRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(context.Background(), path, Options{})
	if !errors.Is(err, ErrNotMonitoring) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "customers") {
		t.Fatalf("Open(other) = %v", err)
	}
	goleak.VerifyNone(t)
}
