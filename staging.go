package parsl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/parsl-go/parsl/internal/dataflow"
	"github.com/parsl-go/parsl/internal/registry"
	"github.com/parsl-go/parsl/staging"
	"github.com/parsl-go/parsl/staging/defaults"
)

// stageInApp downloads a remote input file into the run directory. It is a
// task of its own in the graph, so staging shows in monitoring and is
// retried under the same rules as any task; the app that needs the file
// depends on it.
var stageInApp = Register1("parsl.stage_in", func(ctx context.Context, f File) (File, error) {
	d := dfkFrom(ctx)
	if d == nil {
		return File{}, fmt.Errorf("stage-in of %s: no DFK in the task's context", f.URL)
	}
	u, err := staging.ParseURL(f.URL)
	if err != nil {
		return File{}, fmt.Errorf("stage-in of %s: %w", f.URL, err)
	}
	// One directory per URL, so two inputs with the same file name from
	// different places do not overwrite each other.
	sum := sha256.Sum256([]byte(f.URL))
	dir := filepath.Join(d.runDir, "staging", hex.EncodeToString(sum[:8]))
	dst := filepath.Join(dir, filepath.Base(u.Path))
	abs, err := filepath.Abs(dst)
	if err != nil {
		return File{}, err
	}
	if err := defaults.Registry(dir).StageIn(ctx, u, abs); err != nil {
		return File{}, err
	}
	return NewFile(abs), nil
}, WithVersion("1"))

// stageInputs replaces each plain File argument with a remote URL by the
// future of a stage-in task. An unknown scheme fails the submit at once,
// listing the schemes that are supported.
func (d *DFK) stageInputs(app *registry.App, srcs []dataflow.Source) ([]dataflow.Source, error) {
	if app == stageInApp.app {
		return srcs, nil
	}
	var out []dataflow.Source
	for i, s := range srcs {
		if s == nil || s.Dep() != nil {
			continue
		}
		f, ok := s.Value().(File)
		if !ok || f.Scheme() == "file" {
			continue
		}
		u, err := staging.ParseURL(f.URL)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		if _, err := defaults.Registry(d.runDir).ProviderFor(u); err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		if out == nil {
			out = append([]dataflow.Source(nil), srcs...)
		}
		out[i] = source[File](stageInApp.Submit(d, Val(f), Executor(dataflow.InternalLabel)))
	}
	if out == nil {
		return srcs, nil
	}
	return out, nil
}

// Outputs returns a future per file declared with the Outputs call option.
// Each completes with its File once the task has completed (and so created
// it), and fails if the task fails; pass them to later apps to depend on
// the files.
func (f *Future[T]) Outputs() []*Future[File] {
	opts := f.task.Options()
	if opts == nil {
		return nil
	}
	out := make([]*Future[File], len(opts.Outputs))
	for i, p := range opts.Outputs {
		file := NewFile(p)
		df := new(Future[File])
		dataflow.NewGather(&df.task, []dataflow.Source{&f.task}, func([]any) any { return file })
		out[i] = df
	}
	return out
}
