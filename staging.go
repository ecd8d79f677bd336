package parsl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/parsl-go/parsl/internal/dataflow"
	"github.com/parsl-go/parsl/internal/registry"
	"github.com/parsl-go/parsl/staging"
)

// Staging in the task graph. A submit's File arguments, Inputs and
// Outputs go through stageFiles, which
//   - resolves relative paths against the task's working directory
//     (WorkDir, else its executor's, see WorkingDirExecutor) and refuses
//     those that climb out of it;
//   - replaces each remote input by the future of a parsl.stage_in task,
//     which downloads it under <area>/staging/in, where area is the working
//     directory or, without one, the run directory;
//   - gives each output declared by URL a local path under
//     <area>/staging/out, rewrites the app's File argument naming that URL
//     to it, and, once the task is submitted, submits a parsl.stage_out
//     task that depends on it and uploads the file; Future.Outputs returns
//     that task's future.
//
// Staging tasks are tasks of their own: they have IDs, show in monitoring,
// and are retried under Config.Retries like any task. They run on the
// driver (the internal executor), so the working directory must be on a
// filesystem the driver and the workers share, as with Parsl's
// separate-task staging.
//
// DFK.submit calls stageFiles, submits the task with the sources and
// options it returns, then calls the returned function with the task; Load
// calls initFiles once the kernel exists.

// stageSpec says where a staging task moves a file.
type stageSpec struct {
	// URL is the stage-out destination.
	URL string `cbor:"u,omitempty"`
	// Dir is the directory stage-in copies go under.
	Dir string `cbor:"d,omitempty"`
	// Executor labels the executor whose storage access applies.
	Executor string `cbor:"e,omitempty"`
}

// stageInApp downloads a remote input file. It is a task of its own in the
// graph, so staging shows in monitoring and is retried under the same
// rules as any task; the app that needs the file depends on it.
var stageInApp = Register2("parsl.stage_in", func(ctx context.Context, f File, to stageSpec) (File, error) {
	u, err := staging.ParseURL(f.URL)
	if err != nil {
		return File{}, fmt.Errorf("stage-in of %s: %w", f.URL, err)
	}
	if u.Scheme == "file" {
		// A file the task reads in place (a DataFuture of a file://
		// output): nothing to copy.
		return NewFile(staging.LocalPath(u)), nil
	}
	dst, err := stagedPath(to.Dir, f.URL, u)
	if err != nil {
		return File{}, err
	}
	if err := dfkFrom(ctx).registryFor(to.Executor).StageIn(ctx, u, dst); err != nil {
		return File{}, err
	}
	return NewFile(dst), nil
}, WithVersion("2"))

// stageOutApp uploads a task's output once the task has succeeded; its
// future is the output's DataFuture.
var stageOutApp = Register2("parsl.stage_out", func(ctx context.Context, local File, to stageSpec) (File, error) {
	u, err := staging.ParseURL(to.URL)
	if err != nil {
		return File{}, fmt.Errorf("stage-out to %s: %w", to.URL, err)
	}
	if err := dfkFrom(ctx).registryFor(to.Executor).StageOut(ctx, local.Path(), u); err != nil {
		return File{}, err
	}
	return NewFile(to.URL), nil
}, WithVersion("1"))

// stagedPath is where a staged copy of rawURL goes: dir/<hash>/<name>. One
// directory per URL, so two files with the same name from different places
// do not overwrite each other. A URL whose last element is "..", or that
// has none, is refused: it would name a directory, not a file in it.
func stagedPath(dir, rawURL string, u *url.URL) (string, error) {
	p := staging.LocalPath(u)
	name := path.Base(p)
	if name == "." || name == "/" || strings.HasSuffix(p, "/") {
		return "", fmt.Errorf("staging %s: the URL names a directory, not a file; name a file", rawURL)
	}
	sum := sha256.Sum256([]byte(rawURL))
	dst, err := staging.ResolvePath(filepath.Join(dir, hex.EncodeToString(sum[:8])), name)
	if err != nil {
		return "", fmt.Errorf("staging %s: %w", rawURL, err)
	}
	return dst, nil
}

