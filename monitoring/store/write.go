package store

import (
	"context"
	"fmt"
)

// writeSQL holds the writer's statements, prepared once on its connection.
// Upserts follow Parsl's DatabaseManager: rows are inserted the first time
// and later messages update the columns Parsl updates; coalesce keeps a
// stored value when the new message leaves an optional column unset.
var writeSQL = map[string]string{
	"workflow": `INSERT INTO workflow (run_id, workflow_name, workflow_version, time_began, time_completed,
	host, user, rundir, tasks_failed_count, tasks_completed_count) VALUES (?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (run_id) DO UPDATE SET
	workflow_name = coalesce(excluded.workflow_name, workflow_name),
	workflow_version = coalesce(excluded.workflow_version, workflow_version),
	time_completed = coalesce(excluded.time_completed, time_completed),
	tasks_failed_count = excluded.tasks_failed_count,
	tasks_completed_count = excluded.tasks_completed_count`,
	"task": `INSERT INTO task (task_id, run_id, task_depends, task_func_name, task_memoize, task_hashsum,
	task_inputs, task_outputs, task_stdin, task_stdout, task_stderr, task_time_invoked, task_time_returned,
	task_fail_count, task_fail_cost) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (run_id, task_id) DO UPDATE SET
	task_depends = coalesce(excluded.task_depends, task_depends),
	task_func_name = excluded.task_func_name,
	task_memoize = excluded.task_memoize,
	task_hashsum = coalesce(excluded.task_hashsum, task_hashsum),
	task_inputs = coalesce(excluded.task_inputs, task_inputs),
	task_outputs = coalesce(excluded.task_outputs, task_outputs),
	task_stdin = coalesce(excluded.task_stdin, task_stdin),
	task_stdout = coalesce(excluded.task_stdout, task_stdout),
	task_stderr = coalesce(excluded.task_stderr, task_stderr),
	task_time_invoked = coalesce(excluded.task_time_invoked, task_time_invoked),
	task_time_returned = coalesce(excluded.task_time_returned, task_time_returned),
	task_fail_count = excluded.task_fail_count,
	task_fail_cost = excluded.task_fail_cost`,
	"task_idx": `INSERT INTO parslgo_task_state (run_key, task_id, app_key) VALUES (?,?,?)
ON CONFLICT (run_key, task_id) DO UPDATE SET app_key = excluded.app_key
	WHERE app_key IS NOT excluded.app_key`,
	"try": `INSERT INTO try (try_id, task_id, run_id, block_id, hostname, task_executor, task_try_time_launched,
	task_try_time_running, task_try_time_returned, task_fail_history, task_joins) VALUES (?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (run_id, task_id, try_id) DO UPDATE SET
	block_id = coalesce(excluded.block_id, block_id),
	hostname = coalesce(excluded.hostname, hostname),
	task_executor = CASE WHEN excluded.task_executor <> '' THEN excluded.task_executor ELSE task_executor END,
	task_try_time_launched = coalesce(excluded.task_try_time_launched, task_try_time_launched),
	task_try_time_running = coalesce(excluded.task_try_time_running, task_try_time_running),
	task_try_time_returned = coalesce(excluded.task_try_time_returned, task_try_time_returned),
	task_fail_history = coalesce(excluded.task_fail_history, task_fail_history),
	task_joins = coalesce(excluded.task_joins, task_joins)`,
	// A status row is keyed by its whole content, so a retried or repeated
	// message is stored once.
	"status": `INSERT OR IGNORE INTO status (task_id, task_status_name, timestamp, run_id, try_id) VALUES (?,?,?,?,?)`,
	// The current state is the latest one, except that a final state
	// (exec_done, failed, dep_fail, memo_done) is not replaced by a
	// non-final one: the worker's running_ended can carry a later clock
	// than the DFK's exec_done.
	"status_idx": `INSERT INTO parslgo_task_state (run_key, task_id, state, ts) VALUES (?,?,?,?)
ON CONFLICT (run_key, task_id) DO UPDATE SET state = excluded.state, ts = excluded.ts
	WHERE state IS NULL OR (excluded.state IN (3,4,5,9), excluded.ts) >= (state IN (3,4,5,9), ts)`,
	"block": `INSERT OR IGNORE INTO block (run_id, executor_label, block_id, job_id, timestamp, status) VALUES (?,?,?,?,?,?)`,
	"node": `INSERT INTO node (run_id, hostname, uid, block_id, cpu_count, total_memory, active, worker_count,
	python_v, timestamp, last_heartbeat) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
	"resource": `INSERT OR IGNORE INTO resource (try_id, task_id, run_id, timestamp, resource_monitoring_interval,
	psutil_process_pid, psutil_process_memory_percent, psutil_process_children_count, psutil_process_time_user,
	psutil_process_time_system, psutil_process_memory_virtual, psutil_process_memory_resident,
	psutil_process_disk_read, psutil_process_disk_write, psutil_process_status, psutil_cpu_num,
	psutil_process_num_ctx_switches_voluntary, psutil_process_num_ctx_switches_involuntary)
	VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
	"run_key": `INSERT INTO parslgo_run (run_id) VALUES (?)
ON CONFLICT (run_id) DO UPDATE SET run_id = excluded.run_id RETURNING run_key`,
	"app_key": `INSERT INTO parslgo_app (name) VALUES (?)
ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING app_key`,
}

