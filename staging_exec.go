package parsl

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"weak"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/internal/dataflow"
	"github.com/parsl-go/parsl/internal/registry"
	"github.com/parsl-go/parsl/staging"
	"github.com/parsl-go/parsl/staging/defaults"
)

// WorkingDirExecutor is an executor that gives its tasks a working
// directory, Parsl's executor.working_dir: relative File paths of tasks
// sent to it resolve there and their staged files are placed there (see
// WorkDir, which overrides it per task). Executors opt in by having the
// method; an empty result means none.
type WorkingDirExecutor interface {
	executor.Executor
	WorkingDir() string
}

// StorageAccessExecutor is an executor that limits the staging providers
// its tasks may use, Parsl's executor.storage_access: URLs of tasks sent to
// it are staged with these providers only (the first one claiming a scheme
// wins), and a URL none of them handles fails the submit, listing the
// schemes they do. A nil result means the defaults (staging/defaults).
type StorageAccessExecutor interface {
	executor.Executor
	StorageAccess() []staging.Provider
}

// execFiles are one executor's file settings.
type execFiles struct {
	workDir string
	reg     *staging.Registry // nil: the default providers
}

func (e execFiles) registry() *staging.Registry {
	if e.reg != nil {
		return e.reg
	}
	return defaultRegistry()
}

// agrees reports whether a task may run on either executor with the same
// file handling; with ownDir the task has its own working directory and
// only the storage access matters.
func (e execFiles) agrees(o execFiles, ownDir bool) bool {
	return (ownDir || e.workDir == o.workDir) && slices.Equal(e.registry().Schemes(), o.registry().Schemes())
}

// defaultRegistry is shared: providers are safe for concurrent use, and
// every path handed to them is absolute, so their WorkDir is unused.
var defaultRegistry = sync.OnceValue(func() *staging.Registry { return defaults.Registry("") })

// runFiles are the file settings of a run's executors.
type runFiles struct {
	byLabel map[string]execFiles
	labels  []string // in configuration order
}

// runs maps a kernel to its executors' file settings. The key is weak and
// the entry is dropped when the kernel is collected, so a closed and
// forgotten DFK leaves nothing here.
var runs sync.Map // weak.Pointer[dataflow.DFK] → *runFiles

func filesOf(e executor.Executor) execFiles {
	var ef execFiles
	if w, ok := e.(WorkingDirExecutor); ok && w.WorkingDir() != "" {
		ef.workDir = w.WorkingDir()
		// Abs fails only when the current directory is gone; the relative
		// path then still says what the user meant.
		if abs, err := filepath.Abs(ef.workDir); err == nil {
			ef.workDir = abs
		}
	}
	if a, ok := e.(StorageAccessExecutor); ok {
		if ps := a.StorageAccess(); ps != nil {
			ef.reg = staging.NewRegistry(ps...)
		}
	}
	return ef
}

// initFiles records the file settings of the run's executors, so that
// tasks not naming their executor find them too. Load calls it once the
// kernel is up.
func (d *DFK) initFiles(execs []executor.Executor) {
	rf := &runFiles{byLabel: make(map[string]execFiles, len(execs))}
	for _, e := range execs {
		rf.byLabel[e.Label()] = filesOf(e)
		rf.labels = append(rf.labels, e.Label())
	}
	key := weak.Make(d.k)
	runs.Store(key, rf)
	runtime.AddCleanup(d.k, func(k weak.Pointer[dataflow.DFK]) { runs.Delete(k) }, key)
}

func (d *DFK) runFiles() *runFiles {
	if v, ok := runs.Load(weak.Make(d.k)); ok {
		return v.(*runFiles)
	}
	return nil
}

// execFilesFor returns the label of the executor whose file settings
// apply to a task, and those settings. For a task that names no executor
// and could run on executors that handle files differently it returns an
// error: its paths cannot be chosen before the kernel picks one. ownDir
// says the task has its own working directory (WorkDir).
func (d *DFK) execFilesFor(app *registry.App, co *dataflow.CallOptions, ownDir bool) (string, execFiles, error) {
	label := co.Executor
	if label == "" && len(app.Executors) == 1 {
		label = app.Executors[0]
	}
	if label == dataflow.InternalLabel {
		return label, execFiles{}, nil
	}
	rf := d.runFiles()
	if label != "" {
		if rf != nil {
			return label, rf.byLabel[label], nil
		}
		// Settings were not recorded at Load: ask the kernel.
		if e, ok := d.k.Executor(label); ok {
			return label, filesOf(e), nil
		}
		return label, execFiles{}, nil
	}
	if rf == nil || len(rf.labels) == 0 {
		return "", execFiles{}, nil
	}
	cands := rf.labels
	if len(app.Executors) > 0 {
		cands = app.Executors
	}
	first := rf.byLabel[cands[0]]
	for _, l := range cands[1:] {
		if !rf.byLabel[l].agrees(first, ownDir) {
			return "", execFiles{}, fmt.Errorf("the task may run on executors %v, whose working directories or storage access differ; name one with parsl.Executor(label)", cands)
		}
	}
	return cands[0], first, nil
}

// registryFor returns the staging providers of the executor with this
// label, for staging tasks at run time.
func (d *DFK) registryFor(label string) *staging.Registry {
	if d == nil || label == "" {
		return defaultRegistry()
	}
	if rf := d.runFiles(); rf != nil {
		return rf.byLabel[label].registry()
	}
	if e, ok := d.k.Executor(label); ok {
		return filesOf(e).registry()
	}
	return defaultRegistry()
}
