package parsl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/executor/threads"
	"github.com/parsl-go/parsl/internal/dataflow"
	"github.com/parsl-go/parsl/internal/registry"
	"github.com/parsl-go/parsl/memo"
	"github.com/parsl-go/parsl/monitoring"
	"github.com/parsl-go/parsl/monitoring/dashboard"
	"github.com/parsl-go/parsl/monitoring/metrics"
)

// State is a task's state, with Python Parsl's names.
type State = dataflow.State

// Task states.
const (
	StatePending       = dataflow.Pending
	StateLaunched      = dataflow.Launched
	StateRunning       = dataflow.Running
	StateRunningEnded  = dataflow.RunningEnded
	StateExecDone      = dataflow.ExecDone
	StateFailed        = dataflow.Failed
	StateDepFail       = dataflow.DepFail
	StateFailRetryable = dataflow.FailRetryable
	StateMemoDone      = dataflow.MemoDone
	StateJoining       = dataflow.Joining
	StateUnsched       = dataflow.Unsched
)

// DFK is a DataFlowKernel: it owns the task graph and the executors of one
// run. Several DFKs can live in one process; they share nothing but the
// app registry.
type DFK struct {
	k       *dataflow.DFK
	hub     *monitoring.Hub
	dash    *dashboard.Server
	metrics *metrics.Server
	bar     *progressBar
	runDir  string
	logFile *os.File
	// joinView is the DFK handed to join app bodies: the same kernel, but
	// what they submit are inner tasks, which Close accepts while it waits.
	joinView *DFK
	inner    bool
}

