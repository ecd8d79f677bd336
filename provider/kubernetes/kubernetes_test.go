package kubernetes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/parsl-go/parsl/provider"
)

var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// newTest returns a provider on a fake clientset, with a clock the test
// moves.
func newTest(t *testing.T, opts Options) (*Provider, *fake.Clientset, *time.Time) {
	t.Helper()
	if opts.Image == "" {
		opts.Image = "registry.example/parsl-app:1"
	}
	client := fake.NewClientset()
	p, err := New(opts, client)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p.now = func() time.Time { return now }
	return p, client, &now
}

// submit submits a block and returns its pod as the API has it.
func submit(t *testing.T, p *Provider, client *fake.Clientset, blockID string) *corev1.Pod {
	t.Helper()
	dir := t.TempDir()
	id, err := p.Submit(context.Background(), []string{"/app/prog", "--x"}, []string{"PARSL_ROLE=pool"}, blockID,
		filepath.Join(dir, "out"), filepath.Join(dir, "err"))
	if err != nil {
		t.Fatal(err)
	}
	pod, err := client.CoreV1().Pods(p.ns).Get(context.Background(), id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// setStatus replaces a pod's status (and deletion mark) in the fake API.
func setStatus(t *testing.T, client *fake.Clientset, pod *corev1.Pod, st corev1.PodStatus, deleting bool) {
	t.Helper()
	pod = pod.DeepCopy()
	pod.Status = st
	if deleting {
		ts := metav1.Now()
		pod.DeletionTimestamp = &ts
	}
	if err := client.Tracker().Update(podsGVR, pod, pod.Namespace); err != nil {
		t.Fatal(err)
	}
}

func TestSubmitBuildsPod(t *testing.T) {
	tol := []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	p, client, _ := newTest(t, Options{
		Namespace:         "science",
		Image:             "registry.example/app:2",
		PullPolicy:        corev1.PullAlways,
		ServiceAccount:    "runner",
		ImagePullSecrets:  []string{"regcred"},
		Labels:            map[string]string{"team": "astro"},
		Annotations:       map[string]string{"example.org/owner": "alice"},
		CPURequest:        "500m",
		CPULimit:          "2",
		MemoryRequest:     "1Gi",
		MemoryLimit:       "2Gi",
		NodeSelector:      map[string]string{"pool": "batch"},
		Tolerations:       tol,
		PersistentVolumes: []PersistentVolume{{ClaimName: "runs", MountPath: "/runs"}},
		WorkerInit:        []string{"cd /work", "export A=1"},
		Env:               []string{"X=1", "PARSL_CORES=3", "SHARED=opt"},
		RunID:             "run7",
		Walltime:          90*time.Minute + 500*time.Millisecond,
	})
	ctx := context.Background()
	dir := t.TempDir()
	id, err := p.Submit(ctx, []string{"/app/prog", "it's", "$HOME"}, []string{"PARSL_ROLE=pool", "SHARED=call"}, "htex.0",
		filepath.Join(dir, "b.out"), filepath.Join(dir, "b.err"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^parsl-htex-0-[a-z2-7]{6}$`).MatchString(id) {
		t.Errorf("pod name %q, want parsl-htex-0-<6 random>", id)
	}
	pod, err := client.CoreV1().Pods("science").Get(ctx, id, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pod %s not in namespace science: %v", id, err)
	}
	wantLabels := map[string]string{"app": "parsl", "parsl-block": "htex.0", "parsl-run": "run7", "team": "astro"}
	if !reflect.DeepEqual(pod.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", pod.Labels, wantLabels)
	}
	if want := map[string]string{"example.org/owner": "alice", "parsl/block-id": "htex.0"}; !reflect.DeepEqual(pod.Annotations, want) {
		t.Errorf("annotations %v, want %v", pod.Annotations, want)
	}
	s := pod.Spec
	if s.RestartPolicy != corev1.RestartPolicyNever || s.ServiceAccountName != "runner" ||
		s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken ||
		!reflect.DeepEqual(s.NodeSelector, map[string]string{"pool": "batch"}) || !reflect.DeepEqual(s.Tolerations, tol) ||
		!reflect.DeepEqual(s.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "regcred"}}) ||
		s.ActiveDeadlineSeconds == nil || *s.ActiveDeadlineSeconds != 5401 {
		t.Errorf("pod spec %+v", s)
	}
	if len(s.Volumes) != 1 || s.Volumes[0].PersistentVolumeClaim == nil || s.Volumes[0].PersistentVolumeClaim.ClaimName != "runs" {
		t.Errorf("volumes %+v", s.Volumes)
	}
	if len(s.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(s.Containers))
	}
	c := s.Containers[0]
	if c.Name != "parsl-worker" || c.Image != "registry.example/app:2" || c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("container %s image %s policy %s", c.Name, c.Image, c.ImagePullPolicy)
	}
	wantCmd := []string{"/bin/sh", "-c", "cd /work\nexport A=1\nexec /app/prog 'it'\\''s' '$HOME'"}
	if !reflect.DeepEqual(c.Command, wantCmd) {
		t.Errorf("command %q, want %q", c.Command, wantCmd)
	}
	// PARSL_CORES comes from the CPU limit, then Options.Env overrides
	// it in place; the call's env wins over Options.Env.
	wantEnv := []corev1.EnvVar{{Name: "PARSL_CORES", Value: "3"}, {Name: "PARSL_MEMORY_GB", Value: "2"},
		{Name: "X", Value: "1"}, {Name: "SHARED", Value: "call"}, {Name: "PARSL_ROLE", Value: "pool"}}
	if !reflect.DeepEqual(c.Env, wantEnv) {
		t.Errorf("env %v, want %v", c.Env, wantEnv)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/runs" || c.VolumeMounts[0].Name != s.Volumes[0].Name {
		t.Errorf("mounts %+v", c.VolumeMounts)
	}
	want := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("2Gi")},
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if g, w := c.Resources.Requests[r], want.Requests[r]; g.Cmp(w) != 0 {
			t.Errorf("request %s = %s, want %s", r, g.String(), w.String())
		}
		if g, w := c.Resources.Limits[r], want.Limits[r]; g.Cmp(w) != 0 {
			t.Errorf("limit %s = %s, want %s", r, g.String(), w.String())
		}
	}
	if p.BlockWalltime() != 90*time.Minute+500*time.Millisecond {
		t.Errorf("BlockWalltime %v", p.BlockWalltime())
	}
}

func TestSubmitDefaults(t *testing.T) {
	p, client, _ := newTest(t, Options{})
	pod := submit(t, p, client, "b")
	if pod.Namespace != "default" || pod.Labels["parsl-run"] != p.RunID() || len(p.RunID()) != 8 {
		t.Errorf("namespace %q, run label %q (RunID %q)", pod.Namespace, pod.Labels["parsl-run"], p.RunID())
	}
	c := pod.Spec.Containers[0]
	if len(c.Resources.Requests)+len(c.Resources.Limits) != 0 || pod.Spec.ActiveDeadlineSeconds != nil ||
		len(pod.Spec.ImagePullSecrets) != 0 || *pod.Spec.AutomountServiceAccountToken || c.ImagePullPolicy != "" {
		t.Errorf("defaults set more than they should: %+v", pod.Spec)
	}
	if !reflect.DeepEqual(c.Env, []corev1.EnvVar{{Name: "PARSL_ROLE", Value: "pool"}}) {
		t.Errorf("env %v", c.Env)
	}
	if c.Command[2] != "exec /app/prog --x" {
		t.Errorf("script %q", c.Command[2])
	}
	// Two providers never share a run label by default.
	q, _, _ := newTest(t, Options{})
	if q.RunID() == p.RunID() {
		t.Errorf("two providers have RunID %q", p.RunID())
	}
}

func TestSubmitErrors(t *testing.T) {
	p, client, _ := newTest(t, Options{})
	ctx := context.Background()
	if _, err := p.Submit(ctx, nil, nil, "b", "o", "e"); err == nil || !strings.Contains(err.Error(), "empty command") {
		t.Errorf("empty command: %v", err)
	}
	if _, err := p.Submit(ctx, []string{"x"}, []string{"1BAD=x"}, "b", "o", "e"); err == nil || !strings.Contains(err.Error(), `"1BAD=x"`) {
		t.Errorf("bad env: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Submit(cctx, []string{"x"}, nil, "b", "o", "e"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
	client.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New(`User "alice" cannot create resource "pods"`))
	})
	_, err := p.Submit(ctx, []string{"x"}, nil, "htex.3", "o", "e")
	var ae *APIError
	if !errors.As(err, &ae) || !apierrors.IsForbidden(err) || ae.Op != "create pod" || ae.BlockID != "htex.3" ||
		!strings.HasPrefix(ae.Pod, "parsl-htex-3-") || !strings.Contains(err.Error(), "create pod "+ae.Pod+" in namespace default") ||
		!strings.Contains(err.Error(), `cannot create resource "pods"`) || !strings.Contains(err.Error(), "kubectl auth can-i create pods -n default") {
		t.Errorf("forbidden create: %v", err)
	}
	if n := len(podNames(t, client)); n != 0 {
		t.Errorf("%d pods after failed submits", n)
	}
}

func TestSubmitRetriesNameClash(t *testing.T) {
	p, client, _ := newTest(t, Options{})
	var tries int
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tries++
		if tries == 1 {
			name := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Name
			return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "pods"}, name)
		}
		return false, nil, nil
	})
	pod := submit(t, p, client, "b")
	if tries != 2 || pod == nil {
		t.Errorf("%d create calls, want 2", tries)
	}
}

func TestPodName(t *testing.T) {
	long := strings.Repeat("abcdefghij", 10)
	for _, tt := range []struct{ block, want string }{
		{"htex.0", "parsl-htex-0-abcdef"},
		{"HTEX_Big.12", "parsl-htex-big-12-abcdef"},
		{"--a..b--", "parsl-a-b-abcdef"},
		{"", "parsl-block-abcdef"},
		{"日本", "parsl-block-abcdef"},
		{"x/y:z@w", "parsl-x-y-z-w-abcdef"},
		{long, "parsl-" + long[:maxNameBlock] + "-abcdef"},
		{strings.Repeat("a", maxNameBlock-1) + ".b", "parsl-" + strings.Repeat("a", maxNameBlock-1) + "-abcdef"},
	} {
		got := PodName(tt.block, "abcdef")
		if got != tt.want {
			t.Errorf("PodName(%q) = %q, want %q", tt.block, got, tt.want)
		}
		if len(got) > 63 || !regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`).MatchString(got) {
			t.Errorf("PodName(%q) = %q is not an RFC 1123 label", tt.block, got)
		}
	}
	for in, want := range map[string]string{"htex.0": "htex.0", "a/b c": "a-b-c", ".x.": "x", strings.Repeat("z", 70): strings.Repeat("z", 63), "_": ""} {
		if got := labelValue(in); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBadOptions(t *testing.T) {
	for _, tt := range []struct {
		name   string
		opts   Options
		option string
		msg    string
	}{
		{"no image", Options{}, "Image", "an image is required"},
		{"image with space", Options{Image: "a b"}, "Image", "white space"},
		{"bad cpu", Options{Image: "i", CPURequest: "two"}, "CPURequest", "not a Kubernetes quantity"},
		{"bad memory", Options{Image: "i", MemoryLimit: "1GB?"}, "MemoryLimit", "not a Kubernetes quantity"},
		{"zero cpu", Options{Image: "i", CPULimit: "0"}, "CPULimit", "more than zero"},
		{"request above limit", Options{Image: "i", MemoryRequest: "2Gi", MemoryLimit: "1Gi"}, "MemoryRequest", "above its limit"},
		{"pull policy", Options{Image: "i", PullPolicy: "Sometimes"}, "PullPolicy", "Always, IfNotPresent or Never"},
		{"namespace", Options{Image: "i", Namespace: "My_NS"}, "Namespace", "not a namespace name"},
		{"service account", Options{Image: "i", ServiceAccount: "A B"}, "ServiceAccount", "not a service account name"},
		{"reserved label", Options{Image: "i", Labels: map[string]string{"app": "x"}}, "Labels", "set by the provider"},
		{"label value", Options{Image: "i", Labels: map[string]string{"k": "a b"}}, "Labels", "not a label value"},
		{"selector key", Options{Image: "i", NodeSelector: map[string]string{"-k": "v"}}, "NodeSelector", "not a label key"},
		{"annotation key", Options{Image: "i", Annotations: map[string]string{"a b": "v"}}, "Annotations", "not an annotation key"},
		{"env", Options{Image: "i", Env: []string{"NOVALUE"}}, "Env", "not NAME=value"},
		{"run id", Options{Image: "i", RunID: "a b"}, "RunID", "label value"},
		{"claim", Options{Image: "i", PersistentVolumes: []PersistentVolume{{ClaimName: "c", MountPath: "rel"}}}, "PersistentVolumes", "absolute"},
		{"negative", Options{Image: "i", DeleteGrace: -time.Second}, "Walltime, DeleteGrace, PendingFailAfter or RequestTimeout", "negative"},
		{"pull secret", Options{Image: "i", ImagePullSecrets: []string{"Bad!"}}, "ImagePullSecrets", "not a secret name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts, fake.NewClientset())
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Option != tt.option || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want an *OptionError for %s saying %q", err, tt.option, tt.msg)
			}
		})
	}
	_, err := New(Options{Image: "i", CPURequest: "x"}, fake.NewClientset())
	if !strings.Contains(err.Error(), `Options.CPURequest "x"`) || errors.Unwrap(err) == nil {
		t.Errorf("the quantity error does not name the field and wrap the parse error: %v", err)
	}
	if _, err := New(Options{Image: "i"}, nil); err == nil {
		t.Error("New with a nil client did not fail")
	}
}

func running() corev1.PodStatus { return corev1.PodStatus{Phase: corev1.PodRunning} }

func terminated(code int32, reason string) []corev1.ContainerStatus {
	return []corev1.ContainerStatus{{Name: "parsl-worker", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason}}}}
}

