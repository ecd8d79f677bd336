package kubernetes

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/parsl-go/parsl/provider"
)

// stuckReasons are the waiting reasons of a pending container that
// usually need a person to fix; true marks those that cannot heal by
// themselves and fail at once.
var stuckReasons = map[string]bool{
	"ImagePullBackOff":           false,
	"ErrImagePull":               false,
	"CrashLoopBackOff":           false,
	"CreateContainerConfigError": false,
	"CreateContainerError":       false,
	"RunContainerError":          false,
	"InvalidImageName":           true,
	"ErrImageNeverPull":          true,
}

// Status implements provider.Provider. The pods this provider submitted
// are read with one List by its run label when several are asked about,
// others with one Get each. Pod phases map to states as follows:
//
//   - Pending: Pending, with the scheduler's or the container's reason as
//     the message; but a container waiting for a reason in which it is
//     stuck (ImagePullBackOff, ErrImagePull, CrashLoopBackOff,
//     CreateContainerConfigError, ...) for Options.PendingFailAfter, or
//     at all for InvalidImageName and ErrImageNeverPull, is Failed with
//     the reason as the message, and the pod is deleted so that it can
//     never start later and join as a block that was given up.
//   - Running: Running.
//   - Succeeded: Completed with the container's exit code (0).
//   - Failed: Failed with the container's exit code and reason
//     (OOMKilled, Error, Evicted); Timeout when Kubernetes stopped it at
//     Options.Walltime (DeadlineExceeded).
//   - Unknown (the node is unreachable): Unknown.
//   - no such pod: Cancelled when Cancel deleted it, else Missing (deleted
//     by someone else, or evicted and collected); its exit code is lost.
//
// A pod that Cancel deleted and that has ended or is ending is Cancelled.
// Terminal states are remembered and not asked again. The output paths
// are those given to Submit. API failures are *APIError.
func (p *Provider) Status(ctx context.Context, ids []string) ([]provider.JobStatus, error) {
	out := make([]provider.JobStatus, len(ids))
	var ask []string
	asked := map[string]bool{}
	p.mu.Lock()
	for i, id := range ids {
		out[i] = provider.JobStatus{JobID: id}
		j := p.jobs[id]
		if j != nil && j.final != nil {
			out[i] = *j.final
			continue
		}
		if j != nil {
			out[i].StdoutPath, out[i].StderrPath = j.stdout, j.stderr
		}
		if !validPodName(id) {
			out[i].Message = "not a pod name"
			continue
		}
		if !asked[id] {
			asked[id] = true
			ask = append(ask, id)
		}
	}
	p.mu.Unlock()
	if len(ask) == 0 {
		return out, nil
	}
	client, ns, err := p.api()
	if err != nil {
		return nil, err
	}
	pods, err := p.lookup(ctx, client, ns, ask)
	if err != nil {
		return nil, err
	}
	now := p.now()
	type ended struct {
		pod   *corev1.Pod
		st    provider.JobStatus
		stuck bool // failed while pending: delete, no log
	}
	var ends []ended
	got := map[string]provider.JobStatus{}
	p.mu.Lock()
	for _, id := range ask {
		j := p.jobs[id]
		if j == nil {
			j = &job{}
			p.jobs[id] = j
		}
		st, final, stuck := p.convert(ns, id, pods[id], j, now)
		st.JobID, st.StdoutPath, st.StderrPath = id, j.stdout, j.stderr
		if final {
			f := st
			j.final = &f
			if pod := pods[id]; pod != nil && !j.logged && !j.cancelled {
				j.logged = true
				ends = append(ends, ended{pod: pod, st: st, stuck: stuck})
			}
		}
		got[id] = st
	}
	p.mu.Unlock()
	for i, id := range ids {
		if st, ok := got[id]; ok {
			out[i] = st
		}
	}
	// Outside the lock: these are requests, and the job is final already,
	// so nothing else handles it meanwhile.
	for _, e := range ends {
		switch {
		case e.stuck:
			p.deleteStuck(ctx, client, ns, e.pod.Name)
		case !p.opts.NoLogs:
			p.saveLog(ctx, client, ns, e.pod, e.st)
		}
	}
	return out, nil
}