// Load starts a DFK: it makes the run directory, opens the log, loads
// checkpoints and starts the executors. Close it when done.
//
// When cfg has no Executors and the environment variable PARSL_CONFIG
// (ConfigEnv) names a file, Load reads that file with LoadConfigFile and
// runs on its executors, so the same binary can be pointed at threads,
// worker pools or a cluster without recompiling. The rule for the other
// fields: a field set in cfg (non-zero) wins; a zero field takes the
// file's value; DisableAppCache and BashAutoLog are set if either sets them. (So LogLevel
// info, the zero level, in cfg does not override the file's level.)
// Fields the file cannot hold (Logger, RetryHandler, InternalThreads,
// NoSignalHandler) come from cfg.
//
// Load in a process started as a worker pool or interchange (PARSL_ROLE
// set) fails at once with a *MainMissingError: the program forgot to call
// parsl.Main first. A cfg with Executors ignores
// PARSL_CONFIG, and a file that cannot be loaded is an error, never a
// silent fallback to threads.
func Load(ctx context.Context, cfg Config) (*DFK, error) {
	if err := checkNotServing(); err != nil {
		// Printed too: a pool's stderr goes to the block's log, where the
		// user looks when blocks fail, and the program may not print it.
		fmt.Fprintln(os.Stderr, err)
		return nil, err
	}
	registry.Freeze()
	cfg, err := configFromEnv(cfg)
	if err != nil {
		return nil, err
	}
	base := cfg.RunDir
	if base == "" {
		base = "runinfo"
	}
	runDir, err := makeRunDir(base)
	if err != nil {
		return nil, err
	}
	d := &DFK{runDir: runDir}
	logger := cfg.Logger
	if logger == nil {
		f, err := os.OpenFile(filepath.Join(runDir, "parsl.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("parsl: cannot create the log in run directory %s: %w", runDir, err)
		}
		d.logFile = f
		logger = slog.New(newHandler(f, cfg))
	}
	logger = logger.With("run_dir", runDir)
	execs := cfg.Executors
	if len(execs) == 0 {
		execs = []executor.Executor{threads.New(threads.Options{})}
	}
	var obs observers
	// The metrics port is bound first, so that a busy port fails Load
	// before the database or any executor is started.
	var col *metrics.Collector
	if cfg.Monitoring != nil && (cfg.Monitoring.MetricsAddr != "" || cfg.Monitoring.DashboardAddr != "") {
		if cfg.Monitoring.DashboardAddr != "" && cfg.Monitoring.DBPath == NoDatabase {
			if d.logFile != nil {
				d.logFile.Close()
			}
			return nil, errors.New("parsl: Monitoring.DashboardAddr needs the monitoring database, but DBPath is NoDatabase; set DBPath or leave it empty")
		}
		pools := make([]any, len(execs))
		for i, e := range execs {
			pools[i] = e
		}
		col = metrics.New(pools...)
		obs = append(obs, col)
	}
	if cfg.Monitoring != nil && cfg.Monitoring.MetricsAddr != "" {
		srv, err := metrics.Listen(cfg.Monitoring.MetricsAddr, col)
		if err != nil {
			if d.logFile != nil {
				d.logFile.Close()
			}
			return nil, fmt.Errorf("parsl: starting the metrics endpoint (Monitoring.MetricsAddr %q): %w", cfg.Monitoring.MetricsAddr, err)
		}
		d.metrics = srv
	}
	var hub *monitoring.Hub
	if cfg.Monitoring != nil && cfg.Monitoring.DBPath != NoDatabase {
		db := cfg.Monitoring.DBPath
		if db == "" {
			db = filepath.Join(base, "monitoring.db")
		}
		hub, err = monitoring.NewHub(ctx, monitoring.Options{DBPath: db, WorkflowName: cfg.Monitoring.WorkflowName,
			RunDir: runDir, Logger: logger.With("component", "monitoring"), HeartbeatPeriod: monitoringHeartbeat})
		if err != nil {
			_ = d.closeMetrics()
			if d.logFile != nil {
				d.logFile.Close()
			}
			return nil, fmt.Errorf("parsl: starting monitoring: %w", err)
		}
		d.hub = hub
		obs = append(obs, hub)
		// Executors that report blocks, nodes and resource samples (htex)
		// record them in the same database; they must get it before Start.
		for _, e := range execs {
			if m, ok := e.(interface{ SetMonitor(htex.Monitor) }); ok {
				m.SetMonitor(hub)
			}
		}
	}
	if hub != nil && cfg.Monitoring.DashboardAddr != "" {
		if err := d.startDashboard(cfg.Monitoring.DashboardAddr, hub, col, logger); err != nil {
			_ = hub.Close(context.Background())
			_ = d.closeMetrics()
			if d.logFile != nil {
				d.logFile.Close()
			}
			return nil, err
		}
	}
	if cfg.Progress {
		if d.bar = newProgressBar(os.Stderr); d.bar != nil {
			obs = append(obs, d.bar)
		}
	}
	var observer dataflow.Observer
	switch len(obs) {
	case 0:
	case 1:
		observer = obs[0]
	default:
		observer = obs
	}
	k, err := dataflow.New(ctx, dataflow.Config{
		Observer:     observer,
		RunDir:       runDir,
		Executors:    execs,
		Retries:      cfg.Retries,
		RetryHandler: cfg.RetryHandler,
		DisableCache: cfg.DisableAppCache,
		BashAutoLog:  cfg.BashAutoLog,
		Checkpoint: dataflow.CheckpointConfig{
			Mode: cfg.CheckpointMode, Period: cfg.CheckpointPeriod,
			Files: cfg.CheckpointFiles, BaseRunDir: base,
		},
		Logger:          logger,
		Owner:           d,
		InternalThreads: cfg.InternalThreads,
		Strategy:        cfg.Strategy,
		StrategyPeriod:  cfg.StrategyPeriod,
		MaxIdleTime:     cfg.MaxIdleTime,
	})
	if err != nil {
		if hub != nil {
			_ = hub.Close(context.Background())
		}
		_ = d.closeMetrics()
		d.closeDashboard()
		if d.logFile != nil {
			d.logFile.Close()
		}
		return nil, err
	}
	d.k = k
	if d.metrics != nil {
		// Served only now: scrapes read the executors, which are started.
		d.metrics.Serve()
		logger.Info("metrics endpoint up", "url", "http://"+d.metrics.Addr().String()+"/metrics")
	}
	d.joinView = &DFK{k: k, runDir: runDir, inner: true}
	d.initFiles(execs)
	logger.Info("DFK loaded", "executors", len(execs), "apps", len(registry.Names()), "registry_digest", registry.Digest())
	if !cfg.NoSignalHandler {
		watchSignals(d)
	}
	return d, nil
}

func newHandler(w io.Writer, cfg Config) slog.Handler {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// makeRunDir creates base/NNN with the next free number. Mkdir fails on an
// existing directory, so two processes starting at once get different ones.
func makeRunDir(base string) (string, error) {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("parsl: cannot create run directory %s: %w (set Config.RunDir to a writable place)", base, err)
	}
	next := 0
	entries, err := os.ReadDir(base)
	if err != nil {
		return "", fmt.Errorf("parsl: cannot read run directory %s: %w", base, err)
	}
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && n >= next {
			next = n + 1
		}
	}
	for i := 0; i < 1000; i++ {
		dir := filepath.Join(base, fmt.Sprintf("%03d", next+i))
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("parsl: cannot create run directory %s: %w (set Config.RunDir to a writable place)", dir, err)
		}
	}
	return "", fmt.Errorf("parsl: cannot find a free run directory under %s", base)
}

// monitoringHeartbeat is the monitoring hub's heartbeat period; 0 is its
// default. Tests shorten it.
var monitoringHeartbeat time.Duration

// Close stops new submits, waits for the outstanding tasks until ctx ends,
// then cancels what is left (those futures fail with ErrDFKClosed), writes
// the checkpoint and shuts the executors down. Futures completed before
// Close keep their results. Calling Close again returns the first result.
// Results that never reached the checkpoint journal (a full disk) make the
// error a *JournalError with their count; a resumed run runs those tasks
// again.
func (d *DFK) Close(ctx context.Context) error {
	if d == nil || d.k == nil {
		return nil
	}
	// A signal is ending the process: returning would let main return and
	// the program exit 0 before the handler re-raises the signal.
	awaitDeath()
	return d.closeWith(ctx, ctx)
}

