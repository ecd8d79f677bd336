package parsl

import (
	"context"
	"errors"
	"iter"

	"github.com/parsl-go/parsl/internal/dataflow"
)

// Arg is an argument of type T to an app: a plain value (Val), the future of
// another task (*Future[T]), or many of them gathered (All). Because it is
// typed, passing a Future[string] where an int is expected does not compile.
type Arg[T any] interface {
	source() dataflow.Source
	isArg(*T)
}

type val[T any] struct{ v T }

func (v *val[T]) source() dataflow.Source { return v }
func (v *val[T]) isArg(*T)                {}

// Dep and Value make *val a dataflow.Source; they are not part of the API.
func (v *val[T]) Dep() *dataflow.Task { return nil }
func (v *val[T]) Value() any          { return v.v }

// Val wraps a plain value as an app argument.
func Val[T any](v T) Arg[T] { return &val[T]{v} }

func source[T any](a Arg[T]) dataflow.Source {
	if a == nil {
		return nil
	}
	return a.source()
}

// Future is the eventual result of a task. Submit returns it at once; Get
// waits for the result. A Future is also an Arg, so passing it to another
// app makes that task depend on this one.
type Future[T any] struct {
	task dataflow.Task
}

func (f *Future[T]) source() dataflow.Source {
	if f == nil {
		return nil
	}
	return &f.task
}
func (f *Future[T]) isArg(*T) {}

// Get waits for the task and returns its result, or its error: an
// *AppError, *DependencyError, *BashExitError, *WalltimeError, *RetryError…
// (use errors.As), or ctx's error if ctx ends first.
func (f *Future[T]) Get(ctx context.Context) (T, error) {
	var zero T
	if err := f.task.Wait(ctx); err != nil {
		return zero, err
	}
	r, err := f.task.Outcome()
	if err != nil {
		if errors.Is(err, ErrDFKClosed) {
			// Cancelled by a signal that is ending the process: main must
			// not carry on (and exit 0) before the handler re-raises it.
			awaitDeath()
		}
		return zero, err
	}
	v, _ := r.(T)
	return v, nil
}

// Done returns a channel that is closed when the task completes.
func (f *Future[T]) Done() <-chan struct{} { return f.task.Done() }

// IsDone reports whether the task has completed.
func (f *Future[T]) IsDone() bool { return f.task.IsDone() }

// Err returns the task's error once it has completed, and nil before.
func (f *Future[T]) Err() error {
	if !f.task.IsDone() {
		return nil
	}
	_, err := f.task.Outcome()
	return err
}

// TaskID returns the task's ID, unique within its DFK and counting from 0;
// -1 for futures made by All or NewPromise.
func (f *Future[T]) TaskID() int64 { return f.task.ID() }

// State returns the task's current state.
func (f *Future[T]) State() State { return f.task.State() }

// All gathers many arguments into one of type []T, in order. It completes
// when all of them have; if any fails, it fails with a *DependencyError
// naming the failed tasks. Use it to fan in, or to return many inner
// futures from a join app.
func All[T any](args ...Arg[T]) *Future[[]T] {
	f := new(Future[[]T])
	srcs := make([]dataflow.Source, len(args))
	for i, a := range args {
		srcs[i] = source(a)
		if srcs[i] == nil {
			dataflow.Completed(&f.task, nil, &AppError{TaskID: -1, App: "parsl.All", Kind: "nil argument",
				Message: "argument is a nil future or nil Arg"})
			return f
		}
	}
	dataflow.NewGather(&f.task, srcs, func(vals []any) any {
		out := make([]T, len(vals))
		for i, v := range vals {
			out[i], _ = v.(T)
		}
		return out
	})
	return f
}

// Gather is All for a slice of futures of one app, which Go cannot pass to
// All directly ([]*Future[T] is not []Arg[T]).
func Gather[T any](fs ...*Future[T]) *Future[[]T] {
	args := make([]Arg[T], len(fs))
	for i, f := range fs {
		if f != nil {
			args[i] = f
		}
	}
	return All(args...)
}

// Promise is a future completed by the program rather than by a task: a way
// to make tasks wait on something outside the workflow (a message, a file
// appearing). Its future can be passed to apps like any other.
type Promise[T any] struct {
	f Future[T]
}

// NewPromise returns an unresolved promise.
func NewPromise[T any]() *Promise[T] {
	p := new(Promise[T])
	dataflow.NewPromise(&p.f.task)
	return p
}

// Future returns the promise's future.
func (p *Promise[T]) Future() *Future[T] { return &p.f }

// Resolve completes the promise with v. It returns false if the promise was
// already completed.
func (p *Promise[T]) Resolve(v T) bool { return dataflow.Resolve(&p.f.task, v, nil) }

// Fail completes the promise with err; tasks that depend on it fail with a
// *DependencyError. It returns false if the promise was already completed.
func (p *Promise[T]) Fail(err error) bool {
	if err == nil {
		err = &AppError{TaskID: -1, App: "parsl.Promise", Message: "promise failed with a nil error"}
	}
	return dataflow.Resolve(&p.f.task, nil, err)
}

// AsCompleted yields the futures in the order they complete. It stops early
// when ctx is done; check ctx.Err() after the loop to tell.
func AsCompleted[T any](ctx context.Context, fs ...*Future[T]) iter.Seq[*Future[T]] {
	return func(yield func(*Future[T]) bool) {
		ch := make(chan *Future[T], len(fs))
		for _, f := range fs {
			if f == nil {
				continue
			}
			f := f
			if !dataflow.OnDone(&f.task, func(*dataflow.Task) { ch <- f }) {
				ch <- f
			}
		}
		n := 0
		for _, f := range fs {
			if f != nil {
				n++
			}
		}
		for i := 0; i < n; i++ {
			select {
			case f := <-ch:
				if !yield(f) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}
}
