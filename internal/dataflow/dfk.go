// Package dataflow is the DataFlowKernel: it holds the task graph, launches a
// task when its inputs are ready, retries failures, and memoizes results.
//
// Dependency tracking is event-driven: a task waiting on inputs is a record
// in its inputs' waiter lists, not a parked goroutine, so a million waiting
// tasks cost memory proportional to their records only.
package dataflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/threads"
	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/internal/failure"
	"github.com/parsl-go/parsl/internal/registry"
	"github.com/parsl-go/parsl/memo"
)

// TaskInfo describes a failed try to a retry handler.
type TaskInfo struct {
	ID        int64
	App       string
	Try       int     // 0-based number of the try that failed
	FailCount int     // failed tries so far, this one included
	FailCost  float64 // cost accumulated before this failure
	Executor  string
}

// Config configures a DFK. The parsl package fills it from parsl.Config.
type Config struct {
	RunDir       string
	Executors    []executor.Executor
	Retries      int
	RetryHandler func(err error, info TaskInfo) float64
	DisableCache bool
	Checkpoint   CheckpointConfig
	Logger       *slog.Logger
	// Owner is stored in the context of join app bodies (see OwnerFrom).
	Owner any
	// InternalThreads bounds concurrent join app bodies; 0 means 10.
	InternalThreads int
	// Observer, when set, is told of every state change (monitoring).
	Observer Observer
	// Strategy, StrategyPeriod and MaxIdleTime are handed to every
	// executor in its Env, for elastic scaling.
	Strategy       string
	StrategyPeriod time.Duration
	MaxIdleTime    time.Duration
	// BashAutoLog gives every bash task AutoLog files (see
	// executor.Options.AutoLog).
	BashAutoLog bool
}

// Event is one state change of a task, for monitoring.
type Event struct {
	Time     time.Time
	TaskID   int64
	Try      int
	App      string
	State    State
	Executor string
	// Depends lists the IDs of the tasks this one waits on (Pending at
	// submit only).
	Depends []int64
	// Err is the failure of a failed try or task.
	Err error
}

// Observer receives events. It is called on the kernel's hot path, from
// many goroutines: it must be quick and must not block (queue and return).
type Observer interface {
	TaskEvent(Event)
}

// CallOptions are the per-call options of one submit.
type CallOptions = executor.Options

// DefaultCallOptions is shared by every submit without options.
var DefaultCallOptions = &CallOptions{}

// InternalLabel is the label of the executor that runs join app bodies.
const InternalLabel = "_parsl_internal"

// DFK is a DataFlowKernel.
type DFK struct {
	cfg Config
	// clock0 anchors event times: clock0 plus the monotonic time since
	// is half the cost of time.Now (one clock read, not two) on the hot
	// path, and a run's events stay ordered whatever NTP does meanwhile.
	clock0   time.Time
	log      *slog.Logger
	execs    map[string]executor.Executor
	order    []executor.Executor
	internal executor.Executor
	rr       atomic.Uint64

	// The submit side and the completion side run on different goroutines
	// at high rates; each counter sits on its own cache line so that they
	// do not slow each other down.
	nextID    paddedInt // submit side
	submitted paddedInt // submit side
	finished  paddedInt // completion side
	final     [numCounters]paddedInt
	closed    atomic.Bool
	// cancelBy names what cancels the outstanding tasks when Close gives
	// up ("Close", or a signal's name), for their CancelledError.
	cancelBy atomic.Pointer[string]
	// cancelled counts tasks that ended cancelled by Close; they are
	// logged as one summary line, not one line each.
	cancelled atomic.Int64

	mu   sync.Mutex
	idle chan struct{}

	live liveSet
	ckpt *checkpointer

	rootCtx    context.Context
	cancelRoot context.CancelFunc
	closeOnce  sync.Once
	closeErr   error
}

type ownerKey struct{}

// OwnerFrom returns the Config.Owner of the DFK running a join app body.
func OwnerFrom(ctx context.Context) any { return ctx.Value(ownerKey{}) }

