// Package slurm is the provider for the Slurm batch scheduler: each block
// is a batch job submitted with sbatch, watched with squeue (and scontrol
// or sacct once it has ended) and cancelled with scancel. Every scheduler
// command runs on this machine with a timeout, and its failure is a typed
// error carrying the command's output.
package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/parsl-go/parsl/launcher"
	"github.com/parsl-go/parsl/provider"
)

// Options configures the Slurm provider. Zero fields take the defaults,
// which follow Parsl's SlurmProvider.
type Options struct {
	// Partition, Account, QOS and Constraint become the #SBATCH options
	// of the same names when set.
	Partition  string
	Account    string
	QOS        string
	Constraint string
	// Clusters submits to other clusters of a multi-cluster setup
	// (#SBATCH --clusters); squeue, scontrol, sacct and scancel then get
	// -M so that they find the jobs (Parsl #3675).
	Clusters string
	// NodesPerBlock is the number of nodes of each block; default 1.
	NodesPerBlock int
	// CoresPerNode requests that many CPUs for the pool on each node
	// (--cpus-per-task) and exports PARSL_CORES; 0 = the scheduler's
	// default.
	CoresPerNode int
	// MemPerNodeMB requests that much memory per node (--mem) and exports
	// PARSL_MEMORY_GB; 0 = the scheduler's default.
	MemPerNodeMB int
	// Walltime is the time limit of each block; default 1 hour. It is
	// rounded up to whole minutes, Slurm's unit.
	Walltime time.Duration
	// Exclusive asks for whole nodes (--exclusive); nil = true, as in
	// Parsl, because a pool sizes itself to the node.
	Exclusive *bool
	// SchedulerOptions are extra directives, one per element: either whole
	// lines ("#SBATCH --gres=gpu:1") or bare options ("--gres=gpu:1").
	SchedulerOptions []string
	// WorkerInit are shell lines run in the batch script before the pool
	// starts (module loads, activating an environment).
	WorkerInit []string
	// Launcher wraps the pool command to start it on every node; default
	// launcher.Srun.
	Launcher launcher.Launcher
	// ScriptDir is where batch scripts are written; default a new
	// directory under os.TempDir(), made at the first Submit. An executor
	// sets it to its run directory with SetScriptDir.
	ScriptDir string
	// CmdTimeout bounds each scheduler command; default 30 s. Parsl's 10 s
	// is too short for sbatch on a busy controller.
	CmdTimeout time.Duration
}

// Provider submits blocks as Slurm batch jobs. It is safe for concurrent
// use. Job IDs are what `sbatch --parsable` prints: "123", or "123;cluster"
// when the job went to another cluster.
type Provider struct {
	opts Options

	mu        sync.Mutex
	scriptDir string
	jobs      map[string]*job // by job ID as returned by Submit
}

type job struct {
	stdout, stderr string
	// final is the job's status once Slurm has reported a terminal state
	// with its exit code; it never changes after that, so it is not asked
	// again.
	final *provider.JobStatus
}

// New returns a Slurm provider. Nothing is run until the first Submit.
func New(opts Options) *Provider {
	if opts.NodesPerBlock <= 0 {
		opts.NodesPerBlock = 1
	}
	if opts.Walltime <= 0 {
		opts.Walltime = time.Hour
	}
	if opts.Launcher == nil {
		opts.Launcher = launcher.Srun
	}
	if opts.CmdTimeout <= 0 {
		opts.CmdTimeout = 30 * time.Second
	}
	return &Provider{opts: opts, scriptDir: opts.ScriptDir, jobs: map[string]*job{}}
}

// AppliesLauncher tells an executor that this provider wraps the command
// with its own Launcher (srun by default), so the executor must not.
func (p *Provider) AppliesLauncher() bool { return true }

// BlockWalltime returns the walltime of every block, so that the executor
// can drain pools before the scheduler ends them.
func (p *Provider) BlockWalltime() time.Duration { return p.opts.Walltime }

