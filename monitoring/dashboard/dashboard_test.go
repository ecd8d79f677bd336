package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/monitoring/dashboard"
	"github.com/parsl-go/parsl/monitoring/store"
)

func TestMain(m *testing.M) {
	parsl.Main()
	os.Exit(m.Run())
}

var (
	flakyCalls atomic.Int32
	gen        = parsl.Register1("dash.generate", func(ctx context.Context, n int) (int, error) {
		time.Sleep(time.Duration(n%5) * time.Millisecond)
		return n * 2, nil
	})
	combine = parsl.Register2("dash.combine", func(ctx context.Context, a, b int) (int, error) {
		time.Sleep(3 * time.Millisecond)
		return a + b, nil
	})
	flaky = parsl.Register0("dash.flaky", func(ctx context.Context) (int, error) {
		if flakyCalls.Add(1) == 1 {
			return 0, errors.New("first try fails: the disk was busy")
		}
		return 1, nil
	})
	broken = parsl.Register1("dash.broken", func(ctx context.Context, x int) (int, error) {
		return 0, errors.New("broken app: input was bad")
	})
	gate = parsl.Register1("dash.gate", func(ctx context.Context, ch string) (int, error) {
		<-gates[ch]
		return 1, nil
	})
	gates = map[string]chan struct{}{}
)

// runWorkflow runs a small diamond-shaped workflow with a retry and a
// failure, with monitoring into db, and returns its run id.
func runWorkflow(t *testing.T, db string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dfk, err := parsl.Load(ctx, parsl.Config{RunDir: filepath.Dir(db), Retries: 1,
		Monitoring: &parsl.MonitoringConfig{DBPath: db, WorkflowName: "dash-test"}})
	if err != nil {
		t.Fatal(err)
	}
	var gs []*parsl.Future[int]
	for i := range 20 {
		gs = append(gs, gen.Submit(dfk, parsl.Val(i)))
	}
	var cs []*parsl.Future[int]
	for i := 0; i+1 < len(gs); i += 2 {
		cs = append(cs, combine.Submit(dfk, gs[i], gs[i+1]))
	}
	f := flaky.Submit(dfk)
	b := broken.Submit(dfk, cs[0])
	dep := combine.Submit(dfk, b, f)
	for _, c := range cs {
		if _, err := c.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dep.Get(ctx); err == nil {
		t.Fatal("a task depending on a failed task succeeded")
	}
	if err := dfk.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, db)
	wfs, err := st.ListWorkflows(ctx)
	if err != nil || len(wfs) == 0 {
		t.Fatalf("workflows: %v %v", wfs, err)
	}
	return wfs[0].RunID
}

func openStore(t *testing.T, db string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	return st
}