func waitingFor(reason, msg string) []corev1.ContainerStatus {
	return []corev1.ContainerStatus{{Name: "parsl-worker", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}
}

// TestStatusMapping maps every pod phase and the waiting reasons, through
// the one-List path (all pods at once) and the Get path (one at a time).
func TestStatusMapping(t *testing.T) {
	cases := []struct {
		name      string
		st        corev1.PodStatus
		deleting  bool
		cancelled bool
		state     provider.JobState
		code      int
		msg       string
	}{
		{"pending unscheduled", corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available: 3 Insufficient cpu."}}}, false, false, provider.Pending, 0, "Unschedulable: 0/3 nodes are available"},
		{"pending creating", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: waitingFor("ContainerCreating", "")}, false, false, provider.Pending, 0, "ContainerCreating"},
		{"pending pulling", corev1.PodStatus{Phase: corev1.PodPending}, false, false, provider.Pending, 0, ""},
		{"image pull backoff, new", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: waitingFor("ImagePullBackOff", `Back-off pulling image "nope:1"`)}, false, false, provider.Pending, 0, `ImagePullBackOff: Back-off pulling image "nope:1" (failing the block if it lasts 1m0s)`},
		{"err image pull, new", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: waitingFor("ErrImagePull", "not found")}, false, false, provider.Pending, 0, "ErrImagePull"},
		{"crash loop, new", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: waitingFor("CrashLoopBackOff", "")}, false, false, provider.Pending, 0, "CrashLoopBackOff"},
		{"config error, new", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: waitingFor("CreateContainerConfigError", `configmap "x" not found`)}, false, false, provider.Pending, 0, "CreateContainerConfigError"},
		{"invalid image name", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: waitingFor("InvalidImageName", `couldn't parse image name "Bad:"`)}, false, false, provider.Failed, -1, `could not start: container parsl-worker: InvalidImageName: couldn't parse image name "Bad:"; the pod was deleted`},
		{"never pull", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: waitingFor("ErrImageNeverPull", "")}, false, false, provider.Failed, -1, "ErrImageNeverPull"},
		{"init container stuck", corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: waitingFor("InvalidImageName", "")}, false, false, provider.Failed, -1, "InvalidImageName"},
		{"running", running(), false, false, provider.Running, 0, ""},
		{"running, being deleted", running(), true, false, provider.Running, 0, "being deleted"},
		{"succeeded", corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: terminated(0, "Completed")}, false, false, provider.Completed, 0, ""},
		{"failed", corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: terminated(3, "Error")}, false, false, provider.Failed, 3, "exit code 3: Error"},
		{"oom", corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: terminated(137, "OOMKilled")}, false, false, provider.Failed, 137, "exit code 137: OOMKilled"},
		{"evicted", corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: memory."}, false, false, provider.Failed, -1, "Evicted: The node was low on resource: memory."},
		{"deadline", corev1.PodStatus{Phase: corev1.PodFailed, Reason: "DeadlineExceeded", Message: "Pod was active on the node longer than the specified deadline", ContainerStatuses: terminated(143, "Error")}, false, false, provider.Timeout, 143, "stopped at its walltime"},
		{"unknown", corev1.PodStatus{Phase: corev1.PodUnknown, Reason: "NodeLost"}, false, false, provider.Unknown, 0, "pod phase Unknown: NodeLost"},
		{"cancelled, terminating", running(), true, true, provider.Cancelled, -1, "deleted by Cancel"},
		{"cancelled, ended", corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: terminated(143, "Error")}, false, true, provider.Cancelled, 143, "exit code 143"},
		{"cancelled, delete failed", running(), false, true, provider.Running, 0, ""},
	}
	for _, mode := range []string{"list", "get"} {
		t.Run(mode, func(t *testing.T) {
			p, client, _ := newTest(t, Options{})
			ids := make([]string, len(cases))
			for i, c := range cases {
				pod := submit(t, p, client, "b")
				ids[i] = pod.Name
				setStatus(t, client, pod, c.st, c.deleting)
				if c.cancelled {
					p.jobs[pod.Name].cancelled = true
				}
			}
			client.ClearActions()
			var sts []provider.JobStatus
			if mode == "list" {
				var err error
				if sts, err = p.Status(context.Background(), ids); err != nil {
					t.Fatal(err)
				}
				// One List for every pod; then the deletion of the three
				// stuck for good and the logs of the five that ended.
				var verbs []string
				for _, a := range client.Actions() {
					verbs = append(verbs, a.GetVerb()+" "+a.GetSubresource())
				}
				want := []string{"list ", "delete ", "delete ", "delete ", "get log", "get log", "get log", "get log", "get log"}
				if !reflect.DeepEqual(verbs, want) {
					t.Errorf("API calls %q, want %q", verbs, want)
				}
			} else {
				for _, id := range ids {
					st, err := p.Status(context.Background(), []string{id})
					if err != nil {
						t.Fatal(err)
					}
					sts = append(sts, st...)
				}
			}
			for i, c := range cases {
				st := sts[i]
				if st.JobID != ids[i] || st.State != c.state || st.ExitCode != c.code || !strings.Contains(st.Message, c.msg) {
					t.Errorf("%s: got %s exit %d %q, want %s exit %d with %q", c.name, st.State, st.ExitCode, st.Message, c.state, c.code, c.msg)
				}
				if st.StdoutPath == "" || st.StderrPath == "" {
					t.Errorf("%s: output paths not reported", c.name)
				}
			}
		})
	}
}