// New starts a DFK: it loads checkpoints and starts every executor.
func New(ctx context.Context, cfg Config) (*DFK, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.InternalThreads <= 0 {
		cfg.InternalThreads = 10
	}
	k := &DFK{cfg: cfg, clock0: time.Now(), log: cfg.Logger, execs: map[string]executor.Executor{}}
	k.rootCtx, k.cancelRoot = context.WithCancel(context.WithValue(context.Background(), ownerKey{}, cfg.Owner))
	for _, e := range cfg.Executors {
		if e == nil {
			return nil, &failure.ConfigError{Field: "Executors", Reason: "contains a nil executor"}
		}
		l := e.Label()
		if l == InternalLabel {
			return nil, &failure.ConfigError{Field: "Executors", Reason: fmt.Sprintf("label %q is reserved", l)}
		}
		if _, dup := k.execs[l]; dup {
			return nil, &failure.ConfigError{Field: "Executors", Reason: fmt.Sprintf("duplicate executor label %q; labels must be unique", l)}
		}
		k.execs[l] = e
		k.order = append(k.order, e)
	}
	if len(k.order) == 0 {
		return nil, &failure.ConfigError{Field: "Executors", Reason: "no executor configured"}
	}
	ck, err := newCheckpointer(cfg.Checkpoint, cfg.RunDir, k.log)
	if err != nil {
		return nil, err
	}
	k.ckpt = ck
	k.internal = threads.New(threads.Options{Label: InternalLabel, MaxThreads: cfg.InternalThreads})
	started := []executor.Executor{}
	for _, e := range append([]executor.Executor{k.internal}, k.order...) {
		env := executor.Env{RunDir: cfg.RunDir, Logger: k.log.With("executor", e.Label()), BaseContext: k.rootCtx,
			Strategy: cfg.Strategy, StrategyPeriod: cfg.StrategyPeriod, MaxIdleTime: cfg.MaxIdleTime}
		if err := e.Start(ctx, env); err != nil {
			for _, s := range started {
				_ = s.Shutdown(context.Background())
			}
			k.cancelRoot()
			return nil, fmt.Errorf("parsl: starting executor %q: %w", e.Label(), err)
		}
		started = append(started, e)
	}
	k.ckpt.start()
	return k, nil
}

// Logger returns the run's logger.
func (k *DFK) Logger() *slog.Logger { return k.log }

// RunDir returns the run directory.
func (k *DFK) RunDir() string { return k.cfg.RunDir }

// Executor returns the executor with the given label.
func (k *DFK) Executor(label string) (executor.Executor, bool) {
	e, ok := k.execs[label]
	return e, ok
}

// Submit sets up t as a task of app with the given sources and options and
// starts tracking its inputs. It never blocks: a task that cannot run is
// completed at once with the reason.
func (k *DFK) Submit(t *Task, app *registry.App, srcs []Source, opts *CallOptions) {
	k.submit(t, app, srcs, opts, false)
}

// SubmitInner is Submit for the inner tasks of a join app's body. They are
// part of a task that Close waits for, so they are accepted until Close
// gives up and cancels, not refused as soon as Close begins.
func (k *DFK) SubmitInner(t *Task, app *registry.App, srcs []Source, opts *CallOptions) {
	k.submit(t, app, srcs, opts, true)
}

func (k *DFK) submit(t *Task, app *registry.App, srcs []Source, opts *CallOptions, inner bool) {
	if opts == nil {
		opts = DefaultCallOptions
	}
	t.k, t.srcs = k, srcs
	t.x.ID = k.nextID.Add(1) - 1
	t.x.App = app
	t.x.Opts = opts
	t.x.Sink = t
	t.state.Store(int32(Pending))
	k.submitted.Add(1)
	k.live.add(t)
	if k.cfg.Observer != nil {
		var deps []int64
		for _, s := range srcs {
			if s != nil {
				if d := s.Dep(); d != nil && d.kind == kindApp {
					deps = append(deps, d.x.ID)
				}
			}
		}
		k.observe(t, Pending, "", nil, deps)
	}
	if k.closed.Load() && (!inner || k.rootCtx.Err() != nil) {
		advanceSettled(t, Failed, nil, failure.ErrDFKClosed)
		return
	}
	if err := k.check(t); err != nil {
		advanceSettled(t, Failed, nil, err)
		return
	}
	// Count every input before registering any: an input may complete
	// (and decrement) as soon as t is in its waiter list, and the count
	// must not reach zero until the last input has been looked at.
	t.nwait.Store(int32(len(srcs)) + 1)
	for _, s := range srcs {
		if d := s.Dep(); d == nil || !d.addWaiter(t) {
			t.nwait.Add(-1)
		}
	}
	if t.nwait.Add(-1) == 0 {
		advance([]*Task{t})
	}
}