// addResources writes the rows a worker pool would write (node, block,
// resource samples), so the resource page has something to draw whatever
// executor ran the workflow.
func addResources(t *testing.T, st *store.Store, run string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	recs := []store.Record{
		&store.Block{RunID: run, ExecutorLabel: "htex", BlockID: "0", JobID: "4242", Timestamp: now.Add(-3 * time.Second), Status: "PENDING"},
		&store.Block{RunID: run, ExecutorLabel: "htex", BlockID: "0", JobID: "4242", Timestamp: now.Add(-2 * time.Second), Status: "RUNNING"},
		&store.Node{RunID: run, Hostname: "node-a", UID: "mgr-1", BlockID: "0", CPUCount: 8, TotalMemory: 16 << 30,
			Active: true, WorkerCount: 4, PythonV: "go", Timestamp: now.Add(-2 * time.Second), LastHeartbeat: now},
	}
	for task := int64(0); task < 10; task++ {
		for i := range 5 {
			recs = append(recs, &store.Resource{RunID: run, TaskID: task, TryID: 0, Timestamp: now.Add(time.Duration(i*200) * time.Millisecond),
				MonitoringInterval: 0.2, PID: 1000 + task, TimeUser: float64(i) * 0.15, TimeSystem: float64(i) * 0.02,
				MemoryResident: float64((20 + task + int64(i)*3) << 20), MemoryVirtual: 1 << 30})
		}
	}
	for _, r := range recs {
		if err := st.Enqueue(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestPages renders every page of a finished workflow from a real
// database and checks what each must show, and that unknown runs, tasks
// and bad parameters get error pages with the right status.
func TestPages(t *testing.T) {
	db := filepath.Join(t.TempDir(), "monitoring.db")
	run := runWorkflow(t, db)
	st := openStore(t, db)
	addResources(t, st, run)
	h, err := dashboard.New(dashboard.Options{Store: st, Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "parsl_tasks 1\n")
	})})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	wf := "/workflow/" + run
	tests := []struct {
		path string
		code int
		want []string
	}{
		{"/", 200, []string{"dash-test", run, "Completed", `id="workflows"`}},
		{wf + "/", 200, []string{"dash-test", `data-count="exec_done"`, `data-count="failed"`, `data-count="dep_fail"`,
			"dash.generate", "dash.combine", "dash.broken", `id="progress"`}},
		{wf, 200, []string{`data-count="exec_done"`}}, // redirected to the slash form
		{wf + "/tasks", 200, []string{`id="tasks"`, "dash.generate", "page 1 of 1", "exec_done"}},
		{wf + "/tasks?app=dash.broken", 200, []string{"dash.broken", "1 tasks"}},
		{wf + "/tasks?state=failed", 200, []string{"dash.broken", "1 tasks"}},
		{wf + "/tasks?app=no.such.app", 200, []string{"No tasks match", "0 tasks"}},
		{wf + "/task/0", 200, []string{"Task 0", "dash.generate", `id="history"`, "exec_done", `id="tries"`, "memory (resident)"}},
		{wf + "/gantt", 200, []string{"<svg", `data-state="exec_done"`, `data-state="launched"`, "page 1 of 1"}},
		{wf + "/gantt?state=failed", 200, []string{`data-state="failed"`}},
		{wf + "/dag", 200, []string{"<svg", `data-group="dash.generate"`, `data-group="dash.combine"`, "Every task", `id="edges"`}},
		{wf + "/dag?group=state", 200, []string{`data-group="exec_done"`, `data-group="dep_fail"`}},
		{wf + "/resources", 200, []string{"worker utilisation", "memory in use", "peak memory per task", "node-a", "4242", "RUNNING"}},
		{"/metrics", 200, []string{"parsl_tasks 1"}},
		{"/static/dashboard.js", 200, []string{"EventSource"}},
		{"/static/style.css", 200, []string{".progress"}},
		// Errors.
		{"/workflow/no-such-run/", 404, []string{"404", "no-such-run"}},
		{"/workflow/no-such-run/tasks", 404, []string{"no-such-run"}},
		{"/workflow/no-such-run/events", 404, []string{"no-such-run"}},
		{wf + "/task/99999", 404, []string{"has no task 99999"}},
		{wf + "/task/abc", 400, []string{`abc&#34; is not a number`}},
		{wf + "/tasks?page=0", 400, []string{"page"}},
		{wf + "/tasks?page=x", 400, []string{"page"}},
		{wf + "/tasks?state=bogus", 400, []string{`unknown state &#34;bogus&#34;`}},
		{wf + "/dag?group=colour", 400, []string{"app or by state"}},
		{"/nothing/here", 404, []string{"/nothing/here"}},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(strings.TrimPrefix(tc.path, wf), "/", "_"), func(t *testing.T) {
			code, body := get(t, srv, tc.path)
			if code != tc.code {
				t.Fatalf("GET %s: status %d, want %d\n%s", tc.path, code, tc.code, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s: page lacks %q", tc.path, w)
				}
			}
			if strings.Contains(body, "ZgotmplZ") {
				t.Errorf("GET %s: the template refused a value (ZgotmplZ)", tc.path)
			}
		})
	}
}

// TestEveryStateHasAColour is Parsl's test_viz_colouring: a state without
// a colour would draw invisible bars.
func TestEveryStateHasAColour(t *testing.T) {
	for _, s := range store.StateNames() {
		if c := dashboard.StateColor(s); c == dashboard.UnknownColor {
			t.Errorf("state %q has no colour", s)
		}
	}
}

