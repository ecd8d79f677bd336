package parsl

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/executor/threads"
	"github.com/parsl-go/parsl/launcher"
	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/local"
	"github.com/parsl-go/parsl/provider/slurm"
	"github.com/parsl-go/parsl/staging"
	"github.com/parsl-go/parsl/staging/ftpstage"
	"github.com/parsl-go/parsl/staging/httpstage"
	"github.com/parsl-go/parsl/staging/rsync"
)

// ConfigEnv is the environment variable naming a YAML configuration file
// that Load uses when the program's Config has no executors, so that one
// binary runs on threads, worker pools or a cluster without recompiling.
const ConfigEnv = "PARSL_CONFIG"

// ConfigFileError is a problem with a YAML configuration file. Its message
// reads "file:line: key: what is wrong; what is accepted", for example
//
//	config.yaml:7: executors[0].provider.kind: unknown kind "slrum"; known: condor, gridengine, local, lsf, pbs, slurm
type ConfigFileError struct {
	// File is the path as given to LoadConfigFile.
	File string
	// Line is the 1-based line of the problem; 0 when it has no one place
	// (the file cannot be read).
	Line int
	// Key is the dotted path of the key, with list indices:
	// "executors[0].max_workers_per_node"; "" for syntax errors.
	Key string
	// Msg says what is wrong and what is accepted.
	Msg string
	// Err is the underlying error (from the file system or the YAML
	// decoder), if any.
	Err error
}

// Error implements error.
func (e *ConfigFileError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Key != "" {
		s += ": " + e.Key
	}
	return s + ": " + e.Msg
}

// Unwrap returns the underlying error.
func (e *ConfigFileError) Unwrap() error { return e.Err }

// LoadConfigFile reads a Config from a YAML file. The keys mirror Config's
// fields in snake_case:
//
//	retries: 2
//	run_dir: runinfo
//	app_cache: true              # false sets DisableAppCache
//	checkpoint_mode: task_exit   # none, task_exit, periodic, dfk_exit, manual
//	checkpoint_period: 30m       # Go durations: "30s", "5m", "1h30m"
//	checkpoint_files: [runinfo/003/checkpoint]
//	log_level: info              # debug, info, warn, error
//	log_format: text             # text, json
//	strategy: simple             # simple, htex_auto_scale, none
//	strategy_period: 5s
//	max_idle_time: 2m
//	executors:
//	  - kind: threads
//	    label: local
//	    max_threads: 8
//	  - kind: htex
//	    label: htex
//	    max_workers_per_node: 2
//	    provider:
//	      kind: slurm
//	      partition: debug
//	      walltime: 1h
//	      launcher: srun         # see the launchers below
//
// A provider's launcher: key names one of single_node, simple, srun,
// srun_mpi, mpiexec, mpirun, aprun, jsrun, gnu_parallel (launcher.SingleNode,
// launcher.Simple, launcher.Srun, and the others with their zero Options);
// launcher.Wrapped and launchers with options are set in Go, in the
// provider's Options.Launcher.
//
// Each executor and provider is chosen by its kind: (executors: threads,
// htex; providers: local, slurm, pbs, lsf, condor, gridengine, and
// kubernetes in builds with -tags parsl_kubernetes) and takes that kind's options, named as
// the fields of its Options struct in snake_case. Omitted keys take the
// same defaults as zero fields in Go. An htex executor without walltime
// takes its provider's walltime when the file gives one, so that pools
// drain before their block ends. Relative paths are relative to the
// working directory, as in Go.
//
// Any error is a *ConfigFileError naming the file, line and key: unknown
// keys, values of the wrong type, bad durations, negative counts, unknown
// kinds and launchers are all rejected rather than ignored.
func LoadConfigFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, &ConfigFileError{File: path, Msg: "cannot read the configuration file: " + err.Error(), Err: err}
	}
	d := &decoder{file: path}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) {
			return Config{}, d.errorf(ye.GetToken(), "", err, "not valid YAML: %s", ye.GetMessage())
		}
		return Config{}, &ConfigFileError{File: path, Msg: "not valid YAML: " + err.Error(), Err: err}
	}
	if len(f.Docs) > 1 {
		tok := f.Docs[1].Start // the "---" that starts the second document
		if tok == nil {
			tok = f.Docs[1].GetToken()
		}
		return Config{}, d.errorf(tok, "", nil, "more than one YAML document; put the whole configuration in one")
	}
	var body ast.Node
	if len(f.Docs) == 1 {
		body = f.Docs[0].Body
	}
	return d.config(body)
}

