// Package provider defines how an executor gets blocks of compute: a
// Provider starts a command as a job (a block), reports the state of its
// jobs and cancels them. The local provider runs blocks as processes on this
// machine; cluster providers submit them to a batch scheduler.
package provider

import (
	"context"
	"fmt"
)

// JobState is the state of a block's job, with Parsl's names.
type JobState int

// Job states. Terminal states are Cancelled, Completed, Failed, Timeout,
// Missing and ScaledIn.
const (
	Unknown JobState = iota
	Pending
	Running
	Cancelled
	Completed
	Failed
	Timeout
	Held
	Missing
	ScaledIn
)

// String returns Parsl's name of the state.
func (s JobState) String() string {
	names := [...]string{"UNKNOWN", "PENDING", "RUNNING", "CANCELLED", "COMPLETED", "FAILED", "TIMEOUT", "HELD", "MISSING", "SCALED_IN"}
	if s >= 0 && int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("JobState(%d)", int(s))
}

// Terminal reports whether a job in state s will never run again.
func (s JobState) Terminal() bool {
	switch s {
	case Cancelled, Completed, Failed, Timeout, Missing, ScaledIn:
		return true
	}
	return false
}

// JobStatus is what a provider knows about one job.
type JobStatus struct {
	JobID string
	State JobState
	// ExitCode is meaningful in a terminal state when the provider knows it.
	ExitCode int
	// Message explains the state (a signal, a scheduler reason).
	Message string
	// StdoutPath and StderrPath are where the job's streams went.
	StdoutPath, StderrPath string
}

// Provider starts, watches and cancels blocks. Implementations must be safe
// for concurrent use.
type Provider interface {
	// Submit starts command as a job with env added to the job's
	// environment, its streams written to the stdout and stderr paths.
	// blockID names the block for logs and job names.
	Submit(ctx context.Context, command []string, env []string, blockID string, stdout, stderr string) (jobID string, err error)
	// Status returns the status of each job, in the order of ids. An
	// unknown id gets state Unknown.
	Status(ctx context.Context, ids []string) ([]JobStatus, error)
	// Cancel stops the jobs and returns when they are gone (or ctx ends).
	Cancel(ctx context.Context, ids []string) error
}
