// Package threads is the in-process executor: a bounded set of goroutines
// that run tasks in the driver. It has the lowest latency of all executors
// and suits short Go apps, join apps and bash apps on the local machine.
package threads

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/internal/bash"
	"github.com/parsl-go/parsl/internal/failure"
	"github.com/parsl-go/parsl/internal/registry"
	"github.com/parsl-go/parsl/staging"
)

// Options configures the executor. Zero fields take the defaults.
type Options struct {
	// Label names the executor; default "threads".
	Label string
	// MaxThreads is the number of worker goroutines; default one per CPU.
	MaxThreads int
	// ShutdownGrace is how long Shutdown waits, after cancelling, for apps
	// to notice their context; default 2 s. Go cannot stop a goroutine that
	// ignores its context, so such a task is abandoned after this grace.
	ShutdownGrace time.Duration
	// WorkingDir is where this executor's tasks resolve relative File
	// paths and where their staged files go (Parsl's working_dir); ""
	// means the run directory. parsl.WorkDir overrides it per task.
	WorkingDir string
	// StorageAccess limits the staging providers this executor's tasks may
	// use (Parsl's storage_access); nil means staging/defaults.
	StorageAccess []staging.Provider
}

// Executor is the threads executor. Create it with New.
type Executor struct {
	opts Options
	env  executor.Env

	mu     sync.Mutex
	cond   sync.Cond
	queue  []*executor.Task
	head   int
	idle   int // workers waiting on cond
	closed bool

	ctx       context.Context
	cancel    context.CancelFunc
	workers   sync.WaitGroup
	abandoned atomic.Int64
	started   bool

	// sh runs the bash apps: their commands die with the driver, even on
	// SIGKILL, instead of running on as orphans.
	sh bash.Runner
}

// New returns a threads executor; Load starts it.
func New(opts Options) *Executor {
	if opts.Label == "" {
		opts.Label = "threads"
	}
	if opts.MaxThreads <= 0 {
		opts.MaxThreads = runtime.NumCPU()
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 2 * time.Second
	}
	e := &Executor{opts: opts}
	e.cond.L = &e.mu
	return e
}

// Label implements executor.Executor.
func (e *Executor) Label() string { return e.opts.Label }

// WorkingDir returns Options.WorkingDir (parsl.WorkingDirExecutor).
func (e *Executor) WorkingDir() string { return e.opts.WorkingDir }

// StorageAccess returns Options.StorageAccess (parsl.StorageAccessExecutor).
func (e *Executor) StorageAccess() []staging.Provider { return e.opts.StorageAccess }

// MaxThreads returns the number of worker goroutines.
func (e *Executor) MaxThreads() int { return e.opts.MaxThreads }

// Start implements executor.Executor.
func (e *Executor) Start(ctx context.Context, env executor.Env) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return fmt.Errorf("threads executor %q started twice; create one per Config", e.opts.Label)
	}
	e.started = true
	e.env = env
	base := env.BaseContext
	if base == nil {
		base = context.Background()
	}
	e.ctx, e.cancel = context.WithCancel(base)
	for i := 0; i < e.opts.MaxThreads; i++ {
		e.workers.Add(1)
		go e.work()
	}
	return nil
}

// Submit implements executor.Executor.
func (e *Executor) Submit(t *executor.Task) error {
	e.mu.Lock()
	if e.closed || !e.started {
		e.mu.Unlock()
		if !e.started {
			return fmt.Errorf("threads executor %q is not started", e.opts.Label)
		}
		return failure.ErrDFKClosed
	}
	e.queue = append(e.queue, t)
	wake := e.idle > 0
	e.mu.Unlock()
	if wake {
		// A busy worker takes the task when it comes back to the queue;
		// signalling only idle ones saves a futex call per task under load.
		e.cond.Signal()
	}
	return nil
}

func (e *Executor) work() {
	defer e.workers.Done()
	for {
		e.mu.Lock()
		for e.head == len(e.queue) && !e.closed {
			e.idle++
			e.cond.Wait()
			e.idle--
		}
		if e.head == len(e.queue) {
			e.mu.Unlock()
			return
		}
		t := e.queue[e.head]
		e.queue[e.head] = nil
		e.head++
		if e.head == len(e.queue) {
			e.queue = e.queue[:0]
			e.head = 0
		} else if e.head > 1024 && e.head*2 > len(e.queue) {
			n := copy(e.queue, e.queue[e.head:])
			clear(e.queue[n:])
			e.queue = e.queue[:n]
			e.head = 0
		}
		e.mu.Unlock()
		if e.ctx.Err() != nil {
			t.Done(nil, fmt.Errorf("executor %q shut down before the task started: %w", e.opts.Label, e.ctx.Err()))
			continue
		}
		res, err := e.run(t)
		t.Done(res, err)
	}
}

func (e *Executor) run(t *executor.Task) (any, error) {
	if t.App.Kind == registry.Bash {
		return e.runBash(t)
	}
	var (
		res any
		err error
	)
	if t.Opts.Walltime > 0 {
		res, err = e.runWithWalltime(t)
	} else {
		res, err = invoke(e.ctx, t)
	}
	if err == nil {
		err = checkOutputs(t)
	}
	return res, err
}

