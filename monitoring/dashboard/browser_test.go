package dashboard_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/monitoring/dashboard"
)

// console keeps what a page wrote to the browser's console: the tests
// fail on a Content-Security-Policy violation or a script error, which
// would otherwise only leave a part of a page unstyled or dead.
type console struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// problems returns the messages since the last call that are errors or
// violations, but for the failed load of the page itself at errorPage (an
// error page the test asked for).
func (c *console) problems(errorPage string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if errorPage != "" && m.URL == errorPage && strings.HasPrefix(m.Text, "Failed to load resource") {
			continue
		}
		if m.Type == chromedp.ConsoleError || m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			out = append(out, m.String())
		}
	}
	c.msgs = nil
	return out
}

// check fails t for each problem the pages reported; errorPage as for
// problems.
func (c *console) check(t *testing.T, where, errorPage string) {
	t.Helper()
	for _, p := range c.problems(errorPage) {
		t.Errorf("%s: browser console: %s", where, p)
	}
}

// browser starts Debian's headless Chromium for a test, or skips the test
// when PARSL_TEST_BROWSER is not 1 (.ci/run installs Chromium and sets it).
func browser(t *testing.T) (context.Context, *console) {
	t.Helper()
	if os.Getenv("PARSL_TEST_BROWSER") != "1" {
		t.Skip("browser test: set PARSL_TEST_BROWSER=1 with Debian's chromium installed (apt-get install chromium) to run it")
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("PARSL_TEST_BROWSER=1 but no chromium on PATH: %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	con := &console{}
	done := make(chan struct{})
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		<-done        // the console reader ends with the context
		cancelAlloc() // waits for the browser process to exit
	})
	if err := chromedp.Do(ctx); err != nil {
		close(done)
		t.Fatalf("starting chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			con.mu.Lock()
			con.msgs = append(con.msgs, m)
			con.mu.Unlock()
		}
	}()
	return ctx, con
}

