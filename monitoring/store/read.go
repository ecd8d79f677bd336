package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The read API serves the dashboard. It reads committed rows only (call
// Sync first to see everything accepted) and never blocks the writer: in
// WAL mode readers and the writer run concurrently.

// WorkflowInfo is a workflow row with its number of tasks and its driver's
// heartbeat.
type WorkflowInfo struct {
	Workflow
	Tasks int64
	// LastHeartbeat is the last time the run's driver recorded that it was
	// alive, and HeartbeatPeriod how often it meant to; both zero for a run
	// written without heartbeats (by Python Parsl or an older version).
	LastHeartbeat   time.Time
	HeartbeatPeriod time.Duration
	// Lost is set when the run has no end recorded and its last heartbeat
	// was more than StaleHeartbeats periods old when the row was read: the
	// driver died without closing the DFK (kill -9, a crash, log.Fatal
	// skipping a deferred Close), or could no longer write to the database.
	Lost bool
}

// StaleHeartbeats is the number of heartbeat periods without a heartbeat
// after which a run with no recorded end is taken for lost.
const StaleHeartbeats = 3

// Running reports whether the workflow has not recorded its end, as
// parsl-visualize decides it, and is not Lost.
func (w WorkflowInfo) Running() bool { return w.TimeCompleted.IsZero() && !w.Lost }

// setHeartbeat fills in the heartbeat fields from the nullable columns
// beat (Unix milliseconds) and period_ms, judged at now.
func (w *WorkflowInfo) setHeartbeat(beat, period sql.NullInt64, now time.Time) {
	if !beat.Valid {
		return
	}
	w.LastHeartbeat = time.UnixMilli(beat.Int64)
	w.HeartbeatPeriod = time.Duration(period.Int64) * time.Millisecond
	w.Lost = w.TimeCompleted.IsZero() && now.Sub(w.LastHeartbeat) > StaleHeartbeats*max(w.HeartbeatPeriod, time.Millisecond)
}

const workflowCols = `w.run_id, w.workflow_name, w.workflow_version, w.time_began, w.time_completed,
	w.host, w.user, w.rundir, w.tasks_failed_count, w.tasks_completed_count,
	(SELECT coalesce(sum(c.n), 0) FROM parslgo_count c JOIN parslgo_run r ON r.run_key = c.run_key WHERE r.run_id = w.run_id),
	hb.beat, hb.period_ms`

// workflowFrom is the FROM clause of workflowCols.
const workflowFrom = ` FROM workflow w LEFT JOIN parslgo_heartbeat hb ON hb.run_id = w.run_id`

func scanWorkflow(sc interface{ Scan(...any) error }) (WorkflowInfo, error) {
	var w WorkflowInfo
	var name, version, began, completed sql.NullString
	var beat, period sql.NullInt64
	err := sc.Scan(&w.RunID, &name, &version, &began, &completed, &w.Host, &w.User, &w.RunDir,
		&w.TasksFailedCount, &w.TasksCompletedCount, &w.Tasks, &beat, &period)
	w.WorkflowName, w.WorkflowVersion = name.String, version.String
	w.TimeBegan, w.TimeCompleted = parseTime(began), parseTime(completed)
	w.setHeartbeat(beat, period, time.Now())
	return w, err
}

// ListWorkflows returns every workflow, newest first.
func (s *Store) ListWorkflows(ctx context.Context) ([]WorkflowInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+workflowCols+workflowFrom+` ORDER BY w.time_began DESC, w.run_id`)
	if err != nil {
		return nil, fmt.Errorf("list workflows: %w", err)
	}
	defer rows.Close()
	var out []WorkflowInfo
	for rows.Next() {
		w, err := scanWorkflow(rows)
		if err != nil {
			return nil, fmt.Errorf("list workflows: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// Workflow returns one workflow; ErrNotFound if there is none.
func (s *Store) Workflow(ctx context.Context, runID string) (WorkflowInfo, error) {
	w, err := scanWorkflow(s.db.QueryRowContext(ctx, `SELECT `+workflowCols+workflowFrom+` WHERE w.run_id = ?`, runID))
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("workflow %s: %w", runID, ErrNotFound)
	}
	if err != nil {
		return w, fmt.Errorf("workflow %s: %w", runID, err)
	}
	return w, nil
}

// runKey returns the key of a run; ok is false for a run with no task.
func (s *Store) runKey(ctx context.Context, runID string) (int64, bool, error) {
	r, ok, err := s.runInfoOf(ctx, runID)
	return r.key, ok, err
}

// runInfoOf returns the key and t0 of a run; ok is false for a run with no
// task.
func (s *Store) runInfoOf(ctx context.Context, runID string) (runInfo, bool, error) {
	var r runInfo
	err := s.db.QueryRowContext(ctx, `SELECT run_key, t0 FROM parslgo_run WHERE run_id = ?`, runID).Scan(&r.key, &r.t0)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	return r, err == nil, err
}

// TaskCounts returns the number of tasks of a run in each current state,
// keyed by Parsl's state name; tasks with no status yet count as "unsched".
func (s *Store) TaskCounts(ctx context.Context, runID string) (map[string]int64, error) {
	out := map[string]int64{}
	r, ok, err := s.runInfoOf(ctx, runID)
	if err != nil || !ok {
		return out, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT state, sum(n) FROM parslgo_count WHERE run_key = ? AND n > 0 GROUP BY state`, r.key)
	if err != nil {
		return nil, fmt.Errorf("task counts %s: %w", runID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var st, n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[codeLabel(st)] += n
	}
	return out, rows.Err()
}

// codeLabel names a state code of parslgo_count or parslgo_task.
func codeLabel(st int64) string {
	if st == noState {
		return "unsched"
	}
	return stateName(int(st))
}

// stateLabel names a nullable state code; NULL (no status yet) is
// "unsched".
func stateLabel(st sql.NullInt64) string {
	if !st.Valid {
		return "unsched"
	}
	return codeLabel(st.Int64)
}

// AppSummary counts one app's tasks.
type AppSummary struct {
	App     string
	Tasks   int64
	ByState map[string]int64
}

// AppSummaries returns per-app task counts of a run, by app name.
func (s *Store) AppSummaries(ctx context.Context, runID string) ([]AppSummary, error) {
	r, ok, err := s.runInfoOf(ctx, runID)
	if err != nil || !ok {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT coalesce(a.name, ''), c.state, c.n FROM parslgo_count c
	LEFT JOIN parslgo_name a ON a.name_key = c.app_key WHERE c.run_key = ? AND c.n > 0 ORDER BY 1`, r.key)
	if err != nil {
		return nil, fmt.Errorf("app summaries %s: %w", runID, err)
	}
	defer rows.Close()
	var out []AppSummary
	for rows.Next() {
		var app string
		var st, n int64
		if err := rows.Scan(&app, &st, &n); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].App != app {
			out = append(out, AppSummary{App: app, ByState: map[string]int64{}})
		}
		a := &out[len(out)-1]
		a.Tasks += n
		a.ByState[codeLabel(st)] += n
	}
	return out, rows.Err()
}

// TaskFilter selects tasks; empty fields match everything.
type TaskFilter struct {
	App   string // task_func_name
	State string // current state, a Parsl state name
}

// TaskRow is a task with its current state.
type TaskRow struct {
	Task
	State     string
	StateTime time.Time
}

// TaskPage is one page of a task list.
type TaskPage struct {
	Tasks []TaskRow
	Total int64 // tasks matching the filter
}

// taskCols are the compact task columns read into a Task, with the run's
// t0 added to the times by scanTask.
const taskCols = `t.task_id, t.task_depends, a.name, t.task_memoize, t.task_hashsum,
	t.task_inputs, t.task_outputs, t.task_stdin, t.task_stdout, t.task_stderr, t.invoked,
	t.returned, t.task_fail_count, t.task_fail_cost, t.state, t.ts`

// taskScan scans taskCols.
type taskScan struct {
	row                 TaskRow
	fn, memo            sql.NullString
	invoked, returned   sql.NullInt64
	failCount           sql.NullInt64
	failCost            sql.NullFloat64
	state, ts           sql.NullInt64
	depends, hashsum    nullString
	inputs, outputs     nullString
	stdin, stdout, errs nullString
}

func (x *taskScan) dest() []any {
	return []any{&x.row.TaskID, &x.depends, &x.fn, &x.memo, &x.hashsum, &x.inputs, &x.outputs, &x.stdin, &x.stdout,
		&x.errs, &x.invoked, &x.returned, &x.failCount, &x.failCost, &x.state, &x.ts}
}

func (x *taskScan) result(runID string, t0 int64) TaskRow {
	r := x.row
	r.RunID, r.FuncName = runID, x.fn.String
	r.Depends, r.Hashsum, r.Inputs, r.Outputs = string(x.depends), string(x.hashsum), string(x.inputs), string(x.outputs)
	r.Stdin, r.Stdout, r.Stderr = string(x.stdin), string(x.stdout), string(x.errs)
	r.Memoize = x.memo.String == "1" || strings.EqualFold(x.memo.String, "true")
	r.TimeInvoked, r.TimeReturned = optWall(x.invoked, t0), optWall(x.returned, t0)
	r.FailCount, r.FailCost = x.failCount.Int64, x.failCost.Float64
	r.State = "unsched"
	if x.state.Valid {
		r.State = codeLabel(x.state.Int64)
		r.StateTime = optWall(x.ts, t0)
	}
	return r
}

func optWall(us sql.NullInt64, t0 int64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return fromWallMicros(t0 + us.Int64)
}

// tasksQuery returns the WHERE clause of the task list with filter f, and
// its arguments after the run key. Tasks in a state other than exec_done
// are found through the partial index on state; exec_done tasks and all
// tasks of an app by walking the run's rows in task_id order, where at a
// million tasks most rows match.
//
// It returns the FROM source, with an index hint, and the WHERE clause: the
// planner, without statistics, may prefer the primary key and filter, which
// is fine on a small run and a walk of every row of a large one.
func tasksQuery(f TaskFilter, appKey int64) (string, []any) {
	from := "parslgo_task t"
	where := []string{"t.run_key = ?"}
	var args []any
	if f.App != "" {
		where = append(where, "t.app_key = ?")
		args = append(args, appKey)
	}
	if f.State != "" {
		code, ok := stateCodes[f.State]
		if !ok {
			code = unknownState
		}
		switch {
		case f.State == "unsched":
			// No status yet, or Parsl's unsched recorded as a status.
			from += " INDEXED BY parslgo_task_by_state"
			where = append(where, "(t.state IS NULL OR t.state = -1)", "t.state IS NOT 3")
		case code == stateCodes["exec_done"]:
			where = append(where, "t.state = 3")
		default:
			from += " INDEXED BY parslgo_task_by_state"
			where = append(where, "t.state = ?", "t.state IS NOT 3")
			args = append(args, code)
		}
	}
	return from + " WHERE " + strings.Join(where, " AND "), args
}

// Tasks returns page (from 0) of a run's tasks matching f, pageSize tasks
// per page, ordered by task id.
func (s *Store) Tasks(ctx context.Context, runID string, f TaskFilter, page, pageSize int) (TaskPage, error) {
	var out TaskPage
	if page < 0 || pageSize <= 0 {
		return out, fmt.Errorf("tasks %s: bad page %d size %d", runID, page, pageSize)
	}
	r, ok, err := s.runInfoOf(ctx, runID)
	if err != nil || !ok {
		return out, err
	}
	var ak int64
	if f.App != "" {
		err := s.db.QueryRowContext(ctx, `SELECT name_key FROM parslgo_name WHERE name = ?`, f.App).Scan(&ak)
		if errors.Is(err, sql.ErrNoRows) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("tasks %s: %w", runID, err)
		}
	}
	if out.Total, err = s.countTasks(ctx, r.key, f, ak); err != nil {
		return out, fmt.Errorf("tasks %s: count: %w", runID, err)
	}
	where, fargs := tasksQuery(f, ak)
	q, qargs := pagedTasksSQL(where, append([]any{r.key}, fargs...), page, pageSize)
	rows, err := s.db.QueryContext(ctx, q, qargs...)
	if err != nil {
		return out, fmt.Errorf("tasks %s: %w", runID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var x taskScan
		if err := rows.Scan(x.dest()...); err != nil {
			return out, fmt.Errorf("tasks %s: %w", runID, err)
		}
		out.Tasks = append(out.Tasks, x.result(runID, r.t0))
	}
	return out, rows.Err()
}

// countTasks counts the tasks matching f from the per-state counts.
func (s *Store) countTasks(ctx context.Context, runKey int64, f TaskFilter, appKey int64) (int64, error) {
	q := `SELECT coalesce(sum(n), 0) FROM parslgo_count WHERE run_key = ?`
	args := []any{runKey}
	if f.App != "" {
		q += ` AND app_key = ?`
		args = append(args, appKey)
	}
	if f.State != "" {
		code, ok := stateCodes[f.State]
		if !ok {
			code = unknownState
		}
		if f.State == "unsched" {
			q += fmt.Sprintf(` AND state IN (%d, -1)`, noState)
		} else {
			q += ` AND state = ?`
			args = append(args, code)
		}
	}
	var n int64
	err := s.db.QueryRowContext(ctx, q, args...).Scan(&n)
	return n, err
}

// pagedTasksSQL is the page query, separate so a test can EXPLAIN it.
func pagedTasksSQL(fromWhere string, args []any, page, pageSize int) (string, []any) {
	// The inner query reads task ids only, so skipping OFFSET entries
	// touches nothing else; the task columns are then fetched by primary
	// key for the page's rows alone.
	q := `SELECT ` + taskCols + ` FROM
	(SELECT t.run_key, t.task_id FROM ` + fromWhere + ` ORDER BY t.task_id LIMIT ? OFFSET ?) p
	JOIN parslgo_task t ON t.run_key = p.run_key AND t.task_id = p.task_id
	LEFT JOIN parslgo_name a ON a.name_key = t.app_key ORDER BY p.task_id`
	return q, append(append([]any{}, args...), pageSize, page*pageSize)
}

// TaskDetail is a task with its tries and status history.
type TaskDetail struct {
	TaskRow
	Tries    []Try
	Statuses []Status // by time
}

// Task returns one task with its tries and statuses; ErrNotFound if the
// run has no task row, status or try for it.
func (s *Store) Task(ctx context.Context, runID string, taskID int64) (TaskDetail, error) {
	d := TaskDetail{TaskRow: TaskRow{Task: Task{RunID: runID, TaskID: taskID}, State: "unsched"}}
	r, ok, err := s.runInfoOf(ctx, runID)
	if err != nil {
		return d, fmt.Errorf("task %s/%d: %w", runID, taskID, err)
	}
	if !ok {
		return d, fmt.Errorf("task %s/%d: %w", runID, taskID, ErrNotFound)
	}
	var x taskScan
	var statuses, tries sql.NullString
	err = s.db.QueryRowContext(ctx, `SELECT `+taskCols+`, t.statuses, t.tries FROM parslgo_task t
	LEFT JOIN parslgo_name a ON a.name_key = t.app_key WHERE t.run_key = ? AND t.task_id = ?`, r.key, taskID).
		Scan(append(x.dest(), &statuses, &tries)...)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("task %s/%d: %w", runID, taskID, ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("task %s/%d: %w", runID, taskID, err)
	}
	d.TaskRow = x.result(runID, r.t0)
	if d.Statuses, err = parseStatuses(runID, taskID, statuses.String, r.t0); err != nil {
		return d, fmt.Errorf("task %s/%d statuses: %w", runID, taskID, err)
	}
	ts, err := parseTries(tries.String)
	if err != nil {
		return d, fmt.Errorf("task %s/%d: %w", runID, taskID, err)
	}
	for _, t := range ts {
		exec, host, err := s.names2(ctx, t.exec, t.host)
		if err != nil {
			return d, fmt.Errorf("task %s/%d tries: %w", runID, taskID, err)
		}
		d.Tries = append(d.Tries, Try{RunID: runID, TaskID: taskID, TryID: t.try, BlockID: t.block, Hostname: host,
			Executor: exec, TimeLaunched: wallOf(t.launched, r.t0), TimeRunning: wallOf(t.running, r.t0),
			TimeReturned: wallOf(t.returned, r.t0), FailHistory: t.failHistory, Joins: t.joins})
	}
	return d, nil
}

// names2 returns the names with keys a and b ("" for 0).
func (s *Store) names2(ctx context.Context, a, b int64) (string, string, error) {
	var out [2]string
	for i, k := range [2]int64{a, b} {
		if k == 0 {
			continue
		}
		if err := s.db.QueryRowContext(ctx, `SELECT name FROM parslgo_name WHERE name_key = ?`, k).Scan(&out[i]); err != nil {
			return "", "", err
		}
	}
	return out[0], out[1], nil
}

// wallOf is a time of the compact tables (relative to t0, noTime unset).
func wallOf(us, t0 int64) time.Time {
	if us == noTime {
		return time.Time{}
	}
	return fromWallMicros(t0 + us)
}

// parseStatuses decodes a task's status history ("[state,time,try],"
// entries), ordered by time.
func parseStatuses(runID string, taskID int64, text string, t0 int64) ([]Status, error) {
	text = strings.TrimRight(text, ",")
	if text == "" {
		return nil, nil
	}
	var entries [][3]json.RawMessage
	if err := json.Unmarshal([]byte("["+text+"]"), &entries); err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(entries))
	for _, e := range entries {
		st := Status{RunID: runID, TaskID: taskID}
		var code, ts int64
		if err := json.Unmarshal(e[0], &code); err != nil {
			if err := json.Unmarshal(e[0], &st.State); err != nil {
				return nil, fmt.Errorf("state %s: %w", e[0], err)
			}
		} else {
			st.State = stateName(int(code))
		}
		if err := json.Unmarshal(e[1], &ts); err != nil {
			return nil, fmt.Errorf("time %s: %w", e[1], err)
		}
		if err := json.Unmarshal(e[2], &st.TryID); err != nil {
			return nil, fmt.Errorf("try %s: %w", e[2], err)
		}
		st.Timestamp = fromWallMicros(t0 + ts)
		out = append(out, st)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp.Before(out[j].Timestamp) })
	return out, nil
}

// nullString scans a nullable TEXT column into a string ("" for NULL).
type nullString string

func (n *nullString) Scan(v any) error {
	var s sql.NullString
	if err := s.Scan(v); err != nil {
		return err
	}
	*n = nullString(s.String)
	return nil
}

// nullTime scans a nullable DATETIME column (zero for NULL).
type nullTime time.Time

func (n *nullTime) Scan(v any) error {
	if t, ok := v.(time.Time); ok {
		// The driver parses DATETIME text itself, as UTC; the text is
		// Parsl's naive local time, so keep the wall clock, in Local.
		*n = nullTime(time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.Local))
		return nil
	}
	var s sql.NullString
	if err := s.Scan(v); err != nil {
		return err
	}
	*n = nullTime(parseTime(s))
	return nil
}
