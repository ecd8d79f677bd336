package parsl_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor/htex"
)

// TestConfigFileReachErrors checks that a bad value of each key added for
// issue 18 is a *ConfigFileError at its line and key.
func TestConfigFileReachErrors(t *testing.T) {
	const htex = "executors:\n  - kind: htex\n    label: x\n" // keys below start on line 4
	for _, tt := range []struct {
		name, keys string
		line       int
		key, msg   string
	}{
		{"unknown interchange", "    interchange: elsewhere\n", 4, "executors[0].interchange",
			`"elsewhere" is not accepted; use in_process (the default), process, or the HOST:PORT`},
		{"interchange port 0", "    interchange: login1:0\n    interchange_dir: /ix\n", 4, "executors[0].interchange", `"login1:0" is not accepted`},
		{"interchange without dir", "    interchange: login1:54000\n", 4, "executors[0].interchange",
			"interchange \"login1:54000\" needs interchange_dir, the directory made by `parsl interchange --init DIR`"},
		{"dir without interchange", "    max_frame: 10\n    interchange_dir: /ix\n", 5, "executors[0].interchange_dir", "is used only with interchange: HOST:PORT"},
		{"dir with process", "    interchange: process\n    interchange_dir: /ix\n", 5, "executors[0].interchange_dir", "is used only with interchange: HOST:PORT"},
		{"interchange not a string", "    interchange: [a]\n", 4, "executors[0].interchange", "want a string"},
		{"worker_env entry", "    worker_env:\n      - A=1\n      - NOVALUE\n", 6, "executors[0].worker_env", `"NOVALUE" is not NAME=value`},
		{"worker_env name", "    worker_env: [\"1X=2\"]\n", 4, "executors[0].worker_env", `"1X=2" is not NAME=value`},
		{"worker_env mapping name", "    worker_env:\n      A B: 1\n", 5, "executors[0].worker_env", `"A B" is not a variable name`},
		{"worker_env mapping value", "    worker_env:\n      A: [1]\n", 5, "executors[0].worker_env", "the value of A must be a string, got a list"},
		{"worker_env reserved", "    worker_env: {PARSL_ROLE: driver}\n", 4, "executors[0].worker_env",
			"PARSL_ROLE is set by the executor for every block and cannot be overridden"},
		{"worker_env scalar", "    worker_env: A=1\n", 4, "executors[0].worker_env", "want a list of NAME=value strings or a mapping"},
		{"pool_command quotes", "    pool_command: parsl 'a b'\n", 4, "executors[0].pool_command",
			`"parsl 'a b'" has quotes or backslashes; write the arguments as a list, one argument per item`},
		{"pool_command mapping", "    pool_command: {a: b}\n", 4, "executors[0].pool_command", "want a list of arguments or a string of them, got a mapping"},
		{"pool_command item", "    pool_command: [parsl, [pool]]\n", 4, "executors[0].pool_command", "want a string in this list, got a list"},
		{"max_frame negative", "    max_frame: -1\n", 4, "executors[0].max_frame", "must be 0 or more, got -1"},
		{"nodes_per_block fraction", "    nodes_per_block: 1.5\n", 4, "executors[0].nodes_per_block", `want a whole number (0 or more), got "1.5"`},
		{"refused_limit string", "    refused_limit: many\n", 4, "executors[0].refused_limit", `want a whole number (0 or more), got "many"`},
		{"failure_threshold negative", "    failure_threshold: -3\n", 4, "executors[0].failure_threshold", "must be 0 or more, got -3"},
		{"unknown htex launcher", "    launcher: srunn\n", 4, "executors[0].launcher", `unknown launcher "srunn"; known: aprun, gnu_parallel, jsrun, mpiexec, mpirun, simple, single_node, srun, srun_mpi, wrapped`},
		{"launcher list", "    launcher: [srun]\n", 4, "executors[0].launcher", "want a launcher name (aprun, "},
		{"launcher without kind", "    launcher:\n      prepend: time\n", 5, "executors[0].launcher.kind", "missing; known: aprun, "},
		{"unknown launcher kind", "    launcher: {kind: mpiexecc}\n", 4, "executors[0].launcher.kind", `unknown kind "mpiexecc"; known: aprun, `},
		{"unknown launcher option", "    launcher:\n      kind: mpiexec\n      bind: -bind-to\n", 6, "executors[0].launcher.bind",
			`unknown key "bind"; accepted: bind_cmd, kind, overrides`},
		{"option of a plain launcher", "    launcher: {kind: srun, overrides: [-l]}\n", 4, "executors[0].launcher.overrides", `unknown key "overrides"; accepted: kind`},
		{"wrapped by name", "    launcher: wrapped\n", 4, "executors[0].launcher", "wrapped needs prepend: write launcher: {kind: wrapped, prepend:"},
		{"wrapped without prepend", "    launcher:\n      kind: wrapped\n      prepend: \" \"\n", 6, "executors[0].launcher.prepend", "wrapped needs prepend"},
		{"bad overrides", "    launcher:\n      kind: mpirun\n      overrides: {a: 1}\n", 6, "executors[0].launcher.overrides", "want a list of arguments or a string of them"},
		{"overrides quotes", "    launcher: {kind: aprun, overrides: \"-cc 'depth'\"}\n", 4, "executors[0].launcher.overrides", `"-cc 'depth'" has quotes or backslashes`},
		{"htex launcher with slurm", "    launcher: srun\n    provider: {kind: slurm}\n", 4, "executors[0].launcher",
			"the slurm provider starts pools with its own launcher; move launcher: under provider:"},
		{"htex launcher with pbs", "    launcher: mpiexec\n    provider:\n      kind: pbs\n", 4, "executors[0].launcher", "the pbs provider starts pools with its own launcher"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, htex+tt.keys)
			_, err := parsl.LoadConfigFile(path)
			var ce *parsl.ConfigFileError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v (%T), want a *ConfigFileError", err, err)
			}
			want := path + ":" + strconv.Itoa(tt.line) + ": " + tt.key + ": " + tt.msg
			if ce.File != path || ce.Line != tt.line || ce.Key != tt.key || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("got\n\t%s\nwant it to start with\n\t%s", err, want)
			}
		})
	}
}