// artifacts is where screenshots go: PARSL_TEST_ARTIFACTS, or a temporary
// directory when it is unset.
func artifacts(t *testing.T) string {
	dir := os.Getenv("PARSL_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, "dashboard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", p, len(png))
}

// TestBrowserLive opens a running workflow's page in Chromium and watches
// the counts change through server-sent events, without reloading.
func TestBrowserLive(t *testing.T) {
	ctx, con := browser(t)
	dir := artifacts(t)
	run := t.TempDir()
	lctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gates["browser"] = make(chan struct{})
	dfk, err := parsl.Load(lctx, parsl.Config{RunDir: run,
		Monitoring: &parsl.MonitoringConfig{DBPath: filepath.Join(run, "m.db"), WorkflowName: "live-demo", DashboardAddr: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer dfk.Close(lctx)
	held := gate.Submit(dfk, parsl.Val("browser"))
	for i := range 10 {
		if _, err := gen.Submit(dfk, parsl.Val(i)).Get(lctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(dfk.DashboardURL()),
		chromedp.WaitVisible(`#counts`),
		chromedp.WaitVisible(`#live`),
	); err != nil {
		t.Fatalf("opening the live page: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.updates >= 1`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the live page got no event: %v", err)
	}
	before, err := chromedp.Run(ctx, chromedp.Text(`[data-count="exec_done"]`))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(before); n < 10 {
		t.Fatalf("live page shows %q exec_done tasks; want at least 10", before)
	}
	screenshot(t, ctx, dir, "live-1-before")
	for i := range 40 {
		gen.Submit(dfk, parsl.Val(100+i))
	}
	close(gates["browser"])
	if _, err := held.Get(lctx); err != nil {
		t.Fatal(err)
	}
	if err := dfk.Wait(lctx); err != nil {
		t.Fatal(err)
	}
	// 10 + 40 + the gate task, all done: the page must say so on its own.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('[data-count="exec_done"]').textContent === "51"`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		after, _ := chromedp.Run(ctx, chromedp.Text(`#counts`))
		t.Fatalf("the live page did not update to 51 done tasks (it showed %s before, now %q): %v", before, after, err)
	}
	// The bar followed the counts: done is the whole of it now.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('[data-part="done"]').getBBox().width > 990`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Errorf("the progress bar did not follow the counts: %v", err)
	}
	screenshot(t, ctx, dir, "live-2-after")
	con.check(t, "live page", "")
}

// TestBrowserPages opens every page of a finished run in Chromium, checks
// what each shows, and saves a screenshot of each.
func TestBrowserPages(t *testing.T) {
	ctx, con := browser(t)
	dir := artifacts(t)
	db := filepath.Join(t.TempDir(), "monitoring.db")
	run := runWorkflow(t, db)
	st := openStore(t, db)
	addResources(t, st, run)
	h, err := dashboard.New(dashboard.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	wf := srv.URL + "/workflow/" + run
	failedTask := findTask(t, ctx, wf+"/tasks?state=failed")
	pages := []struct {
		name, url, wait string
		want            []string
	}{
		{"01-workflows", srv.URL + "/", "#workflows", []string{"dash-test", "Completed"}},
		{"02-workflow", wf + "/", "#counts", []string{"exec_done", "failed", "dep_fail", "dash.combine"}},
		{"03-tasks", wf + "/tasks", "#tasks", []string{"dash.generate", "page 1 of 1"}},
		{"04-tasks-filtered", wf + "/tasks?app=dash.combine&state=exec_done", "#tasks", []string{"dash.combine", "10 tasks"}},
		{"05-task-failed", wf + "/task/" + failedTask, "#history", []string{"dash.broken", "broken app: input was bad", "failed"}},
		{"06-task-resources", wf + "/task/3", "#memory svg", []string{"memory (resident)", "CPU time used"}},
		{"07-gantt", wf + "/gantt", "#gantt svg", []string{"exec_done", "failed"}},
		{"08-dag-app", wf + "/dag", "#dag svg", []string{"dash.generate", "dash.combine", "Every task"}},
		{"09-dag-state", wf + "/dag?group=state", "#dag svg", []string{"exec_done", "dep_fail"}},
		{"10-resources", wf + "/resources", "#workers svg", []string{"worker utilisation", "memory in use", "node-a", "RUNNING"}},
		{"11-not-found", wf + "/task/424242", "#message", []string{"404", "has no task 424242"}},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			if err := chromedp.Do(ctx, chromedp.Navigate(p.url), chromedp.WaitVisible(p.wait)); err != nil {
				t.Fatalf("%s: %v", p.url, err)
			}
			text, err := chromedp.Run(ctx, chromedp.Text(`body`))
			if err != nil {
				t.Fatal(err)
			}
			svgs, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg").length`))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range p.want {
				if !strings.Contains(text, w) {
					t.Errorf("%s shows no %q:\n%.800s", p.url, w, text)
				}
			}
			if strings.Contains(p.wait, "svg") && svgs == 0 {
				t.Errorf("%s has no chart", p.url)
			}
			// The colours come from colors.css by class, as the
			// Content-Security-Policy refuses style attributes: a
			// state badge or legend key without one is transparent.
			unstyled, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Array.from(document.querySelectorAll(".state, .key, .count")).
				filter(function (e) { var s = getComputedStyle(e); return s.getPropertyValue("--c").trim() === "" }).length`))
			if err != nil {
				t.Fatal(err)
			}
			if unstyled > 0 {
				t.Errorf("%s: %d state badges, keys or counts have no colour", p.url, unstyled)
			}
			if p.name == "02-workflow" {
				w, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector('[data-part="done"]').getBBox().width`))
				if err != nil || w <= 0 {
					t.Errorf("the progress bar shows no done part (width %v, %v)", w, err)
				}
			}
			errorPage := ""
			if p.name == "11-not-found" {
				errorPage = p.url
			}
			con.check(t, p.url, errorPage)
			screenshot(t, ctx, dir, p.name)
		})
	}
}

// findTask returns the id of the first task listed on a tasks page.
func findTask(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(`#tasks`)); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	id, err := chromedp.Run(ctx, chromedp.Text(`#tasks tbody tr td a`))
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	if _, err := strconv.Atoi(strings.TrimSpace(id)); err != nil {
		t.Fatal(fmt.Errorf("no task id on %s: %q", url, id))
	}
	return strings.TrimSpace(id)
}
