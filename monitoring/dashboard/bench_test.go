package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/parsl-go/parsl/monitoring/dashboard"
	"github.com/parsl-go/parsl/monitoring/store"
)

// benchDB builds (or reuses) a database with one run of n tasks in five
// apps, each task with a try and pending/launched/running/exec_done
// statuses (1% failed), each depending on the task before it in its app.
// PARSL_DASH_BENCH_DB keeps it between runs; PARSL_DASH_BENCH_TASKS sets n
// (default 1,000,000).
func benchDB(b *testing.B) (string, string, int64) {
	n := int64(1_000_000)
	if v := os.Getenv("PARSL_DASH_BENCH_TASKS"); v != "" {
		n, _ = strconv.ParseInt(v, 10, 64)
	}
	path := os.Getenv("PARSL_DASH_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench.db")
	}
	run := fmt.Sprintf("bench-%d", n)
	if _, err := os.Stat(path); err == nil {
		return path, run, n
	}
	ctx := context.Background()
	st, err := store.Open(ctx, path, store.Options{BatchSize: 20000, QueueSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour)
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(st.Enqueue(ctx, &store.Workflow{RunID: run, WorkflowName: "bench", TimeBegan: t0, Host: "h", User: "u", RunDir: "/r"}))
	apps := []string{"gen", "map", "reduce", "plot", "check"}
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		app := apps[i%5]
		dep := ""
		if i >= 5 {
			dep = strconv.FormatInt(i-5, 10)
		}
		final := "exec_done"
		if i%100 == 99 {
			final = "failed"
		}
		must(st.Enqueue(ctx, &store.Task{RunID: run, TaskID: i, FuncName: app, Depends: dep, TimeInvoked: at, TimeReturned: at.Add(30 * time.Millisecond)}))
		must(st.Enqueue(ctx, &store.Try{RunID: run, TaskID: i, Executor: "htex", Hostname: "node", TimeLaunched: at.Add(time.Millisecond),
			TimeRunning: at.Add(2 * time.Millisecond), TimeReturned: at.Add(30 * time.Millisecond)}))
		for j, s := range []string{"pending", "launched", "running", final} {
			must(st.Enqueue(ctx, &store.Status{RunID: run, TaskID: i, State: s, Timestamp: at.Add(time.Duration(j*10) * time.Millisecond)}))
		}
	}
	must(st.Enqueue(ctx, &store.Workflow{RunID: run, TimeBegan: t0, TimeCompleted: t0.Add(time.Duration(n) * time.Millisecond), Host: "h", User: "u", RunDir: "/r"}))
	must(st.Close(ctx))
	return path, run, n
}

// BenchmarkPages serves every page of a million-task run (issue target:
// each in at most 1 s).
func BenchmarkPages(b *testing.B) {
	path, run, n := benchDB(b)
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close(context.Background())
	wf := "/workflow/" + run
	for _, p := range []string{"/", wf + "/", wf + "/tasks", wf + fmt.Sprintf("/tasks?page=%d", n/200),
		wf + "/tasks?state=failed&page=50", wf + "/tasks?app=plot&page=1000", wf + fmt.Sprintf("/task/%d", n/2),
		wf + "/gantt", wf + fmt.Sprintf("/gantt?page=%d", n/400), wf + "/gantt?state=failed&page=20", wf + "/dag", wf + "/dag?group=state", wf + "/resources"} {
		b.Run(p[min(len(p), len(wf)):], func(b *testing.B) {
			for b.Loop() {
				// A new handler each time: its cache of finished runs would
				// make every visit after the first free.
				h, err := dashboard.New(dashboard.Options{Store: st})
				if err != nil {
					b.Fatal(err)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
				if rec.Code != 200 {
					b.Fatalf("GET %s: %d\n%.500s", p, rec.Code, rec.Body.String())
				}
			}
		})
	}
}
