package parsl

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/executor/threads"
	"github.com/parsl-go/parsl/internal/wire"
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
//	bash_auto_log: true          # every bash try gets task_logs/APP/ID_TRY.stdout|.stderr
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
//	    worker_env: {OMP_NUM_THREADS: "1"}   # or [OMP_NUM_THREADS=1]
//	    provider:
//	      kind: slurm
//	      partition: debug
//	      walltime: 1h
//	      launcher: srun         # or {kind: srun_mpi, overrides: [--mpi=pmix]}
//
// Each executor, provider and launcher is chosen by its kind: and takes
// that kind's keys, named as the fields of its Options struct in
// snake_case, so the Go doc of each field says what the key does:
//
//   - threads: label, max_threads, shutdown_grace, working_dir, storage_access
//   - htex: label, max_workers_per_node, prefetch, cores_per_worker,
//     mem_per_worker_mb, accelerators, heartbeat_period,
//     heartbeat_threshold, drain_period, encrypted, address, max_frame,
//     blocks, init_blocks, min_blocks, max_blocks, parallelism,
//     nodes_per_block, walltime, launcher, pool_command, worker_env,
//     refused_limit, failure_threshold, interchange, interchange_dir,
//     working_dir, storage_access, resource_interval, provider
//   - local: kill_grace
//   - slurm: partition, account, qos, constraint, clusters, nodes_per_block,
//     cores_per_node, mem_per_node_mb, walltime, exclusive,
//     scheduler_options, worker_init, launcher, cmd_timeout
//   - pbs: flavor, queue, account, nodes_per_block, cpus_per_node,
//     select_options, walltime, scheduler_options, worker_init, launcher,
//     cmd_timeout
//   - lsf: queue, project, nodes_per_block, cores_per_node,
//     request_by_nodes, walltime, scheduler_options, worker_init, launcher,
//     cmd_timeout
//   - condor: cores_per_slot, mem_per_slot_mb, requirements, project,
//     transfer_input_files, walltime, scheduler_options, worker_init,
//     launcher, cmd_timeout
//   - gridengine: queue, project, pe, slots, walltime, scheduler_options,
//     worker_init, launcher, cmd_timeout, accounting_delay
//   - kubernetes (in builds with -tags parsl_kubernetes): kubeconfig,
//     namespace, image, pull_policy, service_account,
//     mount_service_account_token, image_pull_secrets, labels,
//     annotations, cpu_request, cpu_limit, memory_request, memory_limit,
//     node_selector, tolerations, persistent_volumes, worker_init, env,
//     run_id, walltime, delete_grace, pending_fail_after, request_timeout,
//     no_logs
//
// A launcher: is a name, or a mapping of kind: and the options of Parsl's
// launcher of that name. An htex executor's launcher is used only with
// providers that have none (local, kubernetes):
//
//   - single_node, simple, srun: (no options)
//   - srun_mpi, mpirun, aprun, jsrun: overrides
//   - mpiexec: bind_cmd, overrides
//   - gnu_parallel: job_log, overrides
//   - wrapped: prepend (required: {kind: wrapped, prepend: "singularity exec img.sif"})
//
// Durations are Go durations ("30s", "1h30m"); counts are whole numbers,
// 0 or more. scheduler_options and worker_init are a list of lines or a
// block of lines; worker_env is a list of NAME=value or a mapping of
// names to values; pool_command and overrides are a list of arguments,
// or one string of them without quotes. An htex resource_interval is a
// duration, start_end, or off (no task sampling); interchange is
// in_process (the default), process (a child process), or the HOST:PORT
// driver address of an interchange started with `parsl interchange`,
// whose directory interchange_dir names.
//
// Omitted keys take the same defaults as zero fields in Go. Two zeros
// written in a file mean zero, as in Parsl: parallelism: 0 starts a block
// as soon as there is work, and blocks: 0 (or init_blocks, min_blocks
// and max_blocks all 0) starts no block, for pools started by hand. An
// htex executor without walltime takes its provider's walltime when the
// file gives one, so that pools drain before their block ends. Relative
// paths are relative to the working directory, as in Go.
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
	BashAutoLog      bool       `yaml:"bash_auto_log"`
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
		BashAutoLog:      fc.BashAutoLog,
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

