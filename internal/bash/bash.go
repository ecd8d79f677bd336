// Package bash runs the command line of a bash app the way Parsl does
// (/bin/bash -c, std streams appended to files, a banner naming the command
// in the stderr file), but with a walltime and cancellation that actually stop
// the work: the command runs in its own process group and the whole group is
// killed, so background children cannot outlive the task as they can in
// Python Parsl, nor can a command outlive the process that runs it (see
// Runner).
package bash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/parsl-go/parsl/internal/procgroup"
)

// bashPath is a variable, not a constant, only so that tests can simulate a
// machine without bash.
var bashPath = "/bin/bash"

// waitDelay bounds how long Wait may block after the group was killed. The
// std streams are files, not pipes, so nothing should hold Wait up; this is a
// backstop against a process stuck in uninterruptible sleep.
const waitDelay = 2 * time.Second

// errWalltime is the context cause that tells a walltime expiry apart from a
// cancellation by the caller, since both arrive as a done context.
var errWalltime = errors.New("bash: walltime exceeded")

// Spec describes one command to run.
type Spec struct {
	// Command is run as: /bin/bash -c Command. Parsl uses bash rather than
	// sh, so apps may rely on bash syntax.
	Command string
	// Dir is the working directory; "" means the current one. It does not
	// affect relative Stdout and Stderr paths, which (as in Parsl, which opens
	// them before starting the shell) are relative to this process's
	// directory.
	Dir string
	// Env holds extra KEY=VALUE entries appended to os.Environ(); a key given
	// here wins over the inherited one.
	Env []string
	// Stdout is the path the command's standard output goes to; "" discards
	// it. Missing parent directories are created (0755).
	Stdout string
	// Stderr is like Stdout for standard error. It may equal Stdout: the file
	// is then opened once and both streams share one handle, so their writes
	// interleave instead of overwriting each other.
	Stderr string
	// Truncate makes the std files start empty. The default, false, appends,
	// as Parsl does, so retries and reruns keep the earlier output.
	Truncate bool
	// Walltime is the longest the command may run; 0 means no limit. At the
	// deadline the whole process group gets SIGKILL.
	Walltime time.Duration
}

// Result is what a finished command reports.
type Result struct {
	// ExitCode is the command's exit status, or 128+N when it was killed by
	// signal N, the convention the shell itself reports, so callers see the
	// same numbers as from a Parsl bash app.
	ExitCode int
	// TimedOut means the command was killed because the walltime passed.
	TimedOut bool
	// Canceled means the command was killed because the caller's context was
	// done (or, with a non-nil error from Run, that it was never started for
	// that reason).
	Canceled bool
	// StderrTail is the end of what the command wrote to standard error,
	// at most TailSize bytes, starting at a line start where the cut
	// allows: the first thing a user needs to see why a command failed.
	// With a Stderr file it is read back from the file (only what this run
	// wrote, not the banner or earlier runs; with Stderr equal to Stdout it
	// includes standard output); without one, standard error goes through a
	// pipe into a bounded buffer instead of /dev/null.
	StderrTail string
}

// TailSize bounds Result.StderrTail.
const TailSize = 4096

// StreamError reports that a std stream file could not be opened or its
// directory created; it is Parsl's BadStdStreamFile. It is a distinct type
// because the fix is in the app's stdout/stderr arguments, not the command.
type StreamError struct {
	Stream string // "stdout" or "stderr"
	Path   string
	Err    error
}

// Error names the path and the likely remedy, because the underlying error
// alone does not say which of the app's arguments is at fault.
func (e *StreamError) Error() string {
	return fmt.Sprintf("bash: cannot open %s file %q: %v; check that the path is right and its directory can be created and written",
		e.Stream, e.Path, e.Err)
}

// Unwrap exposes the cause so callers can test it with errors.Is (for
// example fs.ErrPermission).
func (e *StreamError) Unwrap() error { return e.Err }

