// Package store is the SQLite store of Parsl monitoring data.
//
// The database presents Python Parsl's tables and columns (workflow, task,
// try, status, block, node, resource; parsl/monitoring/db_manager.py) so
// that existing Parsl queries, notebooks and pandas code read it. Tables
// with a few rows per run (workflow, block, node) or per sample (resource)
// are Parsl's tables as Parsl declares them. The per-task tables would cost
// about 750 bytes per task in Parsl's representation (a 36-byte run id and
// 26-byte text timestamps in every row, a row per state change), so they
// are stored compactly and task, try and status are views over them:
//
//   - parslgo_task holds one row per task: Parsl's task columns, the
//     current state (for the dashboard), and the status history and the
//     tries as two text columns of JSON entries. A task is thus one row,
//     written once when its states arrive together, instead of a task row,
//     a try row and a row per state change. Run ids, app names, executor
//     labels and host names are small integers (parslgo_run, parslgo_name);
//     times are integer microseconds of the naive local wall clock,
//     relative to the run's first time (t0).
//   - The views format times as SQLAlchemy does ("YYYY-MM-DD
//     HH:MM:SS.ffffff", local time, as Parsl writes naive datetime.now()
//     values) with SQLite's strftime, and expand statuses and tries with
//     json_each, so they need SQLite 3.9 or later with JSON1 (built in since
//     3.38), as every current Python has.
//   - parslgo_count keeps task counts by run, app and state, updated in the
//     same transactions as the tasks, for the dashboard's summaries.
//   - parslgo_heartbeat holds the last heartbeat of each run's driver
//     (Heartbeat), so that a run whose driver died without recording its
//     end reads as lost (WorkflowInfo.Lost) instead of running forever.
//
// A database written by Python Parsl, or by version 1 of this package, is
// migrated when opened (SchemaVersion); a newer or unreadable file, or a
// SQLite file of another program, is refused with an error naming it.
//
// Writes go through one writer goroutine that batches rows into
// transactions and merges the rows of one task within a transaction.
// Callers enqueue rows (Enqueue), or many at once (Batch); they block only
// while the bounded queue is full, and their context bounds that wait.
// Nothing accepted is dropped silently: a failing write (locked, disk full,
// I/O error) is counted in Stats and retried with backoff until Close gives
// up when its context ends, interrupting a wait for another program's
// lock; Close then returns an *UnwrittenError with the rows not written.
// The log gets the first few failures, then one line a minute with the
// count of those not logged, so that a disk full for hours does not fill
// the log.
package store
