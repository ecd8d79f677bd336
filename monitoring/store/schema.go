package store

import (
	"fmt"
	"sort"
	"strings"
)

// SchemaVersion is the version of the schema this package writes, kept in
// PRAGMA user_version. Version 0 is a database not (yet) initialised by this
// package: either new, or created by Python Parsl; both get the missing
// tables and are then marked with SchemaVersion.
const SchemaVersion = 1

// Parsl's tables (parsl/monitoring/db_manager.py). Column names, declared
// types and nullability are Parsl's, as SQLAlchemy renders them for SQLite,
// so PRAGMA table_info matches. Primary keys have Parsl's column sets; their
// order puts run_id first so the clustered key serves per-run and per-task
// lookups (see the package comment).
var schemaDDL = []string{
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
	`CREATE TABLE IF NOT EXISTS status (
	task_id INTEGER NOT NULL,
	task_status_name TEXT NOT NULL,
	timestamp DATETIME NOT NULL,
	run_id TEXT NOT NULL REFERENCES workflow (run_id),
	try_id INTEGER NOT NULL,
	PRIMARY KEY (run_id, task_id, timestamp, task_status_name)
) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS task (
	task_id INTEGER NOT NULL,
	run_id TEXT NOT NULL,
	task_depends TEXT,
	task_func_name TEXT NOT NULL,
	task_memoize TEXT NOT NULL,
	task_hashsum TEXT,
	task_inputs TEXT,
	task_outputs TEXT,
	task_stdin TEXT,
	task_stdout TEXT,
	task_stderr TEXT,
	task_time_invoked DATETIME,
	task_time_returned DATETIME,
	task_fail_count INTEGER NOT NULL,
	task_fail_cost FLOAT NOT NULL,
	PRIMARY KEY (run_id, task_id)
) WITHOUT ROWID`,
	// Parsl declares task_hashsum with index=True; SQLAlchemy names it so.
	// Partial: most tasks are not memoized and have no hashsum, and indexing
	// their NULLs cost ~50 bytes per task; a lookup by hashsum (= ?) still
	// uses it.
	`CREATE INDEX IF NOT EXISTS ix_task_task_hashsum ON task (task_hashsum) WHERE task_hashsum IS NOT NULL`,
	`CREATE TABLE IF NOT EXISTS try (
	try_id INTEGER NOT NULL,
	task_id INTEGER NOT NULL,
	run_id TEXT NOT NULL,
	block_id TEXT,
	hostname TEXT,
	task_executor TEXT NOT NULL,
	task_try_time_launched DATETIME,
	task_try_time_running DATETIME,
	task_try_time_returned DATETIME,
	task_fail_history TEXT,
	task_joins TEXT,
	PRIMARY KEY (run_id, task_id, try_id)
) WITHOUT ROWID`,
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

	// Our own dashboard index. Run ids (36-byte UUIDs) and app names become
	// small integers so that the per-task row and its indexes cost a few
	// bytes each instead of repeating the strings.
	`CREATE TABLE IF NOT EXISTS parslgo_run (
	run_key INTEGER PRIMARY KEY,
	run_id TEXT NOT NULL UNIQUE
)`,
	`CREATE TABLE IF NOT EXISTS parslgo_app (
	app_key INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
)`,
	// One row per task: its app and its current state (Parsl's state
	// number) with the state's time in Unix microseconds.
	`CREATE TABLE IF NOT EXISTS parslgo_task_state (
	run_key INTEGER NOT NULL,
	task_id INTEGER NOT NULL,
	app_key INTEGER,
	state INTEGER,
	ts INTEGER,
	PRIMARY KEY (run_key, task_id)
) WITHOUT ROWID`,
	// Counts by state and the paged list filtered by state.
	`CREATE INDEX IF NOT EXISTS parslgo_task_state_state ON parslgo_task_state (run_key, state, task_id)`,
	// The per-app summary and the paged list filtered by app and state.
	`CREATE INDEX IF NOT EXISTS parslgo_task_state_app ON parslgo_task_state (run_key, app_key, state, task_id)`,
	// The paged list filtered by app only, in task_id order without a sort.
	`CREATE INDEX IF NOT EXISTS parslgo_task_state_app_id ON parslgo_task_state (run_key, app_key, task_id)`,
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

// Column describes one column of a Parsl table.
type Column struct {
	Name    string
	Type    string
	NotNull bool
	PK      bool // member of the primary key
}

// stateCodes maps Parsl's state names to their numbers (internal/dataflow
// State, Parsl's states.py). The status table keeps the name; the compact
// dashboard index keeps the number.
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

// unknownState is stored in the dashboard index for a state name this
// package does not know; the status table still has the name.
const unknownState = -100

func stateName(code int) string {
	for n, c := range stateCodes {
		if c == code {
			return n
		}
	}
	return "unknown"
}

// backfillSQL fills the dashboard index from Parsl's tables, for a database
// that has rows but no index (one written by Python Parsl). On a new
// database it does nothing. The current state is chosen as the writer
// chooses it: final states first, then the latest timestamp.
func backfillSQL() []string {
	var codes strings.Builder
	names := make([]string, 0, len(stateCodes))
	for n := range stateCodes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&codes, " WHEN '%s' THEN %d", n, stateCodes[n])
	}
	return []string{
		`INSERT OR IGNORE INTO parslgo_run (run_id) SELECT run_id FROM task UNION SELECT run_id FROM status`,
		`INSERT OR IGNORE INTO parslgo_app (name) SELECT DISTINCT task_func_name FROM task`,
		`INSERT OR IGNORE INTO parslgo_task_state (run_key, task_id, app_key)
	SELECT r.run_key, t.task_id, a.app_key FROM task t JOIN parslgo_run r ON r.run_id = t.run_id
	JOIN parslgo_app a ON a.name = t.task_func_name`,
		`INSERT INTO parslgo_task_state (run_key, task_id, state, ts)
	SELECT r.run_key, s.task_id, CASE s.task_status_name` + codes.String() + fmt.Sprintf(` ELSE %d END,
		CAST((julianday(s.timestamp, 'utc') - 2440587.5) * 86400000000 AS INTEGER)
	FROM (SELECT run_id, task_id, task_status_name, timestamp, row_number() OVER (PARTITION BY run_id, task_id
		ORDER BY task_status_name IN ('exec_done', 'failed', 'dep_fail', 'memo_done') DESC, timestamp DESC) AS rn
		FROM status) s
	JOIN parslgo_run r ON r.run_id = s.run_id WHERE s.rn = 1
	ON CONFLICT (run_key, task_id) DO UPDATE SET state = excluded.state, ts = excluded.ts`, unknownState),
	}
}
