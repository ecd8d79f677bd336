package kubernetes

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// A kubeconfig as kubectl writes it; the server is never contacted.
const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: lab
  context:
    cluster: lab
    user: me
    namespace: science
current-context: lab
users:
- name: me
  user:
    token: not-a-real-token
`

// noCluster makes the default places hold no configuration: no
// KUBECONFIG, an empty home, not in a pod.
func noCluster(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
}

func TestNewFromKubeconfig(t *testing.T) {
	noCluster(t)
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := NewFromKubeconfig(Options{Image: "i"}, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ns, _ := p.api(); ns != "science" {
		t.Errorf("namespace %q, want the context's, science", ns)
	}
	p, err = NewFromKubeconfig(Options{Image: "i", Namespace: "other"}, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ns, _ := p.api(); ns != "other" {
		t.Errorf("namespace %q, want Options.Namespace, other", ns)
	}
	// A path from the home directory, and KUBECONFIG for "" (clientcmd
	// fixes ~/.kube/config at init, so HOME cannot move that one).
	home := os.Getenv("HOME")
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".kube", "config"), []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFromKubeconfig(Options{Image: "i"}, "~/.kube/config"); err != nil {
		t.Errorf("kubeconfig ~/.kube/config: %v", err)
	}
	t.Setenv("KUBECONFIG", path)
	p, err = NewFromKubeconfig(Options{Image: "i"}, "")
	if err != nil {
		t.Fatalf("KUBECONFIG: %v", err)
	}
	if _, ns, _ := p.api(); ns != "science" {
		t.Errorf("namespace %q from KUBECONFIG", ns)
	}
	// Options are checked before the kubeconfig is read.
	var oe *OptionError
	if _, err := NewFromKubeconfig(Options{}, path); !errors.As(err, &oe) {
		t.Errorf("no image: %v", err)
	}
}

func TestNoKubeconfig(t *testing.T) {
	noCluster(t)
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := NewFromKubeconfig(Options{Image: "i"}, missing)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Kubeconfig != missing || !errors.Is(err, fs.ErrNotExist) ||
		!strings.Contains(err.Error(), "no Kubernetes client from kubeconfig "+missing) || !strings.Contains(err.Error(), "set KUBECONFIG") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := os.Stat(clientcmd.RecommendedHomeFile); err == nil {
		t.Logf("not checking the error for no kubeconfig at all: %s exists", clientcmd.RecommendedHomeFile)
	} else {
		_, err = NewFromKubeconfig(Options{Image: "i"}, "")
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "no kubeconfig found, and not running in a pod") {
			t.Errorf("nothing anywhere: %v", err)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("clusters: [:"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = NewFromKubeconfig(Options{Image: "i"}, bad); !errors.As(err, &ce) || ce.Kubeconfig != bad {
		t.Errorf("unreadable file: %v", err)
	}
}

// TestNewDeferred checks that the kubeconfig is read at the first use,
// and each use until it works.
func TestNewDeferred(t *testing.T) {
	noCluster(t)
	path := filepath.Join(t.TempDir(), "config")
	p, err := NewDeferred(Options{Image: "i"}, path)
	if err != nil {
		t.Fatalf("NewDeferred read the kubeconfig early: %v", err)
	}
	ctx := context.Background()
	var ce *ConfigError
	if _, err := p.Status(ctx, []string{"parsl-a-bbbbbb"}); !errors.As(err, &ce) || ce.Kubeconfig != path {
		t.Errorf("Status without a kubeconfig: %v", err)
	}
	if _, err := p.Submit(ctx, []string{"x"}, nil, "b", "o", "e"); !errors.As(err, &ce) {
		t.Errorf("Submit without a kubeconfig: %v", err)
	}
	if err := p.Cancel(ctx, []string{"parsl-a-bbbbbb"}); !errors.As(err, &ce) {
		t.Errorf("Cancel without a kubeconfig: %v", err)
	}
	// Status of nothing, or of no pod name, needs no client.
	if sts, err := p.Status(ctx, []string{"Not A Pod"}); err != nil || len(sts) != 1 {
		t.Errorf("Status of no pod name: %v", err)
	}
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ns, err := p.api(); err != nil || ns != "science" {
		t.Errorf("after the kubeconfig appeared: namespace %q, %v", ns, err)
	}
	if _, err := NewDeferred(Options{Image: "i", CPULimit: "lots"}, path); err == nil {
		t.Error("NewDeferred did not check Options")
	}
}
