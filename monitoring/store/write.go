package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Rows of Parsl's small tables are written as they come; task, try and
// status records are merged into one row per task in the open transaction
// and written at its end, a few hundred rows per statement (see flush).

// writeSQL holds the writer's single-row statements, prepared once on its
// connection. Upserts follow Parsl's DatabaseManager: rows are inserted the
// first time and later messages update the columns Parsl updates; coalesce
// keeps a stored value when the new message leaves an optional column unset.
var writeSQL = map[string]string{
	"workflow": `INSERT INTO workflow (run_id, workflow_name, workflow_version, time_began, time_completed,
	host, user, rundir, tasks_failed_count, tasks_completed_count) VALUES (?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (run_id) DO UPDATE SET
	workflow_name = coalesce(excluded.workflow_name, workflow_name),
	workflow_version = coalesce(excluded.workflow_version, workflow_version),
	time_completed = coalesce(excluded.time_completed, time_completed),
	tasks_failed_count = excluded.tasks_failed_count,
	tasks_completed_count = excluded.tasks_completed_count`,
	"heartbeat": `INSERT INTO parslgo_heartbeat (run_id, beat, period_ms) VALUES (?,?,?)
ON CONFLICT (run_id) DO UPDATE SET beat = max(beat, excluded.beat), period_ms = excluded.period_ms`,
	"block": `INSERT OR IGNORE INTO block (run_id, executor_label, block_id, job_id, timestamp, status) VALUES (?,?,?,?,?,?)`,
	"node": `INSERT INTO node (run_id, hostname, uid, block_id, cpu_count, total_memory, active, worker_count,
	python_v, timestamp, last_heartbeat) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
	"resource": `INSERT OR IGNORE INTO resource (try_id, task_id, run_id, timestamp, resource_monitoring_interval,
	psutil_process_pid, psutil_process_memory_percent, psutil_process_children_count, psutil_process_time_user,
	psutil_process_time_system, psutil_process_memory_virtual, psutil_process_memory_resident,
	psutil_process_disk_read, psutil_process_disk_write, psutil_process_status, psutil_cpu_num,
	psutil_process_num_ctx_switches_voluntary, psutil_process_num_ctx_switches_involuntary)
	VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
	// The first writer of a run sets its t0; RETURNING gives it to later
	// writers too (the no-op update makes an existing row return).
	"run_key": `INSERT INTO parslgo_run (run_id, t0) VALUES (?, ?)
ON CONFLICT (run_id) DO UPDATE SET run_id = excluded.run_id RETURNING run_key, t0`,
	"name_key": `INSERT INTO parslgo_name (name) VALUES (?)
ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING name_key`,
	"max_task": `SELECT max(task_id) FROM parslgo_task WHERE run_key = ?`,
	"count": `INSERT INTO parslgo_count (run_key, app_key, state, n) VALUES (?, ?, ?, ?)
ON CONFLICT (run_key, app_key, state) DO UPDATE SET n = n + excluded.n`,
}

// oldTasksSQL reads the app, current state and tries of up to n stored
// tasks of a run: what a write needs to know of the row it changes.
func oldTasksSQL(n int) string {
	return `SELECT task_id, app_key, state, ts, tries FROM parslgo_task WHERE run_key = ? AND task_id IN (` +
		strings.TrimSuffix(strings.Repeat("?,", n), ",") + `)`
}

// The current state is the latest one, except that a final state
// (exec_done, failed, dep_fail, memo_done) is not replaced by a non-final
// one: the worker's running_ended can carry a later clock than the DFK's
// exec_done. stateUpdate.beats is the same rule.
const stateWins = `excluded.state IS NOT NULL AND (state IS NULL OR
	(excluded.state IN ` + finalCodes + `, excluded.ts) >= (state IN ` + finalCodes + `, ts))`