func advanceSettled(t *Task, st State, res any, err error) {
	advance(t.settle(nil, st, res, err))
}

// check validates a submit before any input is waited on, so that mistakes
// show at once rather than after a long upstream computation.
func (k *DFK) check(t *Task) error {
	app := t.x.App
	for i, s := range t.srcs {
		if s == nil {
			return &failure.AppError{TaskID: t.x.ID, App: app.Name, Kind: "nil argument",
				Message: fmt.Sprintf("argument %d is a nil future or nil Arg; pass parsl.Val(x) or a future returned by Submit", i+1)}
		}
		if d := s.Dep(); d != nil && d.kind == kindApp && d.k == nil && !d.done.Load() {
			// A Future that no Submit set up would never complete.
			return &failure.AppError{TaskID: t.x.ID, App: app.Name, Kind: "unsubmitted future",
				Message: fmt.Sprintf("argument %d is a future that was never submitted (a zero parsl.Future); pass a future returned by Submit", i+1)}
		}
		if s.Dep() != nil || i >= len(app.Params) {
			continue
		}
		p := app.Params[i]
		if p.Unencodable != nil {
			return &failure.SerializationError{TaskID: t.x.ID, App: app.Name, Arg: i + 1, Err: p.Unencodable}
		}
		if p.HasInterface {
			// On every executor, so that what works on threads works on
			// htex: a Go app's interfaces hold plain data only (see
			// codec.Check). Bash and join apps' arguments stay on the
			// driver; they need only be encodable (for a memo key).
			if err := codec.Check(s.Value(), p.Type, codec.Limits{Plain: app.Kind == registry.Go}); err != nil {
				return &failure.SerializationError{TaskID: t.x.ID, App: app.Name, Arg: i + 1, Rule: codec.RuleOf(err), Err: err}
			}
		}
	}
	if app.Kind != registry.Go && k.caching(t) {
		// Go apps with such types are refused by Register; a bash or join
		// app's values stay on the driver, except in its memo key and
		// checkpoint, which would silently ignore the lost part.
		for i, p := range app.Params {
			if p.Lossy != nil {
				return &failure.SerializationError{TaskID: t.x.ID, App: app.Name, Arg: i + 1,
					Err: fmt.Errorf("the app is cached, and its memo key would ignore part of this argument: %w", p.Lossy)}
			}
		}
	}
	if app.Kind != registry.Join {
		if _, err := k.pickExecutor(t); err != nil {
			return err
		}
	}
	return nil
}

func (k *DFK) pickExecutor(t *Task) (executor.Executor, error) {
	if t.x.App.Kind == registry.Join {
		return k.internal, nil
	}
	label := t.x.Opts.Executor
	if label == "" && len(t.x.App.Executors) > 0 {
		if len(t.x.App.Executors) == 1 {
			label = t.x.App.Executors[0]
		} else {
			label = t.x.App.Executors[k.rr.Add(1)%uint64(len(t.x.App.Executors))]
		}
	}
	if label == "" {
		if len(k.order) == 1 {
			return k.order[0], nil
		}
		return k.order[k.rr.Add(1)%uint64(len(k.order))], nil
	}
	if label == InternalLabel {
		// Driver-side helper tasks (staging) run next to the kernel.
		return k.internal, nil
	}
	e, ok := k.execs[label]
	if !ok {
		labels := make([]string, 0, len(k.order))
		for _, e := range k.order {
			labels = append(labels, e.Label())
		}
		return nil, &failure.ExecutorError{TaskID: t.x.ID, App: t.x.App.Name, Executor: label,
			Err: fmt.Errorf("no executor with this label; configured: %v", labels)}
	}
	return e, nil
}