// stageFiles is the file step of a submit (see above): it builds
// the call options, resolves and stages File arguments, Inputs and
// Outputs, and returns a function that submits the stage-out tasks of
// task t once t is submitted (nil when there are none).
func (d *DFK) stageFiles(app *registry.App, srcs []dataflow.Source, opts []CallOption) ([]dataflow.Source, *dataflow.CallOptions, func(t *dataflow.Task), error) {
	co, fo := applyOptions(opts)
	if isStagingApp(app) || (fo == nil && !hasFiles(srcs)) {
		return srcs, co, nil, nil
	}
	sc, err := d.newScope(app, co, fo)
	if err != nil {
		return nil, nil, nil, err
	}
	if fo != nil && len(fo.outputs) > 0 {
		// co is this submit's own (there were options).
		if err := sc.declareOutputs(co, fo.outputs); err != nil {
			return nil, nil, nil, err
		}
	}
	if srcs, err = sc.sources(srcs); err != nil {
		return nil, nil, nil, err
	}
	return srcs, co, sc.after(co), nil
}

func isStagingApp(app *registry.App) bool {
	return app == stageInApp.app || app == stageOutApp.app
}

// hasFiles reports whether any argument may need staging or resolving. It
// looks at the sources' types, not their values, so that the common
// submit without files costs no boxing.
func hasFiles(srcs []dataflow.Source) bool {
	for _, s := range srcs {
		switch v := s.(type) {
		case *val[File], *val[[]File], *inputFiles:
			return true
		case *dataflow.Task:
			if v.AppName() == stageOutApp.app.Name {
				return true
			}
		}
	}
	return false
}

// fileScope is the file handling of one submit.
type fileScope struct {
	d *DFK
	// unknown is why the executor's settings are unknown (it is not
	// named and the candidates differ); an error only for files that
	// need them.
	unknown error
	ownDir  bool              // the task has its own WorkDir
	label   string            // executor whose storage access applies
	workDir string            // absolute; "" = none (paths as given)
	area    string            // absolute; staged copies go under area/staging
	reg     *staging.Registry // providers this task may use
	outs    map[string]string // output URL → local path
	staged  []stagedOutput
}

type stagedOutput struct {
	index      int // in CallOptions.Outputs
	local, url string
}

// newScope works out where a task's files go. co and fo are nil when the
// options are not known yet (stageInputs).
func (d *DFK) newScope(app *registry.App, co *dataflow.CallOptions, fo *fileOptions) (*fileScope, error) {
	sc := &fileScope{d: d}
	var ef execFiles
	ownDir := fo != nil && fo.hasWorkDir
	if co != nil {
		sc.label, ef, sc.unknown = d.execFilesFor(app, co, ownDir)
	}
	sc.workDir = ef.workDir
	sc.ownDir = ownDir
	if ownDir {
		if fo.workDir == "" {
			return nil, errors.New("WorkDir(\"\"): the working directory is empty; pass a directory")
		}
		abs, err := filepath.Abs(fo.workDir)
		if err != nil {
			return nil, fmt.Errorf("working directory %q: %w", fo.workDir, err)
		}
		sc.workDir = abs
	}
	sc.reg = ef.registry()
	if sc.workDir != "" {
		sc.area = sc.workDir
		if err := ensureDir(sc.workDir); err != nil {
			return nil, fmt.Errorf("working directory: %w", err)
		}
	} else {
		abs, err := filepath.Abs(d.runDir)
		if err != nil {
			return nil, fmt.Errorf("run directory %q: %w", d.runDir, err)
		}
		sc.area = abs
	}
	return sc, nil
}

// made remembers directories already created, so that a workflow of many
// tasks in one working directory does not stat it for each. It stops
// growing at maxMade entries; later directories are simply made each time.
var (
	made     sync.Map // string → struct{}
	madeSize atomic.Int64
)

const maxMade = 4096