// fileConfig is the top level of a configuration file.
type fileConfig struct {
	Retries          count      `yaml:"retries"`
	RunDir           string     `yaml:"run_dir"`
	AppCache         *bool      `yaml:"app_cache"`
	CheckpointMode   string     `yaml:"checkpoint_mode"`
	CheckpointPeriod duration   `yaml:"checkpoint_period"`
	CheckpointFiles  []string   `yaml:"checkpoint_files"`
	LogLevel         string     `yaml:"log_level"`
	LogFormat        string     `yaml:"log_format"`
	Strategy         string     `yaml:"strategy"`
	StrategyPeriod   duration   `yaml:"strategy_period"`
	MaxIdleTime      duration   `yaml:"max_idle_time"`
	Executors        []ast.Node `yaml:"executors"`
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
}

func (d *decoder) config(body ast.Node) (Config, error) {
	var fc fileConfig
	if err := d.decode(body, "", &fc); err != nil {
		return Config{}, err
	}
	m, _ := body.(*ast.MappingNode)
	checks := []error{
		d.oneOf(m, "", "checkpoint_mode", fc.CheckpointMode, "none", "task_exit", "periodic", "dfk_exit", "manual"),
		d.oneOf(m, "", "log_level", fc.LogLevel, "debug", "info", "warn", "error"),
		d.oneOf(m, "", "log_format", fc.LogFormat, "text", "json"),
		d.oneOf(m, "", "strategy", fc.Strategy, "simple", "htex_auto_scale", "none"),
	}
	for _, err := range checks {
		if err != nil {
			return Config{}, err
		}
	}
	if fc.CheckpointMode == "periodic" && fc.CheckpointPeriod <= 0 {
		return Config{}, d.keyError(m, "", "checkpoint_mode", "periodic needs checkpoint_period (a duration such as \"30m\")")
	}
	cfg := Config{
		Retries:          int(fc.Retries),
		RunDir:           fc.RunDir,
		DisableAppCache:  fc.AppCache != nil && !*fc.AppCache,
		CheckpointMode:   CheckpointMode(fc.CheckpointMode),
		CheckpointPeriod: time.Duration(fc.CheckpointPeriod),
		CheckpointFiles:  fc.CheckpointFiles,
		LogLevel:         logLevels[fc.LogLevel],
		LogFormat:        fc.LogFormat,
		Strategy:         fc.Strategy,
		StrategyPeriod:   time.Duration(fc.StrategyPeriod),
		MaxIdleTime:      time.Duration(fc.MaxIdleTime),
	}
	if cfg.CheckpointMode == "none" {
		cfg.CheckpointMode = CheckpointNone
	}
	labels := map[string]int{}
	for i, node := range fc.Executors {
		path := fmt.Sprintf("executors[%d]", i)
		im, kind, err := d.kind(node, path, slices.Sorted(maps.Keys(executorKinds)))
		if err != nil {
			return Config{}, err
		}
		ex, err := executorKinds[kind](d, im, path)
		if err != nil {
			return Config{}, err
		}
		if j, dup := labels[ex.Label()]; dup {
			return Config{}, d.keyError(im, path, "label", "label %q is already used by executors[%d]; give each executor its own label", ex.Label(), j)
		}
		labels[ex.Label()] = i
		cfg.Executors = append(cfg.Executors, ex)
	}
	return cfg, nil
}