func (k *DFK) setState(t *Task, st State) { t.state.Store(int32(st)) }

type paddedInt struct {
	atomic.Int64
	_ [56]byte
}

// launch starts one try of a ready task. It returns settled=true with the
// final outcome when the task completes without an executor.
func (k *DFK) launch(t *Task) (settled bool, st State, res any, err error) {
	for {
		settled, st, res, err, retry := k.launchOnce(t)
		if !retry {
			return settled, st, res, err
		}
	}
}

func (k *DFK) launchOnce(t *Task) (settled bool, st State, res any, err error, retry bool) {
	if t.done.Load() {
		// Defence in depth: a completed task is never launched again.
		return false, 0, nil, nil, false
	}
	if failed := t.failedDeps(); len(failed) > 0 {
		return true, DepFail, nil, &failure.DependencyError{TaskID: t.x.ID, App: t.x.App.Name, Failed: failed, Causes: rootCauses(failed)}, false
	}
	if k.closed.Load() && k.rootCtx.Err() != nil {
		return true, Failed, nil, k.cancelledErr(t, nil), false
	}
	app := t.x.App
	if t.x.Args == nil && len(t.srcs) > 0 {
		vals := make([]any, len(t.srcs))
		for i, s := range t.srcs {
			vals[i] = s.Value()
		}
		t.x.Args = vals
	}
	if k.caching(t) {
		x := t.extra()
		if x.memoKey == nil {
			key, kerr := memo.Key(app.Name, app.Version, t.x.Args, k.memoExtra(t)...)
			if kerr != nil {
				var ke *memo.KeyError
				arg := 0
				if errors.As(kerr, &ke) {
					arg = ke.Arg
				}
				return k.tryFailedSync(t, &failure.SerializationError{TaskID: t.x.ID, App: app.Name, Arg: arg, Rule: codec.RuleOf(kerr), Err: kerr})
			}
			x.memoKey = &key
		}
		if v, ok := k.ckpt.lookup(*x.memoKey, app); ok {
			return true, MemoDone, v, nil, false
		}
	}
	ex, perr := k.pickExecutor(t)
	if perr != nil {
		return true, Failed, nil, perr, false
	}
	if app.Kind == registry.Bash {
		cmd, cerr := buildCommand(k.rootCtx, t)
		if cerr != nil {
			return k.tryFailedSync(t, cerr)
		}
		t.x.Command = cmd
		if k.cfg.BashAutoLog || t.x.Opts.AutoLog {
			t.x.LogBase = autoLogBase(k.cfg.RunDir, app.Name, t.x.ID, t.x.Try)
		}
	}
	k.setState(t, Launched)
	if k.cfg.Observer != nil {
		k.observe(t, Launched, ex.Label(), nil, nil)
	}
	if serr := ex.Submit(&t.x); serr != nil {
		if errors.Is(serr, failure.ErrDFKClosed) {
			return true, Failed, nil, k.cancelledErr(t, nil), false
		}
		return k.tryFailedSync(t, &failure.ExecutorError{TaskID: t.x.ID, App: app.Name, Executor: ex.Label(), Err: serr})
	}
	return false, 0, nil, nil, false
}

// tryFailedSync handles a try that failed before reaching an executor.
func (k *DFK) tryFailedSync(t *Task, err error) (bool, State, any, error, bool) {
	if k.retryable(t, err) {
		return false, 0, nil, nil, true
	}
	return true, Failed, nil, k.finalError(t, err), false
}