func ensureDir(dir string) error {
	if _, ok := made.Load(dir); ok {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if madeSize.Load() < maxMade {
		if _, loaded := made.LoadOrStore(dir, struct{}{}); !loaded {
			madeSize.Add(1)
		}
	}
	return nil
}

// declareOutputs turns the declared outputs into local paths in
// co.Outputs, which executors check after the app, and records the ones
// to stage out.
func (sc *fileScope) declareOutputs(co *dataflow.CallOptions, files []File) error {
	for i, f := range files {
		if f.URL == "" {
			return fmt.Errorf("output %d is an empty File; name a path or URL", i+1)
		}
		if !isURL(f.URL) {
			p := f.URL
			if !filepath.IsAbs(p) {
				if sc.unknown != nil && !sc.ownDir {
					return fmt.Errorf("output %d (%s): %w", i+1, f.URL, sc.unknown)
				}
				if sc.workDir != "" {
					var err error
					if p, err = staging.ResolvePath(sc.workDir, f.URL); err != nil {
						return fmt.Errorf("output %d: %w", i+1, err)
					}
					// Inside the working directory, parsl makes the
					// directories; elsewhere they are the app's business.
					if err := ensureDir(filepath.Dir(p)); err != nil {
						return fmt.Errorf("output %d (%s): %w", i+1, f.URL, err)
					}
				}
			}
			co.Outputs = append(co.Outputs, p)
			continue
		}
		if sc.unknown != nil {
			return fmt.Errorf("output %d (%s): %w", i+1, f.URL, sc.unknown)
		}
		u, err := staging.ParseURL(f.URL)
		if err != nil {
			return fmt.Errorf("output %d: %w", i+1, err)
		}
		if _, err := sc.reg.ProviderForStageOut(u); err != nil {
			return fmt.Errorf("output %d: %w", i+1, err)
		}
		local, err := stagedPath(filepath.Join(sc.area, "staging", "out"), f.URL, u)
		if err != nil {
			return fmt.Errorf("output %d: %w", i+1, err)
		}
		// The app writes the file; its directory must exist. One per URL,
		// so not worth remembering.
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			return fmt.Errorf("output %d (%s): %w", i+1, f.URL, err)
		}
		if sc.outs == nil {
			sc.outs = map[string]string{}
		}
		sc.outs[f.URL] = local
		sc.staged = append(sc.staged, stagedOutput{index: len(co.Outputs), local: local, url: f.URL})
		co.Outputs = append(co.Outputs, local)
	}
	return nil
}

// sources returns srcs with File arguments resolved and staged; the slice
// is copied only if something changes.
func (sc *fileScope) sources(srcs []dataflow.Source) ([]dataflow.Source, error) {
	var out []dataflow.Source
	for i, s := range srcs {
		ns, err := sc.source(s)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		if ns == nil {
			continue
		}
		if out == nil {
			out = append([]dataflow.Source(nil), srcs...)
		}
		out[i] = ns
	}
	if out == nil {
		return srcs, nil
	}
	return out, nil
}

// source returns what replaces one argument, or nil to keep it.
func (sc *fileScope) source(s dataflow.Source) (dataflow.Source, error) {
	switch v := s.(type) {
	case *val[File]:
		return sc.file(v.v)
	case *val[[]File]:
		args := make([]Arg[File], len(v.v))
		for i, f := range v.v {
			args[i] = f
		}
		return sc.files(args, false)
	case *inputFiles:
		return sc.files(v.files, true)
	case *dataflow.Task:
		if v.AppName() == stageOutApp.app.Name {
			// A DataFuture of a staged output completes with the
			// remote URL: fetch it again for this task (a no-op for
			// file:// outputs, which are read in place).
			if sc.unknown != nil {
				return nil, fmt.Errorf("output of task %d: %w", v.ID(), sc.unknown)
			}
			return sc.stageIn(depArg[File]{v}), nil
		}
	}
	return nil, nil
}

// file returns what replaces one File value, or nil to keep it.
func (sc *fileScope) file(f File) (dataflow.Source, error) {
	if f.URL == "" {
		return nil, nil
	}
	if local, ok := sc.outs[f.URL]; ok {
		// The app writes a staged output here.
		return Val(NewFile(local)).source(), nil
	}
	if !isURL(f.URL) {
		if filepath.IsAbs(f.URL) {
			return nil, nil
		}
		if sc.unknown != nil && !sc.ownDir {
			return nil, fmt.Errorf("%s: %w", f.URL, sc.unknown)
		}
		if sc.workDir == "" {
			return nil, nil
		}
		p, err := staging.ResolvePath(sc.workDir, f.URL)
		if err != nil {
			return nil, err
		}
		return Val(NewFile(p)).source(), nil
	}
	u, err := staging.ParseURL(f.URL)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "file" {
		return nil, nil
	}
	if sc.unknown != nil {
		return nil, fmt.Errorf("%s: %w", f.URL, sc.unknown)
	}
	if _, err := sc.reg.ProviderFor(u); err != nil {
		return nil, err
	}
	// Checked now so that a bad name fails the submit, not a task later.
	if _, err := stagedPath(sc.inDir(), f.URL, u); err != nil {
		return nil, err
	}
	return sc.stageIn(f), nil
}

