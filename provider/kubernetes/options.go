package kubernetes

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Options configures the Kubernetes provider. Zero fields take the
// defaults; only Image is required.
type Options struct {
	// Namespace is where pods are made. Default "default" for New; for
	// NewFromKubeconfig and NewDeferred, the namespace of the kubeconfig's
	// current context (or of the pod the driver runs in), else "default",
	// as kubectl does.
	Namespace string
	// Image is the container image of the worker pool: it must hold a
	// build of the same program as the driver (the pool is the same
	// binary), at the path the executor starts (htex.Options.PoolCommand,
	// default the driver's own path).
	Image string
	// PullPolicy is the image pull policy: corev1.PullAlways,
	// PullIfNotPresent or PullNever; "" leaves the cluster's default
	// (Always for a :latest tag, else IfNotPresent).
	PullPolicy corev1.PullPolicy
	// ServiceAccount is the pod's service account; "" is the namespace's
	// default one.
	ServiceAccount string
	// MountServiceAccountToken mounts the service account's API token into
	// the pod. Off by default: a worker pool never calls the Kubernetes
	// API, so a pod that carries no credential is one less secret to leak.
	MountServiceAccountToken bool
	// ImagePullSecrets names secrets in Namespace that hold registry
	// credentials for a private Image (Parsl's `secret`); none by default.
	ImagePullSecrets []string
	// Labels and Annotations are added to every pod. The labels app,
	// parsl-block and parsl-run are the provider's own and cannot be set
	// here.
	Labels      map[string]string
	Annotations map[string]string
	// CPURequest, CPULimit, MemoryRequest and MemoryLimit are the worker
	// container's resources as Kubernetes quantities ("500m", "2",
	// "512Mi", "4Gi"); "" sets none. A request above its limit is an
	// error. The CPU limit (else request) is exported to the pool as
	// PARSL_CORES and the memory limit (else request) as PARSL_MEMORY_GB,
	// because inside a container the node's CPU count and free memory are
	// not the pod's share.
	CPURequest, CPULimit       string
	MemoryRequest, MemoryLimit string
	// NodeSelector restricts the nodes a pod may run on, by node label.
	NodeSelector map[string]string
	// Tolerations let pods run on tainted nodes.
	Tolerations []corev1.Toleration
	// PersistentVolumes are claims mounted into the worker container. The
	// htex executor hands pools the path of a configuration file in its
	// run directory, so a claim holding the run directory, mounted at the
	// same path, is how pods read it.
	PersistentVolumes []PersistentVolume
	// WorkerInit are shell lines run in the container before the pool
	// (`/bin/sh -c`), for example to set up the environment.
	WorkerInit []string
	// Env are NAME=value entries added to every pod's environment; the
	// environment of each Submit comes after them and wins.
	Env []string
	// RunID is the value of every pod's parsl-run label, which Status
	// uses to list this provider's pods in one call. Default: random, so
	// that two drivers sharing a namespace never see each other's pods.
	RunID string
	// Walltime, when set, is each pod's activeDeadlineSeconds: Kubernetes
	// stops a pod that runs longer, and Status reports it as Timeout. The
	// executor learns it through BlockWalltime. Default none.
	Walltime time.Duration
	// DeleteGrace is the grace period of the pod deletions that Cancel
	// makes (SIGTERM, then SIGKILL after it); default 2 s.
	DeleteGrace time.Duration
	// PendingFailAfter is how long a pending pod's container may wait for
	// a reason that usually needs a person to fix (ImagePullBackOff,
	// ErrImagePull, CrashLoopBackOff, CreateContainerConfigError, ...)
	// before Status reports the pod Failed and deletes it. A registry or
	// a config map can be briefly unavailable, so these get a grace;
	// InvalidImageName and ErrImageNeverPull cannot heal and fail at once.
	// Default 1 minute.
	PendingFailAfter time.Duration
	// RequestTimeout bounds each API request; default 60 s.
	RequestTimeout time.Duration
	// NoLogs turns off saving the container log. By default, when a pod
	// ends (Completed, Failed or Timeout) Status reads its log once, up to
	// LogLimitBytes, into the stdout path of its Submit, and for a failed
	// pod into the stderr path too, so that a block's failure can be read
	// where the other providers leave it.
	NoLogs bool
}

// PersistentVolume is a persistent volume claim mounted into the worker
// container.
type PersistentVolume struct {
	// ClaimName is the PersistentVolumeClaim, in the provider's namespace.
	ClaimName string
	// MountPath is where the container sees it.
	MountPath string
	// ReadOnly mounts it read-only.
	ReadOnly bool
}