func TestStatusStuckPendingFailsAfterGrace(t *testing.T) {
	p, client, now := newTest(t, Options{PendingFailAfter: 2 * time.Minute})
	pod := submit(t, p, client, "b")
	ctx := context.Background()
	stuck := corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: waitingFor("ImagePullBackOff", "back-off")}
	setStatus(t, client, pod, stuck, false)
	st := statusOf(t, p, pod.Name)
	if st.State != provider.Pending {
		t.Fatalf("first sight: %s %q, want PENDING", st.State, st.Message)
	}
	// Seen healthy in between: the clock starts again.
	*now = now.Add(90 * time.Second)
	setStatus(t, client, pod, corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: waitingFor("ContainerCreating", "")}, false)
	statusOf(t, p, pod.Name)
	setStatus(t, client, pod, stuck, false)
	*now = now.Add(90 * time.Second)
	if st := statusOf(t, p, pod.Name); st.State != provider.Pending {
		t.Fatalf("stuck again for 0s: %s, want PENDING", st.State)
	}
	*now = now.Add(119 * time.Second)
	if st := statusOf(t, p, pod.Name); st.State != provider.Pending {
		t.Fatalf("stuck for 1m59s: %s, want PENDING", st.State)
	}
	*now = now.Add(time.Second)
	st = statusOf(t, p, pod.Name)
	if st.State != provider.Failed || !strings.Contains(st.Message, "ImagePullBackOff: back-off (for 2m0s); the pod was deleted") {
		t.Fatalf("stuck for 2m: %s %q, want FAILED", st.State, st.Message)
	}
	if _, err := client.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the failed pod was not deleted: %v", err)
	}
	// Final: not asked again.
	client.ClearActions()
	if st := statusOf(t, p, pod.Name); st.State != provider.Failed || len(client.Actions()) != 0 {
		t.Errorf("asked again: %s, %d calls", st.State, len(client.Actions()))
	}
}