// An executorBuilder decodes the options of one executor kind from its
// mapping (which includes the kind: key) and returns the executor.
type executorBuilder func(d *decoder, m *ast.MappingNode, path string) (executor.Executor, error)

// executorKinds are the executors a file can name; a new kind adds an
// entry here.
var executorKinds = map[string]executorBuilder{
	"threads": buildThreads,
	"htex":    buildHtex,
}

// builtProvider is a provider and what its executor should know of it.
type builtProvider struct {
	p provider.Provider
	// walltime is the block walltime the file gave (0 = not given).
	walltime time.Duration
}

// A providerBuilder decodes the options of one provider kind.
type providerBuilder func(d *decoder, m *ast.MappingNode, path string) (builtProvider, error)

// providerKinds are the providers a file can name; pbs, lsf, condor,
// gridengine and kubernetes register in files of their own.
var providerKinds = map[string]providerBuilder{
	"local": buildLocal,
	"slurm": buildSlurm,
}

// launcherKinds are the launchers a provider's launcher: key can name.
var launcherKinds = map[string]launcher.Launcher{
	"single_node":  launcher.SingleNode,
	"simple":       launcher.Simple,
	"srun":         launcher.Srun,
	"srun_mpi":     launcher.SrunMPI(launcher.SrunMPIOptions{}),
	"mpiexec":      launcher.Mpiexec(launcher.MpiexecOptions{}),
	"mpirun":       launcher.Mpirun(launcher.MpirunOptions{}),
	"aprun":        launcher.Aprun(launcher.AprunOptions{}),
	"jsrun":        launcher.Jsrun(launcher.JsrunOptions{}),
	"gnu_parallel": launcher.GnuParallel(launcher.GnuParallelOptions{}),
}

func buildThreads(d *decoder, m *ast.MappingNode, path string) (executor.Executor, error) {
	var o struct {
		Kind          string   `yaml:"kind"`
		Label         string   `yaml:"label"`
		MaxThreads    count    `yaml:"max_threads"`
		ShutdownGrace duration `yaml:"shutdown_grace"`
		WorkingDir    string   `yaml:"working_dir"`
		StorageAccess []string `yaml:"storage_access"`
	}
	if err := d.decode(m, path, &o); err != nil {
		return nil, err
	}
	sa, err := storageAccess(d, m, path, o.StorageAccess, o.WorkingDir)
	if err != nil {
		return nil, err
	}
	return threads.New(threads.Options{Label: o.Label, MaxThreads: int(o.MaxThreads), ShutdownGrace: time.Duration(o.ShutdownGrace),
		WorkingDir: o.WorkingDir, StorageAccess: sa}), nil
}

// storageProviders are the staging providers a file's storage_access
// list can name, built for the executor's working directory.
var storageProviders = map[string]func(workDir string) staging.Provider{
	"file":  func(wd string) staging.Provider { return staging.SharedFS{WorkDir: wd} },
	"http":  func(wd string) staging.Provider { return &httpstage.Provider{WorkDir: wd} },
	"ftp":   func(wd string) staging.Provider { return &ftpstage.Provider{WorkDir: wd} },
	"rsync": func(wd string) staging.Provider { return &rsync.Provider{WorkDir: wd} },
}

// storageAccess builds an executor's storage_access list (nil when the
// file gives none: the defaults).
func storageAccess(d *decoder, m *ast.MappingNode, path string, names []string, workDir string) ([]staging.Provider, error) {
	if names == nil {
		return nil, nil
	}
	out := make([]staging.Provider, 0, len(names))
	for _, n := range names {
		mk, ok := storageProviders[n]
		if !ok {
			return nil, d.keyError(m, path, "storage_access", "unknown staging provider %q; known: %s", n, joinSorted(storageProviders))
		}
		out = append(out, mk(workDir))
	}
	return out, nil
}