// LogLimitBytes is the most of a pod's log that Status saves.
const LogLimitBytes = 8 << 20

// OptionError is a bad Options field, reported by the constructors.
type OptionError struct {
	// Option is the Options field, "CPURequest".
	Option string
	// Value is the value given, as text.
	Value string
	// Msg says what is wrong and what is accepted.
	Msg string
	// Err is the underlying parse error, if any.
	Err error
}

// Error names the field, the value and the problem.
func (e *OptionError) Error() string {
	return fmt.Sprintf("kubernetes provider: Options.%s %q: %s", e.Option, e.Value, e.Msg)
}

// Unwrap returns the underlying error.
func (e *OptionError) Unwrap() error { return e.Err }

// reserved are the labels the provider sets on every pod.
var reserved = []string{labelApp, labelBlock, labelRun}

const (
	labelApp      = "app"
	labelBlock    = "parsl-block"
	labelRun      = "parsl-run"
	annotBlock    = "parsl/block-id"
	containerName = "parsl-worker"
)

// settings is what New derives from Options once.
type settings struct {
	resources corev1.ResourceRequirements
	// env are PARSL_CORES and PARSL_MEMORY_GB, from the resources.
	env []corev1.EnvVar
	// optEnv is Options.Env, parsed.
	optEnv []corev1.EnvVar
}

