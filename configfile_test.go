package parsl_test

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/executor/threads"
)

// configPID tells where a task ran: a pool's process or the test's.
var configPID = parsl.Register1("test.configfile.pid", func(_ context.Context, x int) (int, error) {
	return os.Getpid() + 0*x, nil
})

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigFileValid(t *testing.T) {
	path := writeConfig(t, `
retries: 2
run_dir: /tmp/somewhere
app_cache: false
checkpoint_mode: periodic
checkpoint_period: 30m
checkpoint_files: [a, b]
log_level: debug
log_format: json
strategy: htex_auto_scale
strategy_period: 5s
max_idle_time: 2m
executors:
  - kind: threads
    label: local
    max_threads: 3
  - kind: htex
    label: pools
    max_workers_per_node: 2
    prefetch: 64
    cores_per_worker: 1.5
    mem_per_worker_mb: 512
    accelerators: ["0", "1"]
    heartbeat_period: 1s
    heartbeat_threshold: 10s
    drain_period: 1h
    encrypted: false
    address: 0.0.0.0:0
    blocks: 2
    provider:
      kind: slurm
      partition: debug
      account: proj
      qos: high
      constraint: haswell
      clusters: c1
      nodes_per_block: 2
      cores_per_node: 32
      mem_per_node_mb: 64000
      walltime: 90m
      exclusive: false
      scheduler_options: |
        #SBATCH --gres=gpu:1
        --mail-type=END
      worker_init:
        - module load go
      launcher: single_node
  - kind: htex
    label: here
    provider: {kind: local, kill_grace: 1s}
`)
	cfg, err := parsl.LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Retries != 2 || cfg.RunDir != "/tmp/somewhere" || !cfg.DisableAppCache ||
		cfg.CheckpointMode != parsl.CheckpointPeriodic || cfg.CheckpointPeriod != 30*time.Minute ||
		len(cfg.CheckpointFiles) != 2 || cfg.LogLevel != slog.LevelDebug || cfg.LogFormat != "json" ||
		cfg.Strategy != "htex_auto_scale" || cfg.StrategyPeriod != 5*time.Second || cfg.MaxIdleTime != 2*time.Minute {
		t.Errorf("top-level fields not as in the file: %+v", cfg)
	}
	if len(cfg.Executors) != 3 {
		t.Fatalf("got %d executors, want 3", len(cfg.Executors))
	}
	if ex, ok := cfg.Executors[0].(*threads.Executor); !ok || ex.Label() != "local" {
		t.Errorf("executors[0] = %T %q, want threads \"local\"", cfg.Executors[0], cfg.Executors[0].Label())
	}
	for i, label := range []string{"pools", "here"} {
		if ex, ok := cfg.Executors[i+1].(*htex.Executor); !ok || ex.Label() != label {
			t.Errorf("executors[%d] = %T %q, want htex %q", i+1, cfg.Executors[i+1], cfg.Executors[i+1].Label(), label)
		}
	}
}

func TestLoadConfigFileDefaults(t *testing.T) {
	for _, text := range []string{"", "# nothing\n", "executors: []\n", "app_cache: true\ncheckpoint_mode: none\n"} {
		cfg, err := parsl.LoadConfigFile(writeConfig(t, text))
		if err != nil {
			t.Errorf("%q: %v", text, err)
			continue
		}
		if cfg.DisableAppCache || cfg.CheckpointMode != parsl.CheckpointNone || len(cfg.Executors) != 0 || cfg.Retries != 0 {
			t.Errorf("%q: got %+v, want the zero Config", text, cfg)
		}
	}
}

// knownProviders are the provider kinds of this build, as errors list
// them; configfile_kubernetes_test.go adds kubernetes.
var knownProviders = "condor, gridengine, local, lsf, pbs, slurm"