func statusOf(t *testing.T, p *Provider, id string) provider.JobStatus {
	t.Helper()
	sts, err := p.Status(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	return sts[0]
}

func TestStatusNotFoundAndForeign(t *testing.T) {
	p, client, _ := newTest(t, Options{})
	ctx := context.Background()
	a := submit(t, p, client, "a")
	b := submit(t, p, client, "b")
	// A pod of an earlier driver: another run label, so the List misses
	// it and a Get finds it.
	old := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "parsl-old-0-aaaaaa", Namespace: "default", Labels: map[string]string{"app": "parsl", "parsl-run": "earlier"}},
		Status: running()}
	if _, err := client.CoreV1().Pods("default").Create(ctx, old, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.Tracker().Delete(podsGVR, "default", a.Name); err != nil {
		t.Fatal(err)
	}
	sts, err := p.Status(ctx, []string{a.Name, b.Name, old.Name, "parsl-nothing-bbbbbb", "Not_A_Pod", b.Name})
	if err != nil {
		t.Fatal(err)
	}
	want := []provider.JobState{provider.Missing, provider.Pending, provider.Running, provider.Missing, provider.Unknown, provider.Pending}
	for i, st := range sts {
		if st.State != want[i] {
			t.Errorf("%s: %s %q, want %s", st.JobID, st.State, st.Message, want[i])
		}
	}
	if !strings.Contains(sts[0].Message, "pod "+a.Name+" no longer exists in namespace default") || sts[4].Message != "not a pod name" {
		t.Errorf("messages %q, %q", sts[0].Message, sts[4].Message)
	}
}

