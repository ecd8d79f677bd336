//go:build parsl_kubernetes

package parsl

import (
	"errors"
	"time"

	"github.com/goccy/go-yaml/ast"
	corev1 "k8s.io/api/core/v1"

	"github.com/parsl-go/parsl/provider/kubernetes"
)

// Kubernetes registers its kind in a file of its own, as the other
// providers beyond Slurm do, and only in builds with -tags parsl_kubernetes:
// client-go would otherwise add about 50 MB and 8 ms of start-up to every
// program and worker pool, most of which never run on Kubernetes. A Go
// program can always use provider/kubernetes directly.
//
// The client is made when the provider is first used, not when the file
// is loaded (kubernetes.NewDeferred): a file naming a cluster loads on a
// machine with no kubeconfig, and a program fails only if it starts a
// block there, with a *kubernetes.ConfigError that says where it looked.
func init() {
	providerKinds["kubernetes"] = buildKubernetes
}

// kubernetesKeys maps kubernetes.Options fields to their keys, for
// errors found by the provider's own checks.
var kubernetesKeys = map[string]string{
	"Namespace": "namespace", "Image": "image", "PullPolicy": "pull_policy", "ServiceAccount": "service_account",
	"ImagePullSecrets": "image_pull_secrets", "Labels": "labels", "Annotations": "annotations",
	"CPURequest": "cpu_request", "CPULimit": "cpu_limit", "MemoryRequest": "memory_request", "MemoryLimit": "memory_limit",
	"NodeSelector": "node_selector", "PersistentVolumes": "persistent_volumes", "Env": "env", "RunID": "run_id",
}

// kubernetesToleration is one item of tolerations.
type kubernetesToleration struct {
	Key               string `yaml:"key"`
	Operator          string `yaml:"operator"`
	Value             string `yaml:"value"`
	Effect            string `yaml:"effect"`
	TolerationSeconds *count `yaml:"toleration_seconds"`
}

// kubernetesVolume is one item of persistent_volumes.
type kubernetesVolume struct {
	ClaimName string `yaml:"claim_name"`
	MountPath string `yaml:"mount_path"`
	ReadOnly  bool   `yaml:"read_only"`
}

// kubernetesFile is the mapping of a kubernetes provider.
type kubernetesFile struct {
	Kind                     string                 `yaml:"kind"`
	Kubeconfig               string                 `yaml:"kubeconfig"`
	Namespace                string                 `yaml:"namespace"`
	Image                    string                 `yaml:"image"`
	PullPolicy               string                 `yaml:"pull_policy"`
	ServiceAccount           string                 `yaml:"service_account"`
	MountServiceAccountToken bool                   `yaml:"mount_service_account_token"`
	ImagePullSecrets         []string               `yaml:"image_pull_secrets"`
	Labels                   map[string]string      `yaml:"labels"`
	Annotations              map[string]string      `yaml:"annotations"`
	CPURequest               string                 `yaml:"cpu_request"`
	CPULimit                 string                 `yaml:"cpu_limit"`
	MemoryRequest            string                 `yaml:"memory_request"`
	MemoryLimit              string                 `yaml:"memory_limit"`
	NodeSelector             map[string]string      `yaml:"node_selector"`
	Tolerations              []kubernetesToleration `yaml:"tolerations"`
	PersistentVolumes        []kubernetesVolume     `yaml:"persistent_volumes"`
	WorkerInit               lines                  `yaml:"worker_init"`
	Env                      []string               `yaml:"env"`
	RunID                    string                 `yaml:"run_id"`
	Walltime                 duration               `yaml:"walltime"`
	DeleteGrace              duration               `yaml:"delete_grace"`
	PendingFailAfter         duration               `yaml:"pending_fail_after"`
	RequestTimeout           duration               `yaml:"request_timeout"`
	NoLogs                   bool                   `yaml:"no_logs"`
}

func buildKubernetes(d *decoder, m *ast.MappingNode, path string) (builtProvider, error) {
	var o kubernetesFile
	if err := d.decode(m, path, &o); err != nil {
		return builtProvider{}, err
	}
	if err := d.oneOf(m, path, "pull_policy", o.PullPolicy, "Always", "IfNotPresent", "Never"); err != nil {
		return builtProvider{}, err
	}
	opts := kubernetes.Options{
		Namespace:                o.Namespace,
		Image:                    o.Image,
		PullPolicy:               corev1.PullPolicy(o.PullPolicy),
		ServiceAccount:           o.ServiceAccount,
		MountServiceAccountToken: o.MountServiceAccountToken,
		ImagePullSecrets:         o.ImagePullSecrets,
		Labels:                   o.Labels,
		Annotations:              o.Annotations,
		CPURequest:               o.CPURequest,
		CPULimit:                 o.CPULimit,
		MemoryRequest:            o.MemoryRequest,
		MemoryLimit:              o.MemoryLimit,
		NodeSelector:             o.NodeSelector,
		WorkerInit:               o.WorkerInit,
		Env:                      o.Env,
		RunID:                    o.RunID,
		Walltime:                 time.Duration(o.Walltime),
		DeleteGrace:              time.Duration(o.DeleteGrace),
		PendingFailAfter:         time.Duration(o.PendingFailAfter),
		RequestTimeout:           time.Duration(o.RequestTimeout),
		NoLogs:                   o.NoLogs,
	}
	for _, t := range o.Tolerations {
		kt := corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOperator(t.Operator), Value: t.Value, Effect: corev1.TaintEffect(t.Effect)}
		if t.TolerationSeconds != nil {
			s := int64(*t.TolerationSeconds)
			kt.TolerationSeconds = &s
		}
		opts.Tolerations = append(opts.Tolerations, kt)
	}
	for _, v := range o.PersistentVolumes {
		opts.PersistentVolumes = append(opts.PersistentVolumes, kubernetes.PersistentVolume{ClaimName: v.ClaimName, MountPath: v.MountPath, ReadOnly: v.ReadOnly})
	}
	p, err := kubernetes.NewDeferred(opts, o.Kubeconfig)
	var oe *kubernetes.OptionError
	if errors.As(err, &oe) {
		key := kubernetesKeys[oe.Option]
		if key == "" {
			key = "kind"
		}
		if oe.Value == "" {
			return builtProvider{}, d.keyError(m, path, key, "%s", oe.Msg)
		}
		return builtProvider{}, d.keyError(m, path, key, "%q: %s", oe.Value, oe.Msg)
	}
	if err != nil {
		return builtProvider{}, d.keyError(m, path, "kind", "%v", err)
	}
	return builtProvider{p: p, walltime: time.Duration(o.Walltime)}, nil
}
