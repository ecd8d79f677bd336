package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The queries in this file feed the dashboard's charts: the Gantt chart,
// the grouped DAG and the resource page. Each one is bounded, by a page of
// task ids or by sampling, so that a chart of a million-task run costs
// about what a chart of a small one does.

// StateNames returns the Parsl task state names this package knows, sorted.
// The dashboard gives each a colour.
func StateNames() []string {
	out := make([]string, 0, len(stateCodes))
	for n := range stateCodes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Statuses returns the status rows of the run's tasks with the given ids,
// ordered by task id and time: the Gantt chart of one page of tasks. It
// reads those tasks only, so a filtered page whose ids are far apart costs
// what a dense one does.
func (s *Store) Statuses(ctx context.Context, runID string, taskIDs []int64) ([]Status, error) {
	var out []Status
	const batch = 500
	for len(taskIDs) > 0 {
		n := min(batch, len(taskIDs))
		args := make([]any, 0, n+1)
		args = append(args, runID)
		for _, id := range taskIDs[:n] {
			args = append(args, id)
		}
		taskIDs = taskIDs[n:]
		rows, err := s.db.QueryContext(ctx, `SELECT task_id, try_id, task_status_name, timestamp FROM status
	WHERE run_id = ? AND task_id IN (?`+strings.Repeat(",?", n-1)+`) ORDER BY task_id, timestamp`, args...)
		if err != nil {
			return nil, fmt.Errorf("statuses %s: %w", runID, err)
		}
		for rows.Next() {
			st := Status{RunID: runID}
			if err := rows.Scan(&st.TaskID, &st.TryID, &st.State, (*nullTime)(&st.Timestamp)); err != nil {
				rows.Close()
				return nil, fmt.Errorf("statuses %s: %w", runID, err)
			}
			out = append(out, st)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("statuses %s: %w", runID, err)
		}
	}
	return out, nil
}

// DAGGroup is a node of a grouped DAG: the tasks of one app or one state.
type DAGGroup struct {
	Name  string
	Tasks int64
}

// DAGEdge counts the dependencies from tasks of group From to tasks of
// group To.
type DAGEdge struct {
	From, To string
	Count    int64
}

// DAGTask is one task of a small run's ungrouped DAG.
type DAGTask struct {
	ID         int64
	App, State string
	Depends    []int64
}

// DAG is a run's dependency graph, grouped.
type DAG struct {
	Groups []DAGGroup // by name; exact counts
	Edges  []DAGEdge  // by From, To
	// Stride is 1 when Edges counts every dependency; otherwise the edges
	// were counted over every Stride-th task and scaled up, which keeps
	// the graph of a huge run cheap (the groups' counts stay exact).
	Stride int64
	// Tasks holds every task with its dependencies when the run has at
	// most the detail limit passed to DAG; nil otherwise.
	Tasks []DAGTask
}

// dagSample is about how many tasks' dependencies DAG reads.
const dagSample = 10_000

// DAG groups a run's tasks by "app" or by "state" and counts the
// dependencies between groups, from task_depends. When the run has at most
// detail tasks, the result also lists the tasks themselves.
func (s *Store) DAG(ctx context.Context, runID, groupBy string, detail int) (DAG, error) {
	out := DAG{Stride: 1}
	col := "app_key"
	switch groupBy {
	case "app":
	case "state":
		col = "state"
	default:
		return out, fmt.Errorf("dag %s: group by %q: must be app or state", runID, groupBy)
	}
	rk, ok, err := s.runKey(ctx, runID)
	if err != nil || !ok {
		return out, err
	}
	apps, err := s.appNames(ctx)
	if err != nil {
		return out, fmt.Errorf("dag %s: %w", runID, err)
	}
	name := func(k sql.NullInt64) string {
		if groupBy == "app" {
			return apps[k.Int64]
		}
		return stateLabel(k)
	}
	// Exact group sizes from the task counts (app -1 and state -1000 stand
	// for none, which name maps as it maps NULL).
	rows, err := s.db.QueryContext(ctx, `SELECT `+col+`, sum(n) FROM parslgo_count WHERE run_key = ? AND n > 0 GROUP BY 1`, rk)
	if err != nil {
		return out, fmt.Errorf("dag %s: %w", runID, err)
	}
	sizes := map[string]int64{}
	var total int64
	for rows.Next() {
		var k sql.NullInt64
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			rows.Close()
			return out, fmt.Errorf("dag %s: %w", runID, err)
		}
		sizes[name(k)] += n
		total += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("dag %s: %w", runID, err)
	}
	for n, c := range sizes {
		out.Groups = append(out.Groups, DAGGroup{Name: n, Tasks: c})
	}
	sort.Slice(out.Groups, func(i, j int) bool { return out.Groups[i].Name < out.Groups[j].Name })

	// Edges: the dependencies of every Stride-th task id, split and
	// joined to both ends' groups inside SQLite (CROSS JOIN fixes the join
	// order: left to itself the planner scans a whole index first). Task ids are dense from 0
	// in a run, so the sample is a walk over the id range by point lookups:
	// its cost is the sample's size, not the run's.
	var maxID sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(task_id) FROM parslgo_task_state WHERE run_key = ?`, rk).Scan(&maxID); err != nil {
		return out, fmt.Errorf("dag %s: %w", runID, err)
	}
	out.Stride = max(1, (maxID.Int64+1+dagSample-1)/dagSample)
	erows, err := s.db.QueryContext(ctx, `WITH RECURSIVE ids(x) AS (SELECT 0 UNION ALL SELECT x + ? FROM ids WHERE x + ? <= ?)
	SELECT f.`+col+`, g.`+col+`, count(*) FROM ids
	CROSS JOIN task t CROSS JOIN json_each(CASE WHEN json_valid('[' || t.task_depends || ']') THEN '[' || t.task_depends || ']' ELSE '[]' END) d
	CROSS JOIN parslgo_task_state f CROSS JOIN parslgo_task_state g
	WHERE t.run_id = ? AND t.task_id = ids.x AND t.task_depends IS NOT NULL AND t.task_depends != ''
	AND f.run_key = ? AND f.task_id = d.value AND g.run_key = ? AND g.task_id = t.task_id
	GROUP BY 1, 2`, out.Stride, out.Stride, maxID.Int64, runID, rk, rk)
	if err != nil {
		return out, fmt.Errorf("dag %s: %w", runID, err)
	}
	edges := map[[2]string]int64{}
	for erows.Next() {
		var a, b sql.NullInt64
		var n int64
		if err := erows.Scan(&a, &b, &n); err != nil {
			erows.Close()
			return out, fmt.Errorf("dag %s: %w", runID, err)
		}
		edges[[2]string{name(a), name(b)}] += n * out.Stride
	}
	erows.Close()
	if err := erows.Err(); err != nil {
		return out, fmt.Errorf("dag %s: %w", runID, err)
	}
	for k, c := range edges {
		out.Edges = append(out.Edges, DAGEdge{From: k[0], To: k[1], Count: c})
	}
	sort.Slice(out.Edges, func(i, j int) bool {
		if out.Edges[i].From != out.Edges[j].From {
			return out.Edges[i].From < out.Edges[j].From
		}
		return out.Edges[i].To < out.Edges[j].To
	})
	if total <= int64(detail) {
		if out.Tasks, err = s.dagTasks(ctx, runID, rk, apps); err != nil {
			return out, fmt.Errorf("dag %s: %w", runID, err)
		}
	}
	return out, nil
}

// dagTasks lists every task of a small run with its dependencies.
func (s *Store) dagTasks(ctx context.Context, runID string, rk int64, apps map[int64]string) ([]DAGTask, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT s.task_id, s.app_key, s.state, coalesce(t.task_depends, '')
	FROM parslgo_task_state s LEFT JOIN task t ON t.run_id = ? AND t.task_id = s.task_id
	WHERE s.run_key = ? ORDER BY s.task_id`, runID, rk)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DAGTask
	for rows.Next() {
		var t DAGTask
		var app, st sql.NullInt64
		var deps string
		if err := rows.Scan(&t.ID, &app, &st, &deps); err != nil {
			return nil, err
		}
		t.App, t.State = apps[app.Int64], stateLabel(st)
		for f := range strings.SplitSeq(deps, ",") {
			if d, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64); err == nil {
				t.Depends = append(t.Depends, d)
			}
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// appNames maps app keys to names.
func (s *Store) appNames(ctx context.Context) (map[int64]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT app_key, name FROM parslgo_app`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]string{}
	for rows.Next() {
		var k int64
		var n string
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// AppNames returns the names of the apps in the database (of every run),
// sorted: the choices of the dashboard's app filter, read without scanning
// any run's tasks.
func (s *Store) AppNames(ctx context.Context) ([]string, error) {
	m, err := s.appNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("app names: %w", err)
	}
	out := make([]string, 0, len(m))
	for _, n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// RunHeader returns a workflow row without counting its tasks: what every
// page's header needs, cheap on a run of any size. ErrNotFound if there is
// none.
func (s *Store) RunHeader(ctx context.Context, runID string) (WorkflowInfo, error) {
	var w WorkflowInfo
	var beat, period sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT w.run_id, coalesce(w.workflow_name, ''), coalesce(w.workflow_version, ''),
	w.time_began, w.time_completed, w.host, w.user, w.rundir, w.tasks_failed_count, w.tasks_completed_count,
	hb.beat, hb.period_ms`+workflowFrom+` WHERE w.run_id = ?`, runID).
		Scan(&w.RunID, &w.WorkflowName, &w.WorkflowVersion, (*nullTime)(&w.TimeBegan), (*nullTime)(&w.TimeCompleted),
			&w.Host, &w.User, &w.RunDir, &w.TasksFailedCount, &w.TasksCompletedCount, &beat, &period)
	w.setHeartbeat(beat, period, time.Now())
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("workflow %s: %w", runID, ErrNotFound)
	}
	if err != nil {
		return w, fmt.Errorf("workflow %s: %w", runID, err)
	}
	return w, nil
}

