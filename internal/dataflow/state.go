package dataflow

import "fmt"

// State is a task's state. Names and numbers are Python Parsl's, because they
// appear in the monitoring database that existing Parsl tools read.
type State int32

// Task states.
const (
	Unsched       State = -1
	Pending       State = 0
	Running       State = 2
	ExecDone      State = 3
	Failed        State = 4
	DepFail       State = 5
	Launched      State = 7
	FailRetryable State = 8
	MemoDone      State = 9
	Joining       State = 10
	RunningEnded  State = 11
)

// States lists every state, for counters and monitoring.
var States = []State{Unsched, Pending, Running, ExecDone, Failed, DepFail, Launched, FailRetryable, MemoDone, Joining, RunningEnded}

func (s State) String() string {
	switch s {
	case Unsched:
		return "unsched"
	case Pending:
		return "pending"
	case Running:
		return "running"
	case ExecDone:
		return "exec_done"
	case Failed:
		return "failed"
	case DepFail:
		return "dep_fail"
	case Launched:
		return "launched"
	case FailRetryable:
		return "fail_retryable"
	case MemoDone:
		return "memo_done"
	case Joining:
		return "joining"
	case RunningEnded:
		return "running_ended"
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

// Final reports whether no further transition can happen.
func (s State) Final() bool {
	return s == ExecDone || s == MemoDone || s == Failed || s == DepFail
}

// counterIndex maps a state to a slot of the per-state counters.
func counterIndex(s State) int { return int(s) + 1 }

const numCounters = 13