// threadsFile is the mapping of a threads executor.
type threadsFile struct {
	Kind          string   `yaml:"kind"`
	Label         string   `yaml:"label"`
	MaxThreads    count    `yaml:"max_threads"`
	ShutdownGrace duration `yaml:"shutdown_grace"`
	WorkingDir    string   `yaml:"working_dir"`
	StorageAccess []string `yaml:"storage_access"`
}

func buildThreads(d *decoder, m *ast.MappingNode, path string) (executor.Executor, error) {
	var o threadsFile
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

// htexFile is the mapping of an htex executor.
type htexFile struct {
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
	MaxFrame           count    `yaml:"max_frame"`
	Blocks             count    `yaml:"blocks"`
	InitBlocks         count    `yaml:"init_blocks"`
	MinBlocks          count    `yaml:"min_blocks"`
	MaxBlocks          count    `yaml:"max_blocks"`
	Parallelism        number   `yaml:"parallelism"`
	NodesPerBlock      count    `yaml:"nodes_per_block"`
	Walltime           duration `yaml:"walltime"`
	Launcher           ast.Node `yaml:"launcher"`
	PoolCommand        args     `yaml:"pool_command"`
	WorkerEnv          envList  `yaml:"worker_env"`
	RefusedLimit       count    `yaml:"refused_limit"`
	FailureThreshold   count    `yaml:"failure_threshold"`
	Interchange        string   `yaml:"interchange"`
	InterchangeDir     string   `yaml:"interchange_dir"`
	WorkingDir         string   `yaml:"working_dir"`
	StorageAccess      []string `yaml:"storage_access"`
	ResourceInterval   string   `yaml:"resource_interval"`
	Provider           ast.Node `yaml:"provider"`
}

func buildHtex(d *decoder, m *ast.MappingNode, path string) (executor.Executor, error) {
	opts, err := htexOptions(d, m, path)
	if err != nil {
		return nil, err
	}
	return htex.New(opts), nil
}

// poolEnvSet are the variables the executor sets for every block itself:
// a worker_env entry would override them and break the pool's start.
var poolEnvSet = []string{"PARSL_ROLE", wire.PoolConfigEnv, wire.BlockIDEnv}

// htexOptions decodes the mapping of an htex executor into its Options.
func htexOptions(d *decoder, m *ast.MappingNode, path string) (htex.Options, error) {
	var o htexFile
	if err := d.decode(m, path, &o); err != nil {
		return htex.Options{}, err
	}
	sa, err := storageAccess(d, m, path, o.StorageAccess, o.WorkingDir)
	if err != nil {
		return htex.Options{}, err
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
			return htex.Options{}, d.keyError(m, path, "resource_interval", "want a duration such as 5s, or start_end, or off; got %q", o.ResourceInterval)
		}
		interval = v
	}
	ix := o.Interchange
	switch ix {
	case "in_process":
		ix = htex.InterchangeInProcess
	case htex.InterchangeInProcess, htex.InterchangeProcess:
	default:
		if !validHostPort(ix) {
			return htex.Options{}, d.keyError(m, path, "interchange", "%q is not accepted; use in_process (the default), process, or the HOST:PORT of the driver address of an interchange started with `parsl interchange`", ix)
		}
		if o.InterchangeDir == "" {
			return htex.Options{}, d.keyError(m, path, "interchange", "interchange %q needs interchange_dir, the directory made by `parsl interchange --init DIR`", ix)
		}
	}
	if o.InterchangeDir != "" && (ix == htex.InterchangeInProcess || ix == htex.InterchangeProcess) {
		return htex.Options{}, d.keyError(m, path, "interchange_dir", "is used only with interchange: HOST:PORT (an interchange started with `parsl interchange`); remove it, or set interchange")
	}
	for _, kv := range o.WorkerEnv {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(poolEnvSet, name) {
			return htex.Options{}, d.keyError(m, path, "worker_env", "%s is set by the executor for every block and cannot be overridden", name)
		}
	}
	l, err := d.launcher(m, path)
	if err != nil {
		return htex.Options{}, err
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
		MaxFrame:             int(o.MaxFrame),
		Blocks:               int(o.Blocks),
		InitBlocks:           int(o.InitBlocks),
		MinBlocks:            int(o.MinBlocks),
		MaxBlocks:            int(o.MaxBlocks),
		Parallelism:          float64(o.Parallelism),
		NodesPerBlock:        int(o.NodesPerBlock),
		Walltime:             time.Duration(o.Walltime),
		Launcher:             l,
		PoolCommand:          o.PoolCommand,
		WorkerEnv:            o.WorkerEnv,
		RefusedLimit:         int(o.RefusedLimit),
		FailureThreshold:     int(o.FailureThreshold),
		Interchange:          ix,
		InterchangeDir:       o.InterchangeDir,
	}
	// A file says 0 where Go's zero value means "the default": written
	// out, parallelism: 0 is Parsl's (a block as soon as there is work),
	// and zero blocks mean none (pools started by hand join by
	// themselves), not Go's default of one.
	if given(m, "parallelism") && o.Parallelism == 0 {
		opts.Parallelism = -1
	}
	if opts.InitBlocks == 0 && opts.MinBlocks == 0 && opts.MaxBlocks == 0 &&
		o.Blocks == 0 && (given(m, "blocks") || given(m, "init_blocks") || given(m, "min_blocks") || given(m, "max_blocks")) {
		opts.Blocks = -1
	}
	if !isNull(o.Provider) {
		ppath := joinKey(path, "provider")
		pm, kind, err := d.kind(o.Provider, ppath, slices.Sorted(maps.Keys(providerKinds)))
		if err != nil {
			return htex.Options{}, err
		}
		bp, err := providerKinds[kind](d, pm, ppath)
		if err != nil {
			return htex.Options{}, err
		}
		opts.Provider = bp.p
		if opts.Walltime == 0 {
			opts.Walltime = bp.walltime
		}
		if a, ok := bp.p.(interface{ AppliesLauncher() bool }); ok && a.AppliesLauncher() && l != nil {
			// The executor would ignore it with only a warning in the log.
			return htex.Options{}, d.keyError(m, path, "launcher", "the %s provider starts pools with its own launcher; move launcher: under provider:", kind)
		}
	}
	return opts, nil
}