// SetScriptDir sets the directory where batch scripts are written (an
// executor passes <run dir>/submit_scripts, as Parsl's kernel does). It
// affects later submits only.
func (p *Provider) SetScriptDir(dir string) {
	p.mu.Lock()
	p.scriptDir = dir
	p.mu.Unlock()
}

// ScriptDir returns the directory where batch scripts are written ("" until
// the first Submit when neither Options.ScriptDir nor SetScriptDir gave one).
func (p *Provider) ScriptDir() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.scriptDir
}

func (p *Provider) ensureScriptDir() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.scriptDir == "" {
		dir, err := os.MkdirTemp("", "parsl-slurm-scripts-")
		if err != nil {
			return "", fmt.Errorf("making a directory for batch scripts: %w (set Options.ScriptDir)", err)
		}
		p.scriptDir = dir
		return dir, nil
	}
	if err := os.MkdirAll(p.scriptDir, 0o755); err != nil {
		return "", fmt.Errorf("making the batch script directory: %w", err)
	}
	return p.scriptDir, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// Submit implements provider.Provider: it writes a batch script that
// exports env, runs WorkerInit and then the launcher-wrapped command, and
// submits it with `sbatch --parsable`.
func (p *Provider) Submit(ctx context.Context, command []string, env []string, blockID string, stdout, stderr string) (string, error) {
	fail := func(script string, err error) (string, error) {
		se := &SubmitError{BlockID: blockID, Script: script, ExitCode: -1, Err: err}
		var ce *CommandError
		if errors.As(err, &ce) {
			se.Command, se.ExitCode, se.Stdout, se.Stderr = ce.Command, ce.ExitCode, ce.Stdout, ce.Stderr
		}
		return "", se
	}
	if len(command) == 0 {
		return fail("", errors.New("empty command"))
	}
	// sbatch resolves relative paths against its working directory, which
	// is the job's too; absolute paths keep the files where the caller
	// expects them whatever the job's directory.
	for _, f := range []*string{&stdout, &stderr} {
		abs, err := filepath.Abs(*f)
		if err != nil {
			return fail("", fmt.Errorf("output path %q: %w", *f, err))
		}
		*f = abs
	}
	name := "parsl." + blockID
	text, err := renderScript(scriptParams{
		JobName: name, Stdout: stdout, Stderr: stderr, Opts: p.opts, Env: env,
		Command: p.opts.Launcher(command, 1, p.opts.NodesPerBlock),
	})
	if err != nil {
		return fail("", fmt.Errorf("writing the batch script: %w", err))
	}
	dir, err := p.ensureScriptDir()
	if err != nil {
		return fail("", err)
	}
	script := filepath.Join(dir, fmt.Sprintf("%s.%d.sbatch", unsafeName.ReplaceAllString(name, "_"), time.Now().UnixNano()))
	if err := os.WriteFile(script, []byte(text), 0o644); err != nil {
		return fail(script, fmt.Errorf("writing the batch script: %w", err))
	}
	args := []string{"--parsable"}
	if p.opts.Clusters != "" {
		// sbatch reads --clusters from the script too; on the command line
		// it also decides which cluster's controller is asked.
		args = append(args, "--clusters="+p.opts.Clusters)
	}
	out, err := p.run(ctx, "sbatch", append(args, script)...)
	if err != nil {
		return fail(script, err)
	}
	ref, err := parseSbatch(out)
	if err != nil {
		return fail(script, fmt.Errorf("%w; sbatch printed %q", err, out))
	}
	id := ref.String()
	p.mu.Lock()
	p.jobs[id] = &job{stdout: stdout, stderr: stderr}
	p.mu.Unlock()
	return id, nil
}

