package store

import (
	"fmt"
	"sort"
	"strings"
)

// SchemaVersion is the version of the schema this package writes, kept in
// PRAGMA user_version. Version 0 is a database not (yet) initialised by this
// package: either new, or created by Python Parsl. Version 1 stored Parsl's
// task, try and status tables as plain tables. Versions 0 (with Parsl's
// tables) and 1 are migrated to this version when opened.
const SchemaVersion = 2

// timeSQL renders x, a time in microseconds of the naive local wall clock
// (see wallMicros), as SQLAlchemy stores a DateTime on SQLite:
// "YYYY-MM-DD HH:MM:SS.ffffff". NULL stays NULL. Only functions every SQLite
// has since 3.8 are used, so that any Python's sqlite3 can read the views.
func timeSQL(x string) string {
	return fmt.Sprintf(`strftime('%%Y-%%m-%%d %%H:%%M:%%S', (%[1]s) / 1000000, 'unixepoch') || printf('.%%06d', (%[1]s) %% 1000000)`, x)
}

// microsSQL parses a DateTime text written by SQLAlchemy or by us (also
// without the fraction, or with a 'T') into wall-clock microseconds.
func microsSQL(x string) string {
	return fmt.Sprintf(`(CAST(strftime('%%s', substr(%[1]s, 1, 19)) AS INTEGER) * 1000000 +
		CAST(substr(substr(%[1]s, 21) || '000000', 1, 6) AS INTEGER))`, x)
}

// stateNameSQL maps a state code (an integer, or a text for a state this
// package does not know) back to Parsl's name.
func stateNameSQL(x string) string {
	var b strings.Builder
	b.WriteString("CASE " + x)
	for _, n := range sortedStateNames() {
		fmt.Fprintf(&b, " WHEN %d THEN '%s'", stateCodes[n], n)
	}
	b.WriteString(" ELSE " + x + " END")
	return b.String()
}

// finalCodes lists the final states' codes for SQL: exec_done, failed,
// dep_fail, memo_done.
const finalCodes = "(3, 4, 5, 9)"

// Parsl's tables (parsl/monitoring/db_manager.py) that hold a few rows per
// run or per sample. Column names, declared types and nullability are
// Parsl's, as SQLAlchemy renders them for SQLite, so PRAGMA table_info
// matches. Primary keys have Parsl's column sets; their order puts run_id
// first so the clustered key serves per-run lookups.
var parslTablesDDL = []string{
	`CREATE TABLE IF NOT EXISTS workflow (
	run_id TEXT NOT NULL,
	workflow_name TEXT,
	workflow_version TEXT,
	time_began DATETIME NOT NULL,
	time_completed DATETIME,
	host TEXT NOT NULL,
	user TEXT NOT NULL,
	rundir TEXT NOT NULL,
	tasks_failed_count INTEGER NOT NULL,
	tasks_completed_count INTEGER NOT NULL,
	PRIMARY KEY (run_id)
)`,
	`CREATE TABLE IF NOT EXISTS node (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	run_id TEXT NOT NULL,
	hostname TEXT NOT NULL,
	uid TEXT NOT NULL,
	block_id TEXT NOT NULL,
	cpu_count INTEGER NOT NULL,
	total_memory BIGINT NOT NULL,
	active BOOLEAN NOT NULL,
	worker_count INTEGER NOT NULL,
	python_v TEXT NOT NULL,
	timestamp DATETIME NOT NULL,
	last_heartbeat DATETIME NOT NULL
)`,
	`CREATE INDEX IF NOT EXISTS parslgo_node_run ON node (run_id, timestamp)`,
	`CREATE TABLE IF NOT EXISTS block (
	run_id TEXT NOT NULL,
	executor_label TEXT NOT NULL,
	block_id TEXT NOT NULL,
	job_id TEXT,
	timestamp DATETIME NOT NULL,
	status TEXT NOT NULL,
	PRIMARY KEY (run_id, block_id, executor_label, timestamp)
) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS resource (
	try_id INTEGER NOT NULL,
	task_id INTEGER NOT NULL,
	run_id TEXT NOT NULL REFERENCES workflow (run_id),
	timestamp DATETIME NOT NULL,
	resource_monitoring_interval FLOAT,
	psutil_process_pid INTEGER,
	psutil_process_memory_percent FLOAT,
	psutil_process_children_count FLOAT,
	psutil_process_time_user FLOAT,
	psutil_process_time_system FLOAT,
	psutil_process_memory_virtual FLOAT,
	psutil_process_memory_resident FLOAT,
	psutil_process_disk_read FLOAT,
	psutil_process_disk_write FLOAT,
	psutil_process_status TEXT,
	psutil_cpu_num TEXT,
	psutil_process_num_ctx_switches_voluntary FLOAT,
	psutil_process_num_ctx_switches_involuntary FLOAT,
	PRIMARY KEY (run_id, task_id, try_id, timestamp)
) WITHOUT ROWID`,
}

