package dashboard

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parsl-go/parsl/monitoring/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"stateClass": stateClass,
	"fmtTime":    fmtTime,
	"dur":        fmtDur,
	"add":        func(a, b int) int { return a + b },
	"bytes":      fmtBytes,
	"bytesi":     func(v int64) string { return fmtBytes(float64(v)) },
}).ParseFS(assets, "templates/*.html"))

// Page sizes: a page must cost the same on a run of any size.
const (
	tasksPerPage = 100
	ganttPerPage = 200
	// maxPage keeps page × page size far from overflowing an int (also
	// a 32-bit one) on its way to SQL: 10 million pages of 200 tasks
	// is two billion tasks. A page past the last one is refused after
	// the count, with the number of pages.
	maxPage     = 10_000_000
	dagDetail   = 300    // tasks up to which the DAG also draws every task
	sampleLimit = 50_000 // resource samples read for the charts
	tryLimit    = 10_000 // tries read for the utilisation chart
)

func (h *Handler) routes() {
	h.mux.Handle("GET /static/", http.FileServerFS(assets))
	h.mux.HandleFunc("GET /static/colors.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		_, _ = io.WriteString(w, colorsCSS)
	})
	h.mux.HandleFunc("GET /{$}", h.workflows)
	h.mux.HandleFunc("GET /workflow/{run}/{$}", h.workflow)
	h.mux.HandleFunc("GET /workflow/{run}/tasks", h.tasks)
	h.mux.HandleFunc("GET /workflow/{run}/task/{id}", h.task)
	h.mux.HandleFunc("GET /workflow/{run}/gantt", h.gantt)
	h.mux.HandleFunc("GET /workflow/{run}/dag", h.dag)
	h.mux.HandleFunc("GET /workflow/{run}/resources", h.resources)
	h.mux.HandleFunc("GET /workflow/{run}/events", h.events)
	h.mux.HandleFunc("GET /workflow/{run}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
	})
	if h.opts.Metrics != nil {
		h.mux.Handle("GET /metrics", h.opts.Metrics)
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("There is no page at %s.", r.URL.Path))
	})
}

// base is what every page template gets.
type base struct {
	Title string
	Run   *store.WorkflowInfo // nil on the workflows page
	Tab   string
	Live  bool
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		h.opts.Logger.Error("dashboard: rendering page", "page", name, "path", r.URL.Path, "err", err)
		http.Error(w, "dashboard: rendering "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = buf.WriteTo(w)
}

type errorPage struct {
	base
	Code    int
	Status  string
	Message string
}

// fail renders an error page: 404 for what does not exist, 400 for bad
// parameters, 500 for a database error (logged).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	// 503 is a refused event stream: a flood of them must not flood the
	// log too.
	if code >= 500 && code != http.StatusServiceUnavailable {
		h.opts.Logger.Error("dashboard: request failed", "path", r.URL.Path, "err", msg)
	}
	var buf bytes.Buffer
	p := errorPage{base: base{Title: http.StatusText(code)}, Code: code, Status: http.StatusText(code), Message: msg}
	if err := pages.ExecuteTemplate(&buf, "error.html", p); err != nil {
		http.Error(w, msg, code)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
}

// run looks up the workflow named in the path, rendering a 404 when there
// is none.
func (h *Handler) run(w http.ResponseWriter, r *http.Request) (store.WorkflowInfo, bool) {
	id := r.PathValue("run")
	wf, err := h.opts.Store.RunHeader(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("No workflow run %q in %s.", id, h.opts.Store.Path()))
		return wf, false
	}
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return wf, false
	}
	return wf, true
}

