package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The read API serves the dashboard. It reads committed rows only (call
// Sync first to see everything accepted) and never blocks the writer: in
// WAL mode readers and the writer run concurrently.

// WorkflowInfo is a workflow row with its number of tasks.
type WorkflowInfo struct {
	Workflow
	Tasks int64
}

// Running reports whether the workflow has not recorded its end, as
// parsl-visualize decides it.
func (w WorkflowInfo) Running() bool { return w.TimeCompleted.IsZero() }

const workflowCols = `w.run_id, w.workflow_name, w.workflow_version, w.time_began, w.time_completed,
	w.host, w.user, w.rundir, w.tasks_failed_count, w.tasks_completed_count,
	(SELECT count(*) FROM parslgo_task_state s JOIN parslgo_run r ON r.run_key = s.run_key WHERE r.run_id = w.run_id)`

func scanWorkflow(sc interface{ Scan(...any) error }) (WorkflowInfo, error) {
	var w WorkflowInfo
	var name, version, began, completed sql.NullString
	err := sc.Scan(&w.RunID, &name, &version, &began, &completed, &w.Host, &w.User, &w.RunDir,
		&w.TasksFailedCount, &w.TasksCompletedCount, &w.Tasks)
	w.WorkflowName, w.WorkflowVersion = name.String, version.String
	w.TimeBegan, w.TimeCompleted = parseTime(began), parseTime(completed)
	return w, err
}

// ListWorkflows returns every workflow, newest first.
func (s *Store) ListWorkflows(ctx context.Context) ([]WorkflowInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+workflowCols+` FROM workflow w ORDER BY w.time_began DESC, w.run_id`)
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
	w, err := scanWorkflow(s.db.QueryRowContext(ctx, `SELECT `+workflowCols+` FROM workflow w WHERE w.run_id = ?`, runID))
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("workflow %s: %w", runID, ErrNotFound)
	}
	if err != nil {
		return w, fmt.Errorf("workflow %s: %w", runID, err)
	}
	return w, nil
}

// runKey returns the dashboard index key of a run; ok is false for a run
// with no task.
func (s *Store) runKey(ctx context.Context, runID string) (int64, bool, error) {
	var k int64
	err := s.db.QueryRowContext(ctx, `SELECT run_key FROM parslgo_run WHERE run_id = ?`, runID).Scan(&k)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return k, err == nil, err
}

