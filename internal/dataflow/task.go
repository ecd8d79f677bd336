package dataflow

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/internal/failure"
	"github.com/parsl-go/parsl/internal/registry"
)

// Source is one argument of a task: a plain value, or the result of another
// task (then Dep is that task and Value is read once it is done).
type Source interface {
	Dep() *Task
	Value() any
}

// Waiter is told when a task it waits on completes. It returns a task that
// became ready to advance, or nil; the caller advances it without recursion.
type Waiter interface {
	depDone(dep *Task) *Task
}

// Task is the kernel's record of one task, and also the node behind every
// future: app tasks, gather nodes (All) and promises are all Tasks.
//
// The zero Task is ready to be set up by DFK.Submit, NewGather or
// NewPromise. It is embedded by value in parsl.Future so that a submit costs
// one allocation for both.
type Task struct {
	x     executor.Task // the try handed to executors; x.Sink == this task
	k     *DFK          // nil for gathers and promises
	srcs  []Source
	state atomic.Int32
	nwait atomic.Int32
	done  atomic.Bool
	kind  nodeKind

	mu      sync.Mutex
	waiters []Waiter
	doneCh  chan struct{}
	result  any
	err     error

	// ext holds what few tasks need (retries, memo, joins, gathers), so that
	// the common task stays in a small size class.
	ext *taskExt

	// live list (see live.go)
	prev, next *Task
}

type taskExt struct {
	failCost float64
	attempts []error
	memoKey  *[32]byte
	combine  func(vals []any) any
	joined   *Task // inner task of a joining join app
}

func (t *Task) extra() *taskExt {
	if t.ext == nil {
		t.ext = &taskExt{}
	}
	return t.ext
}

type nodeKind uint8

const (
	kindApp nodeKind = iota
	kindGather
	kindPromise
)

// ID returns the task's ID, unique within its DFK; -1 for gathers and promises.
func (t *Task) ID() int64 {
	if t.kind != kindApp {
		return -1
	}
	return t.x.ID
}

// AppName returns the app's name, or "" for gathers and promises.
func (t *Task) AppName() string {
	if t.x.App == nil {
		return ""
	}
	return t.x.App.Name
}

// State returns the current state.
func (t *Task) State() State { return State(t.state.Load()) }

// IsDone reports whether the task has its final outcome.
func (t *Task) IsDone() bool { return t.done.Load() }

// Outcome returns the result and error; only meaningful once IsDone.
func (t *Task) Outcome() (any, error) {
	if t.done.Load() {
		return t.result, t.err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.result, t.err
}

// Done returns a channel closed when the task completes. The channel is made
// on first request, so tasks nobody waits on this way cost no channel.
func (t *Task) Done() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.doneCh == nil {
		t.doneCh = make(chan struct{})
		if t.done.Load() {
			close(t.doneCh)
		}
	}
	return t.doneCh
}