// Runner runs commands and makes sure that none of their processes
// outlives the command or the Runner's own process. Each command runs in a
// process group of its own; the whole group is killed
//   - when the walltime passes or the caller's context is done;
//   - as soon as the shell has exited, so that background children such as
//     `sleep 100 &` do not run on after the task (to keep a process
//     running past its task, start it in a session of its own with
//     setsid);
//   - at Close, for commands still running;
//   - when the Runner's process dies, even by SIGKILL: on Linux the kernel
//     kills the shell at once (a parent-death signal), and a watchdog
//     process (a small bash loop, one per Runner, started with the first
//     command) kills the rest of each group when the pipe from the dead
//     process closes. On macOS, which has no parent-death signal, the
//     watchdog alone kills the groups, shell included.
//
// So a worker pool that is killed while it runs a bash task takes the
// task's processes with it before the task is retried elsewhere, and a
// driver's threads executor leaves no orphans either.
//
// The zero value is ready to use. A Runner must not be copied after first
// use.
type Runner struct {
	mu     sync.Mutex
	wd     *watchdog
	groups map[int]struct{} // the groups of the commands running now
	closed bool
}

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("bash: the runner is closed; no more commands can start")

// Close kills the process groups of the commands still running, stops the
// watchdog and waits for it. Runs in progress return soon after (killed);
// later ones fail with ErrClosed. Close is idempotent.
func (r *Runner) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	for pg := range r.groups {
		if err := procgroup.Kill(pg); err != nil {
			errs = append(errs, fmt.Errorf("bash: killing process group %d: %w", pg, err))
		}
	}
	if r.wd != nil {
		errs = append(errs, r.wd.stop())
		r.wd = nil
	}
	return errors.Join(errs...)
}

// register records a started command's group with the watchdog, starting
// (or restarting) the watchdog as needed.
func (r *Runner) register(pgid int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.groups == nil {
		r.groups = map[int]struct{}{}
	}
	r.groups[pgid] = struct{}{}
	if r.wd != nil && r.wd.tell('+', pgid) == nil {
		return nil
	}
	// No watchdog yet, or it died (someone killed it): start one and tell
	// it every running group.
	if r.wd != nil {
		_ = r.wd.stop()
		r.wd = nil
	}
	wd, err := startWatchdog()
	if err != nil {
		delete(r.groups, pgid)
		return err
	}
	r.wd = wd
	for pg := range r.groups {
		if err := wd.tell('+', pg); err != nil {
			return fmt.Errorf("bash: the watchdog (pid %d) did not take the process group: %w", wd.cmd.Process.Pid, err)
		}
	}
	return nil
}

// unregister forgets a finished command's group, whose id may be reused
// from now on.
func (r *Runner) unregister(pgid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.groups, pgid)
	if r.wd != nil && !r.closed {
		// A dead watchdog is replaced at the next register.
		_ = r.wd.tell('-', pgid)
	}
}

// Run runs one command on a Runner of its own, closed when the command is
// over: for callers that run a single command.
func Run(ctx context.Context, s Spec) (Result, error) {
	var r Runner
	defer r.Close()
	return r.Run(ctx, s)
}