// compactDDL creates the tables that hold the per-task data. A million-task
// run writes a million of each, so they are as small and as cheap to write
// as SQLite allows: run ids, app names, executors and hosts become small
// integers; times are integers (microseconds of the naive local wall
// clock, relative to the run's t0); a task's status history is one text
// column of its row, appended to, instead of one row per state change.
// Parsl's task, try and status tables are views over them (viewsDDL).
var compactDDL = []string{
	// t0 is the origin of the run's times, in wall-clock microseconds.
	`CREATE TABLE IF NOT EXISTS parslgo_run (
	run_key INTEGER PRIMARY KEY,
	run_id TEXT NOT NULL UNIQUE,
	t0 INTEGER NOT NULL
)`,
	// App names, executor labels and host names.
	`CREATE TABLE IF NOT EXISTS parslgo_name (
	name_key INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
)`,
	// One row per task: Parsl's task columns, the current state with its
	// time (for the dashboard), the status history and the tries. A task
	// seen only through statuses or tries (its task message not written
	// yet) has a NULL app_key and is not in the task view. Columns that
	// Parsl's view shows as they are keep Parsl's declared types.
	//
	// statuses holds "[state,time,try_id]," entries in the order they were
	// written: state is Parsl's state number (or its name, as a JSON string,
	// for a state this package does not know) and time is relative to t0.
	// tries holds "[try_id,executor,block_id,host,launched,running,
	// returned,fail_history,joins]," entries by try_id: executor and host
	// are parslgo_name keys, times are relative to t0, null is unset.
	`CREATE TABLE IF NOT EXISTS parslgo_task (
	run_key INTEGER NOT NULL,
	task_id INTEGER NOT NULL,
	app_key INTEGER,
	state INTEGER,
	ts INTEGER,
	task_memoize TEXT,
	task_depends TEXT,
	task_hashsum TEXT,
	task_inputs TEXT,
	task_outputs TEXT,
	task_stdin TEXT,
	task_stdout TEXT,
	task_stderr TEXT,
	invoked INTEGER,
	returned INTEGER,
	task_fail_count INTEGER,
	task_fail_cost FLOAT,
	statuses TEXT,
	tries TEXT,
	PRIMARY KEY (run_key, task_id)
) WITHOUT ROWID`,
	// Parsl declares task_hashsum with index=True. Partial: most tasks are
	// not memoized and have no hashsum.
	`CREATE INDEX IF NOT EXISTS parslgo_task_hashsum ON parslgo_task (task_hashsum) WHERE task_hashsum IS NOT NULL`,
	// The dashboard's lists of tasks in a state other than exec_done. Most
	// tasks of a large run end in exec_done and are written once, in that
	// state, so they never enter this index; a list of exec_done tasks
	// walks the primary key instead, where nearly every row matches.
	`CREATE INDEX IF NOT EXISTS parslgo_task_by_state ON parslgo_task (run_key, state, task_id) WHERE state IS NOT 3`,
	// Task counts by run, app and current state, kept by the writer in the
	// transactions that change the tasks, so that the dashboard's counts
	// and per-app summaries cost a few rows whatever the run's size. app_key
	// -1 counts tasks with no task row yet, state -1000 tasks with no status
	// yet (a key cannot hold SQL's NULL).
	`CREATE TABLE IF NOT EXISTS parslgo_count (
	run_key INTEGER NOT NULL,
	app_key INTEGER NOT NULL,
	state INTEGER NOT NULL,
	n INTEGER NOT NULL,
	PRIMARY KEY (run_key, app_key, state)
) WITHOUT ROWID`,
}

