package dashboard

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/parsl-go/parsl/monitoring/store"
)

// The charts are SVG written here rather than drawn by a JavaScript
// library: nothing is loaded from the internet, the pages print and
// screenshot as they are, and a chart's cost is bounded by its data, which
// the handlers bound.

// stateColors gives every Parsl task state a colour (Parsl's dashboard
// requires the same): waiting states grey and blue, running ones amber,
// success green, failure red.
var stateColors = map[string]string{
	"unsched":        "#9e9e9e",
	"pending":        "#b0bec5",
	"launched":       "#64b5f6",
	"running":        "#ffb300",
	"running_ended":  "#ffd54f",
	"joining":        "#ba68c8",
	"fail_retryable": "#ff8a65",
	"exec_done":      "#43a047",
	"memo_done":      "#26a69a",
	"failed":         "#e53935",
	"dep_fail":       "#8d6e63",
	// Progress-bar parts.
	"done":    "#43a047",
	"waiting": "#b0bec5",
}

// unknownColor is for a state written by a newer version.
const unknownColor = "#616161"

func stateColor(s string) string {
	if c, ok := stateColors[s]; ok {
		return c
	}
	return unknownColor
}

// palette colours groups that are not states (apps, hosts).
var palette = []string{"#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00acc1", "#e53935", "#6d4c41", "#3949ab", "#c0ca33", "#d81b60"}

type svg struct{ strings.Builder }

func (s *svg) f(format string, args ...any) { fmt.Fprintf(&s.Builder, format, args...) }

func esc(s string) string { return html.EscapeString(s) }

// ---- Gantt ----

// ganttChart draws one bar per task, split into the intervals between its
// status rows, each coloured by the state entered. A task's last state
// runs to now if it is not final, else it is a short tick.
func ganttChart(runID string, tasks []store.TaskRow, sts []store.Status, now time.Time) template.HTML {
	if len(tasks) == 0 {
		return `<p class="empty">No tasks match.</p>`
	}
	byTask := map[int64][]store.Status{}
	var t0, t1 time.Time
	for _, s := range sts {
		byTask[s.TaskID] = append(byTask[s.TaskID], s)
		if t0.IsZero() || s.Timestamp.Before(t0) {
			t0 = s.Timestamp
		}
		if s.Timestamp.After(t1) {
			t1 = s.Timestamp
		}
	}
	live := false
	for _, t := range tasks {
		if !final(t.State) {
			live = true
		}
	}
	if live && now.After(t1) {
		t1 = now
	}
	span := t1.Sub(t0).Seconds()
	if span <= 0 {
		span = 1e-3
	}
	const left, width, row, top = 70, 900, 14, 24
	h := top + row*len(tasks) + 10
	var b svg
	b.f(`<svg class="chart gantt" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="Gantt chart of task states">`,
		left+width+40, h, left+width+40, h)
	for i := 0; i <= 5; i++ {
		x := left + width*i/5
		b.f(`<line x1="%d" y1="%d" x2="%d" y2="%d" class="grid"/><text x="%d" y="14" class="axis" text-anchor="middle">%s</text>`,
			x, top-4, x, h-10, x, fmtSeconds(span*float64(i)/5))
	}
	for i, t := range tasks {
		y := top + i*row
		b.f(`<a href="/workflow/%s/task/%d"><text x="%d" y="%d" class="label" text-anchor="end">%d</text></a>`,
			template.URLQueryEscaper(runID), t.TaskID, left-6, y+row-3, t.TaskID)
		ss := byTask[t.TaskID]
		for j, s := range ss {
			end := t1
			if j+1 < len(ss) {
				end = ss[j+1].Timestamp
			} else if final(s.State) {
				end = s.Timestamp
			}
			x := left + int(float64(width)*s.Timestamp.Sub(t0).Seconds()/span)
			w := max(int(float64(width)*end.Sub(s.Timestamp).Seconds()/span), 2)
			b.f(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s" data-state="%s"><title>task %d try %d: %s at %s for %s</title></rect>`,
				x, y+1, w, row-3, stateColor(s.State), esc(s.State), t.TaskID, s.TryID, esc(s.State),
				s.Timestamp.Format("15:04:05.000"), fmtDur(end.Sub(s.Timestamp)))
		}
	}
	b.f(`</svg>`)
	return template.HTML(b.String())
}

