package store

import (
	"context"
	"database/sql"
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

// Statuses returns the status rows of the run's tasks with ids in
// [firstTask, lastTask], ordered by task id and time: the Gantt chart of one
// page of tasks.
func (s *Store) Statuses(ctx context.Context, runID string, firstTask, lastTask int64) ([]Status, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT task_id, try_id, task_status_name, timestamp FROM status
	WHERE run_id = ? AND task_id BETWEEN ? AND ? ORDER BY task_id, timestamp`, runID, firstTask, lastTask)
	if err != nil {
		return nil, fmt.Errorf("statuses %s: %w", runID, err)
	}
	defer rows.Close()
	var out []Status
	for rows.Next() {
		st := Status{RunID: runID}
		if err := rows.Scan(&st.TaskID, &st.TryID, &st.State, (*nullTime)(&st.Timestamp)); err != nil {
			return nil, fmt.Errorf("statuses %s: %w", runID, err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
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
	Groups []DAGGroup // by name
	Edges  []DAGEdge  // by From, To
	// Tasks holds every task with its dependencies when the run has at
	// most the detail limit passed to DAG; nil otherwise.
	Tasks []DAGTask
}

// DAG groups a run's tasks by "app" or by "state" and counts the
// dependencies between groups, from task_depends. When the run has at most
// detail tasks, the result also lists the tasks themselves.
func (s *Store) DAG(ctx context.Context, runID, groupBy string, detail int) (DAG, error) {
	var out DAG
	if groupBy != "app" && groupBy != "state" {
		return out, fmt.Errorf("dag %s: group by %q: must be app or state", runID, groupBy)
	}
	rk, ok, err := s.runKey(ctx, runID)
	if err != nil || !ok {
		return out, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT s.task_id, coalesce(a.name, ''), s.state FROM parslgo_task_state s
	LEFT JOIN parslgo_app a ON a.app_key = s.app_key WHERE s.run_key = ? ORDER BY s.task_id`, rk)
	if err != nil {
		return out, fmt.Errorf("dag %s: %w", runID, err)
	}
	type info struct{ app, state string }
	tasks := map[int64]info{}
	counts := map[string]int64{}
	var order []int64
	for rows.Next() {
		var id int64
		var app string
		var st sql.NullInt64
		if err := rows.Scan(&id, &app, &st); err != nil {
			rows.Close()
			return out, fmt.Errorf("dag %s: %w", runID, err)
		}
		in := info{app, stateLabel(st)}
		tasks[id] = in
		order = append(order, id)
		if groupBy == "app" {
			counts[in.app]++
		} else {
			counts[in.state]++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("dag %s: %w", runID, err)
	}
	group := func(in info) string {
		if groupBy == "app" {
			return in.app
		}
		return in.state
	}
	detailed := len(tasks) <= detail
	var deps map[int64][]int64
	if detailed {
		deps = map[int64][]int64{}
	}
	edges := map[[2]string]int64{}
	drows, err := s.db.QueryContext(ctx, `SELECT task_id, task_depends FROM task
	WHERE run_id = ? AND task_depends IS NOT NULL AND task_depends != ''`, runID)
	if err != nil {
		return out, fmt.Errorf("dag %s: %w", runID, err)
	}
	defer drows.Close()
	for drows.Next() {
		var id int64
		var dep string
		if err := drows.Scan(&id, &dep); err != nil {
			return out, fmt.Errorf("dag %s: %w", runID, err)
		}
		to, ok := tasks[id]
		if !ok {
			continue
		}
		for f := range strings.SplitSeq(dep, ",") {
			d, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil {
				continue // a malformed list from another writer: skip the entry, not the page
			}
			from, ok := tasks[d]
			if !ok {
				continue
			}
			edges[[2]string{group(from), group(to)}]++
			if detailed {
				deps[id] = append(deps[id], d)
			}
		}
	}
	if err := drows.Err(); err != nil {
		return out, fmt.Errorf("dag %s: %w", runID, err)
	}
	for n, c := range counts {
		out.Groups = append(out.Groups, DAGGroup{Name: n, Tasks: c})
	}
	sort.Slice(out.Groups, func(i, j int) bool { return out.Groups[i].Name < out.Groups[j].Name })
	for k, c := range edges {
		out.Edges = append(out.Edges, DAGEdge{From: k[0], To: k[1], Count: c})
	}
	sort.Slice(out.Edges, func(i, j int) bool {
		if out.Edges[i].From != out.Edges[j].From {
			return out.Edges[i].From < out.Edges[j].From
		}
		return out.Edges[i].To < out.Edges[j].To
	})
	if detailed {
		for _, id := range order {
			in := tasks[id]
			out.Tasks = append(out.Tasks, DAGTask{ID: id, App: in.app, State: in.state, Depends: deps[id]})
		}
	}
	return out, nil
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
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM try WHERE run_id = ? LIMIT ?)`,
		runID, limit+1).Scan(&n); err != nil {
		return nil, 0, fmt.Errorf("tries %s: %w", runID, err)
	}
	stride := int64(1)
	if n > int64(limit) {
		var total int64
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM try WHERE run_id = ?`, runID).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("tries %s: %w", runID, err)
		}
		stride = (total + int64(limit) - 1) / int64(limit)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT task_id, try_id, task_executor, coalesce(block_id, ''),
	coalesce(hostname, ''), coalesce(task_try_time_running, task_try_time_launched), task_try_time_returned
	FROM try WHERE run_id = ? AND task_id % ? = 0 LIMIT ?`, runID, stride, limit)
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