// intParam reads the whole number parameter name, def when absent; one
// that is not a number from lo to hi is an error that says so.
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("parameter %s=%q: want a whole number from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// ---- workflows ----

type workflowsPage struct {
	base
	Workflows []store.WorkflowInfo
	Now       time.Time
}

func (h *Handler) workflows(w http.ResponseWriter, r *http.Request) {
	wfs, err := h.opts.Store.ListWorkflows(r.Context())
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	slices.SortStableFunc(wfs, func(a, b store.WorkflowInfo) int { return b.TimeBegan.Compare(a.TimeBegan) })
	h.render(w, r, "workflows.html", workflowsPage{base: base{Title: "Workflows"}, Workflows: wfs, Now: time.Now()})
}

// ---- one workflow ----

type stateCount struct {
	State string
	N     int64
}

type workflowPage struct {
	base
	Total    int64
	Counts   []stateCount
	Progress []stateCount // done, failed, running, waiting, for the bar
	Bar      []barPart    // the same, placed on the bar
	Apps     []store.AppSummary
	States   []string // states present, in display order
}

// stateOrder is the order states are shown in: the life of a task.
var stateOrder = []string{"unsched", "pending", "launched", "running", "running_ended", "joining",
	"fail_retryable", "exec_done", "memo_done", "failed", "dep_fail"}

func orderStates(m map[string]int64) []stateCount {
	var out []stateCount
	for _, s := range stateOrder {
		if n, ok := m[s]; ok {
			out = append(out, stateCount{s, n})
		}
	}
	var rest []string
	for s := range m {
		if !slices.Contains(stateOrder, s) {
			rest = append(rest, s)
		}
	}
	slices.Sort(rest)
	for _, s := range rest {
		out = append(out, stateCount{s, m[s]})
	}
	return out
}

// progress folds state counts into the four parts of a progress bar.
func progress(m map[string]int64) []stateCount {
	var done, failed, running, waiting int64
	for s, n := range m {
		switch s {
		case "exec_done", "memo_done":
			done += n
		case "failed", "dep_fail":
			failed += n
		case "running", "running_ended", "launched":
			running += n
		default:
			waiting += n
		}
	}
	return []stateCount{{"done", done}, {"failed", failed}, {"running", running}, {"waiting", waiting}}
}

// barWidth is the width of the progress bar's viewBox: the parts are
// placed in it by attributes, as a style attribute would be refused by
// the Content-Security-Policy. dashboard.js places them the same way.
const barWidth = 1000

// barPart is one part of the progress bar.
type barPart struct {
	stateCount
	X, W string
}

func progressBar(parts []stateCount, total int64) []barPart {
	out := make([]barPart, len(parts))
	x := 0.0
	for i, p := range parts {
		w := barWidth * float64(p.N) / math.Max(1, float64(total))
		out[i] = barPart{p, fmt.Sprintf("%.2f", x), fmt.Sprintf("%.2f", w)}
		x += w
	}
	return out
}

func (h *Handler) workflow(w http.ResponseWriter, r *http.Request) {
	wf, ok := h.run(w, r)
	if !ok {
		return
	}
	// One scan of the run's index gives both tables: the state counts
	// are the per-app counts summed.
	apps, err := cached(h, runInfo{wf.RunID, wf.Running()}, "apps", func() ([]store.AppSummary, error) {
		return h.opts.Store.AppSummaries(r.Context(), wf.RunID)
	})
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	counts := map[string]int64{}
	for _, a := range apps {
		for st, n := range a.ByState {
			counts[st] += n
		}
	}
	p := workflowPage{base: base{Title: title(wf), Run: &wf, Tab: "summary", Live: wf.Running()},
		Counts: orderStates(counts), Progress: progress(counts), Apps: apps}
	for _, c := range p.Counts {
		p.Total += c.N
		p.States = append(p.States, c.State)
	}
	p.Bar = progressBar(p.Progress, p.Total)
	h.render(w, r, "workflow.html", p)
}

func title(wf store.WorkflowInfo) string {
	if wf.WorkflowName != "" {
		return wf.WorkflowName
	}
	return wf.RunID
}

// ---- tasks ----

// listView is what the task table and the Gantt chart show around their
// rows: the filter form and the pager.
type listView struct {
	Filter      store.TaskFilter
	Apps        []string
	States      []string
	Total       int64
	Page, Pages int
	Query       string // filter as a query string, for the pager links
}

type tasksPage struct {
	base
	listView
	Tasks []store.TaskRow
	First int64
}

func (h *Handler) filter(ctx context.Context, r *http.Request, run string) (store.TaskFilter, []string, error) {
	f := store.TaskFilter{App: r.URL.Query().Get("app"), State: r.URL.Query().Get("state")}
	names, err := h.opts.Store.AppNames(ctx)
	if err != nil {
		return f, nil, err
	}
	if f.State != "" && !slices.Contains(store.StateNames(), f.State) {
		return f, names, &badParam{fmt.Sprintf("unknown state %q; known: %s", f.State, strings.Join(store.StateNames(), ", "))}
	}
	return f, names, nil
}

type badParam struct{ msg string }

func (e *badParam) Error() string { return e.msg }

func (h *Handler) failErr(w http.ResponseWriter, r *http.Request, err error) {
	if bp, ok := errors.AsType[*badParam](err); ok {
		h.fail(w, r, http.StatusBadRequest, bp.msg)
		return
	}
	h.fail(w, r, http.StatusInternalServerError, err.Error())
}

func filterQuery(f store.TaskFilter) string {
	var parts []string
	if f.App != "" {
		parts = append(parts, "app="+template.URLQueryEscaper(f.App))
	}
	if f.State != "" {
		parts = append(parts, "state="+template.URLQueryEscaper(f.State))
	}
	return strings.Join(parts, "&")
}

// listPage is one page of a run's task list, as the task table and the
// Gantt chart show it.
type listPage struct {
	page   int
	filter store.TaskFilter
	apps   []string
	tasks  store.TaskPage
}

// listPage reads the page and filter parameters and the page of tasks they
// name, rendering the error page (and returning false) when they are bad.
func (h *Handler) listPage(w http.ResponseWriter, r *http.Request, run string, perPage int) (listPage, bool) {
	var lp listPage
	var err error
	if lp.page, err = intParam(r, "page", 1, 1, maxPage); err != nil {
		h.fail(w, r, http.StatusBadRequest, err.Error())
		return lp, false
	}
	if lp.filter, lp.apps, err = h.filter(r.Context(), r, run); err != nil {
		h.failErr(w, r, err)
		return lp, false
	}
	if lp.tasks, err = h.opts.Store.Tasks(r.Context(), run, lp.filter, lp.page-1, perPage); err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return lp, false
	}
	// Page 1 of nothing is an empty list, not an error.
	if pages := lp.view(perPage).Pages; lp.page > pages {
		h.fail(w, r, http.StatusBadRequest, fmt.Sprintf("parameter page=%d: there are %d pages of %d tasks (%d tasks match); "+
			"ask for page 1 to %d", lp.page, pages, perPage, lp.tasks.Total, pages))
		return lp, false
	}
	return lp, true
}