func TestStatusSavesLog(t *testing.T) {
	p, client, _ := newTest(t, Options{})
	var asked []*corev1.PodLogOptions
	client.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		asked = append(asked, a.(k8stesting.GenericAction).GetValue().(*corev1.PodLogOptions))
		return true, &runtime.Unknown{Raw: []byte("pool started\npanic: boom\n")}, nil
	})
	ok := submit(t, p, client, "ok")
	bad := submit(t, p, client, "bad")
	setStatus(t, client, ok, corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: terminated(0, "Completed")}, false)
	setStatus(t, client, bad, corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: terminated(2, "Error")}, false)
	sts, err := p.Status(context.Background(), []string{ok.Name, bad.Name})
	if err != nil {
		t.Fatal(err)
	}
	read := func(path string) string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
	if got := read(sts[0].StdoutPath); got != "pool started\npanic: boom\n" {
		t.Errorf("completed pod's stdout file %q", got)
	}
	if got := read(sts[0].StderrPath); got != "" {
		t.Errorf("completed pod's stderr file %q, want none", got)
	}
	if got := read(sts[1].StderrPath); !strings.Contains(got, "panic: boom") || read(sts[1].StdoutPath) != got {
		t.Errorf("failed pod's files: stdout %q, stderr %q", read(sts[1].StdoutPath), got)
	}
	if len(asked) != 2 || asked[0].Container != "parsl-worker" || asked[0].LimitBytes == nil || *asked[0].LimitBytes != LogLimitBytes {
		t.Errorf("log requests %+v", asked)
	}
	// Once only.
	if _, err := p.Status(context.Background(), []string{ok.Name, bad.Name}); err != nil || len(asked) != 2 {
		t.Errorf("log read again (%d reads), err %v", len(asked), err)
	}

	// A log that cannot be read is noted, and the state stands.
	p2, client2, _ := newTest(t, Options{})
	client2.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "log" {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods/log"}, "x", errors.New("no"))
		}
		return false, nil, nil
	})
	pod := submit(t, p2, client2, "x")
	setStatus(t, client2, pod, corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: terminated(1, "Error")}, false)
	statusOf(t, p2, pod.Name)
	st := statusOf(t, p2, pod.Name)
	if st.State != provider.Failed || !strings.Contains(st.Message, "its log was not saved") || !strings.Contains(st.Message, "can-i get pods/log") {
		t.Errorf("unreadable log: %s %q", st.State, st.Message)
	}

	// NoLogs reads none.
	p3, client3, _ := newTest(t, Options{NoLogs: true})
	pod = submit(t, p3, client3, "x")
	setStatus(t, client3, pod, corev1.PodStatus{Phase: corev1.PodSucceeded}, false)
	client3.ClearActions()
	statusOf(t, p3, pod.Name)
	if n := len(client3.Actions()); n != 1 {
		t.Errorf("NoLogs: %d calls, want the Get only", n)
	}
}