// taskUpsert is the statement for n merged task rows. A row without task
// data (app_key NULL: only statuses were written) leaves the columns Parsl
// updates on every task message alone. Statuses are appended, unless the
// same entries are already there (a message written twice). Tries are
// merged by the writer, which knows the stored ones (see updateCounts), so
// a new value replaces the stored one.
func taskUpsert(n int, plain bool) string {
	row := taskValues
	if plain {
		row = taskValuesPlain
	}
	return `INSERT INTO parslgo_task (run_key, task_id, app_key, state, ts, task_memoize, task_depends, task_hashsum,
	task_inputs, task_outputs, task_stdin, task_stdout, task_stderr, invoked, returned, task_fail_count, task_fail_cost,
	statuses, tries) VALUES ` + repeatRow(row, n) + `
ON CONFLICT (run_key, task_id) DO UPDATE SET
	app_key = coalesce(excluded.app_key, app_key),
	task_memoize = CASE WHEN excluded.app_key IS NULL THEN task_memoize ELSE excluded.task_memoize END,
	task_fail_count = CASE WHEN excluded.app_key IS NULL THEN task_fail_count ELSE excluded.task_fail_count END,
	task_fail_cost = CASE WHEN excluded.app_key IS NULL THEN task_fail_cost ELSE excluded.task_fail_cost END,
	task_depends = coalesce(excluded.task_depends, task_depends),
	task_hashsum = coalesce(excluded.task_hashsum, task_hashsum),
	task_inputs = coalesce(excluded.task_inputs, task_inputs),
	task_outputs = coalesce(excluded.task_outputs, task_outputs),
	task_stdin = coalesce(excluded.task_stdin, task_stdin),
	task_stdout = coalesce(excluded.task_stdout, task_stdout),
	task_stderr = coalesce(excluded.task_stderr, task_stderr),
	invoked = coalesce(excluded.invoked, invoked),
	returned = coalesce(excluded.returned, returned),
	state = CASE WHEN ` + stateWins + ` THEN excluded.state ELSE state END,
	ts = CASE WHEN ` + stateWins + ` THEN excluded.ts ELSE ts END,
	statuses = CASE WHEN excluded.statuses IS NULL THEN statuses WHEN statuses IS NULL THEN excluded.statuses
		WHEN instr(statuses, excluded.statuses) > 0 THEN statuses ELSE statuses || excluded.statuses END,
	tries = coalesce(excluded.tries, tries)`
}

// The VALUES rows of the upsert. A "plain" row, the kind the hub writes,
// has NULL written out for the columns the kernel's events never set (a
// task's hashsum, files and std streams): each bound parameter costs about
// as much as a quarter of a row's insert.
const (
	taskValues      = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
	taskValuesPlain = "(?,?,?,?,?,?,?,NULL,NULL,NULL,NULL,NULL,NULL,?,?,?,?,?,?)"
)

