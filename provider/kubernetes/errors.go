package kubernetes

import (
	"context"
	"errors"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// APIError is a Kubernetes API request that failed. It unwraps to the
// client's error, so apierrors.IsForbidden, IsNotFound and the like work
// on it, as does errors.Is(err, context.DeadlineExceeded).
type APIError struct {
	// Op is what was asked: "create pod", "get pod", "list pods",
	// "delete pod", "read log".
	Op string
	// Namespace is the namespace asked about.
	Namespace string
	// Pod is the pod's name; for "list pods", the label selector.
	Pod string
	// BlockID is the block being submitted, for "create pod".
	BlockID string
	// Err is the client's error.
	Err error
}

// Error names the request, the pod, the cause and what to check.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("kubernetes provider: ")
	if e.BlockID != "" {
		b.WriteString("block " + e.BlockID + ": ")
	}
	b.WriteString(e.Op + " ")
	if e.Op == "list pods" {
		b.WriteString("with labels " + e.Pod)
	} else {
		b.WriteString(e.Pod)
	}
	b.WriteString(" in namespace " + e.Namespace + ": " + e.Err.Error())
	if h := e.hint(); h != "" {
		b.WriteString("; " + h)
	}
	return b.String()
}

// Unwrap returns the client's error.
func (e *APIError) Unwrap() error { return e.Err }

func (e *APIError) hint() string {
	verb := map[string]string{"create pod": "create", "get pod": "get", "list pods": "list", "delete pod": "delete", "read log": "get"}[e.Op]
	res := "pods"
	if e.Op == "read log" {
		res = "pods/log"
	}
	switch {
	case apierrors.IsForbidden(e.Err):
		return "the account lacks permission: check with `kubectl auth can-i " + verb + " " + res + " -n " + e.Namespace + "` and grant it a Role"
	case apierrors.IsUnauthorized(e.Err):
		return "the cluster did not accept the credentials: refresh them in the kubeconfig (or the service account token)"
	case apierrors.IsInvalid(e.Err), apierrors.IsBadRequest(e.Err):
		return "the pod was refused as invalid: check the provider's Options (image, resources, labels, tolerations)"
	case e.Op == "create pod" && apierrors.IsNotFound(e.Err):
		return "does namespace " + e.Namespace + " exist? (`kubectl get namespace " + e.Namespace + "`)"
	case apierrors.IsTimeout(e.Err), apierrors.IsServerTimeout(e.Err), apierrors.IsServiceUnavailable(e.Err),
		apierrors.IsTooManyRequests(e.Err), errors.Is(e.Err, context.DeadlineExceeded):
		return "the API server is slow or unreachable: check `kubectl get --raw /readyz`, or raise Options.RequestTimeout"
	case apierrors.IsAlreadyExists(e.Err):
		return "a pod of that name already exists: is another driver using the same RunID?"
	}
	return ""
}

// ConfigError is a Kubernetes client that could not be made: no
// kubeconfig, or one that cannot be read or used.
type ConfigError struct {
	// Kubeconfig is the path that was given, "" for the default places.
	Kubeconfig string
	// Err is the cause.
	Err error
}

// Error says which configuration failed and where a client can come from.
func (e *ConfigError) Error() string {
	where := "the default kubeconfig ($KUBECONFIG, else ~/.kube/config)"
	if e.Kubeconfig != "" {
		where = "kubeconfig " + e.Kubeconfig
	}
	return "kubernetes provider: no Kubernetes client from " + where + ": " + e.Err.Error() +
		"; give the path of a kubeconfig file (kubeconfig: in a configuration file), set KUBECONFIG, or run the driver in a pod of the cluster"
}

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }
