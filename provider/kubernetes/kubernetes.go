// Package kubernetes is the provider for Kubernetes: each block is one pod
// (as in Parsl's KubernetesProvider, a block is one node), made through
// client-go in one namespace, watched with one List by label per Status
// call and removed with a graceful delete.
//
// Pods write their output to the cluster, not to files: `kubectl logs
// <pod>` has a block's stdout and stderr, interleaved. Submit records the
// stdout and stderr paths it is given and Status fills them with the
// container log once a pod has ended (see Options.NoLogs).
//
// The worker pool in a pod is the same program as the driver, so Options.
// Image must hold a build of it; the pod must reach the interchange's
// address (htex.Options.Address) and read the pool configuration file that
// the executor writes in its run directory (Options.PersistentVolumes).
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/internal/batch"
)

// Provider runs blocks as Kubernetes pods. It is safe for concurrent use.
// Job IDs are pod names.
type Provider struct {
	opts Options
	set  settings
	// now is time.Now, replaced in tests of PendingFailAfter.
	now func() time.Time

	// cmu guards the client, which NewDeferred makes at the first use.
	cmu     sync.Mutex
	client  kubernetes.Interface
	ns      string
	connect func() (kubernetes.Interface, string, error)

	mu   sync.Mutex
	jobs map[string]*job
}

type job struct {
	// submitted is false for a pod this provider only asked about (of an
	// earlier driver): it may not carry this provider's run label.
	submitted      bool
	blockID        string
	stdout, stderr string
	cancelled      bool
	// badSince is when Status first saw the pod pending with a waiting
	// reason that usually needs a person (zero: not seen so).
	badSince time.Time
	// final is the status once it is terminal; it is not asked again.
	final *provider.JobStatus
	// logged is set once the log was saved (or its saving began).
	logged bool
}

// New returns a provider that uses client (a clientset, or the fake one
// of k8s.io/client-go/kubernetes/fake in tests). Bad Options are an
// *OptionError. No request is made until the first Submit.
func New(opts Options, client kubernetes.Interface) (*Provider, error) {
	if client == nil {
		return nil, errors.New("kubernetes provider: New needs a client; use NewFromKubeconfig to make one from a kubeconfig")
	}
	p, err := newProvider(opts)
	if err != nil {
		return nil, err
	}
	p.setClient(client, "default")
	return p, nil
}

func newProvider(opts Options) (*Provider, error) {
	s, err := check(&opts)
	if err != nil {
		return nil, err
	}
	return &Provider{opts: opts, set: s, now: time.Now, jobs: map[string]*job{}}, nil
}

// setClient sets the client and, unless Options.Namespace is set, the
// namespace.
func (p *Provider) setClient(c kubernetes.Interface, ns string) {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	p.client = c
	p.ns = ns
	if p.opts.Namespace != "" {
		p.ns = p.opts.Namespace
	}
}

// api returns the client and namespace, making the client first for
// NewDeferred. The lock is held while it is made so that concurrent first
// calls make one.
func (p *Provider) api() (kubernetes.Interface, string, error) {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	if p.client == nil {
		c, ns, err := p.connect()
		if err != nil {
			return nil, "", err
		}
		p.client, p.ns = c, ns
		if p.opts.Namespace != "" {
			p.ns = p.opts.Namespace
		}
	}
	return p.client, p.ns, nil
}

// RunID returns the value of the parsl-run label on this provider's pods:
// `kubectl get pods -l parsl-run=<RunID>` lists them.
func (p *Provider) RunID() string { return p.opts.RunID }

// BlockWalltime returns Options.Walltime, so that an executor drains its
// pools before Kubernetes stops their pods (0: no limit).
func (p *Provider) BlockWalltime() time.Duration { return p.opts.Walltime }