func final(state string) bool {
	switch state {
	case "exec_done", "memo_done", "failed", "dep_fail":
		return true
	}
	return false
}

func fmtSeconds(s float64) string {
	switch {
	case s == 0:
		return "0"
	case s < 1:
		return fmt.Sprintf("%.0f ms", s*1000)
	case s < 120:
		return fmt.Sprintf("%.1f s", s)
	default:
		return fmt.Sprintf("%.1f min", s/60)
	}
}

// ---- DAG ----

// layers assigns each group a column by longest path from a source,
// ignoring edges that close a cycle and self-loops (grouping by state
// makes both common).
func layers(groups []store.DAGGroup, edges []store.DAGEdge) map[string]int {
	out := map[string][]string{}
	for _, e := range edges {
		if e.From != e.To {
			out[e.From] = append(out[e.From], e.To)
		}
	}
	// Depth-first order over a DAG made by dropping back edges.
	const white, grey, black = 0, 1, 2
	colour := map[string]int{}
	var order []string
	keep := map[[2]string]bool{}
	var visit func(string)
	visit = func(n string) {
		colour[n] = grey
		for _, m := range out[n] {
			switch colour[m] {
			case white:
				keep[[2]string{n, m}] = true
				visit(m)
			case black:
				keep[[2]string{n, m}] = true
			}
		}
		colour[n] = black
		order = append(order, n)
	}
	for _, g := range groups {
		if colour[g.Name] == white {
			visit(g.Name)
		}
	}
	layer := map[string]int{}
	slices.Reverse(order)
	for _, n := range order {
		for _, m := range out[n] {
			if keep[[2]string{n, m}] && layer[m] < layer[n]+1 {
				layer[m] = layer[n] + 1
			}
		}
	}
	return layer
}

// stateClass is the class that colours s (a rule of colorsCSS): the
// pages carry no style attributes, which the Content-Security-Policy
// would refuse. A state of a newer version has none and takes the
// default colour.
func stateClass(s string) string {
	if _, ok := stateColors[s]; ok {
		return "c-" + s
	}
	return "c-unknown"
}

// groupClass is the class of a DAG group's colour, as groupColor.
func groupClass(group, name string, i int) string {
	if group == "state" {
		return stateClass(name)
	}
	return fmt.Sprintf("p%d", i%len(palette))
}

// colorsCSS is /static/colors.css: a class per state and palette colour,
// written from the tables above so that they stay the one source.
var colorsCSS = func() string {
	var b strings.Builder
	fmt.Fprintf(&b, "/* Generated by the dashboard from its colour tables. */\n.state, .key, .count, .part { --c: %s; }\n", unknownColor)
	states := make([]string, 0, len(stateColors))
	for s := range stateColors {
		states = append(states, s)
	}
	slices.Sort(states)
	for _, s := range states {
		fmt.Fprintf(&b, ".c-%s { --c: %s; }\n", s, stateColors[s])
	}
	for i, c := range palette {
		fmt.Fprintf(&b, ".p%d { --c: %s; }\n", i, c)
	}
	return b.String()
}()

func groupColor(group, name string, i int) string {
	if group == "state" {
		return stateColor(name)
	}
	return palette[i%len(palette)]
}

