package parsl_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/monitoring/store"
)

var (
	monFlakyCalls atomic.Int32
	monInc        = parsl.Register1("test.monitoring.inc", func(ctx context.Context, x int) (int, error) { return x + 1, nil })
	monFlaky      = parsl.Register0("test.monitoring.flaky", func(ctx context.Context) (int, error) {
		if monFlakyCalls.Add(1) == 1 {
			return 0, errors.New("first try fails")
		}
		return 1, nil
	})
	monFail = parsl.Register0("test.monitoring.fail", func(ctx context.Context) (int, error) {
		return 0, errors.New("always fails")
	})
)

// TestMonitoringRecordsRun runs a small workflow with monitoring on and
// reads the database back with the store: every task, its tries and its
// final state are there, in Parsl's tables.
func TestMonitoringRecordsRun(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "monitoring.db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dfk, err := parsl.Load(ctx, parsl.Config{RunDir: dir, Retries: 1,
		Monitoring: &parsl.MonitoringConfig{DBPath: db, WorkflowName: "mon-test"}})
	if err != nil {
		t.Fatal(err)
	}
	var fs []*parsl.Future[int]
	for i := 0; i < 50; i++ {
		fs = append(fs, monInc.Submit(dfk, parsl.Val(i)))
	}
	flaky := monFlaky.Submit(dfk)
	bad := monFail.Submit(dfk)
	after := monInc.Submit(dfk, bad)
	for _, f := range fs {
		if _, err := f.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := flaky.Get(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := after.Get(ctx); err == nil {
		t.Fatal("dependent of a failed task succeeded")
	}
	if err := dfk.Close(ctx); err != nil {
		t.Fatal(err)
	}

	st, err := store.Open(ctx, db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	wfs, err := st.ListWorkflows(ctx)
	if err != nil || len(wfs) != 1 {
		t.Fatalf("workflows %v, %v; want one", wfs, err)
	}
	w := wfs[0]
	if w.WorkflowName != "mon-test" || w.Running() || w.Tasks != 53 {
		t.Errorf("workflow %+v: want name mon-test, ended, 53 tasks", w)
	}
	if w.TasksCompletedCount != 51 || w.TasksFailedCount != 2 {
		t.Errorf("completed %d failed %d, want 51 and 2", w.TasksCompletedCount, w.TasksFailedCount)
	}
	counts, err := st.TaskCounts(ctx, w.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if counts["exec_done"] != 51 || counts["failed"] != 1 || counts["dep_fail"] != 1 {
		t.Errorf("state counts %v", counts)
	}
	d, err := st.Task(ctx, w.RunID, flaky.TaskID())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Tries) != 2 {
		t.Errorf("flaky task has %d tries, want 2: %+v", len(d.Tries), d.Tries)
	}
	var states []string
	for _, s := range d.Statuses {
		states = append(states, s.State)
	}
	// Statuses are ordered by timestamp, which has microsecond resolution:
	// a retry's pending and launched can share one, so compare as a multiset.
	want := map[string]int{"pending": 2, "launched": 2, "fail_retryable": 1, "exec_done": 1}
	got := map[string]int{}
	for _, s := range states {
		got[s]++
	}
	if len(states) != 6 || len(got) != len(want) {
		t.Fatalf("flaky task states %v, want %v", states, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("flaky task states %v, want %v", states, want)
		}
	}
	if states[len(states)-1] != "exec_done" {
		t.Errorf("last state %q, want exec_done", states[len(states)-1])
	}
}
