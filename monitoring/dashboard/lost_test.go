package dashboard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/monitoring/dashboard"
	"github.com/parsl-go/parsl/monitoring/store"
)

// TestLostRun: a run with no end whose driver's heartbeat is stale is shown
// as ended uncleanly, not live, on its pages and in the list, and its event
// stream ends at once saying so.
func TestLostRun(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "lost.db"))
	ctx := context.Background()
	now := time.Now()
	run := "lost-run"
	for _, r := range []store.Record{
		&store.Workflow{RunID: run, TimeBegan: now.Add(-time.Hour), Host: "h", User: "u", RunDir: "/tmp/x"},
		&store.Heartbeat{RunID: run, Time: now.Add(-30 * time.Minute), Period: 5 * time.Second},
		&store.Status{RunID: run, TaskID: 0, State: "running", Timestamp: now.Add(-40 * time.Minute)},
	} {
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
	for _, p := range []string{"/", "/workflow/lost-run/", "/workflow/lost-run/tasks", "/workflow/lost-run/gantt"} {
		code, body := get(t, srv, p)
		if code != 200 || !strings.Contains(body, "Ended uncleanly") || strings.Contains(body, "● live") ||
			strings.Contains(body, ">Running<") {
			t.Errorf("GET %s: status %d; want \"Ended uncleanly\", not running or live:\n%s", p, code, body)
		}
	}
	resp, err := http.Get(srv.URL + "/workflow/lost-run/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	evs := make(chan event, 16)
	go readEvents(t, resp.Body, evs)
	var last event
	for e := range evs {
		last = e
	}
	if last.name != "done" || last.data["lost"] != true {
		t.Errorf("last event %+v: want done, lost", last)
	}
}