// Wait blocks until the task completes or ctx is done.
func (t *Task) Wait(ctx context.Context) error {
	if t.done.Load() {
		return nil
	}
	select {
	case <-t.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addWaiter registers w to be told when t completes. It returns false if t is
// already complete, in which case w is not registered.
func (t *Task) addWaiter(w Waiter) bool {
	if t.done.Load() {
		return false
	}
	t.mu.Lock()
	if t.done.Load() {
		t.mu.Unlock()
		return false
	}
	t.waiters = append(t.waiters, w)
	t.mu.Unlock()
	return true
}

// complete records the outcome and returns the waiters to notify. It returns
// ok=false if the task was already complete (a late or duplicate report).
func (t *Task) complete(st State, res any, err error) (ws []Waiter, old State, ok bool) {
	t.mu.Lock()
	if t.done.Load() {
		t.mu.Unlock()
		return nil, 0, false
	}
	t.result, t.err = res, err
	old = State(t.state.Swap(int32(st)))
	t.done.Store(true)
	ws = t.waiters
	t.waiters = nil
	if t.k != nil {
		// Book-keeping before the future is seen as done, so that a Get
		// that returns is followed by Counts and Wait that agree.
		t.k.settled(t, old, st)
	}
	if t.doneCh != nil {
		close(t.doneCh)
	}
	t.mu.Unlock()
	return ws, old, true
}

// depDone makes Task a Waiter: one fewer input to wait for, or, for a joining
// join app, its inner task is done.
func (t *Task) depDone(dep *Task) *Task {
	if t.nwait.Add(-1) == 0 {
		return t
	}
	return nil
}

// TaskDone implements executor.Sink.
func (t *Task) TaskDone(x *executor.Task, res any, err error) {
	if x != &t.x {
		return
	}
	t.k.tryDone(t, res, err)
}

// failedDeps collects the failures among t's inputs, flattening gather nodes
// so that errors name real tasks.
func (t *Task) failedDeps() []failure.FailedDep {
	var failed []failure.FailedDep
	seen := map[*Task]bool{}
	var visit func(d *Task)
	visit = func(d *Task) {
		if d == nil || seen[d] || d.err == nil {
			return
		}
		seen[d] = true
		if d.kind == kindGather {
			for _, s := range d.srcs {
				visit(s.Dep())
			}
			return
		}
		failed = append(failed, failure.FailedDep{TaskID: d.ID(), App: d.AppName(), Err: d.err})
	}
	for _, s := range t.srcs {
		if d := s.Dep(); d != nil && d.err != nil {
			visit(d)
		}
	}
	return failed
}

// rootCauses returns the non-dependency errors behind failed inputs.
func rootCauses(failed []failure.FailedDep) []error {
	var causes []error
	for _, f := range failed {
		var de *failure.DependencyError
		if asDep(f.Err, &de) {
			causes = append(causes, de.Causes...)
			continue
		}
		causes = append(causes, f.Err)
	}
	if len(causes) > 8 {
		causes = causes[:8]
	}
	return causes
}

func asDep(err error, de **failure.DependencyError) bool {
	d, ok := err.(*failure.DependencyError)
	if ok {
		*de = d
	}
	return ok
}

// advance moves tasks forward without recursion: completing one task can make
// many others ready, which may complete at once (dependency failure, memo
// hit, gather), and so on down a chain of any length.
func advance(stack []*Task) {
	for len(stack) > 0 {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		var (
			st  State
			res any
			err error
		)
		switch {
		case t.kind == kindGather:
			st, res, err = t.gather()
		case t.State() == Joining:
			st, res, err = t.joinOutcome()
			if err == nil && t.ext.memoKey != nil {
				t.k.ckpt.record(*t.ext.memoKey, t.x.App, res)
			}
		default:
			var settled bool
			settled, st, res, err = t.k.launch(t)
			if !settled {
				continue
			}
		}
		stack = t.settle(stack, st, res, err)
	}
}

// settle completes t and pushes the waiters that became ready onto stack.
func (t *Task) settle(stack []*Task, st State, res any, err error) []*Task {
	ws, _, ok := t.complete(st, res, err)
	if !ok {
		return stack
	}
	for _, w := range ws {
		if r := w.depDone(t); r != nil {
			stack = append(stack, r)
		}
	}
	return stack
}

// NewGather returns a node that completes when every source is done, with
// combine applied to their values, or fails if any of them failed.
func NewGather(t *Task, srcs []Source, combine func([]any) any) {
	t.kind = kindGather
	t.srcs = srcs
	t.extra().combine = combine
	t.x.ID = -1
	t.state.Store(int32(Pending))
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

func (t *Task) gather() (State, any, error) {
	if failed := t.failedDeps(); len(failed) > 0 {
		return DepFail, nil, &failure.DependencyError{TaskID: -1, App: "parsl.All", Failed: failed, Causes: rootCauses(failed)}
	}
	vals := make([]any, len(t.srcs))
	for i, s := range t.srcs {
		vals[i] = s.Value()
	}
	return ExecDone, t.ext.combine(vals), nil
}

// NewPromise sets t up as a future completed by Resolve.
func NewPromise(t *Task) {
	t.kind = kindPromise
	t.x.ID = -1
	t.state.Store(int32(Pending))
}

// Resolve completes a promise. It returns false if it was already complete.
func Resolve(t *Task, res any, err error) bool {
	st := ExecDone
	if err != nil {
		st = Failed
	}
	ws, _, ok := t.complete(st, res, err)
	if !ok {
		return false
	}
	var stack []*Task
	for _, w := range ws {
		if r := w.depDone(t); r != nil {
			stack = append(stack, r)
		}
	}
	advance(stack)
	return true
}

// Completed sets t up as an already finished node (e.g. a submit that failed
// before it became a task).
func Completed(t *Task, res any, err error) {
	t.kind = kindPromise
	t.x.ID = -1
	st := ExecDone
	if err != nil {
		st = Failed
	}
	t.complete(st, res, err)
}

// joinWaiter wakes a joining task when its inner task completes.
type joinWaiter struct{ t *Task }

func (j joinWaiter) depDone(*Task) *Task { return j.t }

func (t *Task) joinOutcome() (State, any, error) {
	inner := t.ext.joined
	if inner.err == nil {
		return ExecDone, inner.result, nil
	}
	var failed []failure.FailedDep
	if inner.kind == kindGather {
		failed = inner.failedDeps()
	}
	if len(failed) == 0 {
		failed = []failure.FailedDep{{TaskID: inner.ID(), App: inner.AppName(), Err: inner.err}}
	}
	return Failed, nil, &failure.JoinError{TaskID: t.x.ID, App: t.x.App.Name, Failed: failed}
}

// Dep makes *Task a Source: an argument that is another task's result.
func (t *Task) Dep() *Task { return t }

// Value returns the result; only meaningful once IsDone.
func (t *Task) Value() any { return t.result }

type funcWaiter func(*Task)

func (f funcWaiter) depDone(dep *Task) *Task { f(dep); return nil }

// OnDone calls fn when t completes, on the completing goroutine, so fn must
// be quick and must not block. It returns false, without calling fn, if t is
// already complete.
func OnDone(t *Task, fn func(*Task)) bool { return t.addWaiter(funcWaiter(fn)) }

// Fail completes a task that never got going (a bad submit) with err.
func (k *DFK) Fail(t *Task, app *registry.App, err error) {
	t.k = k
	t.x.Opts = DefaultCallOptions
	t.x.ID = k.nextID.Add(1) - 1
	t.x.App = app
	t.x.Sink = t
	t.state.Store(int32(Pending))
	k.submitted.Add(1)
	k.live.add(t)
	advanceSettled(t, Failed, nil, err)
}

// Options returns the task's call options (never nil once submitted).
func (t *Task) Options() *CallOptions { return t.x.Opts }