func TestStatusAPIErrors(t *testing.T) {
	p, client, _ := newTest(t, Options{})
	a := submit(t, p, client, "a")
	b := submit(t, p, client, "b")
	client.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInternalError(errors.New("etcd is down"))
	})
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewUnauthorized("token expired")
	})
	_, err := p.Status(context.Background(), []string{a.Name})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Op != "get pod" || ae.Pod != a.Name || !strings.Contains(err.Error(), "get pod "+a.Name+" in namespace default") || !strings.Contains(err.Error(), "etcd is down") {
		t.Errorf("get error: %v", err)
	}
	_, err = p.Status(context.Background(), []string{a.Name, b.Name})
	if !errors.As(err, &ae) || ae.Op != "list pods" || !apierrors.IsUnauthorized(err) ||
		!strings.Contains(err.Error(), "list pods with labels app=parsl,parsl-run="+p.RunID()) || !strings.Contains(err.Error(), "refresh them in the kubeconfig") {
		t.Errorf("list error: %v", err)
	}
}

func podNames(t *testing.T, client *fake.Clientset) []string {
	t.Helper()
	list, err := client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	return names
}

func TestCancel(t *testing.T) {
	p, client, _ := newTest(t, Options{})
	ctx := context.Background()
	a := submit(t, p, client, "a")
	b := submit(t, p, client, "b")
	c := submit(t, p, client, "c")
	if err := client.Tracker().Delete(podsGVR, "default", b.Name); err != nil {
		t.Fatal(err)
	}
	client.ClearActions()
	if err := p.Cancel(ctx, []string{a.Name, b.Name, a.Name}); err != nil {
		t.Fatalf("cancel with one pod already gone: %v", err)
	}
	var graces []int64
	for _, act := range client.Actions() {
		if d, ok := act.(k8stesting.DeleteAction); ok {
			graces = append(graces, *d.GetDeleteOptions().GracePeriodSeconds)
		}
	}
	if !reflect.DeepEqual(graces, []int64{2, 2}) {
		t.Errorf("deletions with grace %v, want two of 2 s", graces)
	}
	if got := podNames(t, client); !reflect.DeepEqual(got, []string{c.Name}) {
		t.Errorf("pods left %v, want %v", got, []string{c.Name})
	}
	sts, err := p.Status(ctx, []string{a.Name, b.Name, c.Name})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []provider.JobState{provider.Cancelled, provider.Cancelled, provider.Pending} {
		if sts[i].State != want {
			t.Errorf("%s: %s, want %s", sts[i].JobID, sts[i].State, want)
		}
	}
	if err := p.Cancel(ctx, []string{"Bad Name"}); err == nil || !strings.Contains(err.Error(), `"Bad Name" is not a pod name`) {
		t.Errorf("bad name: %v", err)
	}
}