func (sc *fileScope) inDir() string { return filepath.Join(sc.area, "staging", "in") }

func (sc *fileScope) stageIn(f Arg[File]) dataflow.Source {
	spec := stageSpec{Dir: sc.inDir(), Executor: sc.label}
	return &stageInApp.Submit(sc.d, f, Val(spec), Executor(dataflow.InternalLabel)).task
}

// files returns a gather of the staged files, or nil when none changes
// and always is false.
func (sc *fileScope) files(args []Arg[File], always bool) (dataflow.Source, error) {
	elems := make([]dataflow.Source, len(args))
	changed := always
	for i, a := range args {
		var s dataflow.Source
		if a != nil {
			s = a.source()
		}
		if s == nil {
			return nil, fmt.Errorf("input %d is a nil future or Arg; pass a File or a future of one", i+1)
		}
		ns, err := sc.source(s)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i+1, err)
		}
		if ns != nil {
			s, changed = ns, true
		}
		elems[i] = s
	}
	if !changed {
		return nil, nil
	}
	g := new(Future[[]File])
	dataflow.NewGather(&g.task, elems, func(vals []any) any {
		out := make([]File, len(vals))
		for i, v := range vals {
			out[i], _ = v.(File)
		}
		return out
	})
	return &g.task, nil
}

// depArg makes a task an Arg of its result type.
type depArg[T any] struct{ t *dataflow.Task }

func (a depArg[T]) source() dataflow.Source { return a.t }
func (a depArg[T]) isArg(*T)                {}

// stagedOuts maps the CallOptions of a task with staged outputs to the
// futures of its stage-out tasks (nil for outputs written in place). The
// key is weak and the entry is dropped with the options, which live as
// long as the task's future.
var stagedOuts sync.Map // weak.Pointer[dataflow.CallOptions] → []*Future[File]

// after returns the function that submits the stage-out tasks of the
// task, or nil.
func (sc *fileScope) after(co *dataflow.CallOptions) func(*dataflow.Task) {
	if len(sc.staged) == 0 {
		return nil
	}
	return func(t *dataflow.Task) {
		futs := make([]*Future[File], len(co.Outputs))
		for _, so := range sc.staged {
			local := NewFile(so.local)
			// The upload waits for the task; a failed task fails it
			// with a DependencyError naming the task.
			done := new(Future[File])
			dataflow.NewGather(&done.task, []dataflow.Source{t}, func([]any) any { return local })
			futs[so.index] = stageOutApp.Submit(sc.d, done, Val(stageSpec{URL: so.url, Executor: sc.label}),
				Executor(dataflow.InternalLabel))
		}
		key := weak.Make(co)
		stagedOuts.Store(key, futs)
		runtime.AddCleanup(co, func(k weak.Pointer[dataflow.CallOptions]) { stagedOuts.Delete(k) }, key)
	}
}

// Outputs returns a future per file declared with the Outputs call option,
// in order: a DataFuture. For a file written in place it completes with
// the File (its path resolved against the working directory) when the
// task completes, and fails if the task fails. For a staged output it is
// the future of the parsl.stage_out task: it completes, with the File
// naming the URL, once the upload has. Pass them to later apps to depend
// on the files; a staged one is staged in again for them.
//
// A task refused at submit (a bad path or URL, say) has no outputs: check
// Err before indexing.
func (f *Future[T]) Outputs() []*Future[File] {
	opts := f.task.Options()
	if opts == nil || len(opts.Outputs) == 0 {
		return nil
	}
	var staged []*Future[File]
	if v, ok := stagedOuts.Load(weak.Make(opts)); ok {
		staged = v.([]*Future[File])
	}
	out := make([]*Future[File], len(opts.Outputs))
	for i, p := range opts.Outputs {
		if i < len(staged) && staged[i] != nil {
			out[i] = staged[i]
			continue
		}
		file := NewFile(p)
		df := new(Future[File])
		dataflow.NewGather(&df.task, []dataflow.Source{&f.task}, func([]any) any { return file })
		out[i] = df
	}
	return out
}