// Status implements provider.Provider. One squeue call (per cluster) covers
// every job not known to be finished; a job squeue shows as finished, or no
// longer shows at all, is looked up with scontrol or sacct for its final
// state and exit code. Parsl instead assumed that a job squeue no longer
// shows had COMPLETED, which turned failed and cancelled blocks into
// successes. A job that no Slurm command knows any more (no accounting,
// and older than the controller's MinJobAge) is Missing: it is certainly
// not running, but how it ended is lost.
func (p *Provider) Status(ctx context.Context, ids []string) ([]provider.JobStatus, error) {
	out := make([]provider.JobStatus, len(ids))
	groups := map[string][]int{} // cluster → indexes into ids still to ask
	refs := make([]jobRef, len(ids))
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
		ref, err := parseJobRef(id)
		if err != nil {
			out[i].Message = "not a Slurm job ID"
			continue
		}
		refs[i] = ref
		c := p.cluster(ref)
		groups[c] = append(groups[c], i)
	}
	p.mu.Unlock()

	for cluster, idx := range groups {
		bare := make([]string, len(idx))
		for k, i := range idx {
			bare[k] = refs[i].id
		}
		rows, err := p.squeue(ctx, cluster, bare, true)
		if err != nil {
			return nil, err
		}
		var gone []int
		for _, i := range idx {
			row, ok := rows[refs[i].id]
			if !ok {
				gone = append(gone, i)
				continue
			}
			if !row.state.Terminal() {
				setLive(&out[i], row.status(ids[i]))
				continue
			}
			fs, found, err := p.scontrol(ctx, cluster, refs[i].id)
			if err != nil || !found {
				// squeue's word stands, without an exit code; it is not
				// remembered, so a later Status asks scontrol again.
				why := "scontrol no longer knows the job"
				if err != nil {
					why = err.Error()
				}
				st := row.status(ids[i])
				st.Message = strings.TrimPrefix(st.Message+"; exit code unknown ("+why+")", "; ")
				setLive(&out[i], st)
				continue
			}
			p.setFinal(&out[i], fs.status(ids[i]))
		}
		if len(gone) == 0 {
			continue
		}
		goneIDs := make([]string, len(gone))
		for k, i := range gone {
			goneIDs[k] = refs[i].id
		}
		acct, acctErr := p.sacct(ctx, cluster, goneIDs)
		for _, i := range gone {
			if fs, ok := acct[refs[i].id]; ok {
				p.setFinal(&out[i], fs.status(ids[i]))
				continue
			}
			out[i].State = provider.Missing
			out[i].Message = "Slurm no longer knows this job (not in squeue, nor in sacct"
			if acctErr != nil {
				out[i].Message += ": " + acctErr.Error()
			}
			out[i].Message += "); it is not running, but its final state and exit code are lost"
		}
	}
	return out, nil
}

// setLive copies a status into dst, keeping dst's output paths.
func setLive(dst *provider.JobStatus, st provider.JobStatus) {
	st.StdoutPath, st.StderrPath = dst.StdoutPath, dst.StderrPath
	*dst = st
}

// setFinal copies a terminal status into dst and remembers it for the job.
func (p *Provider) setFinal(dst *provider.JobStatus, st provider.JobStatus) {
	setLive(dst, st)
	if !st.State.Terminal() {
		return
	}
	p.mu.Lock()
	if j := p.jobs[st.JobID]; j != nil {
		f := *dst
		j.final = &f
	}
	p.mu.Unlock()
}

// cluster is the cluster to pass with -M for a job: the one sbatch named,
// else the configured ones ("" = the local cluster).
func (p *Provider) cluster(r jobRef) string {
	if r.cluster != "" {
		return r.cluster
	}
	return p.opts.Clusters
}

func clusterArgs(cluster string) []string {
	if cluster == "" {
		return nil
	}
	return []string{"--clusters=" + cluster}
}

// squeue lists the given jobs; all=true includes finished jobs the
// controller still remembers.
func (p *Provider) squeue(ctx context.Context, cluster string, ids []string, all bool) (map[string]queueRow, error) {
	args := append(clusterArgs(cluster), "--noheader", "--format="+squeueFormat, "--jobs="+strings.Join(ids, ","))
	if all {
		args = append(args, "--states=all")
	}
	out, err := p.run(ctx, "squeue", args...)
	if err != nil {
		// When every listed job has been purged, squeue fails instead of
		// printing nothing (Parsl PR #2259).
		var ce *CommandError
		if errors.As(err, &ce) && strings.Contains(ce.Stderr, "Invalid job id") {
			return map[string]queueRow{}, nil
		}
		return nil, err
	}
	return parseSqueue(out), nil
}

