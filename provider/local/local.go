// Package local is the provider for one machine: each block is a process
// started here, in its own process group so that cancelling the block
// also stops whatever the block started (launcher copies and what they
// fork). When the block's process ends, by itself or killed, the rest of
// its group is killed too; on Linux a block also dies with the process
// that started it (a parent-death signal), so a killed driver leaves no
// pool behind. The bash tasks of a pool run in process groups of their
// own, which the pool ties to its own life (see internal/bash): they die
// with their pool however it ends.
package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/parsl-go/parsl/internal/procgroup"
	"github.com/parsl-go/parsl/internal/procstat"
	"github.com/parsl-go/parsl/provider"
)

// Options configures the local provider. Zero fields take the defaults.
type Options struct {
	// KillGrace is how long Cancel waits after SIGTERM before SIGKILL;
	// default 2 s.
	KillGrace time.Duration
}

// Provider runs blocks as local processes. Job IDs are process IDs.
type Provider struct {
	opts Options

	mu   sync.Mutex
	jobs map[string]*job
}

type job struct {
	cmd            *exec.Cmd
	pid            int
	stdout, stderr string
	done           chan struct{} // closed once the process is reaped
	exitCode       int
	message        string
	cancelled      bool
}

// New returns a local provider.
func New(opts Options) *Provider {
	if opts.KillGrace <= 0 {
		opts.KillGrace = 2 * time.Second
	}
	return &Provider{opts: opts, jobs: map[string]*job{}}
}

// Submit implements provider.Provider: it starts command in a new process
// group with env appended to this process's environment.
func (p *Provider) Submit(ctx context.Context, command []string, env []string, blockID string, stdout, stderr string) (string, error) {
	if len(command) == 0 {
		return "", errors.New("local provider: empty command for block " + blockID)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	out, err := os.OpenFile(stdout, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", fmt.Errorf("local provider: block %s: opening stdout file: %w", blockID, err)
	}
	defer out.Close()
	errf, err := os.OpenFile(stderr, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", fmt.Errorf("local provider: block %s: opening stderr file: %w", blockID, err)
	}
	defer errf.Close()
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, errf
	// A group of its own: Cancel signals the whole group, and a Ctrl-C in
	// the driver's terminal is handled by the driver, which then cancels.
	// On Linux the block also dies with this process (a parent-death
	// signal), so that a killed driver leaves no pool running tasks that a
	// rerun would run again.
	cmd.SysProcAttr = procgroup.Attr()
	j := &job{cmd: cmd, stdout: stdout, stderr: stderr, done: make(chan struct{})}
	started := make(chan error, 1)
	// The reaper is owned by the job: Cancel waits for done, and a job that
	// exits by itself is reaped here at once so no zombie stays. It starts
	// the process too, on its own OS thread, and keeps that thread until
	// the reap, because the parent-death signal fires when the thread that
	// forked the child exits, not the process.
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		j.pid = cmd.Process.Pid
		started <- nil
		// Whatever the block leaves behind when its first process ends
		// (launcher copies, anything they forked) ends with it: the group
		// is killed while the leader is still unreaped, so the group id
		// cannot be someone else's yet.
		exited, _ := procgroup.WaitExited(j.pid)
		if exited {
			_ = procgroup.Kill(j.pid)
		}
		err := cmd.Wait()
		if !exited {
			_ = procgroup.Kill(j.pid)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			j.exitCode = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				j.exitCode = 128 + int(ws.Signal())
				j.message = "killed by " + ws.Signal().String()
			}
		default:
			j.exitCode = -1
			j.message = err.Error()
		}
		close(j.done)
	}()
	if err := <-started; err != nil {
		return "", fmt.Errorf("local provider: starting block %s (%s): %w", blockID, command[0], err)
	}
	id := strconv.Itoa(j.pid)
	p.mu.Lock()
	p.jobs[id] = j
	p.mu.Unlock()
	return id, nil
}

// Status implements provider.Provider.
func (p *Provider) Status(ctx context.Context, ids []string) ([]provider.JobStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]provider.JobStatus, len(ids))
	for i, id := range ids {
		out[i] = provider.JobStatus{JobID: id}
		j, ok := p.jobs[id]
		if !ok {
			continue
		}
		out[i].StdoutPath, out[i].StderrPath = j.stdout, j.stderr
		select {
		case <-j.done:
			out[i].ExitCode, out[i].Message = j.exitCode, j.message
			switch {
			case j.cancelled:
				out[i].State = provider.Cancelled
			case j.exitCode == 0:
				out[i].State = provider.Completed
			default:
				out[i].State = provider.Failed
			}
		default:
			out[i].State = provider.Running
		}
	}
	return out, nil
}

// Cancel implements provider.Provider: SIGTERM to each job's process
// group, SIGKILL after KillGrace (or when ctx ends; at once for a stopped
// process), and wait until each job is reaped.
func (p *Provider) Cancel(ctx context.Context, ids []string) error {
	p.mu.Lock()
	var js []*job
	for _, id := range ids {
		if j, ok := p.jobs[id]; ok {
			j.cancelled = true
			js = append(js, j)
		}
	}
	p.mu.Unlock()
	for _, j := range js {
		// Negative pid: the whole group, including anything the block forked.
		_ = syscall.Kill(-j.pid, syscall.SIGTERM)
		if stopped(j.pid) {
			// A stopped process cannot act on SIGTERM before the grace
			// ends, and resuming it (SIGCONT) would let a pool that its
			// interchange gave up on run its tasks again: kill it now.
			_ = syscall.Kill(-j.pid, syscall.SIGKILL)
		}
	}
	timer := time.NewTimer(p.opts.KillGrace)
	defer timer.Stop()
	var errs []error
	for _, j := range js {
		select {
		case <-j.done:
		case <-timer.C:
			p.killAll(js)
		case <-ctx.Done():
			p.killAll(js)
		}
		// After SIGKILL the reaper finishes promptly; wait for it so that no
		// process or goroutine is left when Cancel returns.
		select {
		case <-j.done:
		case <-time.After(10 * time.Second):
			errs = append(errs, fmt.Errorf("local provider: block process %d did not exit after SIGKILL", j.pid))
		}
		// Children that outlived the group leader were killed by the
		// reaper, before it reaped the leader.
	}
	return errors.Join(errs...)
}

// stopped reports whether process pid is stopped (SIGSTOP, Ctrl-Z, a
// debugger); false where /proc cannot tell.
func stopped(pid int) bool {
	st, err := proc().State(pid)
	return err == nil && (st == 'T' || st == 't')
}

// proc reads process states; its auxv read happens once, on first use.
var proc = sync.OnceValue(func() *procstat.Reader { return procstat.New("") })

func (p *Provider) killAll(js []*job) {
	for _, j := range js {
		select {
		case <-j.done:
		default:
			_ = syscall.Kill(-j.pid, syscall.SIGKILL)
		}
	}
}