// check fills in the defaults of o and validates it.
func check(o *Options) (settings, error) {
	var s settings
	bad := func(opt, val, msg string, err error) (settings, error) {
		return settings{}, &OptionError{Option: opt, Value: val, Msg: msg, Err: err}
	}
	if strings.TrimSpace(o.Image) == "" {
		return bad("Image", o.Image, "an image is required: the container image that holds the worker pool (a build of this program)", nil)
	}
	if strings.ContainsAny(o.Image, " \t\r\n") {
		return bad("Image", o.Image, "an image reference has no white space", nil)
	}
	if o.Namespace != "" {
		if msgs := content.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
			return bad("Namespace", o.Namespace, "not a namespace name: "+strings.Join(msgs, "; "), nil)
		}
	}
	switch o.PullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return bad("PullPolicy", string(o.PullPolicy), "use Always, IfNotPresent or Never", nil)
	}
	if o.ServiceAccount != "" {
		if msgs := content.IsDNS1123Subdomain(o.ServiceAccount); len(msgs) > 0 {
			return bad("ServiceAccount", o.ServiceAccount, "not a service account name: "+strings.Join(msgs, "; "), nil)
		}
	}
	for _, name := range o.ImagePullSecrets {
		if msgs := content.IsDNS1123Subdomain(name); len(msgs) > 0 {
			return bad("ImagePullSecrets", name, "not a secret name: "+strings.Join(msgs, "; "), nil)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(o.Labels)) {
		if slices.Contains(reserved, k) {
			return bad("Labels", k, "is set by the provider on every pod; choose another key", nil)
		}
		if msgs := content.IsLabelKey(k); len(msgs) > 0 {
			return bad("Labels", k, "not a label key: "+strings.Join(msgs, "; "), nil)
		}
		if msgs := content.IsLabelValue(o.Labels[k]); len(msgs) > 0 {
			return bad("Labels", o.Labels[k], "not a label value (key "+k+"): "+strings.Join(msgs, "; "), nil)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(o.NodeSelector)) {
		if msgs := content.IsLabelKey(k); len(msgs) > 0 {
			return bad("NodeSelector", k, "not a label key: "+strings.Join(msgs, "; "), nil)
		}
		if msgs := content.IsLabelValue(o.NodeSelector[k]); len(msgs) > 0 {
			return bad("NodeSelector", o.NodeSelector[k], "not a label value (key "+k+"): "+strings.Join(msgs, "; "), nil)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(o.Annotations)) {
		if k == annotBlock {
			return bad("Annotations", k, "is set by the provider on every pod; choose another key", nil)
		}
		if msgs := content.IsLabelKey(k); len(msgs) > 0 {
			return bad("Annotations", k, "not an annotation key: "+strings.Join(msgs, "; "), nil)
		}
	}
	if o.RunID == "" {
		o.RunID = randomSuffix(8)
	} else if msgs := content.IsLabelValue(o.RunID); len(msgs) > 0 {
		return bad("RunID", o.RunID, "must be a label value: "+strings.Join(msgs, "; "), nil)
	}
	for i, v := range o.PersistentVolumes {
		if msgs := content.IsDNS1123Subdomain(v.ClaimName); len(msgs) > 0 {
			return bad("PersistentVolumes", v.ClaimName, "not a claim name: "+strings.Join(msgs, "; "), nil)
		}
		if !strings.HasPrefix(v.MountPath, "/") {
			return bad("PersistentVolumes", v.MountPath, fmt.Sprintf("the mount path of claim %s (entry %d) must be absolute", v.ClaimName, i), nil)
		}
	}
	var err error
	if s.optEnv, err = parseEnv(o.Env); err != nil {
		var ee *envError
		errors.As(err, &ee)
		return bad("Env", ee.entry, ee.msg, nil)
	}
	if o.Walltime < 0 || o.DeleteGrace < 0 || o.PendingFailAfter < 0 || o.RequestTimeout < 0 {
		return bad("Walltime, DeleteGrace, PendingFailAfter or RequestTimeout", "", "durations must not be negative", nil)
	}
	if o.DeleteGrace == 0 {
		o.DeleteGrace = 2 * time.Second
	}
	if o.PendingFailAfter == 0 {
		o.PendingFailAfter = time.Minute
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 60 * time.Second
	}

	// Resources.
	quantities := []struct {
		opt, val string
		name     corev1.ResourceName
		list     *corev1.ResourceList
	}{
		{"CPURequest", o.CPURequest, corev1.ResourceCPU, &s.resources.Requests},
		{"CPULimit", o.CPULimit, corev1.ResourceCPU, &s.resources.Limits},
		{"MemoryRequest", o.MemoryRequest, corev1.ResourceMemory, &s.resources.Requests},
		{"MemoryLimit", o.MemoryLimit, corev1.ResourceMemory, &s.resources.Limits},
	}
	for _, q := range quantities {
		if q.val == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.val)
		if err != nil {
			return bad(q.opt, q.val, `not a Kubernetes quantity; write for example "500m" or "2" for CPUs, "512Mi" or "4Gi" for memory`, err)
		}
		if v.Sign() <= 0 {
			return bad(q.opt, q.val, "must be more than zero", nil)
		}
		if *q.list == nil {
			*q.list = corev1.ResourceList{}
		}
		(*q.list)[q.name] = v
	}
	for _, r := range []struct {
		name     corev1.ResourceName
		req, lim string
	}{{corev1.ResourceCPU, "CPURequest", "CPULimit"}, {corev1.ResourceMemory, "MemoryRequest", "MemoryLimit"}} {
		req, okr := s.resources.Requests[r.name]
		lim, okl := s.resources.Limits[r.name]
		if okr && okl && req.Cmp(lim) > 0 {
			return bad(r.req, req.String(), fmt.Sprintf("is more than %s %s; Kubernetes refuses a request above its limit", r.lim, lim.String()), nil)
		}
	}
	if q, ok := pick(s.resources, corev1.ResourceCPU); ok {
		s.env = append(s.env, corev1.EnvVar{Name: "PARSL_CORES", Value: strconv.FormatFloat(q.AsApproximateFloat64(), 'g', -1, 64)})
	}
	if q, ok := pick(s.resources, corev1.ResourceMemory); ok {
		s.env = append(s.env, corev1.EnvVar{Name: "PARSL_MEMORY_GB", Value: strconv.FormatFloat(q.AsApproximateFloat64()/(1<<30), 'g', 6, 64)})
	}
	return s, nil
}

// pick returns the limit of a resource, else its request.
func pick(r corev1.ResourceRequirements, name corev1.ResourceName) (resource.Quantity, bool) {
	if q, ok := r.Limits[name]; ok {
		return q, true
	}
	q, ok := r.Requests[name]
	return q, ok
}

type envError struct{ entry, msg string }

func (e *envError) Error() string { return fmt.Sprintf("environment entry %q: %s", e.entry, e.msg) }

// parseEnv turns NAME=value entries into container variables; a later
// entry for a name replaces an earlier one in its place.
func parseEnv(env []string) ([]corev1.EnvVar, error) {
	return mergeEnv(nil, env)
}

// mergeEnv appends NAME=value entries to vars, a later one for a name
// replacing the earlier one in its place (Kubernetes would keep both and
// leave which one wins to the reader).
func mergeEnv(vars []corev1.EnvVar, env []string) ([]corev1.EnvVar, error) {
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, &envError{kv, "not NAME=value"}
		}
		if msgs := validation.IsEnvVarName(k); len(msgs) > 0 {
			return nil, &envError{kv, "not a variable name: " + strings.Join(msgs, "; ")}
		}
		if i := slices.IndexFunc(vars, func(e corev1.EnvVar) bool { return e.Name == k }); i >= 0 {
			vars[i].Value = v
			continue
		}
		vars = append(vars, corev1.EnvVar{Name: k, Value: v})
	}
	return vars, nil
}
