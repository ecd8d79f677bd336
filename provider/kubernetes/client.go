package kubernetes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// NewFromKubeconfig returns a provider whose client is made from a
// kubeconfig file: path, or when path is "", the in-cluster configuration
// when the driver runs in a pod, else $KUBECONFIG or ~/.kube/config, as
// kubectl reads them. A leading "~/" in path is the home directory. No
// request is made to the cluster here. A client that cannot be made is a
// *ConfigError.
func NewFromKubeconfig(opts Options, path string) (*Provider, error) {
	p, err := newProvider(opts)
	if err != nil {
		return nil, err
	}
	client, ns, err := clientFromKubeconfig(path)
	if err != nil {
		return nil, err
	}
	p.setClient(client, ns)
	return p, nil
}

// NewDeferred is NewFromKubeconfig that reads the kubeconfig at the first
// Submit, Status or Cancel instead of now, so that a program can be
// configured for a cluster on a machine that has no access to one, and
// fail only if it uses the provider there. Options are checked now. Each
// call retries making the client until it succeeds; until then each
// returns the *ConfigError.
func NewDeferred(opts Options, path string) (*Provider, error) {
	p, err := newProvider(opts)
	if err != nil {
		return nil, err
	}
	p.connect = func() (kubernetes.Interface, string, error) { return clientFromKubeconfig(path) }
	return p, nil
}

// clientFromKubeconfig makes a client and returns it with the namespace of
// the configuration's context ("default" when it names none).
func clientFromKubeconfig(path string) (kubernetes.Interface, string, error) {
	cfg, ns, err := restConfig(path)
	if err != nil {
		return nil, "", &ConfigError{Kubeconfig: path, Err: err}
	}
	// client-go's default of 5 requests a second (burst 10) would make
	// Close take many seconds to delete a few hundred pods.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "parsl-go"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", &ConfigError{Kubeconfig: path, Err: err}
	}
	if ns == "" {
		ns = "default"
	}
	return client, ns, nil
}

func restConfig(path string) (*rest.Config, string, error) {
	if path == "" {
		// In a pod, its service account is the obvious identity, even when
		// the image happens to carry a kubeconfig.
		if cfg, err := rest.InClusterConfig(); err == nil {
			ns := "default"
			if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
				ns = strings.TrimSpace(string(b))
			}
			return cfg, ns, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		if rest, ok := strings.CutPrefix(path, "~/"); ok {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, "", err
			}
			path = filepath.Join(home, rest)
		}
		if _, err := os.Stat(path); err != nil {
			// clientcmd reports a missing explicit file too, but
			// without the path; os's error has it.
			return nil, "", err
		}
		rules.ExplicitPath = path
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, "", errors.New("no kubeconfig found, and not running in a pod")
		}
		return nil, "", err
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", err
	}
	return cfg, ns, nil
}