func TestLoadConfigFileErrors(t *testing.T) {
	tests := []struct {
		name, text string
		// line and key are the error's position; msg is the whole message
		// after "file:line: key: ", or a prefix of it ending in "…".
		line int
		key  string
		msg  string
	}{
		{"unknown top key", "retries: 1\nretriez: 2\n", 2, "retriez",
			`unknown key "retriez"; accepted: app_cache, bash_auto_log, checkpoint_files, checkpoint_mode, checkpoint_period, executors, log_format, log_level, max_idle_time, retries, run_dir, strategy, strategy_period`},
		{"negative count", "retries: -1\n", 1, "retries", "must be 0 or more, got -1"},
		{"fraction for count", "\nretries: 2.5\n", 2, "retries", `want a whole number (0 or more), got "2.5"`},
		{"string for count", "retries: two\n", 1, "retries", `want a whole number (0 or more), got "two"`},
		{"duration without unit", "checkpoint_period: 30\n", 1, "checkpoint_period",
			`30 has no unit; write a Go duration such as "30s", "5m" or "1h30m"`},
		{"bad duration", "max_idle_time: 1 hour\n", 1, "max_idle_time",
			`bad duration "1 hour"; write a Go duration such as "30s", "5m" or "1h30m"`},
		{"negative duration", "strategy_period: -5s\n", 1, "strategy_period", `must not be negative, got "-5s"`},
		{"bad log level", "log_level: verbose\n", 1, "log_level", `"verbose" is not accepted; use one of: debug, info, warn, error`},
		{"bad log format", "log_format: xml\n", 1, "log_format", `"xml" is not accepted; use one of: text, json`},
		{"bad strategy", "strategy: fast\n", 1, "strategy", `"fast" is not accepted; use one of: simple, htex_auto_scale, none`},
		{"bad checkpoint mode", "checkpoint_mode: always\n", 1, "checkpoint_mode",
			`"always" is not accepted; use one of: none, task_exit, periodic, dfk_exit, manual`},
		{"periodic without period", "retries: 0\ncheckpoint_mode: periodic\n", 2, "checkpoint_mode",
			`periodic needs checkpoint_period (a duration such as "30m")`},
		{"bad bool", "app_cache: maybe\n", 1, "app_cache", `want true or false, got "maybe"`},
		{"list of strings", "checkpoint_files: [a, {b: 1}]\n", 1, "checkpoint_files", `want a string, got a mapping`},
		{"executors not a list", "executors:\n  kind: threads\n", 2, "executors", "want a list, got a mapping"},
		{"executor without kind", "executors:\n  - label: x\n", 2, "executors[0].kind", "missing; known: htex, threads"},
		{"executor not a mapping", "executors:\n  - threads\n", 2, "executors[0]",
			`want a mapping with a kind: key (htex, threads), got "threads"`},
		{"unknown executor kind", "executors:\n  - kind: thread\n", 2, "executors[0].kind", `unknown kind "thread"; known: htex, threads`},
		{"unknown threads key", "executors:\n  - kind: threads\n    threads: 4\n", 3, "executors[0].threads",
			`unknown key "threads"; accepted: kind, label, max_threads, shutdown_grace, storage_access, working_dir`},
		{"negative threads", "executors:\n  - kind: threads\n    max_threads: -4\n", 3, "executors[0].max_threads", "must be 0 or more, got -4"},
		{"unknown htex key", "executors:\n  - kind: threads\n  - kind: htex\n    max_worker: 2\n", 4, "executors[1].max_worker",
			`unknown key "max_worker"; accepted: accelerators, address, blocks, …`},
		{"bad htex duration", "executors:\n  - kind: htex\n    heartbeat_period: soon\n", 3, "executors[0].heartbeat_period",
			`bad duration "soon"; …`},
		{"negative cores", "executors:\n  - kind: htex\n    cores_per_worker: -0.5\n", 3, "executors[0].cores_per_worker", "must be 0 or more, got -0.5"},
		{"bad accelerators", "executors:\n  - kind: htex\n    accelerators: 3\n", 3, "executors[0].accelerators", "want a list, got a whole number"},
		{"duplicate label", "executors:\n  - kind: threads\n    label: x\n  - kind: htex\n    label: x\n", 5, "executors[1].label",
			`label "x" is already used by executors[0]; give each executor its own label`},
		{"duplicate default label", "executors:\n  - kind: htex\n  - kind: htex\n", 3, "executors[1].label",
			`label "htex" is already used by executors[0]; give each executor its own label`},
		{"unknown provider kind", "retries: 1\nexecutors:\n  - kind: htex\n    label: htex\n    max_workers_per_node: 2\n    provider:\n      kind: slrum\n", 7,
			"executors[0].provider.kind", `unknown kind "slrum"; known: ` + knownProviders},
		{"provider not a mapping", "executors:\n  - kind: htex\n    provider: slurm\n", 3, "executors[0].provider",
			`want a mapping with a kind: key (` + knownProviders + `), got "slurm"`},
		{"unknown slurm key", "executors:\n  - kind: htex\n    provider:\n      kind: slurm\n      queue: debug\n", 5, "executors[0].provider.queue",
			`unknown key "queue"; accepted: account, clusters, cmd_timeout, constraint, cores_per_node, exclusive, kind, launcher, mem_per_node_mb, nodes_per_block, partition, qos, scheduler_options, walltime, worker_init`},
		{"unknown local key", "executors:\n  - kind: htex\n    provider: {kind: local, blocks: 2}\n", 3, "executors[0].provider.blocks",
			`unknown key "blocks"; accepted: kill_grace, kind`},
		{"unknown launcher", "executors:\n  - kind: htex\n    provider:\n      kind: slurm\n      launcher: mpirunn\n", 5, "executors[0].provider.launcher",
			`unknown launcher "mpirunn"; known: aprun, gnu_parallel, jsrun, mpiexec, mpirun, simple, single_node, srun, srun_mpi, wrapped`},
		{"negative nodes", "executors:\n  - kind: htex\n    provider:\n      kind: slurm\n      nodes_per_block: -2\n", 5,
			"executors[0].provider.nodes_per_block", "must be 0 or more, got -2"},
		{"bad slurm walltime", "executors:\n  - kind: htex\n    provider:\n      kind: slurm\n      walltime: \"1:00:00\"\n", 5,
			"executors[0].provider.walltime", `bad duration "1:00:00"; …`},
		{"bad scheduler options", "executors:\n  - kind: htex\n    provider:\n      kind: slurm\n      scheduler_options: [--a, [b]]\n", 5,
			"executors[0].provider.scheduler_options", "want a string in this list, got a list"},
		{"bad exclusive", "executors:\n  - kind: htex\n    provider:\n      kind: slurm\n      exclusive: 1\n", 5,
			"executors[0].provider.exclusive", `want true or false, got "1"`},
		{"syntax error", "retries: 1\nexecutors: [a\n", 2, "", "not valid YAML: …"},
		{"duplicate key", "retries: 1\nretries: 2\n", 2, "", `not valid YAML: mapping key "retries" already defined at [1:1]`},
		{"not a mapping", "- retries\n", 1, "", "want a mapping of keys to values, got a list"},
		{"two documents", "retries: 1\n---\nretries: 2\n", 2, "", "more than one YAML document; put the whole configuration in one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.text)
			_, err := parsl.LoadConfigFile(path)
			var ce *parsl.ConfigFileError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v (%T), want a *ConfigFileError", err, err)
			}
			if ce.File != path || ce.Line != tt.line || ce.Key != tt.key {
				t.Errorf("got file %q line %d key %q, want %q %d %q", ce.File, ce.Line, ce.Key, path, tt.line, tt.key)
			}
			prefix := path + ":" + strconv.Itoa(tt.line) + ": "
			if tt.key != "" {
				prefix += tt.key + ": "
			}
			if msg, ok := strings.CutSuffix(tt.msg, "…"); ok {
				if !strings.HasPrefix(err.Error(), prefix+msg) {
					t.Errorf("got\n\t%s\nwant it to start with\n\t%s", err, prefix+msg)
				}
			} else if err.Error() != prefix+tt.msg {
				t.Errorf("got\n\t%s\nwant\n\t%s", err, prefix+tt.msg)
			}
		})
	}
}

func TestLoadConfigFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := parsl.LoadConfigFile(path)
	var ce *parsl.ConfigFileError
	if !errors.As(err, &ce) || !errors.Is(err, fs.ErrNotExist) || ce.File != path || ce.Line != 0 {
		t.Fatalf("got %v, want a *ConfigFileError for %s wrapping fs.ErrNotExist", err, path)
	}
}

// TestExampleConfigs checks that every configuration shipped in
// examples/configs loads.
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("examples", "configs", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d files in examples/configs, want local, htex-local and slurm at least", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := parsl.LoadConfigFile(f)
			if err != nil && strings.Contains(err.Error(), "is not in this build") {
				t.Skipf("%v (go test -tags parsl_kubernetes loads it)", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Executors) == 0 {
				t.Errorf("%s has no executors", f)
			}
		})
	}
}

// TestConfigEnvHtexLocal runs tasks on the worker pools that
// examples/configs/htex-local.yaml describes, chosen by PARSL_CONFIG alone.
func TestConfigEnvHtexLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a worker pool")
	}
	t.Setenv(parsl.ConfigEnv, filepath.Join("examples", "configs", "htex-local.yaml"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runDir := t.TempDir()
	dfk, err := parsl.Load(ctx, parsl.Config{RunDir: runDir, NoSignalHandler: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dfk.Close(ctx)
	if !strings.HasPrefix(dfk.RunDir(), runDir) {
		t.Errorf("run directory %s is not under the Config's RunDir %s", dfk.RunDir(), runDir)
	}
	futs := make([]*parsl.Future[int], 20)
	for i := range futs {
		futs[i] = configPID.Submit(dfk, parsl.Val(i))
	}
	for i, f := range futs {
		pid, err := f.Get(ctx)
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		if pid == os.Getpid() {
			t.Fatalf("task %d ran in the test process, not in a pool: PARSL_CONFIG was not used", i)
		}
	}
	if _, err := os.Stat(filepath.Join(dfk.RunDir(), "htex")); err != nil {
		t.Errorf("no htex directory in the run directory: %v", err)
	}
	if err := dfk.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConfigEnvRules(t *testing.T) {
	ctx := context.Background()
	bad := writeConfig(t, "executors:\n  - kind: htex\n    provider: {kind: slrum}\n")

	t.Run("a bad file fails Load", func(t *testing.T) {
		t.Setenv(parsl.ConfigEnv, bad)
		dfk, err := parsl.Load(ctx, parsl.Config{RunDir: t.TempDir(), NoSignalHandler: true})
		if err == nil {
			dfk.Close(ctx)
			t.Fatal("Load succeeded with a bad PARSL_CONFIG file")
		}
		var ce *parsl.ConfigFileError
		if !errors.As(err, &ce) || ce.Line != 3 || !strings.Contains(err.Error(), "unset PARSL_CONFIG") {
			t.Errorf("got %v, want a *ConfigFileError at line 3 that says how to opt out", err)
		}
	})

	t.Run("executors in the Config win", func(t *testing.T) {
		t.Setenv(parsl.ConfigEnv, bad)
		dfk, err := parsl.Load(ctx, parsl.Config{RunDir: t.TempDir(), NoSignalHandler: true,
			Executors: []executor.Executor{threads.New(threads.Options{})}})
		if err != nil {
			t.Fatalf("PARSL_CONFIG was read although the Config has executors: %v", err)
		}
		dfk.Close(ctx)
	})

	t.Run("the file fills zero fields", func(t *testing.T) {
		fileRunDir := t.TempDir()
		t.Setenv(parsl.ConfigEnv, writeConfig(t, "run_dir: "+fileRunDir+"\nexecutors:\n  - kind: threads\n    label: fromfile\n"))
		dfk, err := parsl.Load(ctx, parsl.Config{NoSignalHandler: true})
		if err != nil {
			t.Fatal(err)
		}
		defer dfk.Close(ctx)
		if !strings.HasPrefix(dfk.RunDir(), fileRunDir) {
			t.Errorf("run directory %s, want one under the file's run_dir %s", dfk.RunDir(), fileRunDir)
		}
		v, err := configPID.Submit(dfk, parsl.Val(1), parsl.Executor("fromfile")).Get(ctx)
		if err != nil || v != os.Getpid() {
			t.Errorf("task on the file's threads executor: %v, %v", v, err)
		}
	})

	t.Run("set fields win", func(t *testing.T) {
		mine := t.TempDir()
		t.Setenv(parsl.ConfigEnv, writeConfig(t, "run_dir: "+t.TempDir()+"\n"))
		dfk, err := parsl.Load(ctx, parsl.Config{RunDir: mine, NoSignalHandler: true})
		if err != nil {
			t.Fatal(err)
		}
		defer dfk.Close(ctx)
		if !strings.HasPrefix(dfk.RunDir(), mine) {
			t.Errorf("run directory %s, want one under the Config's RunDir %s", dfk.RunDir(), mine)
		}
	})
}

func TestConfigFileBashAutoLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("bash_auto_log: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := parsl.LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.BashAutoLog {
		t.Fatal("bash_auto_log: true did not set Config.BashAutoLog")
	}
}
