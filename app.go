package parsl

import (
	"context"

	"github.com/parsl-go/parsl/internal/dataflow"
	"github.com/parsl-go/parsl/internal/registry"
)

// AppOption configures an app at registration.
type AppOption func(*registry.App)

// WithVersion sets the app's version. It is part of the memo key, so bump
// it when a change to the app's code should invalidate cached results.
func WithVersion(v string) AppOption { return func(a *registry.App) { a.Version = v } }

// WithCache turns caching (memoization) of the app's results on or off.
// Off by default, as in Parsl.
func WithCache(on bool) AppOption { return func(a *registry.App) { a.Cache = on } }

// WithExecutors restricts the app to executors with these labels.
func WithExecutors(labels ...string) AppOption {
	return func(a *registry.App) { a.Executors = append([]string(nil), labels...) }
}

func newApp(name string, kind registry.Kind, opts []AppOption, result registry.Param, params ...registry.Param) *registry.App {
	a := &registry.App{Name: name, Kind: kind, Result: result, Params: params}
	for _, o := range opts {
		if o != nil {
			o(a)
		}
	}
	return a
}

// as converts a resolved argument to its parameter type; a nil interface
// (e.g. a nil pointer result upstream) becomes the zero value.
func as[T any](v any) T {
	t, _ := v.(T)
	return t
}

func joined[R any](f *Future[R]) any {
	if f == nil {
		return nil
	}
	return &f.task
}

func dfkFrom(ctx context.Context) *DFK {
	d, _ := dataflow.OwnerFrom(ctx).(*DFK)
	if d != nil && d.joinView != nil {
		return d.joinView
	}
	return d
}