// view is the filter form and pager of lp, perPage tasks per page.
func (lp listPage) view(perPage int) listView {
	pages := int((lp.tasks.Total + int64(perPage) - 1) / int64(perPage))
	return listView{Filter: lp.filter, Apps: lp.apps, States: store.StateNames(), Total: lp.tasks.Total,
		Page: lp.page, Pages: max(pages, 1), Query: filterQuery(lp.filter)}
}

func (h *Handler) tasks(w http.ResponseWriter, r *http.Request) {
	wf, ok := h.run(w, r)
	if !ok {
		return
	}
	lp, ok := h.listPage(w, r, wf.RunID, tasksPerPage)
	if !ok {
		return
	}
	h.render(w, r, "tasks.html", tasksPage{base: base{Title: "Tasks · " + title(wf), Run: &wf, Tab: "tasks", Live: wf.Running()},
		listView: lp.view(tasksPerPage), Tasks: lp.tasks.Tasks, First: int64(lp.page-1)*tasksPerPage + 1})
}

// ---- one task ----

type taskPage struct {
	base
	Task      store.TaskDetail
	Statuses  []statusRow
	Memory    template.HTML
	CPU       template.HTML
	Samples   int
	StdoutURL string
}

type statusRow struct {
	store.Status
	Took time.Duration // until the next status
}