// TestConfigFileProviderLaunchers checks that every provider kind with a
// launcher takes one as a mapping with options, and reports a bad one at
// its key.
func TestConfigFileProviderLaunchers(t *testing.T) {
	for _, kind := range []string{"slurm", "pbs", "lsf", "condor", "gridengine"} {
		t.Run(kind, func(t *testing.T) {
			good := "executors:\n  - kind: htex\n    provider:\n      kind: " + kind + "\n      launcher: {kind: mpiexec, bind_cmd: -bind-to, overrides: [-ppn, \"1\"]}\n"
			if _, err := parsl.LoadConfigFile(writeConfig(t, good)); err != nil {
				t.Fatal(err)
			}
			bad := "executors:\n  - kind: htex\n    provider:\n      kind: " + kind + "\n      launcher:\n        kind: jsrun\n        overides: [-a1]\n"
			path := writeConfig(t, bad)
			_, err := parsl.LoadConfigFile(path)
			var ce *parsl.ConfigFileError
			if !errors.As(err, &ce) || ce.Line != 7 || ce.Key != "executors[0].provider.launcher.overides" ||
				!strings.Contains(err.Error(), `unknown key "overides"; accepted: kind, overrides`) {
				t.Fatalf("got %v, want a *ConfigFileError at %s:7 for executors[0].provider.launcher.overides", err, path)
			}
		})
	}
}

// TestConfigFileHtexReachLoads loads a file with every htex key added for
// issue 18 together, as a site would write them.
func TestConfigFileHtexReachLoads(t *testing.T) {
	cfg, err := parsl.LoadConfigFile(writeConfig(t, `
executors:
  - kind: htex
    label: site
    interchange: process
    worker_env:
      OMP_NUM_THREADS: 1
      SCRATCH: /scratch/me
    pool_command: [/opt/parsl/bin/montecarlo]
    launcher: {kind: wrapped, prepend: singularity exec /images/mc.sif}
    max_frame: 268435456
    nodes_per_block: 1
    refused_limit: 2
    failure_threshold: 5
    parallelism: 0
    init_blocks: 0
    min_blocks: 0
    max_blocks: 4
    provider: {kind: local}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Executors) != 1 || cfg.Executors[0].Label() != "site" {
		t.Fatalf("executors %v, want one labelled site", cfg.Executors)
	}
}

// configEnv reports what a task's process sees of the variables that
// TestConfigFileReachRuns sets through the file.
var configEnv = parsl.Register1("test.configfile.env", func(_ context.Context, _ int) ([]string, error) {
	return []string{os.Getenv("PARSL_TEST_WORKER_ENV"), os.Getenv("PARSL_TEST_POOL_COMMAND"), os.Getenv("PARSL_TEST_LAUNCHER"),
		strconv.Itoa(os.Getpid())}, nil
})

// TestConfigFileReachRuns runs tasks on worker pools started as a file
// with the new htex keys says: the interchange in a child process,
// worker_env, a pool_command and a wrapped launcher, each of which leaves
// its mark in the pool's environment.
func TestConfigFileReachRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an interchange process and a worker pool")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, `
executors:
  - kind: htex
    label: reach
    max_workers_per_node: 2
    interchange: process
    worker_env:
      PARSL_TEST_WORKER_ENV: from the file
    pool_command: [/bin/sh, -c, 'PARSL_TEST_POOL_COMMAND=yes exec "$0"', `+strconv.Quote(exe)+`]
    launcher: {kind: wrapped, prepend: env PARSL_TEST_LAUNCHER=wrapped}
    provider: {kind: local}
`)
	cfg, err := parsl.LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg.RunDir, cfg.NoSignalHandler = t.TempDir(), true
	dfk, err := parsl.Load(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dfk.Close(ctx)
	got, err := configEnv.Submit(dfk, parsl.Val(1)).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"from the file", "yes", "wrapped"}; !slices.Equal(got[:3], want) || got[3] == strconv.Itoa(os.Getpid()) {
		t.Errorf("task saw worker_env, pool_command, launcher, pid = %q, want %q in a pool process", got, want)
	}
	if ix, ok := cfg.Executors[0].(*htex.Executor); !ok || ix.InterchangePID() <= 0 || ix.InterchangePID() == os.Getpid() {
		t.Errorf("interchange: process did not start the interchange in a child process")
	}
	if err := dfk.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