// dagChart draws the grouped DAG: a box per group sized by its number of
// tasks, arrows labelled with the number of dependencies between groups.
// A million tasks in ten apps is ten boxes.
func dagChart(d store.DAG, group string) template.HTML {
	if len(d.Groups) == 0 {
		return `<p class="empty">No tasks yet.</p>`
	}
	layer := layers(d.Groups, d.Edges)
	cols := map[int][]int{}
	maxLayer := 0
	for i, g := range d.Groups {
		l := layer[g.Name]
		cols[l] = append(cols[l], i)
		maxLayer = max(maxLayer, l)
	}
	maxRows := 0
	for _, c := range cols {
		maxRows = max(maxRows, len(c))
	}
	const colW, rowH, boxW, boxH = 230, 90, 170, 50
	w, h := (maxLayer+1)*colW+40, maxRows*rowH+40
	pos := map[string][2]int{}
	for l, idx := range cols {
		for r, i := range idx {
			pos[d.Groups[i].Name] = [2]int{30 + l*colW, 30 + r*rowH + (maxRows-len(idx))*rowH/2}
		}
	}
	var b svg
	b.f(`<svg class="chart dag" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="task dependency graph grouped by %s">`, w, h, w, h, group)
	b.f(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#607d8b"/></marker></defs>`)
	for _, e := range d.Edges {
		p, q := pos[e.From], pos[e.To]
		sw := 1 + math.Log10(float64(e.Count))
		if e.From == e.To {
			x, y := p[0]+boxW/2, p[1]
			b.f(`<path d="M%d,%d c-30,-35 60,-35 30,0" fill="none" stroke="#607d8b" stroke-width="%.1f" marker-end="url(#arrow)"/><text x="%d" y="%d" class="edge">%d</text>`,
				x-15, y, sw, x+22, y-22, e.Count)
			continue
		}
		x1, y1, x2, y2 := p[0]+boxW, p[1]+boxH/2, q[0], q[1]+boxH/2
		if q[0] <= p[0] { // a back edge: go round underneath
			x1, x2 = p[0]+boxW/2, q[0]+boxW/2
			y1, y2 = p[1]+boxH, q[1]+boxH
			b.f(`<path d="M%d,%d C%d,%d %d,%d %d,%d" fill="none" stroke="#90a4ae" stroke-dasharray="4 3" stroke-width="%.1f" marker-end="url(#arrow)"/>`,
				x1, y1, x1, y1+40, x2, y2+40, x2, y2, sw)
			b.f(`<text x="%d" y="%d" class="edge">%d</text>`, (x1+x2)/2, max(y1, y2)+34, e.Count)
			continue
		}
		b.f(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#607d8b" stroke-width="%.1f" marker-end="url(#arrow)"/>`, x1, y1, x2, y2, sw)
		b.f(`<text x="%d" y="%d" class="edge">%d</text>`, (x1+x2)/2, (y1+y2)/2-4, e.Count)
	}
	for i, g := range d.Groups {
		p := pos[g.Name]
		name := g.Name
		if name == "" {
			name = "(unknown)"
		}
		b.f(`<g class="node" data-group="%s"><rect x="%d" y="%d" width="%d" height="%d" rx="8" fill="%s" fill-opacity="0.85"/>`,
			esc(g.Name), p[0], p[1], boxW, boxH, groupColor(group, g.Name, i))
		b.f(`<text x="%d" y="%d" text-anchor="middle" class="nodename">%s</text><text x="%d" y="%d" text-anchor="middle" class="nodecount">%d tasks</text></g>`,
			p[0]+boxW/2, p[1]+21, esc(trunc(name, 22)), p[0]+boxW/2, p[1]+39, g.Tasks)
	}
	b.f(`</svg>`)
	return template.HTML(b.String())
}

func trunc(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// dagDetailChart draws a small run's tasks one by one, in columns by depth,
// coloured by group; nothing for a large run, where the grouped chart is
// the readable one.
func dagDetailChart(runID string, d store.DAG, group string) template.HTML {
	if len(d.Tasks) == 0 {
		return ""
	}
	depth := map[int64]int{}
	cols := map[int][]store.DAGTask{}
	maxD := 0
	for _, t := range d.Tasks { // tasks are in id order, and a task's dependencies have smaller ids
		dd := 0
		for _, p := range t.Depends {
			if depth[p]+1 > dd {
				dd = depth[p] + 1
			}
		}
		depth[t.ID] = dd
		cols[dd] = append(cols[dd], t)
		maxD = max(maxD, dd)
	}
	maxRows := 0
	for _, c := range cols {
		maxRows = max(maxRows, len(c))
	}
	groupIdx := map[string]int{}
	for i, g := range d.Groups {
		groupIdx[g.Name] = i
	}
	const colW, rowH, r = 80, 26, 9
	w, h := (maxD+1)*colW+40, maxRows*rowH+30
	pos := map[int64][2]int{}
	for c, ts := range cols {
		for i, t := range ts {
			pos[t.ID] = [2]int{30 + c*colW, 20 + i*rowH + (maxRows-len(ts))*rowH/2}
		}
	}
	var b svg
	b.f(`<svg class="chart dagdetail" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="every task and its dependencies">`, w, h, w, h)
	for _, t := range d.Tasks {
		q := pos[t.ID]
		for _, dep := range t.Depends {
			p := pos[dep]
			b.f(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#b0bec5"/>`, p[0]+r, p[1], q[0]-r, q[1])
		}
	}
	for _, t := range d.Tasks {
		p := pos[t.ID]
		g := t.App
		if group == "state" {
			g = t.State
		}
		b.f(`<a href="/workflow/%s/task/%d"><circle cx="%d" cy="%d" r="%d" fill="%s"><title>task %d %s (%s)</title></circle></a>`,
			template.URLQueryEscaper(runID), t.ID, p[0], p[1], r, groupColor(group, g, groupIdx[g]), t.ID, esc(t.App), esc(t.State))
	}
	b.f(`</svg>`)
	return template.HTML(b.String())
}

// ---- line charts and histograms ----

type series struct {
	Name   string
	Color  string
	Points [][2]float64 // x (seconds from start), y
}

// lineChart draws series against a shared x axis in seconds.
func lineChart(label, unit string, ss []series, format func(float64) string) template.HTML {
	var xmax, ymax float64
	n := 0
	for _, s := range ss {
		for _, p := range s.Points {
			xmax, ymax = math.Max(xmax, p[0]), math.Max(ymax, p[1])
			n++
		}
	}
	if n == 0 {
		return template.HTML(`<p class="empty">No samples for ` + esc(label) + `.</p>`)
	}
	if xmax == 0 {
		xmax = 1
	}
	if ymax == 0 {
		ymax = 1
	}
	ymax *= 1.1
	const left, width, top, height = 80, 760, 26, 200
	var b svg
	b.f(`<svg class="chart line" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		left+width+150, top+height+40, left+width+150, top+height+40, esc(label))
	b.f(`<text x="%d" y="14" class="title">%s</text>`, left, esc(label))
	for i := 0; i <= 4; i++ {
		y := top + height - height*i/4
		b.f(`<line x1="%d" y1="%d" x2="%d" y2="%d" class="grid"/><text x="%d" y="%d" class="axis" text-anchor="end">%s</text>`,
			left, y, left+width, y, left-6, y+4, format(ymax*float64(i)/4))
		x := left + width*i/4
		b.f(`<text x="%d" y="%d" class="axis" text-anchor="middle">%s</text>`, x, top+height+16, fmtSeconds(xmax*float64(i)/4))
	}
	b.f(`<text x="%d" y="%d" class="axis" text-anchor="middle">time since start (%s)</text>`, left+width/2, top+height+34, esc(unit))
	for i, s := range ss {
		var pts strings.Builder
		for _, p := range s.Points {
			fmt.Fprintf(&pts, "%.1f,%.1f ", left+float64(width)*p[0]/xmax, top+float64(height)*(1-p[1]/ymax))
		}
		b.f(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.Color, pts.String())
		if len(s.Points) == 1 {
			p := s.Points[0]
			b.f(`<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, left+float64(width)*p[0]/xmax, top+float64(height)*(1-p[1]/ymax), s.Color)
		}
		b.f(`<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" class="legend">%s</text>`,
			left+width+12, top+i*16, s.Color, left+width+26, top+i*16+9, esc(trunc(s.Name, 18)))
	}
	b.f(`</svg>`)
	return template.HTML(b.String())
}

// histogram draws the distribution of values in bins.
func histogram(label string, vals []float64, format func(float64) string, color string) template.HTML {
	if len(vals) == 0 {
		return template.HTML(`<p class="empty">No samples for ` + esc(label) + `.</p>`)
	}
	lo, hi := slices.Min(vals), slices.Max(vals)
	const bins = 20
	if hi == lo {
		hi = lo + 1
	}
	var counts [bins]int
	for _, v := range vals {
		i := min(int(float64(bins)*(v-lo)/(hi-lo)), bins-1)
		counts[i]++
	}
	peak := slices.Max(counts[:])
	const left, width, top, height = 60, 600, 26, 160
	var b svg
	b.f(`<svg class="chart hist" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		left+width+20, top+height+40, left+width+20, top+height+40, esc(label))
	b.f(`<text x="%d" y="14" class="title">%s</text>`, left, esc(label))
	bw := width / bins
	for i, c := range counts {
		hgt := height * c / max(peak, 1)
		b.f(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s – %s: %d tasks</title></rect>`,
			left+i*bw+1, top+height-hgt, bw-2, hgt, color, format(lo+(hi-lo)*float64(i)/bins), format(lo+(hi-lo)*float64(i+1)/bins), c)
	}
	b.f(`<text x="%d" y="%d" class="axis" text-anchor="end">%d</text>`, left-6, top+8, peak)
	b.f(`<text x="%d" y="%d" class="axis">%s</text><text x="%d" y="%d" class="axis" text-anchor="end">%s</text>`,
		left, top+height+16, format(lo), left+width, top+height+16, format(hi))
	b.f(`<text x="%d" y="%d" class="axis" text-anchor="middle">tasks by %s</text>`, left+width/2, top+height+34, esc(label))
	b.f(`</svg>`)
	return template.HTML(b.String())
}

func fmtCPU(v float64) string { return fmt.Sprintf("%.2f", v) }
func fmtSec(v float64) string { return fmtSeconds(v) }
func fmtInt(v float64) string { return fmt.Sprintf("%.0f", v) }

// taskCharts draws one task's memory and CPU use over time, a line per try.
func taskCharts(res []store.Resource) (mem, cpu template.HTML) {
	if len(res) == 0 {
		return `<p class="empty">No resource samples for this task. Resource monitoring samples tasks run by worker pools (htex).</p>`, ""
	}
	t0 := res[0].Timestamp
	for _, r := range res {
		if r.Timestamp.Before(t0) {
			t0 = r.Timestamp
		}
	}
	var ms, cs []series
	tryIdx := map[int64]int{}
	for _, r := range res {
		i, ok := tryIdx[r.TryID]
		if !ok {
			i = len(ms)
			tryIdx[r.TryID] = i
			c := palette[i%len(palette)]
			ms = append(ms, series{Name: fmt.Sprintf("try %d RSS", r.TryID), Color: c})
			cs = append(cs, series{Name: fmt.Sprintf("try %d CPU", r.TryID), Color: c})
		}
		x := r.Timestamp.Sub(t0).Seconds()
		ms[i].Points = append(ms[i].Points, [2]float64{x, r.MemoryResident})
		cs[i].Points = append(cs[i].Points, [2]float64{x, r.TimeUser + r.TimeSystem})
	}
	return lineChart("memory (resident)", "s", ms, fmtBytes), lineChart("CPU time used (user+system, s)", "s", cs, fmtCPU)
}

// resourceCharts draws the run's memory and CPU use over time (the sum
// over tasks of their latest sample, in time buckets), and the
// distributions of each task's peak memory and CPU time.
func resourceCharts(res []store.Resource, stride int64) (mem, cpu, maxRSS, cpuTime template.HTML) {
	if len(res) == 0 {
		e := template.HTML(`<p class="empty">No resource samples in this run. Worker pools (htex) sample each task's processes while it runs.</p>`)
		return e, "", "", ""
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Timestamp.Before(res[j].Timestamp) })
	t0, t1 := res[0].Timestamp, res[len(res)-1].Timestamp
	span := t1.Sub(t0).Seconds()
	const buckets = 120
	bucket := func(t time.Time) int {
		if span <= 0 {
			return 0
		}
		return min(int(float64(buckets)*t.Sub(t0).Seconds()/span), buckets-1)
	}
	type key struct{ task, try int64 }
	last := map[key]store.Resource{}
	peak := map[key]float64{}
	cpuT := map[key]float64{}
	memB := make([]float64, buckets)
	cpuB := make([]float64, buckets)
	seen := make([]bool, buckets)
	for _, r := range res {
		k := key{r.TaskID, r.TryID}
		b := bucket(r.Timestamp)
		prev, had := last[k]
		if had {
			dt := r.Timestamp.Sub(prev.Timestamp).Seconds()
			if dt > 0 {
				cpuB[b] += (r.TimeUser + r.TimeSystem - prev.TimeUser - prev.TimeSystem) / dt
			}
			// Memory: replace the task's previous contribution in this bucket.
			if bucket(prev.Timestamp) == b {
				memB[b] -= prev.MemoryResident
			}
		}
		memB[b] += r.MemoryResident
		seen[b] = true
		last[k] = r
		peak[k] = math.Max(peak[k], r.MemoryResident)
		cpuT[k] = math.Max(cpuT[k], r.TimeUser+r.TimeSystem)
	}
	scale := float64(stride)
	var mp, cp [][2]float64
	for i := range buckets {
		if !seen[i] {
			continue
		}
		x := span * float64(i) / buckets
		mp = append(mp, [2]float64{x, memB[i] * scale})
		cp = append(cp, [2]float64{x, math.Max(cpuB[i], 0) * scale})
	}
	note := ""
	if stride > 1 {
		note = fmt.Sprintf(" (every %d-th task, scaled)", stride)
	}
	mem = lineChart("memory in use (sum of task RSS)"+note, "s", []series{{Name: "RSS", Color: "#1e88e5", Points: mp}}, fmtBytes)
	cpu = lineChart("CPU in use (cores busy)"+note, "s", []series{{Name: "CPU", Color: "#fb8c00", Points: cp}}, fmtCPU)
	var pv, cv []float64
	for k, v := range peak {
		pv = append(pv, v)
		cv = append(cv, cpuT[k])
	}
	maxRSS = histogram("peak memory per task", pv, fmtBytes, "#1e88e5")
	cpuTime = histogram("CPU time per task", cv, fmtSec, "#fb8c00")
	return mem, cpu, maxRSS, cpuTime
}