func (h *Handler) task(w http.ResponseWriter, r *http.Request) {
	wf, ok := h.run(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, fmt.Sprintf("task id %q is not a number", r.PathValue("id")))
		return
	}
	d, err := h.opts.Store.Task(r.Context(), wf.RunID, id)
	if errors.Is(err, store.ErrNotFound) {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("Workflow run %s has no task %d.", wf.RunID, id))
		return
	}
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	res, err := h.opts.Store.TaskResources(r.Context(), wf.RunID, id)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	p := taskPage{base: base{Title: fmt.Sprintf("Task %d · %s", id, title(wf)), Run: &wf, Tab: "tasks", Live: wf.Running()},
		Task: d, Samples: len(res)}
	for i, s := range d.Statuses {
		row := statusRow{Status: s}
		if i+1 < len(d.Statuses) {
			row.Took = d.Statuses[i+1].Timestamp.Sub(s.Timestamp)
		}
		p.Statuses = append(p.Statuses, row)
	}
	p.Memory, p.CPU = taskCharts(res)
	h.render(w, r, "task.html", p)
}

// ---- Gantt ----

type ganttPage struct {
	base
	listView
	Chart  template.HTML
	Legend []string
}

func (h *Handler) gantt(w http.ResponseWriter, r *http.Request) {
	wf, ok := h.run(w, r)
	if !ok {
		return
	}
	lp, ok := h.listPage(w, r, wf.RunID, ganttPerPage)
	if !ok {
		return
	}
	tasks := lp.tasks.Tasks
	ids := make([]int64, len(tasks))
	for i, t := range tasks {
		ids[i] = t.TaskID
	}
	sts, err := h.opts.Store.Statuses(r.Context(), wf.RunID, ids)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	h.render(w, r, "gantt.html", ganttPage{base: base{Title: "Gantt · " + title(wf), Run: &wf, Tab: "gantt", Live: wf.Running()},
		listView: lp.view(ganttPerPage), Chart: ganttChart(wf.RunID, tasks, sts, time.Now()), Legend: stateOrder})
}

// ---- DAG ----

type dagPage struct {
	base
	Legend []legendItem
	Group  string
	Chart  template.HTML
	Detail template.HTML
	Groups []store.DAGGroup
	Edges  []store.DAGEdge
	Stride int64
}

func (h *Handler) dag(w http.ResponseWriter, r *http.Request) {
	wf, ok := h.run(w, r)
	if !ok {
		return
	}
	group := r.URL.Query().Get("group")
	if group == "" {
		group = "app"
	}
	if group != "app" && group != "state" {
		h.fail(w, r, http.StatusBadRequest, fmt.Sprintf("group=%q: the DAG groups by app or by state", group))
		return
	}
	d, err := cached(h, runInfo{wf.RunID, wf.Running()}, "dag/"+group, func() (store.DAG, error) {
		return h.opts.Store.DAG(r.Context(), wf.RunID, group, dagDetail)
	})
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	legend := make([]legendItem, len(d.Groups))
	for i, g := range d.Groups {
		legend[i] = legendItem{Name: g.Name, Class: groupClass(group, g.Name, i)}
	}
	h.render(w, r, "dag.html", dagPage{base: base{Title: "DAG · " + title(wf), Run: &wf, Tab: "dag", Live: wf.Running()},
		Legend: legend, Group: group, Chart: dagChart(d, group), Detail: dagDetailChart(wf.RunID, d, group), Groups: d.Groups, Edges: d.Edges, Stride: d.Stride})
}

type legendItem struct{ Name, Class string }

// ---- resources ----

type resourcesPage struct {
	base
	Memory, CPU, Workers template.HTML
	MaxRSS, CPUTime      template.HTML
	Nodes                []store.Node
	Blocks               []store.Block
	Samples, Tries       int
	SampleStride         int64
	TryStride            int64
}

