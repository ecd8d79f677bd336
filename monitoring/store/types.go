package store

import (
	"database/sql"
	"time"
)

// Record is a row to write: *Workflow, *Task, *Try, *Status, *Block, *Node
// or *Resource (or the same as values), or a *Batch of task rows.
type Record interface {
	table() string
}

// Batch is many task, try and status rows handed over in one Enqueue, for
// a writer that produces them at high rates (the monitoring hub): one queue
// slot and no allocation per row. Its rows are applied as if enqueued one
// by one: Tasks in order, then Tries, then Statuses. The store keeps the
// slices until the rows are committed; the caller must not change them.
type Batch struct {
	Tasks    []Task
	Tries    []Try
	Statuses []Status
}

// rows is the number of rows in b, as Stats counts them.
func (b *Batch) rows() int64 { return int64(len(b.Tasks) + len(b.Tries) + len(b.Statuses)) }

// Workflow is a row of Parsl's workflow table. Writing it again for the same
// RunID updates the row (Parsl's workflow-end update): non-empty optional
// fields and the counters replace the stored ones.
type Workflow struct {
	RunID               string
	WorkflowName        string // optional
	WorkflowVersion     string // optional
	TimeBegan           time.Time
	TimeCompleted       time.Time // zero while running
	Host                string
	User                string
	RunDir              string
	TasksFailedCount    int64
	TasksCompletedCount int64
}

// Task is a row of Parsl's task table. Writing it again for the same
// (RunID, TaskID) updates it: fields set in the new value (non-empty string,
// non-zero time) replace the stored ones, and FuncName, Memoize, FailCount
// and FailCost always do, as Parsl updates them on every state change.
type Task struct {
	RunID        string
	TaskID       int64
	Depends      string // comma-joined task ids; optional
	FuncName     string
	Memoize      bool
	Hashsum      string // optional
	Inputs       string // optional
	Outputs      string // optional
	Stdin        string // optional
	Stdout       string // optional
	Stderr       string // optional
	TimeInvoked  time.Time
	TimeReturned time.Time // zero until the task completes
	FailCount    int64
	FailCost     float64
}

// Try is a row of Parsl's try table: one execution attempt of a task.
// Writing it again for the same (RunID, TaskID, TryID) merges: set fields
// replace stored ones, unset fields keep them, so the DFK's launch/return
// updates and the worker's running report (BlockID, Hostname, TimeRunning)
// can arrive in any order.
type Try struct {
	RunID        string
	TaskID       int64
	TryID        int64
	BlockID      string // optional
	Hostname     string // optional
	Executor     string
	TimeLaunched time.Time
	TimeRunning  time.Time
	TimeReturned time.Time
	FailHistory  string // optional
	Joins        string // optional
}

// Status is a row of Parsl's status table: a task entered State (a Parsl
// state name such as "exec_done") at Timestamp. Writing the same row twice
// stores it once.
type Status struct {
	RunID     string
	TaskID    int64
	TryID     int64
	State     string
	Timestamp time.Time
}

// Block is a row of Parsl's block table: a provider block changed status.
type Block struct {
	RunID         string
	ExecutorLabel string
	BlockID       string
	JobID         string // optional
	Timestamp     time.Time
	Status        string
}

// Node is a row of Parsl's node table: a worker manager's state. ID is
// assigned by the database and filled in by the read API only.
type Node struct {
	ID            int64
	RunID         string
	Hostname      string
	UID           string
	BlockID       string
	CPUCount      int64
	TotalMemory   int64
	Active        bool
	WorkerCount   int64
	PythonV       string
	Timestamp     time.Time
	LastHeartbeat time.Time
}

// Resource is a row of Parsl's resource table: one resource sample of a try.
type Resource struct {
	RunID                     string
	TaskID                    int64
	TryID                     int64
	Timestamp                 time.Time
	MonitoringInterval        float64
	PID                       int64
	MemoryPercent             float64
	ChildrenCount             float64
	TimeUser                  float64
	TimeSystem                float64
	MemoryVirtual             float64
	MemoryResident            float64
	DiskRead                  float64
	DiskWrite                 float64
	ProcessStatus             string // optional
	CPUNum                    string // optional
	NumCtxSwitchesVoluntary   float64
	NumCtxSwitchesInvoluntary float64
}

// Heartbeat says that a run's driver is alive at Time and means to say so
// again within Period. It is not one of Parsl's tables (parslgo_heartbeat,
// which Parsl's tools ignore): it lets a reader tell a run that is still
// going from one whose driver died without recording its end (kill -9, a
// crash, log.Fatal skipping a deferred Close). See WorkflowInfo.Lost.
type Heartbeat struct {
	RunID  string
	Time   time.Time
	Period time.Duration
}

func (Workflow) table() string  { return "workflow" }
func (Heartbeat) table() string { return "parslgo_heartbeat" }
func (Task) table() string      { return "task" }
func (Try) table() string       { return "try" }
func (Status) table() string    { return "status" }
func (Block) table() string     { return "block" }
func (Node) table() string      { return "node" }
func (Resource) table() string  { return "resource" }
func (*Batch) table() string    { return "task, try and status" }

// timeLayout is how SQLAlchemy's SQLite DateTime stores a datetime, so that
// Parsl's Python tools parse our timestamps.
const timeLayout = "2006-01-02 15:04:05.000000"

// dbTime formats a required timestamp.
func dbTime(t time.Time) string { return t.Local().Format(timeLayout) }

// optTime formats an optional timestamp: zero is NULL.
func optTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return dbTime(t)
}

// optText maps an empty optional string to NULL, as Parsl stores None.
func optText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// wallMicros is t as Parsl stores it, a naive local time, in microseconds:
// the local wall clock read as if it were UTC. The compact tables keep
// times so; the views format them back as text with SQLite's strftime,
// which then needs no time zone.
func wallMicros(t time.Time) int64 {
	_, off := t.Zone()
	if t.Location() != time.Local {
		_, off = t.In(time.Local).Zone()
	}
	return t.UnixMicro() + int64(off)*1e6
}

// fromWallMicros is the inverse of wallMicros: the wall clock in Local.
func fromWallMicros(us int64) time.Time {
	u := time.UnixMicro(us).UTC()
	return time.Date(u.Year(), u.Month(), u.Day(), u.Hour(), u.Minute(), u.Second(), u.Nanosecond(), time.Local)
}

// parseTime reads a timestamp written by us or by Parsl (SQLAlchemy writes
// microseconds; other writers may omit the fraction or use a 'T').
func parseTime(s sql.NullString) time.Time {
	if !s.Valid || s.String == "" {
		return time.Time{}
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", time.RFC3339Nano} {
		if t, err := time.ParseInLocation(layout, s.String, time.Local); err == nil {
			return t
		}
	}
	return time.Time{}
}
