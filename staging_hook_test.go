package parsl

import (
	"context"
	"testing"
	"time"

	"github.com/parsl-go/parsl/internal/dataflow"
	"github.com/parsl-go/parsl/internal/registry"
)

// filesDFK loads a DFK for a staging test, closed at the test's end.
func filesDFK(t *testing.T, cfg Config) (*DFK, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	if cfg.RunDir == "" {
		cfg.RunDir = t.TempDir()
	}
	cfg.NoSignalHandler = true
	d, err := Load(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := d.Close(cctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d, ctx
}

// filesSubmit submits a task of app with the given argument sources.
func filesSubmit[R any](d *DFK, app *registry.App, args []dataflow.Source, opts ...CallOption) *Future[R] {
	f := new(Future[R])
	d.submit(&f.task, app, args, opts)
	return f
}

// srcs turns typed arguments into sources.
func srcs(args ...interface{ source() dataflow.Source }) []dataflow.Source {
	out := make([]dataflow.Source, len(args))
	for i, a := range args {
		out[i] = a.source()
	}
	return out
}
