package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/executor/threads"
	"github.com/parsl-go/parsl/monitoring/store"
)

// perfOptions are the flags of "parsl perf".
type perfOptions struct {
	executor       string
	tasks          string
	repeat         int
	threads        int
	latencySamples int
	heapTasks      int
	json           bool
	runDir         string
	noTLS          bool
	prefetch       int
	monitoring     string
}

func newPerfCmd() *cobra.Command {
	o := &perfOptions{}
	cmd := &cobra.Command{
		Use:   "perf",
		Short: "Measure task throughput, latency and memory (the counterpart of parsl-perf)",
		Long: `perf runs a no-op app that returns 7 and reports:

  end-to-end tasks/s   N tasks submitted, then every result fetched: N / (first submit → last Get)
  submit tasks/s       N / (time of the submit loop alone)
  latency              sequential round trips (submit, then Get, one task at a time): p50/p90/p99
  first result         from just before parsl.Load to the first task's result, fresh DFK and run dir
  heap per task        heap growth per task while N tasks wait on one unresolved promise
  memo hit             cost of a submit+Get answered from the app cache
  peak RSS             getrusage maxrss of this process (and, with htex, the
                       peak RSS of the pool processes, from /proc VmHWM)

With --executor htex, perf starts one worker pool (this same binary) with
--threads workers, over TLS unless --no-tls; first result includes starting
the pool.

With --monitoring PATH every DFK perf loads records its tasks in that
SQLite database, as Config.Monitoring does; perf then also reports how long
the final Close took (the hub writing what it had not written yet) and the
database's size per recorded task.

Throughput is measured --repeat times per task count, after one unrecorded
warm-up round of the largest count, and shown as min/median/max.
Timings are noisy on shared machines: compare numbers from the same run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPerf(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.executor, "executor", "threads", `executor to measure: "threads" or "htex" (one local pool)`)
	f.StringVar(&o.tasks, "tasks", "1000,10000,100000", "comma-separated task counts for the throughput rounds")
	f.IntVar(&o.repeat, "repeat", 3, "throughput rounds per task count")
	f.IntVar(&o.threads, "threads", runtime.NumCPU(), "worker goroutines of the threads executor, or workers of the htex pool")
	f.BoolVar(&o.noTLS, "no-tls", false, "htex: plain TCP between the interchange and the pool (default TLS)")
	f.IntVar(&o.prefetch, "prefetch", 1024, "htex: tasks the pool may hold beyond its workers, so that workers never wait for the network")
	f.IntVar(&o.latencySamples, "latency-samples", 10000, "sequential round trips for the latency percentiles, and cache hits for memo_hit_ns")
	f.IntVar(&o.heapTasks, "heap-tasks", 0, "tasks blocked on one promise for heap_bytes_per_task (default: the largest --tasks)")
	f.BoolVar(&o.json, "json", false, "print one JSON object instead of a table")
	f.StringVar(&o.runDir, "run-dir", "", "base directory for run directories (default: a temporary directory removed at the end)")
	f.StringVar(&o.monitoring, "monitoring", "", "record every task in the monitoring database at this path (Config.Monitoring), to measure its cost; default off")
	return cmd
}

// parseTasks parses "1000,10_000,100000".
func parseTasks(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, err := strconv.Atoi(strings.ReplaceAll(part, "_", ""))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--tasks: %q is not a positive whole number (expected a comma-separated list such as 1000,10000,100000)", part)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--tasks: no task count given (expected a comma-separated list such as 1000,10000,100000)")
	}
	return out, nil
}

// newExecutor makes the executor named by --executor.
func newExecutor(o *perfOptions) (executor.Executor, error) {
	switch o.executor {
	case "threads":
		return threads.New(threads.Options{MaxThreads: o.threads}), nil
	case "htex":
		tls := !o.noTLS
		return htex.New(htex.Options{MaxWorkersPerNode: o.threads, Prefetch: o.prefetch, Encrypted: &tls, Blocks: 1}), nil
	default:
		return nil, fmt.Errorf("--executor %q is unknown; the available executors are threads and htex", o.executor)
	}
}

func (o *perfOptions) validate() ([]int, error) {
	tasks, err := parseTasks(o.tasks)
	if err != nil {
		return nil, err
	}
	if _, err := newExecutor(o); err != nil {
		return nil, err
	}
	switch {
	case o.repeat < 1:
		return nil, fmt.Errorf("--repeat must be at least 1, got %d", o.repeat)
	case o.threads < 1:
		return nil, fmt.Errorf("--threads must be at least 1, got %d", o.threads)
	case o.prefetch < 0:
		return nil, fmt.Errorf("--prefetch must not be negative, got %d", o.prefetch)
	case o.latencySamples < 1:
		return nil, fmt.Errorf("--latency-samples must be at least 1, got %d", o.latencySamples)
	case o.heapTasks < 0:
		return nil, fmt.Errorf("--heap-tasks must not be negative, got %d", o.heapTasks)
	}
	return tasks, nil
}

func runPerf(cmd *cobra.Command, o *perfOptions) error {
	tasks, err := o.validate()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	base := o.runDir
	if base == "" {
		dir, err := os.MkdirTemp("", "parsl-perf-")
		if err != nil {
			return fmt.Errorf("cannot create a temporary run directory: %w (use --run-dir)", err)
		}
		defer os.RemoveAll(dir)
		base = dir
	}
	heapN := o.heapTasks
	if heapN == 0 {
		heapN = slices.Max(tasks)
	}
	p := &perfRun{
		ctx:     ctx,
		base:    base,
		opts:    o,
		tasks:   tasks,
		heapN:   heapN,
		newExec: func() (executor.Executor, error) { return newExecutor(o) },
	}
	p.progress = newProgress(cmd.ErrOrStderr(), 5+len(tasks)*o.repeat)
	res, err := p.run()
	p.progress.finish(err == nil)
	if err != nil {
		return err
	}
	res.Command = fmt.Sprintf("parsl perf --executor %s --tasks %s --repeat %d --threads %d --latency-samples %d --heap-tasks %d",
		o.executor, joinInts(tasks), o.repeat, o.threads, o.latencySamples, heapN)
	if o.executor == "htex" {
		res.Command += fmt.Sprintf(" --prefetch %d", o.prefetch)
		if o.noTLS {
			res.Command += " --no-tls"
		}
	}
	if o.monitoring != "" {
		res.Command += " --monitoring " + o.monitoring
	}
	out := cmd.OutOrStdout()
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printTable(out, res)
	return nil
}

// perfResult is the JSON output; every key carries its unit.
type perfResult struct {
	Executor      string            `json:"executor"`
	Threads       int               `json:"threads"`
	Repeat        int               `json:"repeat"`
	Tasks         []int             `json:"tasks"`
	EndToEnd      map[string]spread `json:"end_to_end_tasks_per_s"`
	Submit        map[string]spread `json:"submit_tasks_per_s"`
	Latency       latencyResult     `json:"latency_us"`
	FirstResultMs float64           `json:"first_result_ms"`
	PeakRSSBytes  int64             `json:"peak_rss_bytes"`
	// PoolPeakRSSBytes is the largest VmHWM among the htex pool processes.
	PoolPeakRSSBytes int64   `json:"pool_peak_rss_bytes,omitempty"`
	TLS              *bool   `json:"tls,omitempty"`
	HeapBytesPerTask float64 `json:"heap_bytes_per_task"`
	HeapTasks        int     `json:"heap_tasks"`
	MemoHitNs        float64 `json:"memo_hit_ns"`
	MemoHits         int     `json:"memo_hits"`
	// Monitoring is set with --monitoring.
	Monitoring *monitoringResult `json:"monitoring,omitempty"`
	Machine    machineInfo       `json:"machine"`
	Date       string            `json:"date"`
	Command    string            `json:"command"` // the settings, as flags
}

type latencyResult struct {
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	P99     float64 `json:"p99"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	Mean    float64 `json:"mean"`
	Samples int     `json:"samples"`
}

func printTable(w io.Writer, r *perfResult) {
	m := r.Machine
	fmt.Fprintf(w, "parsl perf — executor %s, %d workers, %d repeat(s) per task count\n", r.Executor, r.Threads, r.Repeat)
	fmt.Fprintf(w, "machine: %d cores, %s memory, %s, %s %s/%s, %s\n\n",
		m.Cores, fmtBytes(float64(m.MemoryBytes)), orUnknown(m.CPUModel), m.GoVersion, m.OS, m.Arch, r.Date)

	tw := newTabWriter(w)
	fmt.Fprintln(tw, "tasks\tend-to-end tasks/s (min / median / max)\tsubmit tasks/s (min / median / max)")
	for _, n := range r.Tasks {
		k := strconv.Itoa(n)
		fmt.Fprintf(tw, "%s\t%s\t%s\n", fmtInt(float64(n)), fmtSpread(r.EndToEnd[k]), fmtSpread(r.Submit[k]))
	}
	tw.Flush()
	fmt.Fprintln(w)

	tw = newTabWriter(w)
	l := r.Latency
	fmt.Fprintf(tw, "latency, submit→Get (%s sequential round trips)\tp50 %.2f µs, p90 %.2f µs, p99 %.2f µs\n",
		fmtInt(float64(l.Samples)), l.P50, l.P90, l.P99)
	fmt.Fprintf(tw, "first result after Load\t%.3f ms\n", r.FirstResultMs)
	fmt.Fprintf(tw, "memo hit, submit+Get (%s hits)\t%s ns/task\n", fmtInt(float64(r.MemoHits)), fmtInt(r.MemoHitNs))
	fmt.Fprintf(tw, "heap (%s tasks blocked on one promise)\t%s B/task\n", fmtInt(float64(r.HeapTasks)), fmtInt(r.HeapBytesPerTask))
	fmt.Fprintf(tw, "peak RSS\t%s\n", fmtBytes(float64(r.PeakRSSBytes)))
	if r.PoolPeakRSSBytes > 0 {
		fmt.Fprintf(tw, "peak RSS of the htex pool\t%s\n", fmtBytes(float64(r.PoolPeakRSSBytes)))
	}
	if m := r.Monitoring; m != nil {
		fmt.Fprintf(tw, "monitoring database\t%s\n", m.DBPath)
		fmt.Fprintf(tw, "final Close (monitoring writes the rest)\t%.1f ms\n", m.CloseMs)
		fmt.Fprintf(tw, "database size\t%s, %.0f B/task over %s tasks\n", fmtBytes(float64(m.DBBytes)), m.BytesPerTask, fmtInt(float64(m.Tasks)))
	}
	tw.Flush()
}

func fmtSpread(s spread) string {
	return fmtInt(s.Min) + " / " + fmtInt(s.Median) + " / " + fmtInt(s.Max)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown CPU"
	}
	return s
}

