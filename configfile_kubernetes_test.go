//go:build parsl_kubernetes

package parsl_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/parsl-go/parsl"
)

func init() { knownProviders = "condor, gridengine, kubernetes, local, lsf, pbs, slurm" }

// TestConfigFileKubernetes loads a file naming the kubernetes provider
// kind with all its keys. The kubeconfig it names does not exist: the
// client is made at the first use, so the file loads anyway.
func TestConfigFileKubernetes(t *testing.T) {
	path := writeConfig(t, `
executors:
  - kind: htex
    label: k8s
    address: 0.0.0.0:0
    init_blocks: 1
    min_blocks: 0
    max_blocks: 4
    provider:
      kind: kubernetes
      kubeconfig: /nonexistent/kubeconfig
      namespace: science
      image: registry.example/montecarlo:1.2
      pull_policy: IfNotPresent
      service_account: parsl-runner
      mount_service_account_token: false
      image_pull_secrets: [regcred]
      labels: {team: astro, tier: "1"}
      annotations:
        example.org/owner: alice
      cpu_request: 500m
      cpu_limit: "2"
      memory_request: 1Gi
      memory_limit: 2Gi
      node_selector: {pool: batch}
      tolerations:
        - {key: gpu, operator: Exists, effect: NoSchedule}
        - {key: spot, operator: Equal, value: "true", effect: NoExecute, toleration_seconds: 60}
      persistent_volumes:
        - {claim_name: runs, mount_path: /runs}
        - {claim_name: data, mount_path: /data, read_only: true}
      worker_init: |
        cd /runs
        export GOMAXPROCS=2
      env: [PARSL_LOG=debug]
      run_id: nightly
      walltime: 2h
      delete_grace: 5s
      pending_fail_after: 3m
      request_timeout: 30s
      no_logs: true
`)
	cfg, err := parsl.LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Executors) != 1 || cfg.Executors[0].Label() != "k8s" {
		t.Fatalf("executors %v, want one labelled k8s", cfg.Executors)
	}
}

func TestConfigFileKubernetesErrors(t *testing.T) {
	for _, tt := range []struct {
		name, text, key string
		line            int
		msg             string
	}{
		{"unknown key", "executors:\n  - kind: htex\n    provider:\n      kind: kubernetes\n      image: i\n      partition: debug\n",
			"executors[0].provider.partition", 6, `unknown key "partition"; accepted: annotations, cpu_limit`},
		{"no image", "executors:\n  - kind: htex\n    provider:\n      kind: kubernetes\n      namespace: x\n",
			"executors[0].provider.image", 4, "an image is required"},
		{"bad quantity", "executors:\n  - kind: htex\n    provider:\n      kind: kubernetes\n      image: i\n      cpu_limit: 2\n      memory_limit: 4GB!\n",
			"executors[0].provider.memory_limit", 7, `"4GB!": not a Kubernetes quantity`},
		{"request above limit", "executors:\n  - kind: htex\n    provider:\n      kind: kubernetes\n      image: i\n      cpu_request: 4\n      cpu_limit: 2\n",
			"executors[0].provider.cpu_request", 6, "above its limit"},
		{"pull policy", "executors:\n  - kind: htex\n    provider: {kind: kubernetes, image: i, pull_policy: always}\n",
			"executors[0].provider.pull_policy", 3, `"always" is not accepted; use one of: Always, IfNotPresent, Never`},
		{"reserved label", "executors:\n  - kind: htex\n    provider:\n      kind: kubernetes\n      image: i\n      labels: {app: mine}\n",
			"executors[0].provider.labels", 6, "set by the provider"},
		{"unknown toleration key", "executors:\n  - kind: htex\n    provider:\n      kind: kubernetes\n      image: i\n      tolerations:\n        - {key: a, efect: NoSchedule}\n",
			"", 7, "efect"},
		{"bad duration", "executors:\n  - kind: htex\n    provider:\n      kind: kubernetes\n      image: i\n      delete_grace: 5\n",
			"executors[0].provider.delete_grace", 6, "has no unit"},
		{"bad env", "executors:\n  - kind: htex\n    provider:\n      kind: kubernetes\n      image: i\n      env: [NOVALUE]\n",
			"executors[0].provider.env", 6, "not NAME=value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.text)
			_, err := parsl.LoadConfigFile(path)
			var ce *parsl.ConfigFileError
			if !errors.As(err, &ce) || ce.Line != tt.line || ce.File != path || !strings.Contains(err.Error(), tt.msg) ||
				tt.key != "" && ce.Key != tt.key {
				t.Fatalf("got %v (line %d, key %q), want a *ConfigFileError at line %d, key %s, saying %q", err, lineOf(ce), keyOf(ce), tt.line, tt.key, tt.msg)
			}
		})
	}
}

func lineOf(e *parsl.ConfigFileError) int {
	if e == nil {
		return 0
	}
	return e.Line
}

func keyOf(e *parsl.ConfigFileError) string {
	if e == nil {
		return ""
	}
	return e.Key
}