// scontrol returns a job's final state and exit code; found=false when the
// controller no longer knows the job.
func (p *Provider) scontrol(ctx context.Context, cluster, id string) (finalState, bool, error) {
	out, err := p.run(ctx, "scontrol", append(clusterArgs(cluster), "show", "job", "--oneliner", id)...)
	if err != nil {
		var ce *CommandError
		if errors.As(err, &ce) && strings.Contains(ce.Stderr, "Invalid job id") {
			return finalState{}, false, nil
		}
		return finalState{}, false, err
	}
	m, err := parseScontrol(out)
	if err != nil {
		return finalState{}, false, &ParseError{Command: "scontrol show job " + id, Output: out, Err: err}
	}
	fs, ok := m[id]
	return fs, ok, nil
}

// sacct asks the accounting database about jobs the controller has
// forgotten. It fails on clusters without accounting (slurmdbd).
func (p *Provider) sacct(ctx context.Context, cluster string, ids []string) (map[string]finalState, error) {
	args := append(clusterArgs(cluster), "--allocations", "--parsable2", "--noheader",
		"--format="+sacctFormat, "--jobs="+strings.Join(ids, ","))
	out, err := p.run(ctx, "sacct", args...)
	if err != nil {
		return nil, err
	}
	m, err := parseSacct(out)
	if err != nil {
		return nil, &ParseError{Command: "sacct", Output: out, Err: err}
	}
	return m, nil
}

// NodesPerBlock returns the nodes of each block, so that the htex
// executor's scaling counts the right number of worker slots per block.
func (p *Provider) NodesPerBlock() int { return p.opts.NodesPerBlock }

// Cancel implements provider.Provider: scancel, then wait until squeue no
// longer lists the jobs as pending or running (or ctx ends), so that the
// caller may count the block's nodes as released.
func (p *Provider) Cancel(ctx context.Context, ids []string) error {
	groups := map[string][]string{}
	var errs []error
	for _, id := range ids {
		ref, err := parseJobRef(id)
		if err != nil {
			// The others are still cancelled.
			errs = append(errs, fmt.Errorf("slurm provider: cancel: %w", err))
			continue
		}
		c := p.cluster(ref)
		groups[c] = append(groups[c], ref.id)
	}
	for cluster, bare := range groups {
		if _, err := p.run(ctx, "scancel", append(clusterArgs(cluster), bare...)...); err != nil {
			// scancel refused these jobs; waiting for them would only
			// run into ctx.
			errs = append(errs, err)
			delete(groups, cluster)
		}
	}
	delay := 50 * time.Millisecond
	for len(groups) > 0 {
		var left []string
		for cluster, bare := range groups {
			rows, err := p.squeue(ctx, cluster, bare, false)
			if err != nil {
				return errors.Join(append(errs, fmt.Errorf("slurm provider: checking that cancelled jobs are gone: %w", err))...)
			}
			for id := range rows {
				left = append(left, id)
			}
		}
		if len(left) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return errors.Join(append(errs, fmt.Errorf("slurm provider: jobs %s still listed by squeue after scancel (Slurm may be slow to end them; check `squeue -j %s`): %w",
				strings.Join(left, ","), strings.Join(left, ","), ctx.Err()))...)
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
	return errors.Join(errs...)
}

// run runs a Slurm command with the provider's timeout and returns its
// standard output. Failure is a *CommandError.
func (p *Provider) run(ctx context.Context, name string, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, p.opts.CmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A command killed at the timeout may leave a child holding its pipes;
	// do not wait for that child forever.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return stdout.String(), nil
	}
	ce := &CommandError{Command: append([]string{name}, args...), ExitCode: -1,
		Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
	var ee *exec.ExitError
	switch {
	case cctx.Err() != nil:
		// The caller's cancellation, or our timeout.
		ce.Err = cctx.Err()
		if ctx.Err() == nil {
			ce.Timeout = p.opts.CmdTimeout
		}
	case errors.As(err, &ee):
		ce.ExitCode = ee.ExitCode()
	}
	return "", ce
}

// CommandError is a Slurm command that failed: not found, timed out, or
// exited with a non-zero code.
type CommandError struct {
	// Command is the command line.
	Command []string
	// ExitCode is the command's exit code, -1 if it did not exit by itself.
	ExitCode int
	// Stdout and Stderr are what the command printed.
	Stdout, Stderr string
	// Timeout is set when the command was stopped at Options.CmdTimeout.
	Timeout time.Duration
	// Err is the underlying error (exec's, or the context's).
	Err error
}

// Error says which command failed, how, what it printed and what to check.
func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "slurm: `%s` ", strings.Join(e.Command, " "))
	switch {
	case e.Timeout > 0:
		fmt.Fprintf(&b, "did not finish within %s", e.Timeout)
	case e.ExitCode >= 0:
		fmt.Fprintf(&b, "exited with code %d", e.ExitCode)
	default:
		fmt.Fprintf(&b, "failed: %v", e.Err)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		fmt.Fprintf(&b, ": %s", s)
	} else if s := strings.TrimSpace(e.Stdout); s != "" {
		fmt.Fprintf(&b, ": %s", s)
	}
	b.WriteString("; " + e.hint())
	return b.String()
}