// Blocks returns the block rows of a run, by time.
func (s *Store) Blocks(ctx context.Context, runID string) ([]Block, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT executor_label, block_id, coalesce(job_id, ''), timestamp, status
	FROM block WHERE run_id = ? ORDER BY timestamp LIMIT 100000`, runID)
	if err != nil {
		return nil, fmt.Errorf("blocks %s: %w", runID, err)
	}
	defer rows.Close()
	var out []Block
	for rows.Next() {
		b := Block{RunID: runID}
		if err := rows.Scan(&b.ExecutorLabel, &b.BlockID, &b.JobID, (*nullTime)(&b.Timestamp), &b.Status); err != nil {
			return nil, fmt.Errorf("blocks %s: %w", runID, err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// Nodes returns the node rows of a run, by time.
func (s *Store) Nodes(ctx context.Context, runID string) ([]Node, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, hostname, uid, block_id, cpu_count, total_memory, active,
	worker_count, python_v, timestamp, last_heartbeat FROM node WHERE run_id = ? ORDER BY timestamp LIMIT 100000`, runID)
	if err != nil {
		return nil, fmt.Errorf("nodes %s: %w", runID, err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		n := Node{RunID: runID}
		if err := rows.Scan(&n.ID, &n.Hostname, &n.UID, &n.BlockID, &n.CPUCount, &n.TotalMemory, &n.Active,
			&n.WorkerCount, &n.PythonV, (*nullTime)(&n.Timestamp), (*nullTime)(&n.LastHeartbeat)); err != nil {
			return nil, fmt.Errorf("nodes %s: %w", runID, err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

const resourceCols = `task_id, try_id, timestamp, coalesce(resource_monitoring_interval, 0),
	coalesce(psutil_process_pid, 0), coalesce(psutil_process_time_user, 0), coalesce(psutil_process_time_system, 0),
	coalesce(psutil_process_memory_virtual, 0), coalesce(psutil_process_memory_resident, 0),
	coalesce(psutil_process_disk_read, 0), coalesce(psutil_process_disk_write, 0)`

func scanResources(rows *sql.Rows, runID string) ([]Resource, error) {
	defer rows.Close()
	var out []Resource
	for rows.Next() {
		r := Resource{RunID: runID}
		if err := rows.Scan(&r.TaskID, &r.TryID, (*nullTime)(&r.Timestamp), &r.MonitoringInterval, &r.PID,
			&r.TimeUser, &r.TimeSystem, &r.MemoryVirtual, &r.MemoryResident, &r.DiskRead, &r.DiskWrite); err != nil {
			return nil, fmt.Errorf("resources %s: %w", runID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// TaskResources returns the resource samples of one task, by time.
func (s *Store) TaskResources(ctx context.Context, runID string, taskID int64) ([]Resource, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+resourceCols+` FROM resource
	WHERE run_id = ? AND task_id = ? ORDER BY try_id, timestamp LIMIT 100000`, runID, taskID)
	if err != nil {
		return nil, fmt.Errorf("resources %s/%d: %w", runID, taskID, err)
	}
	return scanResources(rows, runID)
}

// ResourceSample returns a run's resource samples, of every task when the
// run has at most limit of them and otherwise of every k-th task (by id),
// with k the returned stride, so that a chart of a huge run stays cheap.
func (s *Store) ResourceSample(ctx context.Context, runID string, limit int) ([]Resource, int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM resource WHERE run_id = ? LIMIT ?)`,
		runID, limit+1).Scan(&n); err != nil {
		return nil, 0, fmt.Errorf("resources %s: %w", runID, err)
	}
	stride := int64(1)
	if n > int64(limit) {
		var total int64
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM resource WHERE run_id = ?`, runID).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("resources %s: %w", runID, err)
		}
		stride = (total + int64(limit) - 1) / int64(limit)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+resourceCols+` FROM resource
	WHERE run_id = ? AND task_id % ? = 0 ORDER BY timestamp LIMIT ?`, runID, stride, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("resources %s: %w", runID, err)
	}
	out, err := scanResources(rows, runID)
	return out, stride, err
}

// TryInterval is when one try ran.
type TryInterval struct {
	TaskID, TryID  int64
	Executor       string
	Block, Host    string
	Running, Ended time.Time
}

// TryIntervals returns when the run's tries ran (tries that have started),
// of every task when the run has at most limit tries and otherwise of every
// k-th task, with k the returned stride.
func (s *Store) TryIntervals(ctx context.Context, runID string, limit int) ([]TryInterval, int64, error) {
	// The sample walks the task id range by point lookups (ids are dense
	// from 0 in a run): its cost is the sample's size, not the run's.
	rk, ok, err := s.runKey(ctx, runID)
	if err != nil || !ok {
		return nil, 1, err
	}
	var maxID sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(task_id) FROM parslgo_task_state WHERE run_key = ?`, rk).Scan(&maxID); err != nil {
		return nil, 0, fmt.Errorf("tries %s: %w", runID, err)
	}
	stride := max(1, (maxID.Int64+1+int64(limit)-1)/int64(limit))
	rows, err := s.db.QueryContext(ctx, `WITH RECURSIVE ids(x) AS (SELECT 0 UNION ALL SELECT x + ? FROM ids WHERE x + ? <= ?)
	SELECT task_id, try_id, task_executor, coalesce(block_id, ''), coalesce(hostname, ''),
	coalesce(task_try_time_running, task_try_time_launched), task_try_time_returned
	FROM ids CROSS JOIN try WHERE try.run_id = ? AND try.task_id = ids.x`, stride, stride, maxID.Int64, runID)
	if err != nil {
		return nil, 0, fmt.Errorf("tries %s: %w", runID, err)
	}
	defer rows.Close()
	var out []TryInterval
	for rows.Next() {
		var t TryInterval
		if err := rows.Scan(&t.TaskID, &t.TryID, &t.Executor, &t.Block, &t.Host,
			(*nullTime)(&t.Running), (*nullTime)(&t.Ended)); err != nil {
			return nil, 0, fmt.Errorf("tries %s: %w", runID, err)
		}
		if !t.Running.IsZero() {
			out = append(out, t)
		}
	}
	return out, stride, rows.Err()
}
