package parsl_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/parsl-go/parsl"
)

// TestConfigFileGridEngine loads a file naming the gridengine provider
// kind with all its keys, and checks that slots without a parallel
// environment is refused where it is written.
func TestConfigFileGridEngine(t *testing.T) {
	path := writeConfig(t, `
executors:
  - kind: htex
    label: sge
    provider:
      kind: gridengine
      queue: all.q
      project: proj
      pe: smp
      slots: 8
      walltime: 2h
      scheduler_options: ["-l h_vmem=4G"]
      worker_init: module load go
      launcher: single_node
      cmd_timeout: 30s
      accounting_delay: 1m
`)
	cfg, err := parsl.LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Executors) != 1 || cfg.Executors[0].Label() != "sge" {
		t.Fatalf("executors %v, want one labelled sge", cfg.Executors)
	}

	_, err = parsl.LoadConfigFile(writeConfig(t, "executors:\n  - kind: htex\n    provider: {kind: gridengine, slots: 4}\n"))
	var ce *parsl.ConfigFileError
	if !errors.As(err, &ce) || ce.Key != "executors[0].provider.slots" || !strings.Contains(err.Error(), "needs pe") {
		t.Fatalf("got %v, want a *ConfigFileError at executors[0].provider.slots", err)
	}
}
