// Package executor defines what the dataflow kernel needs from an executor:
// somewhere to run a task whose inputs are resolved, which reports back once.
//
// An executor never blocks the kernel: Submit queues the task and returns,
// and the executor later calls Task.Done exactly once, from any goroutine.
package executor

import (
	"context"
	"log/slog"
	"time"

	"github.com/parsl-go/parsl/internal/registry"
)

// Executor runs tasks. Implementations: threads (in-process goroutines) and
// htex (worker pools over the network).
type Executor interface {
	// Label names the executor in a Config; it must be unique there.
	Label() string
	// Start prepares the executor. It is called once, by Load.
	Start(ctx context.Context, env Env) error
	// Submit queues t. It must not block on task execution. An error means
	// the executor cannot take the task (shut down, bad state); the kernel
	// then fails or retries the task itself and Done must not be called.
	Submit(t *Task) error
	// Shutdown stops the executor. Tasks still queued or running when ctx is
	// done are cancelled and reported through Done with an error. Shutdown
	// returns only when no goroutine or process of the executor remains.
	Shutdown(ctx context.Context) error
}

// Env is what the kernel hands an executor at Start.
type Env struct {
	// RunDir is this run's directory (runinfo/NNN); executors keep their
	// files under RunDir/<label>.
	RunDir string
	// Logger is the run's logger.
	Logger *slog.Logger
	// BaseContext, when set, is the parent of every task context (values
	// only: the executor owns cancellation).
	BaseContext context.Context
	// Strategy, StrategyPeriod and MaxIdleTime are the run's scaling
	// settings (Config.Strategy and so on) for executors that get blocks
	// from a provider; zero values mean the executor's defaults.
	Strategy       string
	StrategyPeriod time.Duration
	MaxIdleTime    time.Duration
}

// ResourceSpec is what a task asks of the node it runs on. Executors that
// cannot enforce a field ignore it.
type ResourceSpec struct {
	Cores        int `cbor:"c,omitempty" yaml:"cores"`
	MemoryMB     int `cbor:"m,omitempty" yaml:"memory_mb"`
	GPUs         int `cbor:"g,omitempty" yaml:"gpus"`
	Nodes        int `cbor:"n,omitempty" yaml:"nodes"`
	Ranks        int `cbor:"r,omitempty" yaml:"ranks"`
	RanksPerNode int `cbor:"rpn,omitempty" yaml:"ranks_per_node"`
}

// IsZero reports whether nothing was asked.
func (r ResourceSpec) IsZero() bool { return r == ResourceSpec{} }

// Sink receives a task's outcome. The kernel implements it.
type Sink interface {
	TaskDone(t *Task, result any, err error)
}

// Options are the per-call options of a task. One value is shared by every
// task submitted without options, so executors must not modify it.
type Options struct {
	// Executor is the label asked for at submit; "" lets the kernel choose.
	Executor string
	// Walltime bounds the run time; 0 = none.
	Walltime time.Duration
	// Stdout and Stderr are paths for the task's std streams ("" = none);
	// StdTruncate asks for truncation instead of Parsl's append.
	Stdout, Stderr string
	StdTruncate    bool
	// Outputs are local paths the task must create.
	Outputs   []string
	Priority  int
	Resources ResourceSpec
	// Cache overrides the app's caching choice when non-nil.
	Cache *bool
	// AutoLog gives a bash task its own Stdout and Stderr files (those not
	// set) under the run directory, one pair per try; see Task.LogBase.
	AutoLog bool
}

// Task is one try of a task, as an executor sees it. It is kept small
// because the kernel holds one per task in flight.
type Task struct {
	ID  int64
	Try int
	App *registry.App
	// Args are the resolved argument values (Go and join apps).
	Args []any
	// Command is the command line of a bash app, built on the driver.
	Command string
	// Opts are the call options; never nil once submitted.
	Opts *Options
	// LogBase, when set by the kernel (AutoLog), is the path prefix of
	// this try's own std files: LogBase+".stdout" and LogBase+".stderr"
	// stand in for an empty Opts.Stdout and Opts.Stderr. It is a field of
	// the try rather than a change of Opts because Opts is shared.
	LogBase string

	// Sink gets the outcome; set by the kernel.
	Sink Sink
}

// StdPaths returns the std files of this try: Opts.Stdout and Opts.Stderr,
// or for an empty one the AutoLog file named by LogBase. Executors use it
// rather than Opts directly.
func (t *Task) StdPaths() (stdout, stderr string) {
	stdout, stderr = t.Opts.Stdout, t.Opts.Stderr
	if t.LogBase != "" {
		if stdout == "" {
			stdout = t.LogBase + ".stdout"
		}
		if stderr == "" {
			stderr = t.LogBase + ".stderr"
		}
	}
	return stdout, stderr
}

// Done reports the outcome of this try. Call it exactly once.
func (t *Task) Done(result any, err error) { t.Sink.TaskDone(t, result, err) }