// given reports whether m has key with a value (not null).
func given(m *ast.MappingNode, key string) bool {
	mv := lookup(m, key)
	return mv != nil && !isNull(mv.Value)
}

// validHostPort reports whether s is host:port with a port a client can
// dial (not 0).
func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n <= 65535
}

// localFile is the mapping of a local provider.
type localFile struct {
	Kind      string   `yaml:"kind"`
	KillGrace duration `yaml:"kill_grace"`
}

func buildLocal(d *decoder, m *ast.MappingNode, path string) (builtProvider, error) {
	var o localFile
	if err := d.decode(m, path, &o); err != nil {
		return builtProvider{}, err
	}
	return builtProvider{p: local.New(local.Options{KillGrace: time.Duration(o.KillGrace)})}, nil
}

// slurmFile is the mapping of a slurm provider.
type slurmFile struct {
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
	Launcher         ast.Node `yaml:"launcher"`
	CmdTimeout       duration `yaml:"cmd_timeout"`
}

func buildSlurm(d *decoder, m *ast.MappingNode, path string) (builtProvider, error) {
	var o slurmFile
	if err := d.decode(m, path, &o); err != nil {
		return builtProvider{}, err
	}
	l, err := d.launcher(m, path)
	if err != nil {
		return builtProvider{}, err
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
	out.BashAutoLog = cfg.BashAutoLog || fc.BashAutoLog
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