// heartbeatDDL creates the table of drivers' heartbeats, one row per run
// (see Heartbeat): beat is the last one in Unix milliseconds, period_ms the
// promised interval. It is an extra table, not a column of Parsl's
// workflow table, so that Parsl's tools read the database unchanged; and it
// is created when missing rather than by a schema version, so that older
// versions of this package still open a database that has it.
const heartbeatDDL = `CREATE TABLE IF NOT EXISTS parslgo_heartbeat (
	run_id TEXT NOT NULL PRIMARY KEY,
	beat INTEGER NOT NULL,
	period_ms INTEGER NOT NULL
)`

// viewsDDL presents the compact tables as Parsl's task, try and status
// tables: same names, same columns in the same order, timestamps as
// SQLAlchemy's text, so that Parsl's queries, notebooks and pandas code
// read our database unchanged.
func viewsDDL() []string {
	return []string{
		`CREATE VIEW IF NOT EXISTS task AS SELECT
	t.task_id AS task_id,
	r.run_id AS run_id,
	t.task_depends AS task_depends,
	a.name AS task_func_name,
	t.task_memoize AS task_memoize,
	t.task_hashsum AS task_hashsum,
	t.task_inputs AS task_inputs,
	t.task_outputs AS task_outputs,
	t.task_stdin AS task_stdin,
	t.task_stdout AS task_stdout,
	t.task_stderr AS task_stderr,
	` + timeSQL("r.t0 + t.invoked") + ` AS task_time_invoked,
	` + timeSQL("r.t0 + t.returned") + ` AS task_time_returned,
	t.task_fail_count AS task_fail_count,
	t.task_fail_cost AS task_fail_cost
FROM parslgo_task t JOIN parslgo_run r ON r.run_key = t.run_key JOIN parslgo_name a ON a.name_key = t.app_key`,
		`CREATE VIEW IF NOT EXISTS try AS SELECT
	json_extract(j.value, '$[0]') AS try_id,
	t.task_id AS task_id,
	r.run_id AS run_id,
	json_extract(j.value, '$[2]') AS block_id,
	h.name AS hostname,
	coalesce(e.name, '') AS task_executor,
	` + timeSQL("r.t0 + json_extract(j.value, '$[4]')") + ` AS task_try_time_launched,
	` + timeSQL("r.t0 + json_extract(j.value, '$[5]')") + ` AS task_try_time_running,
	` + timeSQL("r.t0 + json_extract(j.value, '$[6]')") + ` AS task_try_time_returned,
	json_extract(j.value, '$[7]') AS task_fail_history,
	json_extract(j.value, '$[8]') AS task_joins
FROM parslgo_task t JOIN parslgo_run r ON r.run_key = t.run_key,
	json_each('[' || rtrim(t.tries, ',') || ']') j
	LEFT JOIN parslgo_name h ON h.name_key = json_extract(j.value, '$[3]')
	LEFT JOIN parslgo_name e ON e.name_key = json_extract(j.value, '$[1]')`,
		`CREATE VIEW IF NOT EXISTS status AS SELECT
	t.task_id AS task_id,
	` + stateNameSQL("json_extract(j.value, '$[0]')") + ` AS task_status_name,
	` + timeSQL("r.t0 + json_extract(j.value, '$[1]')") + ` AS timestamp,
	r.run_id AS run_id,
	json_extract(j.value, '$[2]') AS try_id
FROM parslgo_task t JOIN parslgo_run r ON r.run_key = t.run_key,
	json_each('[' || rtrim(t.statuses, ',') || ']') j`,
		// Schema version 1's names of the dashboard index, read by the
		// chart queries (views.go); ts is now relative to the run's t0.
		`CREATE VIEW IF NOT EXISTS parslgo_task_state AS SELECT run_key, task_id, app_key, state, ts FROM parslgo_task`,
		`CREATE VIEW IF NOT EXISTS parslgo_app AS SELECT name_key AS app_key, name FROM parslgo_name`,
	}
}

