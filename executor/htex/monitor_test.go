package htex_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/monitoring"
)

var (
	sleepCmd = parsl.RegisterBash1("htextest.sleep", func(ctx context.Context, secs string) (string, error) {
		return "sleep " + secs, nil
	})
	// The hub is what parsl.Load hands to executors.
	_ htex.Monitor = (*monitoring.Hub)(nil)
)

// TestMonitoringBlocksNodesResources runs a real htex workflow (local
// provider, pools started from this test binary) with monitoring into a
// temporary SQLite database, a bash app `sleep 1` and a Go app sampled
// every 200 ms, and reads Parsl's block, node and resource tables back:
// with the interchange in this process, and as a separate process that
// forwards the pools' messages.
func TestMonitoringBlocksNodesResources(t *testing.T) {
	for _, mode := range []string{htex.InterchangeInProcess, htex.InterchangeProcess} {
		name := mode
		if name == "" {
			name = "in-process"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "monitoring.db")
			ex := htex.New(fast(htex.Options{Interchange: mode, ResourceInterval: 200 * time.Millisecond}))
			ctx := ctxT(t, 60*time.Second)
			dfk, err := parsl.Load(ctx, parsl.Config{Executors: []executor.Executor{ex}, RunDir: dir,
				Monitoring: &parsl.MonitoringConfig{DBPath: db, WorkflowName: "htex-resources"}})
			if err != nil {
				t.Fatal(err)
			}
			bash := sleepCmd.Submit(dfk, parsl.Val("1"))
			goTask := nap.Submit(dfk, parsl.Val(600))
			if _, err := bash.Get(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := goTask.Get(ctx); err != nil {
				t.Fatal(err)
			}
			jobs := ex.JobIDs()
			if err := dfk.Close(ctx); err != nil {
				t.Fatal(err)
			}
			assertNoPools(t, ex)
			if n := ex.MonitorDropped(); n != 0 {
				t.Errorf("%d monitoring rows dropped", n)
			}

			conn, err := sql.Open("sqlite", db)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			var run string
			if err := conn.QueryRow(`SELECT run_id FROM workflow WHERE workflow_name = 'htex-resources'`).Scan(&run); err != nil {
				t.Fatal(err)
			}

			// Resource rows: the bash task's own process, sampled at its
			// start and every 200 ms of its second; the Go task's pool.
			var n, pids int
			var maxRSS, maxVMS, interval float64
			err = conn.QueryRow(`SELECT count(*), count(DISTINCT psutil_process_pid), max(psutil_process_memory_resident),
				max(psutil_process_memory_virtual), max(resource_monitoring_interval)
				FROM resource WHERE run_id = ? AND task_id = ? AND try_id = 0`, run, bash.TaskID()).Scan(&n, &pids, &maxRSS, &maxVMS, &interval)
			if err != nil {
				rows, _ := conn.Query(`SELECT task_id, try_id, timestamp, psutil_process_pid, psutil_process_memory_resident FROM resource`)
				for rows.Next() {
					var a, b, c, d, e any
					rows.Scan(&a, &b, &c, &d, &e)
					t.Logf("row %v %v %v %v %v", a, b, c, d, e)
				}
				filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
					if err == nil && !fi.IsDir() && (strings.HasSuffix(p, ".err") || strings.HasSuffix(p, ".out")) {
						b, _ := os.ReadFile(p)
						t.Logf("%s:\n%s", p, b)
					}
					return nil
				})
				t.Fatal(err)
			}
			if n < 3 || pids != 1 || maxRSS <= 0 || maxVMS <= 0 || interval != 0.2 {
				t.Errorf("bash task: %d resource rows of %d pids, max RSS %.0f, VMS %.0f, interval %v; want >= 3 rows of one process with memory, interval 0.2",
					n, pids, maxRSS, maxVMS, interval)
			}
			var goPID int
			err = conn.QueryRow(`SELECT count(*), max(psutil_process_memory_resident), max(psutil_process_pid)
				FROM resource WHERE run_id = ? AND task_id = ?`, run, goTask.TaskID()).Scan(&n, &maxRSS, &goPID)
			if err != nil {
				t.Fatal(err)
			}
			if n < 3 || maxRSS <= 0 || !slices.Contains(jobs, strconv.Itoa(goPID)) {
				t.Errorf("Go task: %d resource rows, max RSS %.0f, pid %d (pools %v); want >= 3 rows of a pool process",
					n, maxRSS, goPID, jobs)
			}

			// Node rows: the pool joining (active) and leaving.
			host, _ := os.Hostname()
			rows, err := conn.Query(`SELECT hostname, block_id, cpu_count, total_memory, active, worker_count, python_v
				FROM node WHERE run_id = ? ORDER BY id`, run)
			if err != nil {
				t.Fatal(err)
			}
			var actives []bool
			for rows.Next() {
				var h, block, v string
				var cpus, workers int
				var mem int64
				var active bool
				if err := rows.Scan(&h, &block, &cpus, &mem, &active, &workers, &v); err != nil {
					t.Fatal(err)
				}
				if h != host || block != "0" || cpus <= 0 || mem <= 0 || workers != 2 || v == "" {
					t.Errorf("node row: host %q block %q cpus %d memory %d workers %d runtime %q", h, block, cpus, mem, workers, v)
				}
				actives = append(actives, active)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(actives, []bool{true, false}) {
				t.Errorf("node rows active %v, want the join and the leave", actives)
			}

			// Block rows: submitted, running once its pool joined, scaled
			// in at Close, all with the block's job.
			rows, err = conn.Query(`SELECT block_id, job_id, executor_label, status FROM block WHERE run_id = ? ORDER BY timestamp`, run)
			if err != nil {
				t.Fatal(err)
			}
			var states []string
			for rows.Next() {
				var block, label, status string
				var job sql.NullString
				if err := rows.Scan(&block, &job, &label, &status); err != nil {
					t.Fatal(err)
				}
				if block != "0" || label != "htex" || len(jobs) == 0 || job.String != jobs[0] {
					t.Errorf("block row: block %q job %q label %q (jobs %v)", block, job.String, label, jobs)
				}
				states = append(states, status)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(states, []string{"PENDING", "RUNNING", "SCALED_IN"}) {
				t.Errorf("block states %v, want PENDING, RUNNING, SCALED_IN", states)
			}
		})
	}
}