func (s *Store) exec(ctx context.Context, stmt string, args ...any) error {
	_, err := s.stmts[stmt].ExecContext(ctx, args...)
	return err
}

// key returns the small integer for a run id or app name, inserting it on
// first use; cache is cleared when a transaction rolls back.
func (s *Store) key(ctx context.Context, stmt string, cache map[string]int64, name string) (int64, error) {
	if k, ok := cache[name]; ok {
		return k, nil
	}
	var k int64
	if err := s.stmts[stmt].QueryRowContext(ctx, name).Scan(&k); err != nil {
		return 0, fmt.Errorf("%s %q: %w", stmt, name, err)
	}
	cache[name] = k
	return k, nil
}

// apply writes one record inside the writer's open transaction.
func (s *Store) apply(ctx context.Context, rec Record) error {
	switch r := rec.(type) {
	case *Workflow:
		return s.applyWorkflow(ctx, r)
	case Workflow:
		return s.applyWorkflow(ctx, &r)
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
	return s.exec(ctx, "workflow", w.RunID, optText(w.WorkflowName), optText(w.WorkflowVersion),
		dbTime(w.TimeBegan), optTime(w.TimeCompleted), w.Host, w.User, w.RunDir,
		w.TasksFailedCount, w.TasksCompletedCount)
}

func (s *Store) applyTask(ctx context.Context, t *Task) error {
	if err := s.exec(ctx, "task", t.TaskID, t.RunID, optText(t.Depends), t.FuncName, t.Memoize,
		optText(t.Hashsum), optText(t.Inputs), optText(t.Outputs), optText(t.Stdin), optText(t.Stdout),
		optText(t.Stderr), optTime(t.TimeInvoked), optTime(t.TimeReturned), t.FailCount, t.FailCost); err != nil {
		return err
	}
	rk, err := s.key(ctx, "run_key", s.runKeys, t.RunID)
	if err != nil {
		return err
	}
	ak, err := s.key(ctx, "app_key", s.appKeys, t.FuncName)
	if err != nil {
		return err
	}
	return s.exec(ctx, "task_idx", rk, t.TaskID, ak)
}

func (s *Store) applyTry(ctx context.Context, t *Try) error {
	return s.exec(ctx, "try", t.TryID, t.TaskID, t.RunID, optText(t.BlockID), optText(t.Hostname),
		t.Executor, optTime(t.TimeLaunched), optTime(t.TimeRunning), optTime(t.TimeReturned),
		optText(t.FailHistory), optText(t.Joins))
}

func (s *Store) applyStatus(ctx context.Context, st *Status) error {
	if err := s.exec(ctx, "status", st.TaskID, st.State, dbTime(st.Timestamp), st.RunID, st.TryID); err != nil {
		return err
	}
	rk, err := s.key(ctx, "run_key", s.runKeys, st.RunID)
	if err != nil {
		return err
	}
	code, ok := stateCodes[st.State]
	if !ok {
		code = unknownState
	}
	// A task usually changes state several times within one batch; only
	// the winner reaches the index, once, at the end of the transaction.
	k := taskKey{rk, st.TaskID}
	u := stateUpdate{int64(code), st.Timestamp.UnixMicro()}
	if old, ok := s.pending[k]; !ok || u.beats(old) {
		s.pending[k] = u
	}
	return nil
}

type taskKey struct{ run, task int64 }

type stateUpdate struct{ state, ts int64 }

func isFinal(state int64) bool { return state == 3 || state == 4 || state == 5 || state == 9 }

// beats is the status_idx rule in Go: a final state wins over a non-final
// one, otherwise the later (or equal) timestamp wins.
func (u stateUpdate) beats(old stateUpdate) bool {
	if isFinal(u.state) != isFinal(old.state) {
		return isFinal(u.state)
	}
	return u.ts >= old.ts
}

func (s *Store) flushStates(ctx context.Context) error {
	for k, u := range s.pending {
		if err := s.exec(ctx, "status_idx", k.run, k.task, u.state, u.ts); err != nil {
			return err
		}
	}
	return nil
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