// ParslColumns lists, per Parsl table, its columns in declaration order with
// the declared type, NOT NULL flag and primary-key membership, as in Parsl's
// db_manager.py. Tests compare the database against it.
var ParslColumns = map[string][]Column{
	"workflow": {
		{"run_id", "TEXT", true, true},
		{"workflow_name", "TEXT", false, false},
		{"workflow_version", "TEXT", false, false},
		{"time_began", "DATETIME", true, false},
		{"time_completed", "DATETIME", false, false},
		{"host", "TEXT", true, false},
		{"user", "TEXT", true, false},
		{"rundir", "TEXT", true, false},
		{"tasks_failed_count", "INTEGER", true, false},
		{"tasks_completed_count", "INTEGER", true, false},
	},
	"status": {
		{"task_id", "INTEGER", true, true},
		{"task_status_name", "TEXT", true, true},
		{"timestamp", "DATETIME", true, true},
		{"run_id", "TEXT", true, true},
		{"try_id", "INTEGER", true, false},
	},
	"task": {
		{"task_id", "INTEGER", true, true},
		{"run_id", "TEXT", true, true},
		{"task_depends", "TEXT", false, false},
		{"task_func_name", "TEXT", true, false},
		{"task_memoize", "TEXT", true, false},
		{"task_hashsum", "TEXT", false, false},
		{"task_inputs", "TEXT", false, false},
		{"task_outputs", "TEXT", false, false},
		{"task_stdin", "TEXT", false, false},
		{"task_stdout", "TEXT", false, false},
		{"task_stderr", "TEXT", false, false},
		{"task_time_invoked", "DATETIME", false, false},
		{"task_time_returned", "DATETIME", false, false},
		{"task_fail_count", "INTEGER", true, false},
		{"task_fail_cost", "FLOAT", true, false},
	},
	"try": {
		{"try_id", "INTEGER", true, true},
		{"task_id", "INTEGER", true, true},
		{"run_id", "TEXT", true, true},
		{"block_id", "TEXT", false, false},
		{"hostname", "TEXT", false, false},
		{"task_executor", "TEXT", true, false},
		{"task_try_time_launched", "DATETIME", false, false},
		{"task_try_time_running", "DATETIME", false, false},
		{"task_try_time_returned", "DATETIME", false, false},
		{"task_fail_history", "TEXT", false, false},
		{"task_joins", "TEXT", false, false},
	},
	"node": {
		{"id", "INTEGER", true, true},
		{"run_id", "TEXT", true, false},
		{"hostname", "TEXT", true, false},
		{"uid", "TEXT", true, false},
		{"block_id", "TEXT", true, false},
		{"cpu_count", "INTEGER", true, false},
		{"total_memory", "BIGINT", true, false},
		{"active", "BOOLEAN", true, false},
		{"worker_count", "INTEGER", true, false},
		{"python_v", "TEXT", true, false},
		{"timestamp", "DATETIME", true, false},
		{"last_heartbeat", "DATETIME", true, false},
	},
	"block": {
		{"run_id", "TEXT", true, true},
		{"executor_label", "TEXT", true, true},
		{"block_id", "TEXT", true, true},
		{"job_id", "TEXT", false, false},
		{"timestamp", "DATETIME", true, true},
		{"status", "TEXT", true, false},
	},
	"resource": {
		{"try_id", "INTEGER", true, true},
		{"task_id", "INTEGER", true, true},
		{"run_id", "TEXT", true, true},
		{"timestamp", "DATETIME", true, true},
		{"resource_monitoring_interval", "FLOAT", false, false},
		{"psutil_process_pid", "INTEGER", false, false},
		{"psutil_process_memory_percent", "FLOAT", false, false},
		{"psutil_process_children_count", "FLOAT", false, false},
		{"psutil_process_time_user", "FLOAT", false, false},
		{"psutil_process_time_system", "FLOAT", false, false},
		{"psutil_process_memory_virtual", "FLOAT", false, false},
		{"psutil_process_memory_resident", "FLOAT", false, false},
		{"psutil_process_disk_read", "FLOAT", false, false},
		{"psutil_process_disk_write", "FLOAT", false, false},
		{"psutil_process_status", "TEXT", false, false},
		{"psutil_cpu_num", "TEXT", false, false},
		{"psutil_process_num_ctx_switches_voluntary", "FLOAT", false, false},
		{"psutil_process_num_ctx_switches_involuntary", "FLOAT", false, false},
	},
}