func TestCancelWaitsUntilGone(t *testing.T) {
	p, client, _ := newTest(t, Options{DeleteGrace: 30 * time.Second})
	a := submit(t, p, client, "a")
	b := submit(t, p, client, "b")
	// The API accepts the deletions; the pods go only after the kubelet
	// has stopped them, here after a few looks.
	var mu sync.Mutex
	looks := 0
	client.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, nil
	})
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		looks++
		if looks == 3 {
			for _, n := range []string{a.Name, b.Name} {
				if err := client.Tracker().Delete(podsGVR, "default", n); err != nil {
					t.Error(err)
				}
			}
		}
		return false, nil, nil
	})
	if err := p.Cancel(context.Background(), []string{a.Name, b.Name}); err != nil {
		t.Fatal(err)
	}
	if looks != 3 {
		t.Errorf("Cancel returned after %d looks, want 3 (when the pods were gone)", looks)
	}
	var graces []int64
	for _, act := range client.Actions() {
		if d, ok := act.(k8stesting.DeleteAction); ok {
			graces = append(graces, *d.GetDeleteOptions().GracePeriodSeconds)
		}
	}
	if !reflect.DeepEqual(graces, []int64{30, 30}) {
		t.Errorf("graces %v", graces)
	}

	// Pods that never go: Cancel ends with ctx and names them.
	c := submit(t, p, client, "c")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := p.Cancel(ctx, []string{c.Name})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "pods "+c.Name+" in namespace default still exist") {
		t.Errorf("lingering pod: %v", err)
	}
}