// buildCommand runs a bash app's body on the driver to get its command line.
func buildCommand(ctx context.Context, t *Task) (cmd string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &failure.AppError{TaskID: t.x.ID, App: t.x.App.Name, Kind: "panic", Panicked: true,
				Message: fmt.Sprint(r), Stack: string(debug.Stack())}
		}
	}()
	v, err := t.x.App.Invoke(ctx, t.x.Args)
	if err != nil {
		return "", &failure.AppError{TaskID: t.x.ID, App: t.x.App.Name, Kind: fmt.Sprintf("%T", err), Message: err.Error(), Err: err}
	}
	s, _ := v.(string)
	if s == "" {
		return "", &failure.AppError{TaskID: t.x.ID, App: t.x.App.Name, Kind: "empty command",
			Message: "bash app returned an empty command line"}
	}
	return s, nil
}

func (k *DFK) caching(t *Task) bool {
	if k.cfg.DisableCache {
		return false
	}
	if t.x.Opts.Cache != nil {
		return *t.x.Opts.Cache
	}
	return t.x.App.Cache
}

// memoExtra returns the call options that change a task's result and so
// belong in its memo key. For bash apps the command line already carries
// them; outputs name files the task creates.
func (k *DFK) memoExtra(t *Task) []any {
	if len(t.x.Opts.Outputs) == 0 {
		return nil
	}
	return []any{t.x.Opts.Outputs}
}

// tryDone handles an executor's report of one try.
func (k *DFK) tryDone(t *Task, res any, err error) {
	if err != nil && k.rootCtx.Err() != nil && !errors.Is(err, failure.ErrDFKClosed) {
		err = k.cancelledErr(t, err)
	}
	if err != nil {
		if k.retryable(t, err) {
			k.setState(t, Pending)
			if k.cfg.Observer != nil {
				k.observe(t, Pending, "", nil, nil)
			}
			advance([]*Task{t})
			return
		}
		advanceSettled(t, Failed, nil, k.finalError(t, err))
		return
	}
	if t.x.App.Kind == registry.Join {
		inner, _ := res.(*Task)
		if inner == nil {
			advanceSettled(t, Failed, nil, &failure.AppError{TaskID: t.x.ID, App: t.x.App.Name, Kind: "join",
				Message: "join app returned a nil future; it must return a future from Submit or parsl.All"})
			return
		}
		t.extra().joined = inner
		k.setState(t, Joining)
		if k.cfg.Observer != nil {
			k.observe(t, Joining, "", nil, nil)
		}
		if inner.addWaiter(joinWaiter{t}) {
			return
		}
		advance([]*Task{t})
		return
	}
	if p := &t.x.App.Result; p.HasInterface && t.x.App.Kind == registry.Go {
		// The same rule as for arguments, on every executor: a result
		// interface holds plain data only. (From a pool it is plain
		// already: the pool checked before encoding.)
		if err := codec.Check(res, p.Type, codec.Limits{Plain: true}); err != nil {
			advanceSettled(t, Failed, nil, k.finalError(t, k.noRetry(t, &failure.SerializationError{TaskID: t.x.ID, App: t.x.App.Name, Rule: codec.RuleOf(err), Err: err})))
			return
		}
	}
	if t.ext != nil && t.ext.memoKey != nil {
		k.ckpt.record(*t.ext.memoKey, t.x.App, res)
	}
	advanceSettled(t, ExecDone, res, nil)
}

// retryable records a failed try and reports whether another try is due.
func (k *DFK) retryable(t *Task, err error) bool {
	x := t.extra()
	info := TaskInfo{ID: t.x.ID, App: t.x.App.Name, Try: t.x.Try, FailCount: len(x.attempts) + 1, FailCost: x.failCost}
	x.attempts = append(x.attempts, err)
	if errors.Is(err, failure.ErrDFKClosed) || k.closed.Load() && k.rootCtx.Err() != nil {
		return false
	}
	if se := (*failure.SerializationError)(nil); errors.As(err, &se) {
		// The same value fails the same way on every try.
		return false
	}
	cost := 1.0
	if h := k.cfg.RetryHandler; h != nil {
		c, herr := callHandler(h, err, info)
		if herr != nil {
			x.attempts[len(x.attempts)-1] = herr
			x.failCost = float64(k.cfg.Retries) + 1
			return false
		}
		cost = c
	}
	x.failCost += cost
	// Written so that a NaN cost stops retries instead of allowing them
	// forever (as in Parsl: retry only while fail_cost <= retries).
	if !(x.failCost <= float64(k.cfg.Retries)) {
		return false
	}
	k.setState(t, FailRetryable)
	if k.cfg.Observer != nil {
		k.observe(t, FailRetryable, "", err, nil)
	}
	t.x.Try++
	t.x.Command = ""
	k.log.Info("task failed, retrying", "task", t.x.ID, "app", t.x.App.Name, "try", t.x.Try, "err", err)
	return true
}