// hint says what to check, by what went wrong.
func (e *CommandError) hint() string {
	name := ""
	if len(e.Command) > 0 {
		name = e.Command[0]
	}
	switch {
	case errors.Is(e.Err, exec.ErrNotFound):
		return "is Slurm installed here and " + name + " on PATH? (the driver must run on a Slurm login node)"
	case e.Timeout > 0:
		return "the Slurm controller is slow or down: check `scontrol ping`, or raise Options.CmdTimeout"
	case name == "sbatch":
		return "check the partition, account, QOS, constraint and walltime options against `sinfo` and `sacctmgr show assoc user=$USER`, and the batch script"
	case name == "sacct":
		return "is Slurm accounting (slurmdbd) enabled? `sacct` needs it"
	default:
		return "check that the Slurm controller is up (`scontrol ping`)"
	}
}

// Unwrap returns the underlying error.
func (e *CommandError) Unwrap() error { return e.Err }

// SubmitError is a block that could not be submitted. When sbatch ran,
// Command, ExitCode, Stdout and Stderr are its own; Err says what failed.
type SubmitError struct {
	// BlockID is the block that was being submitted.
	BlockID string
	// Script is the batch script, if it was written.
	Script string
	// Command is the sbatch command line (nil if sbatch was not run).
	Command []string
	// ExitCode is sbatch's exit code, -1 if it did not exit by itself or
	// was not run.
	ExitCode int
	// Stdout and Stderr are what sbatch printed.
	Stdout, Stderr string
	// Err is the cause (a *CommandError when sbatch failed).
	Err error
}

// Error names the block, the batch script and the cause.
func (e *SubmitError) Error() string {
	s := "slurm provider: submitting block " + e.BlockID
	if e.Script != "" {
		s += " (batch script " + e.Script + ")"
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *SubmitError) Unwrap() error { return e.Err }

// ParseError is output of a Slurm command this provider could not read,
// most likely from a Slurm version whose format differs.
type ParseError struct {
	// Command is the command whose output it was.
	Command string
	// Output is the output.
	Output string
	// Err says what was wrong with it.
	Err error
}

// Error quotes the output that could not be read.
func (e *ParseError) Error() string {
	return fmt.Sprintf("slurm provider: cannot read the output of %s (%v); please report it with your Slurm version (`sinfo -V`); output: %q",
		e.Command, e.Err, e.Output)
}

// Unwrap returns the cause.
func (e *ParseError) Unwrap() error { return e.Err }

var _ provider.Provider = (*Provider)(nil)