func (h *Handler) resources(w http.ResponseWriter, r *http.Request) {
	wf, ok := h.run(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	res, rstride, err := h.opts.Store.ResourceSample(ctx, wf.RunID, sampleLimit)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	tries, tstride, err := h.opts.Store.TryIntervals(ctx, wf.RunID, tryLimit)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	nodes, err := h.opts.Store.Nodes(ctx, wf.RunID)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	blocks, err := h.opts.Store.Blocks(ctx, wf.RunID)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	p := resourcesPage{base: base{Title: "Resources · " + title(wf), Run: &wf, Tab: "resources", Live: wf.Running()},
		Nodes: nodes, Blocks: blocks, Samples: len(res), Tries: len(tries), SampleStride: rstride, TryStride: tstride}
	p.Memory, p.CPU, p.MaxRSS, p.CPUTime = resourceCharts(res, rstride)
	p.Workers = workerChart(tries, tstride, nodes, wf)
	h.render(w, r, "resources.html", p)
}

// ---- live updates ----

const (
	// streamWriteTimeout is how long one event may take to reach a
	// client before its stream is dropped.
	streamWriteTimeout = 30 * time.Second
	// streamRetry is the Retry-After of a refused stream.
	streamRetry = 10 * time.Second
)

// liveState is the payload of an event: what the workflow page shows.
type liveState struct {
	Counts   map[string]int64 `json:"counts"`
	Progress []stateCount     `json:"progress"`
	Total    int64            `json:"total"`
	Running  bool             `json:"running"`
}

func (s stateCount) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"state": s.State, "n": s.N})
}

// events streams a workflow's counts as server-sent events, one "counts"
// event when they change (and at least every 15 s, which keeps proxies from
// closing the stream), and a "done" event when the workflow has ended.
//
// Streams are counted against Options.MaxStreams and MaxStreamsPerClient
// before anything is read; beyond them the answer is 503 with Retry-After.
// A stream ends, and frees its slot, when its client goes (the request's
// context), when the server closes, or when a write stalls for
// streamWriteTimeout (a client that stopped reading).
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	release, refused := h.openStream(r)
	if release == nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(streamRetry/time.Second)))
		h.fail(w, r, http.StatusServiceUnavailable, refused)
		return
	}
	defer release()
	wf, ok := h.run(w, r)
	if !ok {
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The server has no write timeout (streams are long), so each write
	// bounds itself; a server that cannot set deadlines (a recorder in
	// a test) just goes without.
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)) }
	tick := time.NewTicker(h.opts.LiveInterval)
	defer tick.Stop()
	var last []byte
	lastSent := time.Time{}
	for {
		counts, err := h.opts.Store.TaskCounts(r.Context(), wf.RunID)
		if err != nil {
			if r.Context().Err() == nil {
				h.opts.Logger.Warn("dashboard: live counts", "run", wf.RunID, "err", err)
			}
			return
		}
		cur, err := h.opts.Store.Workflow(r.Context(), wf.RunID)
		if err != nil {
			return
		}
		st := liveState{Counts: counts, Progress: progress(counts), Running: cur.Running()}
		for _, n := range counts {
			st.Total += n
		}
		b, _ := json.Marshal(st)
		if !bytes.Equal(b, last) || time.Since(lastSent) > 15*time.Second {
			deadline()
			if _, err := fmt.Fprintf(w, "event: counts\ndata: %s\n\n", b); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			last, lastSent = b, time.Now()
		}
		if !st.Running {
			deadline()
			// lost: the driver died without recording the end.
			fmt.Fprintf(w, "event: done\ndata: {\"lost\":%t}\n\n", cur.Lost)
			_ = rc.Flush()
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.quit:
			return
		case <-tick.C:
		}
	}
}

// ---- formatting ----

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.Format("2006-01-02 15:04:05.000")
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Minute:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func fmtBytes(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.1f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}