// noRetry records err as a try that is not retried, and returns it.
func (k *DFK) noRetry(t *Task, err error) error {
	x := t.extra()
	x.attempts = append(x.attempts, err)
	return err
}

func callHandler(h func(error, TaskInfo) float64, err error, info TaskInfo) (cost float64, herr error) {
	defer func() {
		if r := recover(); r != nil {
			herr = &failure.AppError{TaskID: info.ID, App: info.App, Kind: "retry handler panic", Panicked: true,
				Message: fmt.Sprintf("retry handler panicked: %v", r), Stack: string(debug.Stack())}
		}
	}()
	return h(err, info), nil
}

func (k *DFK) finalError(t *Task, err error) error {
	if t.ext == nil || len(t.ext.attempts) <= 1 {
		if t.ext != nil && len(t.ext.attempts) == 1 {
			return t.ext.attempts[0]
		}
		return err
	}
	return &failure.RetryError{TaskID: t.x.ID, App: t.x.App.Name, Attempts: t.ext.attempts}
}

// settled is called once per task when it completes.
func (k *DFK) settled(t *Task, old, st State) {
	k.final[counterIndex(st)].Add(1)
	if k.cfg.Observer != nil {
		k.observe(t, st, "", t.err, nil)
	}
	k.live.remove(t)
	if st == Failed || st == DepFail {
		if errors.Is(t.err, failure.ErrDFKClosed) {
			// A cancelled run can hold millions of tasks: logSummary
			// reports them as one count.
			k.cancelled.Add(1)
		} else {
			k.log.Warn("task failed", "task", t.x.ID, "app", t.x.App.Name, "state", st.String(), "err", t.err)
		}
	}
	if k.finished.Add(1) == k.submitted.Load() {
		k.mu.Lock()
		if k.idle != nil && k.Outstanding() == 0 {
			close(k.idle)
			k.idle = nil
		}
		k.mu.Unlock()
	}
	// Release what only the running task needed.
	t.srcs = nil
	t.x.Args = nil
}

// Counts returns the number of tasks that have ended in each final state,
// and the current number in each non-final state. Non-final states are
// counted by walking the live tasks, so that the hot path keeps no per-state
// counters; call it for reports, not in a tight loop.
func (k *DFK) Counts() map[State]int64 {
	m := make(map[State]int64, len(States))
	for _, s := range States {
		if s.Final() {
			if n := k.final[counterIndex(s)].Load(); n != 0 {
				m[s] = n
			}
		}
	}
	k.live.each(func(t *Task) {
		if s := t.State(); !s.Final() {
			m[s]++
		}
	})
	return m
}

// Outstanding returns the number of tasks not yet complete.
func (k *DFK) Outstanding() int64 {
	f := k.finished.Load()
	return k.submitted.Load() - f
}