// fmtInt rounds x and groups thousands: 1234567.8 → "1,234,568".
func fmtInt(x float64) string {
	neg := x < 0
	if neg {
		x = -x
	}
	s := strconv.FormatInt(int64(x+0.5), 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtBytes(x float64) string {
	const unit = 1024
	if x < unit {
		return fmt.Sprintf("%.0f B", x)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	i := -1
	for x >= unit && i < len(units)-1 {
		x /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", x, units[i])
}

func joinInts(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// now is the date line of a report.
func now() string { return time.Now().Format(time.RFC3339) }

// monitoringResult is what --monitoring adds to the report.
type monitoringResult struct {
	DBPath string `json:"db_path"`
	// CloseMs is the time of the last DFK.Close, which waits for the
	// monitoring hub to write every row it had not written yet.
	CloseMs float64 `json:"close_ms"`
	// Tasks and DBBytes cover the whole file (it may hold earlier runs).
	Tasks        int64   `json:"tasks"`
	DBBytes      int64   `json:"db_bytes"`
	BytesPerTask float64 `json:"bytes_per_task"`
}

// config is the DFK configuration of every Load that perf does.
func (o *perfOptions) config(ex executor.Executor, runDir string) parsl.Config {
	cfg := parsl.Config{Executors: []executor.Executor{ex}, RunDir: runDir}
	if o.monitoring != "" {
		cfg.Monitoring = &parsl.MonitoringConfig{DBPath: o.monitoring, WorkflowName: "parsl-perf"}
	}
	return cfg
}

// measureDB reads the task count and size of the monitoring database after
// every DFK has closed.
func measureDB(ctx context.Context, path string, closeTime time.Duration) (*monitoringResult, error) {
	r := &monitoringResult{DBPath: path, CloseMs: round(float64(closeTime)/float64(time.Millisecond), 1)}
	st, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		return nil, err
	}
	wfs, err := st.ListWorkflows(ctx)
	if cerr := st.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("reading the monitoring database: %w", err)
	}
	for _, w := range wfs {
		r.Tasks += w.Tasks
	}
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			r.DBBytes += fi.Size()
		}
	}
	if r.Tasks > 0 {
		r.BytesPerTask = round(float64(r.DBBytes)/float64(r.Tasks), 1)
	}
	return r, nil
}