func TestCancelAPIError(t *testing.T) {
	p, client, _ := newTest(t, Options{})
	a := submit(t, p, client, "a")
	b := submit(t, p, client, "b")
	client.PrependReactor("delete", "pods", func(act k8stesting.Action) (bool, runtime.Object, error) {
		if act.(k8stesting.DeleteAction).GetName() == a.Name {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, a.Name, errors.New("not yours"))
		}
		return false, nil, nil
	})
	err := p.Cancel(context.Background(), []string{a.Name, b.Name})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Pod != a.Name || !apierrors.IsForbidden(err) ||
		!strings.Contains(err.Error(), "delete pod "+a.Name+" in namespace default") || !strings.Contains(err.Error(), "not yours") {
		t.Errorf("got %v", err)
	}
	if got := podNames(t, client); !reflect.DeepEqual(got, []string{a.Name}) {
		t.Errorf("pods left %v, want only the refused one", got)
	}
}

// TestConcurrentUse runs Submit, Status and Cancel at once, for the race
// detector.
func TestConcurrentUse(t *testing.T) {
	p, _, _ := newTest(t, Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ids []string
	for i := range 8 {
		wg.Go(func() {
			for range 5 {
				id, err := p.Submit(ctx, []string{"x"}, nil, "b", "/dev/null", "/dev/null")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, id)
				snap := slices.Clone(ids)
				mu.Unlock()
				if _, err := p.Status(ctx, snap); err != nil {
					t.Error(err)
				}
				if i%2 == 0 {
					if err := p.Cancel(ctx, []string{id}); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	sts, err := p.Status(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	var cancelled int
	for _, st := range sts {
		if st.State == provider.Cancelled {
			cancelled++
		}
	}
	if cancelled != 20 {
		t.Errorf("%d cancelled, want 20", cancelled)
	}
}
