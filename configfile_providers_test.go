package parsl_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/parsl-go/parsl"
)

// TestConfigFileBatchProviders loads a file naming each of the pbs, lsf
// and condor provider kinds with all their keys.
func TestConfigFileBatchProviders(t *testing.T) {
	path := writeConfig(t, `
executors:
  - kind: htex
    label: pbspro
    provider:
      kind: pbs
      queue: workq
      account: proj
      nodes_per_block: 2
      cpus_per_node: 64
      select_options: mem=100gb
      walltime: 2h
      scheduler_options: ["-l place=scatter"]
      worker_init: module load go
      launcher: single_node
      cmd_timeout: 30s
  - kind: htex
    label: torque
    provider: {kind: pbs, flavor: torque, cpus_per_node: 8}
  - kind: htex
    label: lsf
    provider:
      kind: lsf
      queue: normal
      project: ABC123
      nodes_per_block: 2
      cores_per_node: 42
      request_by_nodes: true
      walltime: 30m
      scheduler_options: |
        #BSUB -alloc_flags smt4
      worker_init: [module load go]
      launcher: single_node
      cmd_timeout: 1m
  - kind: htex
    label: condor
    provider:
      kind: condor
      cores_per_slot: 4
      mem_per_slot_mb: 8000
      requirements: (OpSys == "LINUX")
      project: osg.proj
      transfer_input_files: [/data/a, /data/b]
      walltime: 1h
      scheduler_options: ["+WantGPU = true"]
      worker_init: source env/bin/activate
      launcher: single_node
      cmd_timeout: 20s
`)
	cfg, err := parsl.LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Executors) != 4 {
		t.Fatalf("got %d executors, want 4", len(cfg.Executors))
	}
	for i, want := range []string{"pbspro", "torque", "lsf", "condor"} {
		if got := cfg.Executors[i].Label(); got != want {
			t.Errorf("executors[%d] label %q, want %q", i, got, want)
		}
	}
}

func TestConfigFileBatchProviderErrors(t *testing.T) {
	for _, tt := range []struct {
		name, text, key, msg string
	}{
		{"bad flavor", "executors:\n  - kind: htex\n    provider: {kind: pbs, flavor: sge}\n", "executors[0].provider.flavor", `unknown flavor "sge"; known: pbspro, torque`},
		{"slurm key on pbs", "executors:\n  - kind: htex\n    provider: {kind: pbs, partition: x}\n", "executors[0].provider.partition", `unknown key "partition"`},
		{"bad lsf launcher", "executors:\n  - kind: htex\n    provider: {kind: lsf, launcher: jsrunn}\n", "executors[0].provider.launcher", `unknown launcher "jsrunn"`},
		{"bad condor cores", "executors:\n  - kind: htex\n    provider: {kind: condor, cores_per_slot: -1}\n", "executors[0].provider.cores_per_slot", "must be 0 or more"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parsl.LoadConfigFile(writeConfig(t, tt.text))
			var ce *parsl.ConfigFileError
			if !errors.As(err, &ce) || ce.Key != tt.key || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want a *ConfigFileError at %s saying %q", err, tt.key, tt.msg)
			}
		})
	}
}
