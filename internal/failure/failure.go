// Package failure defines the error values a task can end with. The parsl
// package re-exports them under the same names; they live here so that
// executors, which parsl imports, can construct them too.
package failure

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrDFKClosed is the error of a task submitted after its DFK was closed, or
// still waiting when Close gave up on it.
var ErrDFKClosed = errors.New("parsl: the DFK is closed; Load a new one to submit more tasks")

// CancelledError is the failure of a task that was still waiting or
// running when its DFK's Close stopped waiting: Close's context ended, or a
// signal (SIGINT, SIGTERM) closed the DFK. errors.Is(err, ErrDFKClosed)
// holds for it.
type CancelledError struct {
	TaskID int64
	App    string
	// By says what cancelled the task: "Close" or the signal's name
	// ("SIGINT", "SIGTERM").
	By string
	// Err is what the executor reported when the task was stopped, if
	// anything; nil for a task that never started.
	Err error
}

func (e *CancelledError) Error() string {
	by := e.By
	if by == "" {
		by = "Close"
	}
	return fmt.Sprintf("task %d (%s) cancelled by %s before it finished", e.TaskID, e.App, by)
}

// Is makes errors.Is(err, ErrDFKClosed) true for a cancelled task.
func (e *CancelledError) Is(target error) bool { return target == ErrDFKClosed }

// Unwrap returns what the executor reported, if anything.
func (e *CancelledError) Unwrap() error { return e.Err }

// AppError is the failure of an app's own code: an error it returned, or a
// panic it raised (then Panicked is true and Stack holds the goroutine stack).
type AppError struct {
	TaskID    int64
	App       string
	Kind      string // Go type of the original error ("*fs.PathError"), or "panic"
	Message   string
	Stack     string
	Retryable bool
	Panicked  bool
	// Err is the original error when the app ran in this process; nil when it
	// came over the wire (then Kind and Message describe it).
	Err error
}

func (e *AppError) Error() string {
	if e.Panicked {
		return fmt.Sprintf("task %d (%s) panicked: %s", e.TaskID, e.App, e.Message)
	}
	return fmt.Sprintf("task %d (%s) failed: %s", e.TaskID, e.App, e.Message)
}

// Unwrap returns the app's original error, if it ran in this process.
func (e *AppError) Unwrap() error { return e.Err }

// FailedDep names one failed upstream task of a DependencyError.
type FailedDep struct {
	TaskID int64
	App    string
	Err    error
}

// DependencyError is the failure of a task that never ran because tasks it
// depends on failed. Failed lists the direct dependencies that failed; Causes
// holds the root failures (never themselves DependencyErrors), so that
// errors.As finds, say, an *AppError at the root of a long chain without
// walking the chain.
type DependencyError struct {
	TaskID int64
	App    string
	Failed []FailedDep
	Causes []error
}