// Run starts the command in its own process group (Setpgid), waits for it,
// and returns its Result.
//
// It returns an error only when the command could not be started: a std
// stream file that cannot be opened (*StreamError), a missing bash, a Dir that
// is not a usable directory (the error names it), a closed Runner
// (ErrClosed), or a ctx already done (then Result.Canceled is also set;
// Result.TimedOut if a tiny walltime ran out before the start). A non-zero
// exit is not an error: it is in Result.ExitCode, because for a bash app
// that is the app's failure, which the caller reports in its own terms.
//
// When ctx is done or the walltime passes, the whole process group,
// including background children such as `sleep 100 &`, is killed with
// SIGKILL and Run returns promptly. Children still running when the shell
// exits on its own are killed too, before Run returns.
func (r *Runner) Run(ctx context.Context, s Spec) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{Canceled: true}, fmt.Errorf("bash: command not started: %w", err)
	}
	if s.Dir != "" {
		// Checked here because a failed chdir in the child surfaces as
		// "fork/exec /bin/bash: no such file or directory", which blames bash.
		fi, err := os.Stat(s.Dir)
		if err != nil {
			return Result{}, fmt.Errorf("bash: working directory %q: %w", s.Dir, err)
		}
		if !fi.IsDir() {
			return Result{}, fmt.Errorf("bash: working directory %q is not a directory", s.Dir)
		}
	}

	stdout, stderr, err := openStreams(s)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if stdout != nil {
			stdout.Close()
		}
		if stderr != nil && stderr != stdout {
			stderr.Close()
		}
	}()
	if stderr != nil {
		// Parsl writes this banner so that the stderr file alone shows what
		// ran; a failed write is no reason not to run the command.
		fmt.Fprintf(stderr, "--> executable follows <--\n%s\n--> end executable <--\n", s.Command)
	}
	// Where this run's own stderr output starts in the file (append mode
	// writes at the end, so the size is the offset).
	var stderrStart int64 = -1
	if stderr != nil {
		if fi, err := stderr.Stat(); err == nil {
			stderrStart = fi.Size()
		}
	}

	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if s.Walltime > 0 {
		runCtx, cancel = context.WithTimeoutCause(ctx, s.Walltime, errWalltime)
	}
	defer cancel()

	cmd := exec.CommandContext(runCtx, bashPath, "-c", s.Command)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), s.Env...)
	// Assigning *os.File (or nil, which becomes /dev/null) hands the
	// descriptors to the child directly: no copying goroutines, so
	// grandchildren holding them cannot keep Wait from returning.
	if stdout != nil {
		cmd.Stdout = stdout
	}
	var ring *tailBuffer
	if stderr != nil {
		cmd.Stderr = stderr
	} else {
		// A writer that is not an *os.File makes exec copy from a pipe;
		// Wait waits for the copy, which ends once the group is killed
		// (or, for a process that escaped it with setsid and holds the
		// pipe, after WaitDelay).
		ring = &tailBuffer{}
		cmd.Stderr = ring
	}
	cmd.SysProcAttr = procgroup.Attr()
	var killed atomic.Bool
	cmd.Cancel = func() error {
		// The group id is the shell's pid (Setpgid with Pgid 0). Once Wait
		// has reaped the shell the command is over and that number may be
		// reused, so only signal the group while the shell is unreaped.
		// Process.Signal knows that (it uses a pidfd), which leaves only the
		// instant between these two calls for Wait to reap the shell.
		if err := cmd.Process.Signal(syscall.Signal(0)); errors.Is(err, os.ErrProcessDone) {
			return err
		}
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		if err != nil {
			return err
		}
		killed.Store(true)
		return nil
	}
	cmd.WaitDelay = waitDelay

	// The parent-death signal is tied to the thread that forks, and Go
	// retires a thread whenever a goroutine locked to it exits: hold this
	// one until the shell is reaped.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		// Start refuses a context that is already done; with a tiny
		// walltime that can be ours rather than the caller's.
		if ctx.Err() != nil {
			return Result{Canceled: true}, fmt.Errorf("bash: command not started: %w", err)
		}
		if errors.Is(context.Cause(runCtx), errWalltime) {
			return Result{TimedOut: true}, fmt.Errorf("bash: command not started: %w", errWalltime)
		}
		return Result{}, fmt.Errorf("bash: cannot start %s: %w", bashPath, err)
	}
	pgid := cmd.Process.Pid
	if err := r.register(pgid); err != nil {
		// Without the watchdog (or after Close) the command must not run:
		// nothing would stop it if this process died.
		_ = procgroup.Kill(pgid)
		_ = cmd.Wait()
		return Result{}, err
	}
	defer r.unregister(pgid)
	// Kill what the shell left behind while the shell is still a zombie,
	// so the group id cannot have been reused; where that wait does not
	// exist, right after the reap (the leftovers then hold the id).
	exited, _ := procgroup.WaitExited(pgid)
	if exited {
		_ = procgroup.Kill(pgid)
	}
	err = cmd.Wait()
	if !exited {
		_ = procgroup.Kill(pgid)
	}
	state := cmd.ProcessState
	if state == nil {
		return Result{}, fmt.Errorf("bash: waiting for %s: %w", bashPath, err)
	}

	var res Result
	switch {
	case ring != nil:
		res.StderrTail = ring.String()
	case stderrStart >= 0:
		res.StderrTail = readTail(stderr.Name(), stderrStart)
	}
	ws, _ := state.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		res.ExitCode = 128 + int(ws.Signal())
	} else {
		res.ExitCode = state.ExitCode()
	}
	// A kill that raced with the shell exiting by itself only reached
	// leftovers (or a zombie); the command did finish, so report it as such.
	if killed.Load() && !state.Exited() {
		if errors.Is(context.Cause(runCtx), errWalltime) {
			res.TimedOut = true
		} else {
			res.Canceled = true
		}
	}
	return res, nil
}