// Wait blocks until no task is outstanding, or ctx is done.
func (k *DFK) Wait(ctx context.Context) error {
	for {
		if k.Outstanding() == 0 {
			return nil
		}
		k.mu.Lock()
		if k.Outstanding() == 0 {
			k.mu.Unlock()
			return nil
		}
		if k.idle == nil {
			k.idle = make(chan struct{})
		}
		ch := k.idle
		k.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Checkpoint writes the results recorded since the last checkpoint.
func (k *DFK) Checkpoint() (int, error) { return k.ckpt.flush() }

// SetCancelCause names what will cancel the outstanding tasks if Close
// gives up on them ("SIGINT" when a signal closes the DFK); the default is
// "Close". Call it before Close.
func (k *DFK) SetCancelCause(by string) { k.cancelBy.Store(&by) }

// CancelCause returns what SetCancelCause set, or "Close".
func (k *DFK) CancelCause() string {
	if p := k.cancelBy.Load(); p != nil {
		return *p
	}
	return "Close"
}

// Cancelled returns how many tasks ended cancelled by Close.
func (k *DFK) Cancelled() int64 { return k.cancelled.Load() }

// cancelledErr is the error of a task that Close cancelled; cause is what
// the executor reported, if anything.
func (k *DFK) cancelledErr(t *Task, cause error) error {
	if errors.Is(cause, failure.ErrDFKClosed) {
		cause = nil
	}
	var app string
	if t.x.App != nil {
		app = t.x.App.Name
	}
	return &failure.CancelledError{TaskID: t.x.ID, App: app, By: k.CancelCause(), Err: cause}
}

// Closed reports whether Close has begun.
func (k *DFK) Closed() bool { return k.closed.Load() }

// Close stops new submits, waits for outstanding tasks until ctx is done,
// then cancels what is left, writes the checkpoint and shuts the executors
// down. It is safe to call more than once; later calls return the first
// call's result.
func (k *DFK) Close(ctx context.Context) error {
	k.closeOnce.Do(func() { k.closeErr = k.close(ctx) })
	return k.closeErr
}

func (k *DFK) close(ctx context.Context) error {
	k.closed.Store(true)
	waitErr := k.Wait(ctx)
	if waitErr != nil {
		// Give up on what is left: cancel running tasks, and fail every task
		// still waiting so that no future is left hanging.
		k.cancelRoot()
		k.log.Warn("close: cancelling outstanding tasks", "outstanding", k.Outstanding(), "reason", waitErr)
	}
	var errs []error
	shutCtx := ctx
	if waitErr != nil {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutCtx = c
	}
	for i := len(k.order) - 1; i >= 0; i-- {
		if err := k.order[i].Shutdown(shutCtx); err != nil {
			errs = append(errs, fmt.Errorf("shutting down executor %q: %w", k.order[i].Label(), err))
		}
	}
	if err := k.internal.Shutdown(shutCtx); err != nil {
		errs = append(errs, err)
	}
	for _, t := range k.live.drain() {
		advanceSettled(t, Failed, nil, k.cancelledErr(t, nil))
	}
	k.cancelRoot()
	if err := k.ckpt.close(); err != nil {
		errs = append(errs, err)
	}
	k.logSummary()
	return errors.Join(errs...)
}

func (k *DFK) logSummary() {
	args := []any{}
	counts := k.Counts()
	for _, s := range States {
		if n := counts[s]; n != 0 {
			args = append(args, s.String(), n)
		}
	}
	k.log.Info("summary of tasks in DFK", args...)
	if n := k.cancelled.Load(); n > 0 {
		k.log.Warn("tasks cancelled by "+k.CancelCause(), "count", n)
	}
}

func (k *DFK) observe(t *Task, st State, executor string, err error, deps []int64) {
	k.cfg.Observer.TaskEvent(Event{Time: k.clock0.Add(time.Since(k.clock0)), TaskID: t.x.ID, Try: t.x.Try, App: t.x.App.Name,
		State: st, Executor: executor, Depends: deps, Err: err})
}

// autoLogBase is the path prefix of the AutoLog files of one try:
// RUNDIR/task_logs/APP/ID_TRY, as Parsl's AUTO_LOGNAME names them under
// task_logs, with the app name made safe as a single path element.
func autoLogBase(runDir, app string, id int64, try int) string {
	safe := strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator || r == 0 {
			return '_'
		}
		return r
	}, app)
	if safe == "" || safe == "." || safe == ".." {
		safe = "_" + safe
	}
	return filepath.Join(runDir, "task_logs", safe, fmt.Sprintf("%d_%d", id, try))
}