// ViewTables are the Parsl tables that this package stores compactly and
// presents as views: their columns keep Parsl's names and order, but a view
// has no declared NOT NULL or primary key, and its timestamps are computed.
var ViewTables = map[string]bool{"task": true, "try": true, "status": true}

// Column describes one column of a Parsl table.
type Column struct {
	Name    string
	Type    string
	NotNull bool
	PK      bool // member of the primary key
}

// stateCodes maps Parsl's state names to their numbers (internal/dataflow
// State, Parsl's states.py). The compact tables keep the number.
var stateCodes = map[string]int{
	"unsched":        -1,
	"pending":        0,
	"running":        2,
	"exec_done":      3,
	"failed":         4,
	"dep_fail":       5,
	"launched":       7,
	"fail_retryable": 8,
	"memo_done":      9,
	"joining":        10,
	"running_ended":  11,
}

// unknownState is the current state stored for a state name this package
// does not know; the status history keeps the name.
const unknownState = -100

// noState is the key of "no status yet" in parslgo_count.
const noState = -1000

// noApp is the key of "no task row yet" in parslgo_count.
const noApp = -1

func sortedStateNames() []string {
	names := make([]string, 0, len(stateCodes))
	for n := range stateCodes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func stateName(code int) string {
	for n, c := range stateCodes {
		if c == code {
			return n
		}
	}
	return "unknown"
}

// migrateSQL moves Parsl's task, try and status rows from plain tables (a
// database written by Python Parsl, or by schema version 1 of this package)
// into the compact tables and replaces those tables with the views. The
// current state of each task is chosen as the writer chooses it: final
// states first, then the latest time.
func migrateSQL() []string {
	entry := `'[' || CASE s.task_status_name` + stateCaseSQL() + ` ELSE json_quote(s.task_status_name) END ||
		',' || (` + microsSQL("s.timestamp") + ` - r.t0) || ',' || s.try_id || '],'`
	return []string{
		// A run's t0 is its start when known, else its first time.
		`INSERT OR IGNORE INTO parslgo_run (run_id, t0)
	SELECT run_id, min(t) FROM (
		SELECT run_id, ` + microsSQL("time_began") + ` AS t FROM workflow
		UNION ALL SELECT run_id, ` + microsSQL("timestamp") + ` FROM status
		UNION ALL SELECT run_id, coalesce(` + microsSQL("task_time_invoked") + `, 0) FROM task
		UNION ALL SELECT run_id, coalesce(` + microsSQL("task_try_time_launched") + `, 0) FROM try)
	GROUP BY run_id`,
		`INSERT OR IGNORE INTO parslgo_name (name)
	SELECT task_func_name FROM task UNION SELECT task_executor FROM try WHERE task_executor <> ''
	UNION SELECT hostname FROM try WHERE hostname IS NOT NULL`,
		`INSERT INTO parslgo_task (run_key, task_id, app_key, task_memoize, task_depends, task_hashsum, task_inputs,
		task_outputs, task_stdin, task_stdout, task_stderr, invoked, returned, task_fail_count, task_fail_cost)
	SELECT r.run_key, t.task_id, a.name_key, t.task_memoize, t.task_depends, t.task_hashsum, t.task_inputs,
		t.task_outputs, t.task_stdin, t.task_stdout, t.task_stderr,
		` + microsSQL("t.task_time_invoked") + ` - r.t0, ` + microsSQL("t.task_time_returned") + ` - r.t0,
		t.task_fail_count, t.task_fail_cost
	FROM task t JOIN parslgo_run r ON r.run_id = t.run_id JOIN parslgo_name a ON a.name = t.task_func_name`,
		`INSERT INTO parslgo_task (run_key, task_id, statuses)
	SELECT r.run_key, s.task_id, group_concat(` + entry + `, '' ORDER BY s.timestamp, s.task_status_name)
	FROM status s JOIN parslgo_run r ON r.run_id = s.run_id GROUP BY r.run_key, s.task_id
	ON CONFLICT (run_key, task_id) DO UPDATE SET statuses = excluded.statuses`,
		`UPDATE parslgo_task SET (state, ts) = (SELECT CASE s.task_status_name` + stateCaseSQL() + fmt.Sprintf(` ELSE %d END,
		`, unknownState) + microsSQL("s.timestamp") + ` - r.t0
	FROM status s JOIN parslgo_run r ON r.run_id = s.run_id
	WHERE r.run_key = parslgo_task.run_key AND s.task_id = parslgo_task.task_id
	ORDER BY s.task_status_name IN ('exec_done', 'failed', 'dep_fail', 'memo_done') DESC, s.timestamp DESC LIMIT 1)
	WHERE statuses IS NOT NULL`,
		`INSERT INTO parslgo_task (run_key, task_id, tries)
	SELECT r.run_key, y.task_id, group_concat('[' || y.try_id || ',' || coalesce(e.name_key, 'null') || ',' ||
		json_quote(y.block_id) || ',' || coalesce(h.name_key, 'null') || ',' ||
		coalesce(` + microsSQL("y.task_try_time_launched") + ` - r.t0, 'null') || ',' ||
		coalesce(` + microsSQL("y.task_try_time_running") + ` - r.t0, 'null') || ',' ||
		coalesce(` + microsSQL("y.task_try_time_returned") + ` - r.t0, 'null') || ',' ||
		json_quote(y.task_fail_history) || ',' || json_quote(y.task_joins) || '],', '' ORDER BY y.try_id)
	FROM try y JOIN parslgo_run r ON r.run_id = y.run_id
		LEFT JOIN parslgo_name e ON e.name = y.task_executor LEFT JOIN parslgo_name h ON h.name = y.hostname
	GROUP BY r.run_key, y.task_id
	ON CONFLICT (run_key, task_id) DO UPDATE SET tries = excluded.tries`,
		`INSERT INTO parslgo_count (run_key, app_key, state, n)
	SELECT run_key, coalesce(app_key, -1), coalesce(state, -1000), count(*) FROM parslgo_task GROUP BY 1, 2, 3
	ON CONFLICT (run_key, app_key, state) DO UPDATE SET n = n + excluded.n`,
		`DROP TABLE task`,
		`DROP TABLE try`,
		`DROP TABLE status`,
	}
}

// stateCaseSQL is " WHEN 'name' THEN code" for every known state.
func stateCaseSQL() string {
	var b strings.Builder
	for _, n := range sortedStateNames() {
		fmt.Fprintf(&b, " WHEN '%s' THEN %d", n, stateCodes[n])
	}
	return b.String()
}

// version1Leftovers are schema version 1's dashboard index, rebuilt from
// Parsl's tables by the migration. They go first: version 1's parslgo_run
// has no t0.
var version1Leftovers = []string{
	`DROP TABLE IF EXISTS parslgo_task_state`,
	`DROP TABLE IF EXISTS parslgo_app`,
	`DROP TABLE IF EXISTS parslgo_run`,
}