// TestMonitoringStartEndOnly: with ResourceStartEnd a task that runs for
// a while still gets no more than its start and end samples.
func TestMonitoringStartEndOnly(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "monitoring.db")
	ex := htex.New(fast(htex.Options{ResourceInterval: htex.ResourceStartEnd}))
	ctx := ctxT(t, 30*time.Second)
	dfk, err := parsl.Load(ctx, parsl.Config{Executors: []executor.Executor{ex}, RunDir: dir,
		Monitoring: &parsl.MonitoringConfig{DBPath: db}})
	if err != nil {
		t.Fatal(err)
	}
	f := nap.Submit(dfk, parsl.Val(700))
	if _, err := f.Get(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dfk.Close(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n int
	var interval float64
	if err := conn.QueryRow(`SELECT count(*), max(resource_monitoring_interval) FROM resource WHERE task_id = ?`, f.TaskID()).Scan(&n, &interval); err != nil {
		t.Fatal(err)
	}
	if n != 2 || interval != 0 {
		t.Errorf("%d resource rows with interval %v; want start and end, interval 0", n, interval)
	}
}

// TestNoMonitorNoSamples: without monitoring, pools are not asked to
// sample (the pool configuration says so).
func TestNoMonitorNoSamples(t *testing.T) {
	_, ex := load(t, htex.Options{}, 0)
	b, err := os.ReadFile(ex.PoolConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Contains(s, `"monitor"`) {
		t.Errorf("pool configuration asks for monitoring without a monitor:\n%s", s)
	}
}
