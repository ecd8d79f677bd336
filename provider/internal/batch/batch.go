// Package batch holds what the PBS, LSF, HTCondor and Grid Engine providers
// share: the methods every Provider answers alike (Common), the submit
// preamble (PrepareSubmit, WriteScript), the skeleton of Status (Status),
// cancelling in chunks (Runner.CancelChunks), running a scheduler command
// with a timeout, the typed errors that carry its output, the batch script
// directory and shell quoting. Slurm keeps its own copy because it came
// first; the newer providers share this one so that their errors read
// alike.
package batch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Runner runs one scheduler's commands.
type Runner struct {
	// Scheduler names the scheduler in messages ("pbs", "lsf", "condor").
	Scheduler string
	// Timeout bounds each command.
	Timeout time.Duration
	// Hint says what to check when a command fails; it gets the error,
	// whose Command, ExitCode and Stderr are set. Nil gives a generic
	// hint.
	Hint func(*CommandError) string
}

// Run runs name with args (and stdin, if not nil) and returns its standard
// output. Failure is a *CommandError.
func (r *Runner) Run(ctx context.Context, stdin io.Reader, name string, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &stdout, &stderr, stdin
	// A command killed at the timeout may leave a child holding its pipes;
	// do not wait for that child forever.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return stdout.String(), nil
	}
	ce := &CommandError{Scheduler: r.Scheduler, Command: append([]string{name}, args...), ExitCode: -1,
		Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
	var ee *exec.ExitError
	switch {
	case cctx.Err() != nil:
		// The caller's cancellation, or our timeout.
		ce.Err = cctx.Err()
		if ctx.Err() == nil {
			ce.Timeout = r.Timeout
		}
	case errors.As(err, &ee):
		ce.ExitCode = ee.ExitCode()
	}
	switch {
	case errors.Is(ce.Err, exec.ErrNotFound):
		ce.Hint = "is " + r.Scheduler + " installed here and " + name + " on PATH? (the driver must run where jobs can be submitted, e.g. a login node)"
	case ce.Timeout > 0:
		ce.Hint = "the " + r.Scheduler + " server is slow or down; check it, or raise Options.CmdTimeout"
	case r.Hint != nil:
		ce.Hint = r.Hint(ce)
	default:
		ce.Hint = "check that the " + r.Scheduler + " server is up"
	}
	return "", ce
}

// CommandError is a scheduler command that failed: not found, timed out, or
// exited with a non-zero code.
type CommandError struct {
	// Scheduler names the scheduler ("pbs", "lsf", "condor").
	Scheduler string
	// Command is the command line.
	Command []string
	// ExitCode is the command's exit code, -1 if it did not exit by itself.
	ExitCode int
	// Stdout and Stderr are what the command printed.
	Stdout, Stderr string
	// Timeout is set when the command was stopped at Options.CmdTimeout.
	Timeout time.Duration
	// Hint says what to check.
	Hint string
	// Err is the underlying error (exec's, or the context's).
	Err error
}

// Error says which command failed, how, what it printed and what to check.
func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: `%s` ", e.Scheduler, strings.Join(e.Command, " "))
	switch {
	case e.Timeout > 0:
		fmt.Fprintf(&b, "did not finish within %s", e.Timeout)
	case e.ExitCode >= 0:
		fmt.Fprintf(&b, "exited with code %d", e.ExitCode)
	default:
		fmt.Fprintf(&b, "failed: %v", e.Err)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		fmt.Fprintf(&b, ": %s", s)
	} else if s := strings.TrimSpace(e.Stdout); s != "" {
		fmt.Fprintf(&b, ": %s", s)
	}
	if e.Hint != "" {
		b.WriteString("; " + e.Hint)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *CommandError) Unwrap() error { return e.Err }

// SubmitError is a block that could not be submitted. When the submit
// command ran, Command, ExitCode, Stdout and Stderr are its own; Err says
// what failed.
type SubmitError struct {
	// Scheduler names the scheduler.
	Scheduler string
	// BlockID is the block that was being submitted.
	BlockID string
	// Script is the batch script (or submit description), if it was
	// written.
	Script string
	// Command is the submit command line (nil if it was not run).
	Command []string
	// ExitCode is the submit command's exit code, -1 if it did not exit by
	// itself or was not run.
	ExitCode int
	// Stdout and Stderr are what the submit command printed.
	Stdout, Stderr string
	// Err is the cause (a *CommandError when the command failed).
	Err error
}

