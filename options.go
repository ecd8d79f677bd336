package parsl

import (
	"reflect"
	"time"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/internal/dataflow"
)

// CallOption adjusts one submit.
type CallOption func(*dataflow.CallOptions)

// ResourceSpec is what a task asks of the node it runs on: cores, memory,
// GPUs, nodes and MPI ranks. Executors that cannot enforce a field ignore it.
type ResourceSpec = executor.ResourceSpec

// Walltime limits the task's run time. At the deadline a Go app's context
// is cancelled and the task fails with *WalltimeError even if the app
// ignores its context; a bash app's whole process group is killed.
func Walltime(d time.Duration) CallOption { return func(o *dataflow.CallOptions) { o.Walltime = d } }

// Executor sends the task to the executor with this label.
func Executor(label string) CallOption { return func(o *dataflow.CallOptions) { o.Executor = label } }

// Stdout sends a bash app's standard output to a file (a path or a File).
// The file is appended to, as in Parsl; see TruncateStd.
func Stdout[P ~string | File](p P) CallOption {
	path := stdPath(p)
	return func(o *dataflow.CallOptions) { o.Stdout = path }
}

// Stderr sends a bash app's standard error to a file (a path or a File).
func Stderr[P ~string | File](p P) CallOption {
	path := stdPath(p)
	return func(o *dataflow.CallOptions) { o.Stderr = path }
}

func stdPath[P ~string | File](p P) string {
	switch v := any(p).(type) {
	case File:
		return v.Path()
	default:
		return reflect.ValueOf(p).String()
	}
}

// TruncateStd makes Stdout and Stderr files be truncated instead of
// appended to.
func TruncateStd() CallOption { return func(o *dataflow.CallOptions) { o.StdTruncate = true } }

// Outputs declares files the task creates. A task that finishes without
// creating one of them fails with *MissingOutputsError.
func Outputs(files ...File) CallOption {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path()
	}
	return func(o *dataflow.CallOptions) { o.Outputs = append(o.Outputs, paths...) }
}

// Priority orders queued tasks on executors that support it (htex), as in
// Parsl: a lower value runs sooner, and tasks without a priority (0) run
// after all tasks that have one. The threads executor runs tasks in the
// order they become ready.
func Priority(n int) CallOption { return func(o *dataflow.CallOptions) { o.Priority = n } }

// Cache turns memoization on or off for this call, whatever the app says.
func Cache(on bool) CallOption { return func(o *dataflow.CallOptions) { o.Cache = &on } }

// Resources states what the task needs, for executors that enforce it.
func Resources(r ResourceSpec) CallOption {
	return func(o *dataflow.CallOptions) { o.Resources = r }
}