// TestPartialDatabase serves a run killed mid-way: tasks seen only through
// status rows, no workflow end, no task rows. Pages render what exists.
func TestPartialDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "partial.db")
	st := openStore(t, db)
	ctx := context.Background()
	now := time.Now()
	run := "killed-run"
	recs := []store.Record{&store.Workflow{RunID: run, TimeBegan: now.Add(-time.Minute), Host: "h", User: "u", RunDir: "/tmp/x"}}
	for i := range int64(5) {
		recs = append(recs, &store.Status{RunID: run, TaskID: i, State: "pending", Timestamp: now.Add(-30 * time.Second)},
			&store.Status{RunID: run, TaskID: i, State: "running", Timestamp: now.Add(-20 * time.Second)})
	}
	for _, r := range recs {
		if err := st.Enqueue(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	h, _ := dashboard.New(dashboard.Options{Store: st})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, p := range []string{"/", "/workflow/killed-run/", "/workflow/killed-run/tasks", "/workflow/killed-run/task/3",
		"/workflow/killed-run/gantt", "/workflow/killed-run/dag", "/workflow/killed-run/dag?group=state", "/workflow/killed-run/resources"} {
		code, body := get(t, srv, p)
		if code != 200 {
			t.Errorf("GET %s: status %d\n%s", p, code, body)
		}
		if !strings.Contains(body, "Running") {
			t.Errorf("GET %s: a run without an end should show as Running", p)
		}
	}
}

type event struct {
	name string
	data map[string]any
}

func readEvents(t *testing.T, body io.Reader, out chan<- event) {
	sc := bufio.NewScanner(body)
	var name string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var m map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m); err != nil {
				t.Errorf("event data %q: %v", line, err)
			}
			out <- event{name, m}
		}
	}
	close(out)
}

// TestLiveDashboard runs the dashboard inside a driver
// (MonitoringConfig.DashboardAddr) and follows a workflow through the event
// stream: counts grow as tasks are submitted and finish, and /metrics is on
// the same port.
func TestLiveDashboard(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	gates["live"] = make(chan struct{})
	dfk, err := parsl.Load(ctx, parsl.Config{RunDir: dir,
		Monitoring: &parsl.MonitoringConfig{DBPath: filepath.Join(dir, "m.db"), WorkflowName: "live", DashboardAddr: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer dfk.Close(ctx)
	url := dfk.DashboardURL()
	if url == "" || dfk.DashboardAddr() == nil {
		t.Fatal("no dashboard URL with DashboardAddr set")
	}
	held := gate.Submit(dfk, parsl.Val("live"))
	for i := range 5 {
		if _, err := gen.Submit(dfk, parsl.Val(i)).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(url + "events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("events: status %d, content type %q\n%s", resp.StatusCode, ct, b)
	}
	evs := make(chan event, 16)
	go readEvents(t, resp.Body, evs)
	total := func(e event) float64 { v, _ := e.data["total"].(float64); return v }
	first := <-evs
	if first.name != "counts" || first.data["running"] != true {
		t.Fatalf("first event %+v: want counts of a running workflow", first)
	}
	for i := range 5 {
		gen.Submit(dfk, parsl.Val(100+i))
	}
	close(gates["live"])
	if _, err := held.Get(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e, ok := <-evs:
			if !ok {
				t.Fatal("event stream ended before the new tasks showed")
			}
			if total(e) >= total(first)+5 {
				goto metrics
			}
		case <-ctx.Done():
			t.Fatal("no event showed the new tasks")
		}
	}
metrics:
	code, body := getURL(t, url+"../../metrics")
	if code != 200 || !strings.Contains(body, "parsl_tasks") {
		t.Errorf("/metrics on the dashboard: %d\n%.300s", code, body)
	}
	code, body = getURL(t, url)
	if code != 200 || !strings.Contains(body, `data-live="1"`) {
		t.Errorf("live workflow page: %d, want data-live", code)
	}
	if err := dfk.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The stream ends with the driver.
	for range evs {
	}
}

func getURL(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBusyPort: a dashboard address in use fails Load with an error that
// names it, before any task runs.
func TestBusyPort(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	_, err := parsl.Load(context.Background(), parsl.Config{RunDir: dir,
		Monitoring: &parsl.MonitoringConfig{DBPath: filepath.Join(dir, "m.db"), DashboardAddr: addr}})
	var le *dashboard.ListenError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Load with a busy dashboard port: %v; want a ListenError naming %s", err, addr)
	}
	_, err = parsl.Load(context.Background(), parsl.Config{RunDir: dir,
		Monitoring: &parsl.MonitoringConfig{DBPath: parsl.NoDatabase, DashboardAddr: "127.0.0.1:0"}})
	if err == nil || !strings.Contains(err.Error(), "DashboardAddr needs the monitoring database") {
		t.Fatalf("DashboardAddr without a database: %v", err)
	}
}