// NewSubmitError wraps err, copying the command's details when err is a
// *CommandError.
func NewSubmitError(scheduler, blockID, script string, err error) *SubmitError {
	se := &SubmitError{Scheduler: scheduler, BlockID: blockID, Script: script, ExitCode: -1, Err: err}
	var ce *CommandError
	if errors.As(err, &ce) {
		se.Command, se.ExitCode, se.Stdout, se.Stderr = ce.Command, ce.ExitCode, ce.Stdout, ce.Stderr
	}
	return se
}

// Error names the block, the script and the cause.
func (e *SubmitError) Error() string {
	s := e.Scheduler + " provider: submitting block " + e.BlockID
	if e.Script != "" {
		s += " (script " + e.Script + ")"
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *SubmitError) Unwrap() error { return e.Err }

// ParseError is output of a scheduler command that could not be read, most
// likely from a version whose format differs.
type ParseError struct {
	// Scheduler names the scheduler.
	Scheduler string
	// Command is the command whose output it was.
	Command string
	// Output is the output.
	Output string
	// Err says what was wrong with it.
	Err error
}

// Error quotes the output that could not be read.
func (e *ParseError) Error() string {
	return fmt.Sprintf("%s provider: cannot read the output of %s (%v); please report it with your %s version; output: %q",
		e.Scheduler, e.Command, e.Err, e.Scheduler, e.Output)
}

// Unwrap returns the cause.
func (e *ParseError) Unwrap() error { return e.Err }

// ScriptDir is a provider's batch script directory: set by an executor, or
// made under os.TempDir() at the first use.
type ScriptDir struct {
	mu  sync.Mutex
	dir string
}

// Set sets the directory; later Ensure calls make and return it.
func (s *ScriptDir) Set(dir string) {
	s.mu.Lock()
	s.dir = dir
	s.mu.Unlock()
}

// Get returns the directory, "" if none was set or made yet.
func (s *ScriptDir) Get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir
}

// Ensure makes the directory (a new temporary one named after scheduler
// when none was set) and returns it.
func (s *ScriptDir) Ensure(scheduler string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "parsl-"+scheduler+"-scripts-")
		if err != nil {
			return "", fmt.Errorf("making a directory for batch scripts: %w (set Options.ScriptDir)", err)
		}
		s.dir = dir
		return dir, nil
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return "", fmt.Errorf("making the batch script directory: %w", err)
	}
	return s.dir, nil
}

// UnsafeName matches the characters not kept in file names made from job
// names.
var UnsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ShellQuote quotes s for bash: as is when it has only safe characters,
// otherwise in single quotes, so that the shell never expands it.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=/.,:@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ShellBody writes the shell part every batch script shares: exports (each
// NAME=value, quoted), the worker init lines, then the command, quoted
// word by word.
func ShellBody(b *strings.Builder, env, workerInit, command []string) error {
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !envNameRe.MatchString(k) {
			return fmt.Errorf("environment entry %q is not NAME=value with a shell variable name", kv)
		}
		fmt.Fprintf(b, "export %s=%s\n", k, ShellQuote(v))
	}
	if len(workerInit) > 0 {
		b.WriteString("\n# worker init\n")
		for _, line := range workerInit {
			b.WriteString(line + "\n")
		}
	}
	b.WriteString("\n")
	q := make([]string, len(command))
	for i, a := range command {
		q[i] = ShellQuote(a)
	}
	b.WriteString(strings.Join(q, " ") + "\n")
	return nil
}

// DirectiveValue checks that v can go on a scheduler directive line: no
// newline (which would end the line and let the rest be read as script or
// as another directive) and no double quote.
func DirectiveValue(what, v string) error {
	if strings.ContainsAny(v, "\n\r\"") {
		return fmt.Errorf("the value %q of %s contains a newline or a double quote, which a batch script directive cannot hold", v, what)
	}
	return nil
}

// SchedulerLines appends extra directives: whole lines starting with "#"
// are kept, bare options get prefix ("#PBS ").
func SchedulerLines(b *strings.Builder, prefix string, opts []string) error {
	for _, line := range opts {
		if strings.ContainsAny(line, "\n\r") {
			return fmt.Errorf("scheduler option %q contains a newline; give one option per element", line)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			line = prefix + line
		}
		b.WriteString(line + "\n")
	}
	return nil
}

// FormatHMS formats d as hours:minutes:seconds, rounded up to whole
// seconds, never less than one second.
func FormatHMS(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, (s/60)%60, s%60)
}

// Chunks splits ids into slices of at most n, so that one command line
// never grows past what the scheduler (or the OS) accepts.
func Chunks(ids []string, n int) [][]string {
	var out [][]string
	for len(ids) > n {
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}