// openStreams opens the std files named in s; a nil file means discard.
func openStreams(s Spec) (stdout, stderr *os.File, err error) {
	if s.Stdout != "" {
		if stdout, err = openStream("stdout", s.Stdout, s.Truncate); err != nil {
			return nil, nil, err
		}
	}
	if s.Stderr == "" {
		return stdout, nil, nil
	}
	if s.Stdout != "" && filepath.Clean(s.Stdout) == filepath.Clean(s.Stderr) {
		// Two handles on one file would each keep their own offset under
		// Truncate and overwrite each other's output.
		return stdout, stdout, nil
	}
	if stderr, err = openStream("stderr", s.Stderr, s.Truncate); err != nil {
		if stdout != nil {
			stdout.Close()
		}
		return nil, nil, err
	}
	return stdout, stderr, nil
}

func openStream(stream, path string, truncate bool) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, &StreamError{Stream: stream, Path: path, Err: err}
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if truncate {
		flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flag, 0o666)
	if err != nil {
		return nil, &StreamError{Stream: stream, Path: path, Err: err}
	}
	return f, nil
}

// tailBuffer keeps the last TailSize bytes written to it.
type tailBuffer struct {
	mu      sync.Mutex
	buf     []byte
	dropped bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if len(p) >= TailSize {
		b.dropped = b.dropped || len(p) > TailSize || len(b.buf) > 0
		b.buf = append(b.buf[:0], p[len(p)-TailSize:]...)
		return n, nil
	}
	if over := len(b.buf) + len(p) - TailSize; over > 0 {
		b.dropped = true
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

// String returns the tail, cut at a line start if bytes were dropped.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return cutTail(b.buf, b.dropped)
}

// readTail reads at most TailSize bytes from the end of the file at path,
// not before offset start. A file that cannot be read gives "": the tail is
// a hint, never a reason to fail the task differently.
func readTail(path string, start int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() <= start {
		return ""
	}
	from, dropped := start, false
	if fi.Size()-start > TailSize {
		from, dropped = fi.Size()-TailSize, true
	}
	buf := make([]byte, fi.Size()-from)
	n, _ := f.ReadAt(buf, from)
	return cutTail(buf[:n], dropped)
}

// cutTail drops a partial first line when the start was cut off, unless
// the tail is one long line.
func cutTail(b []byte, dropped bool) string {
	if dropped {
		if i := bytes.IndexByte(b, '\n'); i >= 0 && i+1 < len(b) {
			b = b[i+1:]
		}
	}
	return string(b)
}