// Submit implements provider.Provider: it makes one pod that runs
// command with `/bin/sh -c`, after Options.WorkerInit, with env added to
// Options.Env. The pod's name, returned as the job ID, is PodName(blockID,
// random). The stdout and stderr paths are where Status saves the
// container's log once the pod has ended; the pod itself logs to the
// cluster (`kubectl logs`). An API failure is an *APIError.
func (p *Provider) Submit(ctx context.Context, command []string, env []string, blockID string, stdout, stderr string) (string, error) {
	if err := batch.PrepareSubmit(command, &stdout, &stderr); err != nil {
		return "", fmt.Errorf("kubernetes provider: block %s: %w", blockID, err)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	client, ns, err := p.api()
	if err != nil {
		return "", err
	}
	pod, err := p.podSpec(command, env, blockID, ns)
	if err != nil {
		return "", fmt.Errorf("kubernetes provider: block %s: %w", blockID, err)
	}
	// A name clash is all but impossible with 2^30 suffixes per block,
	// but it costs only a retry with another suffix.
	for try := 0; ; try++ {
		pod.Name = PodName(blockID, randomSuffix(suffixLen))
		cctx, cancel := context.WithTimeout(ctx, p.opts.RequestTimeout)
		_, err = client.CoreV1().Pods(ns).Create(cctx, pod, metav1.CreateOptions{})
		cancel()
		if err == nil {
			break
		}
		if !apierrors.IsAlreadyExists(err) || try == 2 {
			return "", &APIError{Op: "create pod", Namespace: ns, Pod: pod.Name, BlockID: blockID, Err: err}
		}
	}
	p.mu.Lock()
	p.jobs[pod.Name] = &job{submitted: true, blockID: blockID, stdout: stdout, stderr: stderr}
	p.mu.Unlock()
	return pod.Name, nil
}

// podSpec builds the pod of a block, without its name.
func (p *Provider) podSpec(command, env []string, blockID, ns string) (*corev1.Pod, error) {
	vars := append([]corev1.EnvVar(nil), p.set.env...)
	var err error
	for _, v := range p.set.optEnv {
		if vars, err = mergeEnv(vars, []string{v.Name + "=" + v.Value}); err != nil {
			return nil, err
		}
	}
	if vars, err = mergeEnv(vars, env); err != nil {
		return nil, err
	}
	var script strings.Builder
	for _, line := range p.opts.WorkerInit {
		script.WriteString(line + "\n")
	}
	// exec: the pool replaces the shell, so the SIGTERM of a pod deletion
	// reaches it and it can leave cleanly within the grace period.
	script.WriteString("exec")
	for _, a := range command {
		script.WriteString(" " + batch.ShellQuote(a))
	}
	labels := map[string]string{}
	for k, v := range p.opts.Labels {
		labels[k] = v
	}
	labels[labelApp] = "parsl"
	labels[labelBlock] = labelValue(blockID)
	labels[labelRun] = p.opts.RunID
	annotations := map[string]string{}
	for k, v := range p.opts.Annotations {
		annotations[k] = v
	}
	// The label holds a cleaned-up block ID; the annotation the exact one.
	annotations[annotBlock] = blockID
	mount := p.opts.MountServiceAccountToken
	c := corev1.Container{
		Name:            containerName,
		Image:           p.opts.Image,
		ImagePullPolicy: p.opts.PullPolicy,
		Command:         []string{"/bin/sh", "-c", script.String()},
		Env:             vars,
		Resources:       *p.set.resources.DeepCopy(),
	}
	spec := corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		ServiceAccountName:           p.opts.ServiceAccount,
		AutomountServiceAccountToken: &mount,
		NodeSelector:                 p.opts.NodeSelector,
		Tolerations:                  p.opts.Tolerations,
	}
	for _, s := range p.opts.ImagePullSecrets {
		spec.ImagePullSecrets = append(spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	for i, v := range p.opts.PersistentVolumes {
		name := fmt.Sprintf("parsl-volume-%d", i)
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.ClaimName, ReadOnly: v.ReadOnly}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: v.MountPath, ReadOnly: v.ReadOnly})
	}
	if p.opts.Walltime > 0 {
		s := int64((p.opts.Walltime + time.Second - 1) / time.Second)
		spec.ActiveDeadlineSeconds = &s
	}
	spec.Containers = []corev1.Container{c}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Labels: labels, Annotations: annotations},
		Spec:       spec,
	}, nil
}

