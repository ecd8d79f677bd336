package parsl

import (
	"log/slog"
	"time"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/internal/dataflow"
)

// CheckpointMode says when memoized results are written to the checkpoint
// journal (runinfo/NNN/checkpoint/tasks.ckpt).
type CheckpointMode = dataflow.CheckpointMode

// Checkpoint modes, as in Parsl.
const (
	// CheckpointNone writes nothing (the default).
	CheckpointNone = dataflow.CheckpointNone
	// CheckpointTaskExit writes each result as its task completes, before
	// its future does.
	CheckpointTaskExit = dataflow.CheckpointTaskExit
	// CheckpointPeriodic writes every CheckpointPeriod and at Close.
	CheckpointPeriodic = dataflow.CheckpointPeriodic
	// CheckpointDFKExit writes at Close.
	CheckpointDFKExit = dataflow.CheckpointDFKExit
	// CheckpointManual writes when DFK.Checkpoint is called, and at Close.
	CheckpointManual = dataflow.CheckpointManual
)

// MonitoringConfig turns monitoring on.
type MonitoringConfig struct {
	// DBPath is the database; default RunDir/monitoring.db (shared by the
	// runs under RunDir, as in Parsl). NoDatabase ("-") writes none, for
	// runs that want only the Prometheus endpoint.
	DBPath string
	// WorkflowName labels the run; default the program's name.
	WorkflowName string
	// MetricsAddr, when set, serves Prometheus metrics at
	// http://MetricsAddr/metrics while the DFK is open: task counts by
	// state, task durations by executor, failed tries, and the connected
	// pools of executors that report them (htex). "" serves nothing. Use a
	// loopback address such as "127.0.0.1:9464": the endpoint has no
	// authentication, so listening on other interfaces (":9464",
	// "0.0.0.0:9464") must be asked for explicitly and exposes the
	// metrics to the network. Port 0 picks a free port; DFK.MetricsAddr
	// tells which. A port already in use fails Load.
	MetricsAddr string
	// DashboardAddr, when set, serves the monitoring dashboard of this run
	// live at http://DashboardAddr/ while the DFK is open (DFK.DashboardURL
	// gives the run's page), with the Prometheus metrics at /metrics on the
	// same port. Pages follow the run through server-sent events. Like
	// MetricsAddr, it has no authentication: use a loopback address unless
	// the network may see it. Port 0 picks a free port. It needs the
	// database (DBPath not NoDatabase). After the run, `parsl visualize`
	// serves the same pages from the database.
	DashboardAddr string
}

// NoDatabase, as MonitoringConfig.DBPath, turns the SQLite database off
// while keeping the rest of monitoring (the metrics endpoint).
const NoDatabase = "-"

// TaskInfo describes a failed try to a RetryHandler.
type TaskInfo = dataflow.TaskInfo

// Config configures a DFK. The zero value works: one threads executor with a
// goroutine per CPU, no retries, app caching on for apps that ask for it, no
// checkpoint, run directories under ./runinfo.
type Config struct {
	// Executors run the tasks; labels must be unique. Empty means one
	// threads executor labelled "threads".
	Executors []executor.Executor

	// Retries is the retry budget: a task is tried again while the sum of
	// its failures' costs is at most Retries (cost 1 each, or what
	// RetryHandler says).
	Retries int
	// RetryHandler prices a failure. Return 0 to retry for free, a large
	// number to stop. If it panics, the task fails with that panic.
	RetryHandler func(err error, task TaskInfo) float64

	// DisableAppCache turns memoization off for every app.
	DisableAppCache bool
	// CheckpointMode, CheckpointPeriod and CheckpointFiles control the
	// checkpoint. CheckpointFiles are checkpoint directories to load (see
	// LastCheckpoint and AllCheckpoints); nil with a mode set loads every
	// checkpoint under RunDir, as Parsl does.
	CheckpointMode   CheckpointMode
	CheckpointPeriod time.Duration
	CheckpointFiles  []string

	// BashAutoLog gives every bash task the files of the AutoLog call
	// option: the standard output and error of each try in
	// RunDir/NNN/task_logs/APP/ID_TRY.stdout and .stderr, for the streams
	// the call does not send elsewhere with Stdout or Stderr.
	BashAutoLog bool

	// RunDir is the base directory for numbered run directories; default
	// "runinfo". Each Load makes RunDir/NNN with the next free number.
	RunDir string

	// Logger receives the run's log. Nil writes RunDir/NNN/parsl.log at
	// LogLevel in LogFormat ("text", the default, or "json").
	Logger    *slog.Logger
	LogLevel  slog.Level
	LogFormat string

	// InternalThreads bounds concurrently running join app bodies;
	// default 10.
	InternalThreads int

	// Strategy, StrategyPeriod and MaxIdleTime control elastic scaling of
	// executors that get nodes from a provider. Strategy is "simple"
	// (default), "htex_auto_scale" or "none".
	Strategy       string
	StrategyPeriod time.Duration
	MaxIdleTime    time.Duration

	// Monitoring, when set, records every task's states and tries in a
	// SQLite database with Python Parsl's schema.
	Monitoring *MonitoringConfig

	// Progress draws a progress bar (done, failed, running, rate, ETA) on
	// standard error when it is a terminal, and nothing otherwise.
	Progress bool

	// NoSignalHandler leaves SIGINT and SIGTERM alone. By default the first
	// such signal closes every open DFK (cancelling running tasks, writing
	// the checkpoint, stopping workers) and then ends the program as the
	// signal would have.
	NoSignalHandler bool
}