func buildHtex(d *decoder, m *ast.MappingNode, path string) (executor.Executor, error) {
	var o struct {
		Kind               string   `yaml:"kind"`
		Label              string   `yaml:"label"`
		MaxWorkersPerNode  count    `yaml:"max_workers_per_node"`
		Prefetch           count    `yaml:"prefetch"`
		CoresPerWorker     number   `yaml:"cores_per_worker"`
		MemPerWorkerMB     count    `yaml:"mem_per_worker_mb"`
		Accelerators       []string `yaml:"accelerators"`
		HeartbeatPeriod    duration `yaml:"heartbeat_period"`
		HeartbeatThreshold duration `yaml:"heartbeat_threshold"`
		DrainPeriod        duration `yaml:"drain_period"`
		Encrypted          *bool    `yaml:"encrypted"`
		Address            string   `yaml:"address"`
		Blocks             count    `yaml:"blocks"`
		InitBlocks         count    `yaml:"init_blocks"`
		MinBlocks          count    `yaml:"min_blocks"`
		MaxBlocks          count    `yaml:"max_blocks"`
		Parallelism        number   `yaml:"parallelism"`
		Walltime           duration `yaml:"walltime"`
		WorkingDir         string   `yaml:"working_dir"`
		StorageAccess      []string `yaml:"storage_access"`
		ResourceInterval   string   `yaml:"resource_interval"`
		Provider           ast.Node `yaml:"provider"`
	}
	if err := d.decode(m, path, &o); err != nil {
		return nil, err
	}
	sa, err := storageAccess(d, m, path, o.StorageAccess, o.WorkingDir)
	if err != nil {
		return nil, err
	}
	var interval time.Duration
	switch o.ResourceInterval {
	case "":
	case "off":
		// Parsl's resource_monitoring_enabled: False.
	case "start_end":
		interval = htex.ResourceStartEnd
	default:
		v, err := time.ParseDuration(o.ResourceInterval)
		if err != nil || v <= 0 {
			return nil, d.keyError(m, path, "resource_interval", "want a duration such as 5s, or start_end, or off; got %q", o.ResourceInterval)
		}
		interval = v
	}
	opts := htex.Options{
		ResourceInterval:     interval,
		NoResourceMonitoring: o.ResourceInterval == "off",
		WorkingDir:           o.WorkingDir,
		StorageAccess:        sa,
		Label:                o.Label,
		MaxWorkersPerNode:    int(o.MaxWorkersPerNode),
		Prefetch:             int(o.Prefetch),
		CoresPerWorker:       float64(o.CoresPerWorker),
		MemPerWorkerMB:       int(o.MemPerWorkerMB),
		Accelerators:         o.Accelerators,
		HeartbeatPeriod:      time.Duration(o.HeartbeatPeriod),
		HeartbeatThreshold:   time.Duration(o.HeartbeatThreshold),
		DrainPeriod:          time.Duration(o.DrainPeriod),
		Encrypted:            o.Encrypted,
		Address:              o.Address,
		Blocks:               int(o.Blocks),
		InitBlocks:           int(o.InitBlocks),
		MinBlocks:            int(o.MinBlocks),
		MaxBlocks:            int(o.MaxBlocks),
		Parallelism:          float64(o.Parallelism),
		Walltime:             time.Duration(o.Walltime),
	}
	if !isNull(o.Provider) {
		ppath := joinKey(path, "provider")
		pm, kind, err := d.kind(o.Provider, ppath, slices.Sorted(maps.Keys(providerKinds)))
		if err != nil {
			return nil, err
		}
		bp, err := providerKinds[kind](d, pm, ppath)
		if err != nil {
			return nil, err
		}
		opts.Provider = bp.p
		if opts.Walltime == 0 {
			opts.Walltime = bp.walltime
		}
	}
	return htex.New(opts), nil
}

func buildLocal(d *decoder, m *ast.MappingNode, path string) (builtProvider, error) {
	var o struct {
		Kind      string   `yaml:"kind"`
		KillGrace duration `yaml:"kill_grace"`
	}
	if err := d.decode(m, path, &o); err != nil {
		return builtProvider{}, err
	}
	return builtProvider{p: local.New(local.Options{KillGrace: time.Duration(o.KillGrace)})}, nil
}