// Cancel implements provider.Provider: it deletes the pods with
// Options.DeleteGrace as their grace period (SIGTERM, then SIGKILL after
// it), then waits until the API no longer has them, or ctx ends. A pod
// that is already gone is not an error. Status reports cancelled pods as
// Cancelled.
func (p *Provider) Cancel(ctx context.Context, ids []string) error {
	var errs []error
	var names []string
	for _, id := range ids {
		if !validPodName(id) {
			errs = append(errs, fmt.Errorf("kubernetes provider: cancel: %q is not a pod name", id))
			continue
		}
		if !slices.Contains(names, id) {
			names = append(names, id)
		}
	}
	if len(names) == 0 {
		return errors.Join(errs...)
	}
	client, ns, err := p.api()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	p.mu.Lock()
	for _, id := range names {
		if j := p.jobs[id]; j != nil {
			j.cancelled = true
		} else {
			p.jobs[id] = &job{cancelled: true}
		}
	}
	p.mu.Unlock()

	grace := int64((p.opts.DeleteGrace + time.Second - 1) / time.Second)
	// A few deletions at a time: Close cancels every block at once, and
	// one request after another would take a round trip per pod.
	const parallel = 8
	var (
		wg      sync.WaitGroup
		emu     sync.Mutex
		deleted []string
		sem     = make(chan struct{}, parallel)
	)
	for _, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, p.opts.RequestTimeout)
			defer cancel()
			err := client.CoreV1().Pods(ns).Delete(cctx, name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
			emu.Lock()
			defer emu.Unlock()
			switch {
			case err == nil:
				deleted = append(deleted, name)
			case apierrors.IsNotFound(err):
			default:
				errs = append(errs, &APIError{Op: "delete pod", Namespace: ns, Pod: name, Err: err})
			}
		}()
	}
	wg.Wait()

	left := deleted
	delay := 50 * time.Millisecond
	for len(left) > 0 {
		pods, err := p.lookup(ctx, client, ns, left)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return errors.Join(append(errs, fmt.Errorf("kubernetes provider: checking that deleted pods are gone: %w", err))...)
		}
		left = left[:0:0]
		for name := range pods {
			left = append(left, name)
		}
		if len(left) == 0 {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
			delay = min(2*delay, time.Second)
			continue
		}
		break
	}
	if len(left) > 0 {
		errs = append(errs, fmt.Errorf("kubernetes provider: pods %s in namespace %s still exist after their deletion (check `kubectl get pod %s -n %s`): %w",
			strings.Join(left, ", "), ns, left[0], ns, ctx.Err()))
	}
	return errors.Join(errs...)
}

// lookup returns the pods among names that exist, by name. The pods this
// provider submitted are listed by its run label in one request when
// there are several; others are asked for one by one.
func (p *Provider) lookup(ctx context.Context, client kubernetes.Interface, ns string, names []string) (map[string]*corev1.Pod, error) {
	var ours, others []string
	p.mu.Lock()
	for _, n := range names {
		if j := p.jobs[n]; j != nil && j.submitted {
			ours = append(ours, n)
		} else {
			others = append(others, n)
		}
	}
	p.mu.Unlock()
	found := map[string]*corev1.Pod{}
	if len(ours) >= 2 {
		want := make(map[string]bool, len(ours))
		for _, n := range ours {
			want[n] = true
		}
		sel := labelApp + "=parsl," + labelRun + "=" + p.opts.RunID
		cctx, cancel := context.WithTimeout(ctx, p.opts.RequestTimeout)
		list, err := client.CoreV1().Pods(ns).List(cctx, metav1.ListOptions{LabelSelector: sel})
		cancel()
		if err != nil {
			return nil, &APIError{Op: "list pods", Namespace: ns, Pod: sel, Err: err}
		}
		for i := range list.Items {
			pod := &list.Items[i]
			if want[pod.Name] {
				found[pod.Name] = pod
			}
		}
	} else {
		others = append(others, ours...)
	}
	for _, n := range others {
		cctx, cancel := context.WithTimeout(ctx, p.opts.RequestTimeout)
		pod, err := client.CoreV1().Pods(ns).Get(cctx, n, metav1.GetOptions{})
		cancel()
		switch {
		case err == nil:
			found[n] = pod
		case apierrors.IsNotFound(err):
		default:
			return nil, &APIError{Op: "get pod", Namespace: ns, Pod: n, Err: err}
		}
	}
	return found, nil
}

var _ provider.Provider = (*Provider)(nil)