// invoke calls the app, turning an error or a panic into an *AppError.
func invoke(ctx context.Context, t *executor.Task) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			res = nil
			err = &failure.AppError{TaskID: t.ID, App: t.App.Name, Kind: "panic", Panicked: true,
				Message: fmt.Sprint(r), Stack: string(debug.Stack())}
		}
	}()
	res, err = t.App.Invoke(ctx, t.Args)
	if err != nil {
		return nil, appError(t, err)
	}
	return res, nil
}

func appError(t *executor.Task, err error) error {
	var ae *failure.AppError
	if errors.As(err, &ae) && ae.TaskID == t.ID {
		return err
	}
	return &failure.AppError{TaskID: t.ID, App: t.App.Name, Kind: fmt.Sprintf("%T", err), Message: err.Error(), Err: err}
}

type outcome struct {
	res any
	err error
}

// runWithWalltime runs the app on its own goroutine so that the task can
// fail at its deadline even when the app ignores its context.
func (e *Executor) runWithWalltime(t *executor.Task) (any, error) {
	ctx, cancel := context.WithTimeout(e.ctx, t.Opts.Walltime)
	defer cancel()
	ch := make(chan outcome, 1)
	// The app goroutine gets its own copy of the try: once the walltime has
	// passed it may be abandoned, and the kernel then reuses or clears t
	// (a retry, or releasing Args when the task settles).
	x := *t
	go func() {
		r, err := invoke(ctx, &x)
		ch <- outcome{r, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && e.ctx.Err() == nil {
			return nil, &failure.WalltimeError{TaskID: t.ID, App: t.App.Name, Walltime: t.Opts.Walltime}
		}
		return o.res, o.err
	case <-ctx.Done():
		select {
		case o := <-ch: // finished at the same moment
			if o.err == nil {
				return o.res, nil
			}
		case <-time.After(10 * time.Millisecond):
			e.abandoned.Add(1)
			go func() { <-ch; e.abandoned.Add(-1) }()
		}
		if e.ctx.Err() != nil {
			return nil, fmt.Errorf("task %d (%s) cancelled: %w", t.ID, t.App.Name, e.ctx.Err())
		}
		return nil, &failure.WalltimeError{TaskID: t.ID, App: t.App.Name, Walltime: t.Opts.Walltime}
	}
}

func (e *Executor) runBash(t *executor.Task) (any, error) {
	stdout, stderr := t.StdPaths()
	r, err := e.sh.Run(e.ctx, bash.Spec{
		Command: t.Command, Stdout: stdout, Stderr: stderr, Truncate: t.Opts.StdTruncate, Walltime: t.Opts.Walltime,
	})
	if err != nil {
		return nil, &failure.AppError{TaskID: t.ID, App: t.App.Name, Kind: fmt.Sprintf("%T", err), Message: err.Error(), Err: err}
	}
	switch {
	case r.TimedOut:
		return nil, &failure.WalltimeError{TaskID: t.ID, App: t.App.Name, Walltime: t.Opts.Walltime}
	case r.Canceled:
		return nil, fmt.Errorf("bash app task %d (%s) cancelled: %w", t.ID, t.App.Name, context.Canceled)
	case r.ExitCode != 0:
		return nil, &failure.BashExitError{TaskID: t.ID, App: t.App.Name, ExitCode: r.ExitCode, Stderr: stderr, StderrTail: r.StderrTail}
	}
	if err := checkOutputs(t); err != nil {
		return nil, err
	}
	return 0, nil
}

func checkOutputs(t *executor.Task) error {
	var missing []string
	for _, p := range t.Opts.Outputs {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return &failure.MissingOutputsError{TaskID: t.ID, App: t.App.Name, Paths: missing}
	}
	return nil
}

// Shutdown implements executor.Executor. Queued tasks still run unless ctx
// ends first; then running tasks are cancelled and queued ones fail.
func (e *Executor) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if !e.started || e.closed {
		e.closed = true
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.cond.Broadcast()

	// Whatever happens below, no bash command may outlive Shutdown.
	defer e.sh.Close()
	done := make(chan struct{})
	go func() { e.workers.Wait(); close(done) }()
	select {
	case <-done:
		e.cancel()
		return nil
	case <-ctx.Done():
	}
	e.cancel()
	// Fail what never started.
	e.mu.Lock()
	rest := append([]*executor.Task(nil), e.queue[e.head:]...)
	e.queue, e.head = nil, 0
	e.mu.Unlock()
	for _, t := range rest {
		t.Done(nil, fmt.Errorf("executor %q shut down before the task started: %w", e.opts.Label, ctx.Err()))
	}
	select {
	case <-done:
		return nil
	case <-time.After(e.opts.ShutdownGrace):
		return fmt.Errorf("threads executor %q: some apps ignored cancellation and are still running after %s; their goroutines are abandoned (apps should return when their context is done)", e.opts.Label, e.opts.ShutdownGrace)
	}
}
