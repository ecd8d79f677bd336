// Package store is the SQLite store of Parsl monitoring data.
//
// The database uses Python Parsl's tables and columns (workflow, task, try,
// status, block, node, resource; parsl/monitoring/db_manager.py) so that
// existing Parsl queries, notebooks and parsl-visualize work on it. Two
// deliberate differences, neither visible to a query:
//
//   - The composite primary keys keep Parsl's column sets but list run_id
//     first, and the tables are WITHOUT ROWID, so rows are clustered by
//     (run_id, task_id, ...). That makes the primary key double as the
//     "by run, by task" index a million-task run needs, at no extra bytes.
//   - Extra tables prefixed parslgo_ hold a compact per-task index (current
//     state and app as small integers) that the dashboard's counts,
//     summaries and paged task lists read instead of scanning millions of
//     status rows.
//
// Writes go through one writer goroutine that batches rows into
// transactions. Callers enqueue (Enqueue); they block only while the bounded
// queue is full, and their context bounds that wait. Nothing accepted is
// dropped: a failing write (locked, disk full, I/O error) is logged, counted
// in Stats and retried with backoff until Close gives up at its context's
// deadline, in which case Close reports how many rows were not written.
//
// Timestamps are stored as SQLAlchemy stores a DateTime on SQLite: text
// "YYYY-MM-DD HH:MM:SS.ffffff" in local time, as Parsl writes naive
// datetime.now() values.
package store