func (e *DependencyError) Error() string {
	var b strings.Builder
	if e.TaskID < 0 {
		fmt.Fprintf(&b, "%s: dependency failure of ", e.App)
	} else {
		fmt.Fprintf(&b, "task %d (%s) not run: dependency failure of ", e.TaskID, e.App)
	}
	// A fan-in over a million tasks must not print a million names: the
	// first few say where to look, the count says how many.
	const shown = 3
	for i, f := range e.Failed {
		if i == shown {
			fmt.Fprintf(&b, " and %d more", len(e.Failed)-shown)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if f.TaskID < 0 {
			b.WriteString("an external future")
		} else {
			fmt.Fprintf(&b, "task %d (%s)", f.TaskID, f.App)
		}
	}
	if len(e.Causes) > 0 {
		b.WriteString("; root cause: ")
		b.WriteString(summarizeCauses(e.Causes))
	}
	return b.String()
}

// summarizeCauses describes root causes in one line: the first cause in
// full, or, when every cause is a cancellation by the same thing, a count.
func summarizeCauses(causes []error) string {
	var by string
	for i, c := range causes {
		var ce *CancelledError
		if !errors.As(c, &ce) || (i > 0 && ce.By != by) {
			by = ""
			break
		}
		if by = ce.By; by == "" {
			by = "Close"
		}
	}
	if by != "" {
		if len(causes) == 1 {
			return causes[0].Error()
		}
		return fmt.Sprintf("%s tasks cancelled by %s before they finished", Count(len(causes)), by)
	}
	s := causes[0].Error()
	if len(causes) > 1 {
		s += fmt.Sprintf(" (+%s others)", Count(len(causes)-1))
	}
	return s
}

// Count formats n with thousands separators (1,000,000), for messages that
// people read.
func Count(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Unwrap returns the root causes.
func (e *DependencyError) Unwrap() []error { return e.Causes }

// TaskIDs returns the IDs of the failed direct dependencies.
func (e *DependencyError) TaskIDs() []int64 {
	ids := make([]int64, len(e.Failed))
	for i, f := range e.Failed {
		ids[i] = f.TaskID
	}
	return ids
}

// JoinError is the failure of a join app whose inner tasks failed. Failed
// holds every failed inner task.
type JoinError struct {
	TaskID int64
	App    string
	Failed []FailedDep
}

func (e *JoinError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "join task %d (%s): %d inner task(s) failed", e.TaskID, e.App, len(e.Failed))
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; …")
			break
		}
		fmt.Fprintf(&b, "; task %d: %v", f.TaskID, f.Err)
	}
	return b.String()
}