func repeatRow(row string, n int) string {
	return strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

func (r *taskRow) plain() bool {
	return r.text[1] == "" && r.text[2] == "" && r.text[3] == "" && r.text[4] == "" && r.text[5] == "" && r.text[6] == ""
}

// chunkSizes are the row counts of the multi-row statements, largest first;
// a flush of n rows uses as many of the largest as fit, then smaller ones.
// Each size is prepared once, on first use. 256 rows of 18 columns stay
// far below SQLite's limit of 32766 parameters.
var chunkSizes = []int{256, 64, 16, 4, 1}

func (s *Store) exec(ctx context.Context, stmt string, args ...any) error {
	_, err := s.stmts[stmt].ExecContext(ctx, args...)
	return err
}

// chunkStmt returns the prepared task upsert for n rows.
func (s *Store) chunkStmt(ctx context.Context, n int, plain bool) (*sql.Stmt, error) {
	k := chunkKey{n, plain}
	if st := s.chunks[k]; st != nil {
		return st, nil
	}
	st, err := s.wconn.PrepareContext(ctx, taskUpsert(n, plain))
	if err != nil {
		return nil, fmt.Errorf("prepare task upsert of %d rows: %w", n, err)
	}
	s.chunks[k] = st
	return st, nil
}

type chunkKey struct {
	rows  int
	plain bool
}

// runInfo is a run's key and the origin of its times.
type runInfo struct{ key, t0 int64 }

// runState is what the writer knows of a run it writes. Everything in it
// describes committed rows plus those of the open transaction, so it is
// dropped when a transaction rolls back.
type runState struct {
	runInfo
	// baseMax is the largest task id the run had in the database when the
	// writer first needed it; written marks the ids this writer has
	// written since. A task in neither has no row: its counts need no
	// lookup.
	baseMax      int64
	baseMaxKnown bool
	written      []uint64
	// live holds the app and state of the tasks this writer wrote that
	// are not in a final state yet, the ones whose next write changes the
	// counts; others are looked up.
	live map[int64]storedTask
}

func (r *runState) wrote(id int64) bool {
	if id < 0 || id/64 >= int64(len(r.written)) {
		return false
	}
	return r.written[id/64]&(1<<(id%64)) != 0
}

// maxWrittenBits bounds the written set (32 MiB): a task id beyond it is
// looked up instead of marked.
const maxWrittenBits = 1 << 28

func (r *runState) markWritten(id int64) {
	if id < 0 || id >= maxWrittenBits {
		return
	}
	if w := int(id / 64); w >= len(r.written) {
		r.written = append(r.written, make([]uint64, max(w+1-len(r.written), len(r.written)))...)
	}
	r.written[id/64] |= 1 << (id % 64)
}

// runOf returns a run's state, creating the run with t0 = first (in
// wall-clock microseconds) if it is new.
func (s *Store) runOf(ctx context.Context, runID string, first time.Time) (*runState, error) {
	if r, ok := s.runs[runID]; ok {
		return r, nil
	}
	if first.IsZero() {
		first = time.Now()
	}
	r := &runState{live: map[int64]storedTask{}}
	if err := s.stmts["run_key"].QueryRowContext(ctx, runID, wallMicros(first)).Scan(&r.key, &r.t0); err != nil {
		return nil, fmt.Errorf("run %q: %w", runID, err)
	}
	s.runs[runID] = r
	s.runKeys[r.key] = r
	return r, nil
}

// name returns the key of an app name, executor label or host name; 0 for
// "", which is stored as NULL.
func (s *Store) name(ctx context.Context, name string) (int64, error) {
	if name == "" {
		return 0, nil
	}
	if k, ok := s.names[name]; ok {
		return k, nil
	}
	var k int64
	if err := s.stmts["name_key"].QueryRowContext(ctx, name).Scan(&k); err != nil {
		return 0, fmt.Errorf("name %q: %w", name, err)
	}
	s.names[name] = k
	return k, nil
}

// txn holds the open transaction's task rows, each merged from every task,
// try and status record written for it, until flush.
type txn struct {
	taskIdx map[taskKey]int
	tasks   []taskRow
	args    []any
	order   []int
	old     map[taskKey]storedTask
	delta   map[countKey]int64
}

type taskKey struct{ run, task int64 }

// noTime marks an unset time in the merged rows.
const noTime = int64(-1 << 63)

type taskRow struct {
	key       taskKey
	hasTask   bool // a Task record was written: the Parsl task columns are set
	app       int64
	memoize   bool
	failCount int64
	failCost  float64
	text      [7]string // depends, hashsum, inputs, outputs, stdin, stdout, stderr
	invoked   int64
	returned  int64
	statuses  []byte
	cur       stateUpdate
	hasCur    bool
	tries     []tryRow // merged in this transaction, by try id
	triesText string   // the tries column to write: tries merged with the stored ones
}

// tryRow is one try of a task, an entry of its tries column:
// [try_id,exec,block,host,launched,running,returned,fail_history,joins],
// with exec and host name keys, times relative to t0, JSON null when unset
// (trailing nulls left out).
type tryRow struct {
	try         int64
	exec, host  int64
	block       string
	launched    int64
	running     int64
	returned    int64
	failHistory string
	joins       string
}

// merge sets the fields set in n.
func (t *tryRow) merge(n *tryRow) {
	if n.exec != 0 {
		t.exec = n.exec
	}
	if n.host != 0 {
		t.host = n.host
	}
	if n.block != "" {
		t.block = n.block
	}
	if n.failHistory != "" {
		t.failHistory = n.failHistory
	}
	if n.joins != "" {
		t.joins = n.joins
	}
	for _, f := range [...]struct{ dst, src *int64 }{{&t.launched, &n.launched}, {&t.running, &n.running}, {&t.returned, &n.returned}} {
		if *f.src != noTime {
			*f.dst = *f.src
		}
	}
}

// try returns the try's entry in r, added if new.
func (r *taskRow) try(id int64) *tryRow {
	for i := range r.tries {
		if r.tries[i].try == id {
			return &r.tries[i]
		}
	}
	r.tries = append(r.tries, tryRow{try: id, launched: noTime, running: noTime, returned: noTime})
	return &r.tries[len(r.tries)-1]
}

// mergeTries merges the stored tries (text of the tries column) under the
// transaction's ones, into r.tries, by try id.
func (r *taskRow) mergeTries(stored string) error {
	old, err := parseTries(stored)
	if err != nil {
		return err
	}
	for i := range r.tries {
		n := &r.tries[i]
		found := false
		for j := range old {
			if old[j].try == n.try {
				old[j].merge(n)
				found = true
			}
		}
		if !found {
			old = append(old, *n)
		}
	}
	r.tries = old
	return nil
}

// encodeTries is the tries column of r: its entries by try id.
func encodeTries(tries []tryRow) string {
	slices.SortFunc(tries, func(a, b tryRow) int { return cmp.Compare(a.try, b.try) })
	var b []byte
	for i := range tries {
		t := &tries[i]
		b = append(b, '[')
		b = strconv.AppendInt(b, t.try, 10)
		b = append(b, ',')
		b = appendKey(b, t.exec)
		b = append(b, ',')
		b = appendJSONText(b, t.block)
		b = append(b, ',')
		b = appendKey(b, t.host)
		for _, us := range [...]int64{t.launched, t.running, t.returned} {
			b = append(b, ',')
			if us == noTime {
				b = append(b, "null"...)
			} else {
				b = strconv.AppendInt(b, us, 10)
			}
		}
		b = append(b, ',')
		b = appendJSONText(b, t.failHistory)
		b = append(b, ',')
		b = appendJSONText(b, t.joins)
		for bytes.HasSuffix(b, []byte(",null")) { // unset trailing fields read as null
			b = b[:len(b)-len(",null")]
		}
		b = append(b, "],"...)
	}
	return string(b)
}

func appendKey(b []byte, k int64) []byte {
	if k == 0 {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, k, 10)
}

// appendJSONText appends s as a JSON string, or null for "".
func appendJSONText(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// parseTries decodes a tries column.
func parseTries(text string) ([]tryRow, error) {
	text = strings.TrimRight(text, ",")
	if text == "" {
		return nil, nil
	}
	var entries [][]*json.RawMessage
	if err := json.Unmarshal([]byte("["+text+"]"), &entries); err != nil {
		return nil, fmt.Errorf("tries %q: %w", text, err)
	}
	out := make([]tryRow, 0, len(entries))
	for _, e := range entries {
		t := tryRow{launched: noTime, running: noTime, returned: noTime}
		ints := [...]struct {
			dst *int64
			i   int
		}{{&t.try, 0}, {&t.exec, 1}, {&t.host, 3}, {&t.launched, 4}, {&t.running, 5}, {&t.returned, 6}}
		for _, f := range ints {
			if f.i < len(e) && e[f.i] != nil {
				if err := json.Unmarshal(*e[f.i], f.dst); err != nil {
					return nil, fmt.Errorf("tries %q: %w", text, err)
				}
			}
		}
		for _, f := range [...]struct {
			dst *string
			i   int
		}{{&t.block, 2}, {&t.failHistory, 7}, {&t.joins, 8}} {
			if f.i < len(e) && e[f.i] != nil {
				if err := json.Unmarshal(*e[f.i], f.dst); err != nil {
					return nil, fmt.Errorf("tries %q: %w", text, err)
				}
			}
		}
		out = append(out, t)
	}
	return out, nil
}

func (x *txn) reset() {
	clear(x.taskIdx)
	clear(x.tasks) // drop references to strings
	x.tasks = x.tasks[:0]
	clear(x.args)
	x.args = x.args[:0]
}

func (x *txn) task(k taskKey) *taskRow {
	if i, ok := x.taskIdx[k]; ok {
		return &x.tasks[i]
	}
	x.taskIdx[k] = len(x.tasks)
	x.tasks = append(x.tasks, taskRow{key: k, invoked: noTime, returned: noTime})
	return &x.tasks[len(x.tasks)-1]
}

// apply adds one record to the writer's open transaction.
func (s *Store) apply(ctx context.Context, rec Record) error {
	switch r := rec.(type) {
	case *Batch:
		for i := range r.Tasks {
			if err := s.applyTask(ctx, &r.Tasks[i]); err != nil {
				return err
			}
		}
		for i := range r.Tries {
			if err := s.applyTry(ctx, &r.Tries[i]); err != nil {
				return err
			}
		}
		for i := range r.Statuses {
			if err := s.applyStatus(ctx, &r.Statuses[i]); err != nil {
				return err
			}
		}
		return nil
	case *Workflow:
		return s.applyWorkflow(ctx, r)
	case Workflow:
		return s.applyWorkflow(ctx, &r)
	case *Heartbeat:
		return s.exec(ctx, "heartbeat", r.RunID, r.Time.UnixMilli(), r.Period.Milliseconds())
	case Heartbeat:
		return s.exec(ctx, "heartbeat", r.RunID, r.Time.UnixMilli(), r.Period.Milliseconds())
	case *Task:
		return s.applyTask(ctx, r)
	case Task:
		return s.applyTask(ctx, &r)
	case *Try:
		return s.applyTry(ctx, r)
	case Try:
		return s.applyTry(ctx, &r)
	case *Status:
		return s.applyStatus(ctx, r)
	case Status:
		return s.applyStatus(ctx, &r)
	case *Block:
		return s.applyBlock(ctx, r)
	case Block:
		return s.applyBlock(ctx, &r)
	case *Node:
		return s.applyNode(ctx, r)
	case Node:
		return s.applyNode(ctx, &r)
	case *Resource:
		return s.applyResource(ctx, r)
	case Resource:
		return s.applyResource(ctx, &r)
	}
	return fmt.Errorf("%w: unsupported record type %T", errPermanent, rec)
}

func (s *Store) applyWorkflow(ctx context.Context, w *Workflow) error {
	// The run's times count from its start.
	if _, err := s.runOf(ctx, w.RunID, w.TimeBegan); err != nil {
		return err
	}
	return s.exec(ctx, "workflow", w.RunID, optText(w.WorkflowName), optText(w.WorkflowVersion),
		dbTime(w.TimeBegan), optTime(w.TimeCompleted), w.Host, w.User, w.RunDir,
		w.TasksFailedCount, w.TasksCompletedCount)
}

// applyTask merges a task record into its row: as in the upsert, set
// optional fields replace, FuncName, Memoize, FailCount and FailCost always
// do.
func (s *Store) applyTask(ctx context.Context, t *Task) error {
	r, err := s.runOf(ctx, t.RunID, firstTime(t.TimeInvoked, t.TimeReturned))
	if err != nil {
		return err
	}
	app, err := s.name(ctx, t.FuncName)
	if err != nil {
		return err
	}
	if app == 0 {
		// Parsl's task_func_name is NOT NULL; an empty name is a name.
		if app, err = s.emptyName(ctx); err != nil {
			return err
		}
	}
	row := s.tx.task(taskKey{r.key, t.TaskID})
	row.hasTask = true
	row.app, row.memoize, row.failCount, row.failCost = app, t.Memoize, t.FailCount, t.FailCost
	for i, v := range [...]string{t.Depends, t.Hashsum, t.Inputs, t.Outputs, t.Stdin, t.Stdout, t.Stderr} {
		if v != "" {
			row.text[i] = v
		}
	}
	if !t.TimeInvoked.IsZero() {
		row.invoked = wallMicros(t.TimeInvoked) - r.t0
	}
	if !t.TimeReturned.IsZero() {
		row.returned = wallMicros(t.TimeReturned) - r.t0
	}
	return nil
}

// emptyName is the key of the app name "".
func (s *Store) emptyName(ctx context.Context) (int64, error) {
	const key = "\x00empty"
	if k, ok := s.names[key]; ok {
		return k, nil
	}
	var k int64
	if err := s.stmts["name_key"].QueryRowContext(ctx, "").Scan(&k); err != nil {
		return 0, fmt.Errorf("name \"\": %w", err)
	}
	s.names[key] = k
	return k, nil
}

func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func (s *Store) applyTry(ctx context.Context, t *Try) error {
	r, err := s.runOf(ctx, t.RunID, firstTime(t.TimeLaunched, t.TimeRunning, t.TimeReturned))
	if err != nil {
		return err
	}
	exec, err := s.name(ctx, t.Executor)
	if err != nil {
		return err
	}
	host, err := s.name(ctx, t.Hostname)
	if err != nil {
		return err
	}
	row := s.tx.task(taskKey{r.key, t.TaskID}).try(t.TryID)
	if exec != 0 {
		row.exec = exec
	}
	if host != 0 {
		row.host = host
	}
	if t.BlockID != "" {
		row.block = t.BlockID
	}
	if t.FailHistory != "" {
		row.failHistory = t.FailHistory
	}
	if t.Joins != "" {
		row.joins = t.Joins
	}
	for _, f := range [...]struct {
		t   time.Time
		dst *int64
	}{{t.TimeLaunched, &row.launched}, {t.TimeRunning, &row.running}, {t.TimeReturned, &row.returned}} {
		if !f.t.IsZero() {
			*f.dst = wallMicros(f.t) - r.t0
		}
	}
	return nil
}

// applyStatus appends a status entry to its task's row and keeps the
// winning current state.
func (s *Store) applyStatus(ctx context.Context, st *Status) error {
	r, err := s.runOf(ctx, st.RunID, st.Timestamp)
	if err != nil {
		return err
	}
	ts := wallMicros(st.Timestamp) - r.t0
	code, known := stateCodes[st.State]
	row := s.tx.task(taskKey{r.key, st.TaskID})
	// One entry: [state,time,try],
	var buf [64]byte
	e := append(buf[:0], '[')
	if known {
		e = strconv.AppendInt(e, int64(code), 10)
	} else {
		name, err := json.Marshal(st.State)
		if err != nil {
			return fmt.Errorf("%w: state name %q: %v", errPermanent, st.State, err)
		}
		e = append(e, name...)
		code = unknownState
	}
	e = append(e, ',')
	e = strconv.AppendInt(e, ts, 10)
	e = append(e, ',')
	e = strconv.AppendInt(e, st.TryID, 10)
	e = append(e, "],"...)
	if bytes.Contains(row.statuses, e) {
		return nil // the same status twice is stored once
	}
	row.statuses = append(row.statuses, e...)
	u := stateUpdate{int64(code), ts}
	if !row.hasCur || u.beats(row.cur) {
		row.cur, row.hasCur = u, true
	}
	return nil
}

type stateUpdate struct{ state, ts int64 }

func isFinal(state int64) bool { return state == 3 || state == 4 || state == 5 || state == 9 }

// beats is stateWins in Go: a final state wins over a non-final one,
// otherwise the later (or equal) time wins.
func (u stateUpdate) beats(old stateUpdate) bool {
	if isFinal(u.state) != isFinal(old.state) {
		return isFinal(u.state)
	}
	return u.ts >= old.ts
}

// flush writes the transaction's merged task rows, and the change they
// make to the task counts.
func (s *Store) flush(ctx context.Context) error {
	x := &s.tx
	if err := s.mergeStored(ctx); err != nil {
		return err
	}
	for _, plain := range []bool{true, false} {
		rows := x.order[:0]
		for i := range x.tasks {
			if x.tasks[i].plain() == plain {
				rows = append(rows, i)
			}
		}
		// In key order, rows go to the end of the table's b-tree, as its
		// pages fill, instead of between rows written before.
		slices.SortFunc(rows, func(a, b int) int { return cmpTaskKey(x.tasks[a].key, x.tasks[b].key) })
		for len(rows) > 0 {
			n := chunkFor(len(rows))
			st, err := s.chunkStmt(ctx, n, plain)
			if err != nil {
				return err
			}
			args := x.args[:0]
			for _, i := range rows[:n] {
				args = appendTaskArgs(args, &x.tasks[i], plain)
			}
			x.args = args
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("task rows: %w", err)
			}
			rows = rows[n:]
		}
		x.order = rows
	}
	return nil
}

func cmpTaskKey(a, b taskKey) int {
	if c := cmp.Compare(a.run, b.run); c != 0 {
		return c
	}
	return cmp.Compare(a.task, b.task)
}

// countKey is a cell of parslgo_count.
type countKey struct{ run, app, state int64 }

// storedTask is what the counts need of a task's stored row.
type storedTask struct {
	app   sql.NullInt64
	state sql.NullInt64
	ts    sql.NullInt64
	tries string
}

// mergeStored brings what is stored into the transaction's task rows: it
// works out every row's app and current state before and after the
// transaction, exactly as the upsert decides them, and adds the difference
// to parslgo_count; and it merges the stored tries under the new ones. The
// writer knows which tasks have no row yet and the state of those it wrote
// that may still change (see runState); it looks up the others.
func (s *Store) mergeStored(ctx context.Context) error {
	x := &s.tx
	if len(x.tasks) == 0 {
		return nil
	}
	clear(x.delta)
	// The stored app and state of every task that may have a row.
	old := x.old
	clear(old)
	lookup := map[*runState][]int64{}
	for i := range x.tasks {
		k := x.tasks[i].key
		r := s.runKeys[k.run]
		if !r.baseMaxKnown {
			var m sql.NullInt64
			if err := s.stmts["max_task"].QueryRowContext(ctx, k.run).Scan(&m); err != nil {
				return err
			}
			r.baseMax, r.baseMaxKnown = m.Int64, true
			if !m.Valid {
				r.baseMax = -1
			}
		}
		if o, ok := r.live[k.task]; ok {
			old[k] = o
		} else if k.task <= r.baseMax || k.task >= maxWrittenBits || r.wrote(k.task) {
			lookup[r] = append(lookup[r], k.task)
		}
	}
	for r, ids := range lookup {
		if err := s.readStored(ctx, r.key, ids, old); err != nil {
			return err
		}
	}
	for i := range x.tasks {
		t := &x.tasks[i]
		r := s.runKeys[t.key.run]
		o, existed := old[t.key]
		if existed {
			x.delta[countKey{t.key.run, nullApp(o.app), nullState(o.state)}]--
		}
		n := o
		if t.hasTask {
			n.app = sql.NullInt64{Int64: t.app, Valid: true}
		}
		if t.hasCur && (!o.state.Valid || t.cur.beats(stateUpdate{o.state.Int64, o.ts.Int64})) {
			n.state = sql.NullInt64{Int64: t.cur.state, Valid: true}
			n.ts = sql.NullInt64{Int64: t.cur.ts, Valid: true}
		}
		x.delta[countKey{t.key.run, nullApp(n.app), nullState(n.state)}]++
		if len(t.tries) > 0 {
			if existed && o.tries != "" {
				if err := t.mergeTries(o.tries); err != nil {
					return fmt.Errorf("task %d: stored %w", t.key.task, err)
				}
			}
			t.triesText = encodeTries(t.tries)
			n.tries = t.triesText
		}
		r.markWritten(t.key.task)
		if n.app.Valid && n.state.Valid && isFinal(n.state.Int64) {
			delete(r.live, t.key.task)
		} else {
			r.live[t.key.task] = n
		}
	}
	for k, n := range x.delta {
		if n != 0 {
			if err := s.exec(ctx, "count", k.run, k.app, k.state, n); err != nil {
				return err
			}
		}
	}
	return nil
}

func nullState(st sql.NullInt64) int64 {
	if !st.Valid {
		return noState
	}
	return st.Int64
}

// readStored reads the stored rows of a run's tasks ids into old.
func (s *Store) readStored(ctx context.Context, run int64, ids []int64, old map[taskKey]storedTask) error {
	const per = 256
	for len(ids) > 0 {
		n := min(len(ids), per)
		args := make([]any, 0, n+1)
		args = append(args, run)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		rows, err := s.wconn.QueryContext(ctx, oldTasksSQL(n), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var o storedTask
			var tries sql.NullString
			if err := rows.Scan(&id, &o.app, &o.state, &o.ts, &tries); err != nil {
				rows.Close()
				return err
			}
			o.tries = tries.String
			old[taskKey{run, id}] = o
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

func nullApp(app sql.NullInt64) int64 {
	if !app.Valid {
		return noApp
	}
	return app.Int64
}

func chunkFor(n int) int {
	for _, c := range chunkSizes {
		if c <= n {
			return c
		}
	}
	return 1
}

// appendTaskArgs appends the parameters of r's VALUES row, plain or not.
func appendTaskArgs(args []any, r *taskRow, plain bool) []any {
	var state, ts, statuses any
	if r.hasCur {
		state, ts = r.cur.state, r.cur.ts
	}
	if len(r.statuses) > 0 {
		statuses = string(r.statuses)
	}
	var app, memo, failCount, failCost any
	if r.hasTask {
		// A row without task data leaves these NULL: the upsert keeps the
		// stored ones.
		app, memo, failCount, failCost = r.app, "0", r.failCount, r.failCost
		if r.memoize {
			memo = "1"
		}
	}
	args = append(args, r.key.run, r.key.task, app, state, ts, memo, optText(r.text[0]))
	if !plain {
		args = append(args, optText(r.text[1]), optText(r.text[2]), optText(r.text[3]), optText(r.text[4]),
			optText(r.text[5]), optText(r.text[6]))
	}
	var tries any
	if r.triesText != "" {
		tries = r.triesText
	}
	return append(args, optMicros(r.invoked), optMicros(r.returned), failCount, failCost, statuses, tries)
}

func optMicros(us int64) any {
	if us == noTime {
		return nil
	}
	return us
}

func (s *Store) applyBlock(ctx context.Context, b *Block) error {
	return s.exec(ctx, "block", b.RunID, b.ExecutorLabel, b.BlockID, optText(b.JobID), dbTime(b.Timestamp), b.Status)
}

func (s *Store) applyNode(ctx context.Context, n *Node) error {
	return s.exec(ctx, "node", n.RunID, n.Hostname, n.UID, n.BlockID, n.CPUCount, n.TotalMemory, n.Active,
		n.WorkerCount, n.PythonV, dbTime(n.Timestamp), dbTime(n.LastHeartbeat))
}

func (s *Store) applyResource(ctx context.Context, r *Resource) error {
	return s.exec(ctx, "resource", r.TryID, r.TaskID, r.RunID, dbTime(r.Timestamp), r.MonitoringInterval,
		r.PID, r.MemoryPercent, r.ChildrenCount, r.TimeUser, r.TimeSystem, r.MemoryVirtual, r.MemoryResident,
		r.DiskRead, r.DiskWrite, optText(r.ProcessStatus), optText(r.CPUNum),
		r.NumCtxSwitchesVoluntary, r.NumCtxSwitchesInvoluntary)
}