// TaskCounts returns the number of tasks of a run in each current state,
// keyed by Parsl's state name; tasks with no status yet count as "unsched".
func (s *Store) TaskCounts(ctx context.Context, runID string) (map[string]int64, error) {
	out := map[string]int64{}
	rk, ok, err := s.runKey(ctx, runID)
	if err != nil || !ok {
		return out, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT state, count(*) FROM parslgo_task_state WHERE run_key = ? GROUP BY state`, rk)
	if err != nil {
		return nil, fmt.Errorf("task counts %s: %w", runID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var st sql.NullInt64
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[stateLabel(st)] += n
	}
	return out, rows.Err()
}

func stateLabel(st sql.NullInt64) string {
	if !st.Valid {
		return "unsched"
	}
	return stateName(int(st.Int64))
}

// AppSummary counts one app's tasks.
type AppSummary struct {
	App     string
	Tasks   int64
	ByState map[string]int64
}

// AppSummaries returns per-app task counts of a run, by app name.
func (s *Store) AppSummaries(ctx context.Context, runID string) ([]AppSummary, error) {
	rk, ok, err := s.runKey(ctx, runID)
	if err != nil || !ok {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT coalesce(a.name, ''), c.state, c.n FROM
	(SELECT app_key, state, count(*) AS n FROM parslgo_task_state WHERE run_key = ? GROUP BY app_key, state) c
	LEFT JOIN parslgo_app a ON a.app_key = c.app_key ORDER BY 1`, rk)
	if err != nil {
		return nil, fmt.Errorf("app summaries %s: %w", runID, err)
	}
	defer rows.Close()
	var out []AppSummary
	for rows.Next() {
		var app string
		var st sql.NullInt64
		var n int64
		if err := rows.Scan(&app, &st, &n); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].App != app {
			out = append(out, AppSummary{App: app, ByState: map[string]int64{}})
		}
		a := &out[len(out)-1]
		a.Tasks += n
		a.ByState[stateLabel(st)] += n
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

const taskCols = `t.task_id, t.run_id, t.task_depends, t.task_func_name, t.task_memoize, t.task_hashsum,
	t.task_inputs, t.task_outputs, t.task_stdin, t.task_stdout, t.task_stderr, t.task_time_invoked,
	t.task_time_returned, t.task_fail_count, t.task_fail_cost`

func scanTask(dst []any, t *Task) []any {
	return append(dst, &t.TaskID, &t.RunID, (*nullString)(&t.Depends), &t.FuncName, &t.Memoize,
		(*nullString)(&t.Hashsum), (*nullString)(&t.Inputs), (*nullString)(&t.Outputs), (*nullString)(&t.Stdin),
		(*nullString)(&t.Stdout), (*nullString)(&t.Stderr), (*nullTime)(&t.TimeInvoked), (*nullTime)(&t.TimeReturned),
		&t.FailCount, &t.FailCost)
}

// tasksQuery builds the paged task query. It walks the dashboard index in
// task_id order through the index that matches the filter, so a page costs
// its offset in small index entries plus pageSize primary-key lookups,
// whatever the run's size.
//
// It returns the FROM source with an index hint and the WHERE clause: the
// planner, without statistics, may prefer the primary key and filter, which
// is fine on a small run and a full scan of a large one.
func tasksQuery(f TaskFilter, appKey int64) (string, []any) {
	where := []string{"s.run_key = ?"}
	var args []any
	if f.App != "" {
		where = append(where, "s.app_key = ?")
		args = append(args, appKey)
	}
	if f.State != "" {
		where = append(where, "s.state = ?")
		code, ok := stateCodes[f.State]
		if !ok {
			code = unknownState
		}
		args = append(args, code)
	}
	from := "parslgo_task_state s"
	switch {
	case f.App != "" && f.State != "":
		from += " INDEXED BY parslgo_task_state_app"
	case f.App != "":
		from += " INDEXED BY parslgo_task_state_app_id"
	case f.State != "":
		from += " INDEXED BY parslgo_task_state_state"
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
	rk, ok, err := s.runKey(ctx, runID)
	if err != nil || !ok {
		return out, err
	}
	var ak int64
	if f.App != "" {
		err := s.db.QueryRowContext(ctx, `SELECT app_key FROM parslgo_app WHERE name = ?`, f.App).Scan(&ak)
		if errors.Is(err, sql.ErrNoRows) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("tasks %s: %w", runID, err)
		}
	}
	where, fargs := tasksQuery(f, ak)
	args := append([]any{rk}, fargs...)
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+where, args...).Scan(&out.Total); err != nil {
		return out, fmt.Errorf("tasks %s: count: %w", runID, err)
	}
	q, qargs := pagedTasksSQL(where, runID, args, page, pageSize)
	rows, err := s.db.QueryContext(ctx, q, qargs...)
	if err != nil {
		return out, fmt.Errorf("tasks %s: %w", runID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r TaskRow
		var st, ts sql.NullInt64
		var dst [20]any
		var fn sql.NullString
		cols := scanTask(dst[:0], &r.Task)
		cols[3] = &fn // a task seen only through its statuses has no task row yet
		cols[0] = new(sql.NullInt64)
		cols[1] = new(sql.NullString)
		var tid int64
		cols = append(cols, &tid, &st, &ts)
		if err := rows.Scan(scanNullable(cols)...); err != nil {
			return out, fmt.Errorf("tasks %s: %w", runID, err)
		}
		r.TaskID, r.RunID, r.FuncName = tid, runID, fn.String
		r.State = stateLabel(st)
		if ts.Valid {
			r.StateTime = time.UnixMicro(ts.Int64)
		}
		out.Tasks = append(out.Tasks, r)
	}
	return out, rows.Err()
}

// pagedTasksSQL is the page query, separate so a test can EXPLAIN it.
func pagedTasksSQL(fromWhere, runID string, args []any, page, pageSize int) (string, []any) {
	// The inner query reads task ids only, which every index covers, so
	// skipping OFFSET entries touches nothing else; state and task columns
	// are then fetched by primary key for the page's rows alone.
	q := `SELECT ` + taskCols + `, p.task_id, x.state, x.ts FROM
	(SELECT s.run_key, s.task_id FROM ` + fromWhere + ` ORDER BY s.task_id LIMIT ? OFFSET ?) p
	JOIN parslgo_task_state x ON x.run_key = p.run_key AND x.task_id = p.task_id
	LEFT JOIN task t ON t.run_id = ? AND t.task_id = p.task_id ORDER BY p.task_id`
	a := append(append([]any{}, args...), pageSize, page*pageSize, runID)
	return q, a
}

// TaskDetail is a task with its tries and status history.
type TaskDetail struct {
	TaskRow
	Tries    []Try
	Statuses []Status // by time
}

// Task returns one task with its tries and statuses; ErrNotFound if the
// run has neither a task row nor a status for it.
func (s *Store) Task(ctx context.Context, runID string, taskID int64) (TaskDetail, error) {
	var d TaskDetail
	var dst [16]any
	err := s.db.QueryRowContext(ctx, `SELECT `+taskCols+` FROM task t WHERE t.run_id = ? AND t.task_id = ?`, runID, taskID).
		Scan(scanTask(dst[:0], &d.Task)...)
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("task %s/%d: %w", runID, taskID, err)
	}
	d.RunID, d.TaskID = runID, taskID

	rows, err := s.db.QueryContext(ctx, `SELECT try_id, block_id, hostname, task_executor, task_try_time_launched,
	task_try_time_running, task_try_time_returned, task_fail_history, task_joins
	FROM try WHERE run_id = ? AND task_id = ? ORDER BY try_id`, runID, taskID)
	if err != nil {
		return d, fmt.Errorf("task %s/%d tries: %w", runID, taskID, err)
	}
	for rows.Next() {
		t := Try{RunID: runID, TaskID: taskID}
		if err := rows.Scan(&t.TryID, (*nullString)(&t.BlockID), (*nullString)(&t.Hostname), &t.Executor,
			(*nullTime)(&t.TimeLaunched), (*nullTime)(&t.TimeRunning), (*nullTime)(&t.TimeReturned),
			(*nullString)(&t.FailHistory), (*nullString)(&t.Joins)); err != nil {
			rows.Close()
			return d, fmt.Errorf("task %s/%d tries: %w", runID, taskID, err)
		}
		d.Tries = append(d.Tries, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return d, err
	}

	rows, err = s.db.QueryContext(ctx, `SELECT try_id, task_status_name, timestamp FROM status
	WHERE run_id = ? AND task_id = ? ORDER BY timestamp`, runID, taskID)
	if err != nil {
		return d, fmt.Errorf("task %s/%d statuses: %w", runID, taskID, err)
	}
	defer rows.Close()
	for rows.Next() {
		st := Status{RunID: runID, TaskID: taskID}
		if err := rows.Scan(&st.TryID, &st.State, (*nullTime)(&st.Timestamp)); err != nil {
			return d, fmt.Errorf("task %s/%d statuses: %w", runID, taskID, err)
		}
		d.Statuses = append(d.Statuses, st)
	}
	if err := rows.Err(); err != nil {
		return d, err
	}
	if !found && len(d.Statuses) == 0 && len(d.Tries) == 0 {
		return d, fmt.Errorf("task %s/%d: %w", runID, taskID, ErrNotFound)
	}
	if n := len(d.Statuses); n > 0 {
		// The detail view shows the dashboard index's notion of the current
		// state, so that it agrees with the counts and the lists.
		var st, ts sql.NullInt64
		err := s.db.QueryRowContext(ctx, `SELECT s.state, s.ts FROM parslgo_task_state s JOIN parslgo_run r
		ON r.run_key = s.run_key WHERE r.run_id = ? AND s.task_id = ?`, runID, taskID).Scan(&st, &ts)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return d, fmt.Errorf("task %s/%d state: %w", runID, taskID, err)
		}
		d.State = stateLabel(st)
		if ts.Valid {
			d.StateTime = time.UnixMicro(ts.Int64)
		}
	} else {
		d.State = "unsched"
	}
	return d, nil
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

// nullAny scans any column, tolerating NULL, into its target: a task seen
// only through statuses comes back from the LEFT JOIN with NULL task columns.
type nullAny struct{ dst any }

func (n nullAny) Scan(v any) error {
	if v == nil {
		return nil
	}
	if sc, ok := n.dst.(sql.Scanner); ok {
		return sc.Scan(v)
	}
	return convertAssign(n.dst, v)
}

func scanNullable(cols []any) []any {
	out := make([]any, len(cols))
	for i, c := range cols {
		out[i] = nullAny{c}
	}
	return out
}

// convertAssign handles the plain destinations used in the task columns.
func convertAssign(dst, v any) error {
	switch d := dst.(type) {
	case *string:
		var s sql.NullString
		if err := s.Scan(v); err != nil {
			return err
		}
		*d = s.String
	case *int64:
		var i sql.NullInt64
		if err := i.Scan(v); err != nil {
			return err
		}
		*d = i.Int64
	case *float64:
		var f sql.NullFloat64
		if err := f.Scan(v); err != nil {
			return err
		}
		*d = f.Float64
	case *bool:
		var b sql.NullBool
		if err := b.Scan(v); err != nil {
			return err
		}
		*d = b.Bool
	default:
		return fmt.Errorf("scan into %T", dst)
	}
	return nil
}