// closeWith closes the DFK: taskCtx bounds the wait for outstanding tasks,
// flushCtx the writing of the monitoring database afterwards. A flushCtx
// that has already ended still gets closeGrace, so that a Close whose
// context ran out while tasks finished still writes their final states.
func (d *DFK) closeWith(taskCtx, flushCtx context.Context) error {
	err := d.k.Close(taskCtx)
	// Before the hub, which closes the database the pages read.
	d.closeDashboard()
	if d.hub != nil {
		// After the kernel: its last events are the final states.
		// Writing a backlog takes ~15 s per million tasks here; five
		// minutes covers tens of millions, and a slower disk. The
		// caller's context bounds it too: on a full or locked database
		// the hub gives up when it ends and its error counts the loss.
		limit := 5 * time.Minute
		if flushCtx.Err() != nil {
			flushCtx, limit = context.Background(), closeGrace
		}
		hctx, cancel := context.WithTimeout(flushCtx, limit)
		if herr := d.hub.Close(hctx); herr != nil {
			d.k.Logger().Error("monitoring: not every row was written", "err", herr)
			err = errors.Join(err, herr)
		}
		cancel()
	}
	if d.metrics != nil {
		// After the kernel, so that a last scrape can see the final counts.
		if merr := d.closeMetrics(); merr != nil {
			d.k.Logger().Error("metrics endpoint did not stop cleanly", "err", merr)
			err = errors.Join(err, merr)
		}
	}
	if d.bar != nil {
		d.bar.close()
		d.bar = nil
	}
	unwatchSignals(d)
	if d.logFile != nil {
		d.logFile.Sync()
		// The file stays open: late log lines from abandoned tasks must not
		// hit a closed file. It is closed when the DFK is collected.
	}
	return err
}

// closeGrace is what Close gives the monitoring database when its context
// has already ended by the time the tasks are done.
const closeGrace = 2 * time.Second

// closeMetrics stops the metrics endpoint, if any, giving scrapes in
// progress a few seconds. Later calls return the first one's result.
func (d *DFK) closeMetrics() error {
	if d.metrics == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.metrics.Close(ctx)
}

// MetricsAddr returns the address the Prometheus endpoint listens on (with
// the real port when Monitoring.MetricsAddr asked for port 0), or nil when
// there is none. After Close the address is still returned, but nothing
// listens there any more.
func (d *DFK) MetricsAddr() net.Addr {
	if d == nil || d.metrics == nil {
		return nil
	}
	return d.metrics.Addr()
}

// Wait blocks until no task is outstanding, or ctx ends.
func (d *DFK) Wait(ctx context.Context) error {
	err := d.k.Wait(ctx)
	awaitDeath()
	return err
}

// Checkpoint writes the results memoized since the last checkpoint and
// returns how many it wrote. It is how CheckpointManual checkpoints.
func (d *DFK) Checkpoint() (int, error) { return d.k.Checkpoint() }

// RunDir returns this run's directory (runinfo/NNN).
func (d *DFK) RunDir() string { return d.runDir }

// Logger returns the run's logger.
func (d *DFK) Logger() *slog.Logger { return d.k.Logger() }

// Outstanding returns the number of tasks not yet complete.
func (d *DFK) Outstanding() int64 { return d.k.Outstanding() }

// Counts returns how many tasks are in each non-final state now, and how
// many have ended in each final state.
func (d *DFK) Counts() map[State]int64 { return d.k.Counts() }

func (d *DFK) submit(t *dataflow.Task, app *registry.App, srcs []dataflow.Source, opts []CallOption) {
	if d == nil || d.k == nil {
		dataflow.Completed(t, nil, &AppError{TaskID: -1, App: app.Name, Kind: "nil DFK",
			Message: "Submit called with a nil *DFK; pass the DFK returned by parsl.Load"})
		return
	}
	srcs, co, after, err := d.stageFiles(app, srcs, opts)
	if err != nil {
		d.k.Fail(t, app, &AppError{TaskID: -1, App: app.Name, Kind: "staging", Message: err.Error(), Err: err})
		return
	}
	if d.inner {
		d.k.SubmitInner(t, app, srcs, co)
	} else {
		d.k.Submit(t, app, srcs, co)
	}
	if after != nil {
		after(t)
	}
}

// AllCheckpoints returns every checkpoint directory under runDir, oldest
// first, for Config.CheckpointFiles.
func AllCheckpoints(runDir string) ([]string, error) { return memo.AllCheckpoints(runDir) }

// LastCheckpoint returns the newest checkpoint directory under runDir (a
// list of at most one), for Config.CheckpointFiles. A run's checkpoint
// references the checkpoints that run loaded rather than copying the
// results it reused, and loading it loads them too: keep the earlier run
// directories of a chain for as long as its last checkpoint is used.
func LastCheckpoint(runDir string) ([]string, error) { return memo.LastCheckpoint(runDir) }