// convert maps a pod (nil: not found) to a status and says whether it is
// final and whether it failed while pending. Needs p.mu, for j.
func (p *Provider) convert(ns, name string, pod *corev1.Pod, j *job, now time.Time) (st provider.JobStatus, final, stuck bool) {
	if pod == nil {
		if j.cancelled {
			return provider.JobStatus{State: provider.Cancelled, ExitCode: -1, Message: "pod deleted by Cancel"}, true, false
		}
		return provider.JobStatus{State: provider.Missing, ExitCode: -1,
			Message: fmt.Sprintf("pod %s no longer exists in namespace %s (deleted by someone else, or evicted and collected); it is not running, but how it ended is lost", name, ns)}, true, false
	}
	code, term := exitCode(pod)
	phase := pod.Status.Phase
	if j.cancelled && (pod.DeletionTimestamp != nil || phase == corev1.PodSucceeded || phase == corev1.PodFailed) {
		return provider.JobStatus{State: provider.Cancelled, ExitCode: code, Message: join("pod deleted by Cancel", term)}, true, false
	}
	switch phase {
	case corev1.PodPending, "": // "": made, but no status written yet
		reason, msg := waiting(pod)
		permanent, bad := stuckReasons[reason]
		if !bad {
			j.badSince = time.Time{}
			if reason == "" {
				msg = unscheduled(pod)
			} else {
				msg = join(reason, msg)
			}
			return provider.JobStatus{State: provider.Pending, Message: msg}, false, false
		}
		if j.badSince.IsZero() {
			j.badSince = now
		}
		stuckFor := now.Sub(j.badSince)
		if !permanent && stuckFor < p.opts.PendingFailAfter {
			return provider.JobStatus{State: provider.Pending, Message: join(reason, msg) +
				fmt.Sprintf(" (failing the block if it lasts %s)", p.opts.PendingFailAfter)}, false, false
		}
		m := fmt.Sprintf("pod %s could not start: container %s: %s", name, containerName, join(reason, msg))
		if !permanent {
			m += fmt.Sprintf(" (for %s)", stuckFor.Round(time.Second))
		}
		return provider.JobStatus{State: provider.Failed, ExitCode: -1, Message: m + "; the pod was deleted"}, true, true
	case corev1.PodRunning:
		j.badSince = time.Time{}
		return provider.JobStatus{State: provider.Running, Message: deleting(pod)}, false, false
	case corev1.PodSucceeded:
		// Succeeded means every container exited 0, whatever the
		// container statuses still say.
		return provider.JobStatus{State: provider.Completed, Message: term}, true, false
	case corev1.PodFailed:
		if pod.Status.Reason == "DeadlineExceeded" {
			return provider.JobStatus{State: provider.Timeout, ExitCode: code,
				Message: join("stopped at its walltime (activeDeadlineSeconds): "+pod.Status.Message, term)}, true, false
		}
		return provider.JobStatus{State: provider.Failed, ExitCode: code,
			Message: join(join(pod.Status.Reason, pod.Status.Message), term)}, true, false
	}
	return provider.JobStatus{State: provider.Unknown, Message: join(join("pod phase "+string(phase), pod.Status.Reason), pod.Status.Message)}, false, false
}

// exitCode returns the worker container's exit code and how it
// terminated ("OOMKilled: ..."); -1 and "" when it has not terminated.
func exitCode(pod *corev1.Pod) (int, string) {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != containerName || cs.State.Terminated == nil {
			continue
		}
		t := cs.State.Terminated
		msg := ""
		if t.ExitCode != 0 || t.Reason != "Completed" {
			msg = join(t.Reason, t.Message)
			if t.Signal != 0 {
				msg = join(msg, fmt.Sprintf("signal %d", t.Signal))
			}
			msg = join(fmt.Sprintf("exit code %d", t.ExitCode), msg)
		}
		return int(t.ExitCode), msg
	}
	return -1, ""
}

// waiting returns the waiting reason and message of the first init or
// worker container that has one.
func waiting(pod *corev1.Pod) (string, string) {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			if w := cs.State.Waiting; w != nil && w.Reason != "" {
				return w.Reason, w.Message
			}
		}
	}
	return "", ""
}

// unscheduled says why a pending pod has no node, "" when it is not
// known: an unschedulable pod waits (an autoscaler may add a node).
func unscheduled(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return join(c.Reason, c.Message)
		}
	}
	return ""
}

// deleting notes a pod that someone is deleting.
func deleting(pod *corev1.Pod) string {
	if pod.DeletionTimestamp != nil {
		return "the pod is being deleted"
	}
	return ""
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ": " + b
}

// deleteStuck deletes a pod that Status gave up on. A failure only
// leaves the pod to Cancel, which the executor calls at Close.
func (p *Provider) deleteStuck(ctx context.Context, client kubernetes.Interface, ns, name string) {
	cctx, cancel := context.WithTimeout(ctx, p.opts.RequestTimeout)
	defer cancel()
	grace := int64((p.opts.DeleteGrace + time.Second - 1) / time.Second)
	err := client.CoreV1().Pods(ns).Delete(cctx, name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	if err != nil && !apierrors.IsNotFound(err) {
		p.note(name, "; deleting it failed: "+(&APIError{Op: "delete pod", Namespace: ns, Pod: name, Err: err}).Error())
	}
}

// saveLog writes the worker container's log into the job's stdout path,
// and into its stderr path when the pod failed. A failure is noted in the
// job's message rather than returned: the state is known regardless.
func (p *Provider) saveLog(ctx context.Context, client kubernetes.Interface, ns string, pod *corev1.Pod, st provider.JobStatus) {
	paths := []string{st.StdoutPath}
	if st.State != provider.Completed && st.StderrPath != st.StdoutPath {
		paths = append(paths, st.StderrPath)
	}
	if st.StdoutPath == "" {
		return // not submitted here: no paths
	}
	limit := int64(LogLimitBytes)
	cctx, cancel := context.WithTimeout(ctx, p.opts.RequestTimeout)
	defer cancel()
	body, err := client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: containerName, LimitBytes: &limit}).Stream(cctx)
	if err != nil {
		p.note(pod.Name, "; its log was not saved: "+(&APIError{Op: "read log", Namespace: ns, Pod: pod.Name, Err: err}).Error())
		return
	}
	defer body.Close()
	var files []*os.File
	defer func() {
		for _, f := range files {
			_ = f.Close() // after a failure; closed and checked below otherwise
		}
	}()
	ws := make([]io.Writer, 0, len(paths))
	for _, path := range paths {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			p.note(pod.Name, "; its log was not saved: "+err.Error())
			return
		}
		files = append(files, f)
		ws = append(ws, f)
	}
	if _, err := io.Copy(io.MultiWriter(ws...), body); err != nil {
		p.note(pod.Name, "; its log was not saved whole: "+err.Error())
		return
	}
	for _, f := range files {
		if err := f.Close(); err != nil {
			p.note(pod.Name, "; its log was not saved whole: "+err.Error())
		}
	}
	files = nil
}

// note appends s to the message of a job's final status.
func (p *Provider) note(name, s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j := p.jobs[name]; j != nil && j.final != nil {
		j.final.Message = strings.TrimPrefix(j.final.Message+s, "; ")
	}
}