func buildSlurm(d *decoder, m *ast.MappingNode, path string) (builtProvider, error) {
	var o struct {
		Kind             string   `yaml:"kind"`
		Partition        string   `yaml:"partition"`
		Account          string   `yaml:"account"`
		QOS              string   `yaml:"qos"`
		Constraint       string   `yaml:"constraint"`
		Clusters         string   `yaml:"clusters"`
		NodesPerBlock    count    `yaml:"nodes_per_block"`
		CoresPerNode     count    `yaml:"cores_per_node"`
		MemPerNodeMB     count    `yaml:"mem_per_node_mb"`
		Walltime         duration `yaml:"walltime"`
		Exclusive        *bool    `yaml:"exclusive"`
		SchedulerOptions lines    `yaml:"scheduler_options"`
		WorkerInit       lines    `yaml:"worker_init"`
		Launcher         string   `yaml:"launcher"`
		CmdTimeout       duration `yaml:"cmd_timeout"`
	}
	if err := d.decode(m, path, &o); err != nil {
		return builtProvider{}, err
	}
	var l launcher.Launcher
	if lookup(m, "launcher") != nil {
		var ok bool
		if l, ok = launcherKinds[o.Launcher]; !ok {
			return builtProvider{}, d.keyError(m, path, "launcher", "unknown launcher %q; known: %s", o.Launcher, joinSorted(launcherKinds))
		}
	}
	p := slurm.New(slurm.Options{
		Partition:        o.Partition,
		Account:          o.Account,
		QOS:              o.QOS,
		Constraint:       o.Constraint,
		Clusters:         o.Clusters,
		NodesPerBlock:    int(o.NodesPerBlock),
		CoresPerNode:     int(o.CoresPerNode),
		MemPerNodeMB:     int(o.MemPerNodeMB),
		Walltime:         time.Duration(o.Walltime),
		Exclusive:        o.Exclusive,
		SchedulerOptions: o.SchedulerOptions,
		WorkerInit:       o.WorkerInit,
		Launcher:         l,
		CmdTimeout:       time.Duration(o.CmdTimeout),
	})
	return builtProvider{p: p, walltime: time.Duration(o.Walltime)}, nil
}

func joinSorted[V any](m map[string]V) string {
	return strings.Join(slices.Sorted(maps.Keys(m)), ", ")
}

// configFromEnv returns cfg, or when cfg has no executors and ConfigEnv
// names a file, that file's Config with cfg's non-zero fields on top (the
// rule is documented on Load).
func configFromEnv(cfg Config) (Config, error) {
	path := os.Getenv(ConfigEnv)
	if len(cfg.Executors) > 0 || path == "" {
		return cfg, nil
	}
	fc, err := LoadConfigFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("parsl: %s: %w (fix the file, or unset %s to run with the program's own configuration)", ConfigEnv, err, ConfigEnv)
	}
	out := cfg
	out.Executors = fc.Executors
	if out.Retries == 0 {
		out.Retries = fc.Retries
	}
	out.DisableAppCache = cfg.DisableAppCache || fc.DisableAppCache
	if out.CheckpointMode == CheckpointNone {
		out.CheckpointMode = fc.CheckpointMode
	}
	if out.CheckpointPeriod == 0 {
		out.CheckpointPeriod = fc.CheckpointPeriod
	}
	if out.CheckpointFiles == nil {
		out.CheckpointFiles = fc.CheckpointFiles
	}
	if out.RunDir == "" {
		out.RunDir = fc.RunDir
	}
	if out.LogLevel == 0 {
		out.LogLevel = fc.LogLevel
	}
	if out.LogFormat == "" {
		out.LogFormat = fc.LogFormat
	}
	if out.Strategy == "" {
		out.Strategy = fc.Strategy
	}
	if out.StrategyPeriod == 0 {
		out.StrategyPeriod = fc.StrategyPeriod
	}
	if out.MaxIdleTime == 0 {
		out.MaxIdleTime = fc.MaxIdleTime
	}
	return out, nil
}