// workerChart draws how many tries ran at each moment against the workers
// the run's nodes offered: worker utilisation.
func workerChart(tries []store.TryInterval, stride int64, nodes []store.Node, wf store.WorkflowInfo) template.HTML {
	if len(tries) == 0 {
		return `<p class="empty">No tries have started.</p>`
	}
	t0 := tries[0].Running
	t1 := t0
	for _, t := range tries {
		if t.Running.Before(t0) {
			t0 = t.Running
		}
		end := t.Ended
		if end.IsZero() {
			end = time.Now()
			if !wf.TimeCompleted.IsZero() {
				end = wf.TimeCompleted
			}
		}
		if end.After(t1) {
			t1 = end
		}
	}
	span := t1.Sub(t0).Seconds()
	const buckets = 120
	busy := make([]float64, buckets+1)
	if span <= 0 {
		span = 1e-3
	}
	for _, t := range tries {
		end := t.Ended
		if end.IsZero() {
			end = t1
		}
		// Time-weighted: each bucket gets the fraction of it the try ran.
		a := t.Running.Sub(t0).Seconds() / span * buckets
		z := end.Sub(t0).Seconds() / span * buckets
		for i := int(a); i <= int(z) && i < buckets; i++ {
			lo, hi := math.Max(a, float64(i)), math.Min(z, float64(i+1))
			if hi > lo {
				busy[i] += hi - lo
			}
		}
	}
	var bp [][2]float64
	for i := range buckets {
		bp = append(bp, [2]float64{span * (float64(i) + 0.5) / buckets, busy[i] * float64(stride)})
	}
	ss := []series{{Name: "busy workers", Color: "#43a047", Points: bp}}
	if len(nodes) > 0 {
		// Latest row per manager (uid) is its worker count.
		latest := map[string]store.Node{}
		for _, n := range nodes {
			latest[n.UID] = n
		}
		var total float64
		for _, n := range latest {
			total += float64(n.WorkerCount)
		}
		ss = append(ss, series{Name: "workers", Color: "#9e9e9e", Points: [][2]float64{{0, total}, {span, total}}})
	}
	return lineChart("worker utilisation", "s", ss, fmtInt)
}