// Unwrap returns the inner failures.
func (e *JoinError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

// BashExitError is the failure of a bash app whose command exited non-zero.
// Exit codes follow the shell: 126 not executable, 127 command not found,
// 128+N killed by signal N.
type BashExitError struct {
	TaskID   int64
	App      string
	ExitCode int
	Stderr   string // path of the stderr file, if any
	// StderrTail is the end of the command's standard error (at most
	// 4 KiB, from a line start where possible), kept whether or not the
	// task had a Stderr file, so that the error alone shows why the
	// command failed. Error shows only its last few lines.
	StderrTail string
}

// Error says which task failed with which code, the last lines of its
// standard error, and where the whole of it is.
func (e *BashExitError) Error() string {
	msg := fmt.Sprintf("bash app task %d (%s) failed with exit code %d", e.TaskID, e.App, e.ExitCode)
	switch e.ExitCode {
	case 126:
		msg += " (command not executable)"
	case 127:
		msg += " (command not found)"
	}
	hint := ""
	if e.Stderr != "" {
		hint = "; see " + e.Stderr
	}
	lines := shortTail(e.StderrTail)
	switch len(lines) {
	case 0:
		return msg + hint
	case 1:
		return msg + ": " + lines[0] + hint
	}
	return msg + hint + "; stderr ends with:\n    " + strings.Join(lines, "\n    ")
}

// shortTail returns the last (at most 3) non-empty lines of tail, within
// about 500 bytes, so that an error message stays a few lines long.
func shortTail(tail string) []string {
	const maxLines, maxBytes = 3, 500
	var out []string
	size := 0
	all := strings.Split(strings.TrimRight(tail, "\n"), "\n")
	for i := len(all) - 1; i >= 0 && len(out) < maxLines; i-- {
		l := strings.TrimRight(all[i], "\r \t")
		if l == "" {
			continue
		}
		if len(l) > maxBytes-size {
			if len(out) > 0 {
				break
			}
			l = "..." + l[len(l)-(maxBytes-3):]
		}
		size += len(l)
		out = append(out, l)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// WalltimeError is the failure of a task that ran past its walltime.
type WalltimeError struct {
	TaskID   int64
	App      string
	Walltime time.Duration
}

func (e *WalltimeError) Error() string {
	return fmt.Sprintf("task %d (%s) exceeded its walltime of %s and was stopped", e.TaskID, e.App, e.Walltime)
}

// MissingOutputsError is the failure of an app that finished without
// creating the output files it declared.
type MissingOutputsError struct {
	TaskID int64
	App    string
	Paths  []string
}

func (e *MissingOutputsError) Error() string {
	return fmt.Sprintf("task %d (%s) finished but did not create its declared outputs: %s",
		e.TaskID, e.App, strings.Join(e.Paths, ", "))
}

// SerializationError is raised when an argument or result cannot be encoded
// or decoded. Arg is the 1-based argument position, or 0 for the result.
// It is deterministic (the same value fails the same way every time), so
// the task is not retried.
type SerializationError struct {
	TaskID int64
	App    string
	Arg    int
	// Rule names the rule the value broke when it was refused before
	// encoding: "cycle", "nesting", "array", "map", "size" (too large) or
	// "interface" (an interface value that would not come back as itself);
	// empty for other encoding or decoding errors. Err says what to change.
	Rule string
	Err  error
}

func (e *SerializationError) Error() string {
	what := "result"
	if e.Arg > 0 {
		what = fmt.Sprintf("argument %d", e.Arg)
	}
	if e.Rule != "" {
		// The cause carries its own advice.
		return fmt.Sprintf("task %d (%s): %s cannot be serialized: %v", e.TaskID, e.App, what, e.Err)
	}
	return fmt.Sprintf("task %d (%s): %s cannot be serialized: %v (arguments and results must be CBOR-encodable: exported fields, no funcs or channels)",
		e.TaskID, e.App, what, e.Err)
}

// Unwrap returns the encoder's error.
func (e *SerializationError) Unwrap() error { return e.Err }

// ManagerLostError is the failure of a task whose worker pool (manager)
// stopped answering. It is retryable.
type ManagerLostError struct {
	TaskID   int64
	Manager  string
	Hostname string
	Reason   string
}

func (e *ManagerLostError) Error() string {
	return fmt.Sprintf("task %d: worker pool %s on %s was lost: %s", e.TaskID, e.Manager, e.Hostname, e.Reason)
}

// WorkerLostError is the failure of a task whose worker process died.
type WorkerLostError struct {
	TaskID   int64
	Worker   string
	Hostname string
	Reason   string
}

func (e *WorkerLostError) Error() string {
	return fmt.Sprintf("task %d: worker %s on %s was lost: %s", e.TaskID, e.Worker, e.Hostname, e.Reason)
}

// UnsupportedFeatureError is returned when a task asks an executor for
// something it cannot do.
type UnsupportedFeatureError struct {
	Feature  string
	Executor string
}

func (e *UnsupportedFeatureError) Error() string {
	return fmt.Sprintf("executor %q does not support %s", e.Executor, e.Feature)
}

// ExecutorError is a task that could not be handed to an executor: an
// unknown label, or an executor that failed or is shut down.
type ExecutorError struct {
	TaskID   int64
	App      string
	Executor string
	Err      error
}

func (e *ExecutorError) Error() string {
	return fmt.Sprintf("task %d (%s): executor %q: %v", e.TaskID, e.App, e.Executor, e.Err)
}

// Unwrap returns the underlying cause.
func (e *ExecutorError) Unwrap() error { return e.Err }

// RetryError is the final failure of a task that was tried more than once.
// Attempts holds each try's error, oldest first; Unwrap returns the last.
type RetryError struct {
	TaskID   int64
	App      string
	Attempts []error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("task %d (%s) failed after %d tries; last: %v", e.TaskID, e.App, len(e.Attempts), e.Attempts[len(e.Attempts)-1])
}

// Unwrap returns the last attempt's error.
func (e *RetryError) Unwrap() error { return e.Attempts[len(e.Attempts)-1] }

// ConfigError is an invalid Config or call option.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("parsl config: %s: %s", e.Field, e.Reason)
}
