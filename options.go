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

// AutoLog gives each try of a bash app its own standard output and error
// files under the run directory, as Parsl's AUTO_LOGNAME does:
// RUNDIR/task_logs/APP/ID_TRY.stdout and .stderr (ID the task id, TRY
// the 0-based try), so that a retry does not mix its output with the
// failed try's. A stream also given with Stdout or Stderr goes there
// instead. Config.BashAutoLog applies it to every bash task. The paths
// are the driver's: a pool on another host writes them on its own file
// system, so use a shared run directory there.
func AutoLog() CallOption { return func(o *dataflow.CallOptions) { o.AutoLog = true } }

// TruncateStd makes Stdout and Stderr files be truncated instead of
// appended to.
func TruncateStd() CallOption { return func(o *dataflow.CallOptions) { o.StdTruncate = true } }

// Outputs declares files the task creates; Future.Outputs returns a
// future per file, to pass to later apps. A task that finishes without
// creating one of them fails with *MissingOutputsError naming the file.
//
// A plain path is written in place (a relative one resolved against the
// task's working directory, see WorkDir). A URL — rsync://, ssh://,
// "user@host:path", file:// (to publish a finished file into another
// directory atomically), or any scheme the staging providers can upload
// to — is a staged output: pass the same File to the app as an argument
// and the app receives a File naming a local path under the working
// directory (or the run directory) to write to; after the app succeeds a
// parsl.stage_out task uploads it, and the output's future completes,
// with the File naming the URL, once the upload has. A scheme that cannot
// be uploaded to (http, https) fails the submit.
func Outputs(files ...File) CallOption {
	files = append([]File(nil), files...)
	return func(o *dataflow.CallOptions) {
		// stageFiles turns them into CallOptions.Outputs (local paths).
		if fo := pendingFileOptions(o); fo != nil {
			fo.outputs = append(fo.outputs, files...)
		}
	}
}

// WorkDir sets the task's working directory: relative File paths in its
// arguments, Inputs and Outputs resolve against it, a relative path that
// climbs out of it with ".." fails the submit, and staged copies of remote
// files are placed under it (in WorkDir/staging). It overrides the working
// directory of the task's executor (see WorkingDirExecutor). A relative
// dir is taken relative to the current directory at submit. The directory
// is not the bash app's current directory: commands should use the paths
// of the Files they are given.
func WorkDir(dir string) CallOption {
	return func(o *dataflow.CallOptions) {
		if fo := pendingFileOptions(o); fo != nil {
			fo.workDir, fo.hasWorkDir = dir, true
		}
	}
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
