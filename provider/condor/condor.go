// Package condor is the provider for HTCondor: each block is a job
// described in a submit file and submitted with condor_submit, watched
// with condor_q (and condor_history once it has left the queue) and
// removed with condor_rm. Every command runs on this machine with a
// timeout, and its failure is a typed error carrying the command's output.
package condor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parsl-go/parsl/launcher"
	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/internal/batch"
)

// Options configures the HTCondor provider. Zero fields take the defaults,
// which follow Parsl's CondorProvider. A block is one job in one slot.
type Options struct {
	// CoresPerSlot is request_cpus, exported as PARSL_CORES; 0 = the
	// pool's default.
	CoresPerSlot int
	// MemPerSlotMB is request_memory in MB, exported as PARSL_MEMORY_GB;
	// 0 = the pool's default.
	MemPerSlotMB int
	// Requirements is the job's requirements expression.
	Requirements string
	// Project sets +ProjectName, the accounting project of OSG-style
	// pools.
	Project string
	// TransferInputFiles are files sent with the job when the execute
	// machine does not share the filesystem.
	TransferInputFiles []string
	// Walltime is how long a block may run; HTCondor does not enforce it
	// unless a SchedulerOptions line does (for example
	// "periodic_remove = (time() - JobCurrentStartDate) > 3600"). Default
	// 1 hour.
	Walltime time.Duration
	// SchedulerOptions are extra submit commands, one per element
	// ("+WantGPU = true").
	SchedulerOptions []string
	// WorkerInit are shell lines run in the job script before the pool
	// starts.
	WorkerInit []string
	// Launcher wraps the pool command; default launcher.SingleNode.
	Launcher launcher.Launcher
	// ScriptDir is where job scripts, submit files and job logs are
	// written; default a new directory under os.TempDir().
	ScriptDir string
	// CmdTimeout bounds each HTCondor command; default 60 s as in Parsl.
	CmdTimeout time.Duration
}

// Provider submits blocks as HTCondor jobs. It is safe for concurrent use.
// Job IDs are "cluster.proc" ("12.0").
type Provider struct {
	// common gives Provider its AppliesLauncher, BlockWalltime,
	// SetScriptDir and ScriptDir methods, which every batch provider
	// answers alike (go doc does not list methods promoted this way).
	common
	opts Options
	run  batch.Runner

	mu   sync.Mutex
	jobs map[string]*job
}

type job struct {
	stdout, stderr string
	// final is the job's terminal status; condor_history forgets jobs in
	// time, so it is kept rather than asked again.
	final *provider.JobStatus
}

// New returns an HTCondor provider. Nothing is run until the first Submit.
func New(opts Options) *Provider {
	if opts.Walltime <= 0 {
		opts.Walltime = time.Hour
	}
	if opts.Launcher == nil {
		opts.Launcher = launcher.SingleNode
	}
	if opts.CmdTimeout <= 0 {
		opts.CmdTimeout = 60 * time.Second
	}
	p := &Provider{opts: opts, jobs: map[string]*job{}}
	p.run = batch.Runner{Scheduler: "condor", Timeout: opts.CmdTimeout, Hint: hint}
	batch.InitCommon(&p.common, opts.Walltime, opts.ScriptDir)
	return p
}

func hint(e *CommandError) string {
	if e.Command[0] == "condor_submit" {
		return "check the submit file's commands (requirements, request_cpus/request_memory, scheduler options) and that you may submit here (not as root; `condor_q` works)"
	}
	return "check that the schedd is up (`condor_status -schedd`)"
}

// Submit implements provider.Provider: it writes a job script (exports,
// WorkerInit, the launcher-wrapped command) and a submit description, and
// runs condor_submit.
func (p *Provider) Submit(ctx context.Context, command []string, env []string, blockID string, stdout, stderr string) (string, error) {
	fail := func(script string, err error) (string, error) {
		return "", batch.NewSubmitError("condor", blockID, script, err)
	}
	if err := batch.PrepareSubmit(command, &stdout, &stderr); err != nil {
		return fail("", err)
	}
	dir, err := batch.EnsureScriptDir(&p.common, "condor")
	if err != nil {
		return fail("", err)
	}
	name := "parsl." + blockID
	base := filepath.Join(dir, fmt.Sprintf("%s.%d", batch.UnsafeName.ReplaceAllString(name, "_"), time.Now().UnixNano()))
	sp := scriptParams{
		JobName: name, Script: base + ".sh", Log: base + ".log", Stdout: stdout, Stderr: stderr,
		Opts: p.opts, Env: env, Command: p.opts.Launcher(command, 1, 1),
	}
	text, err := renderScript(sp)
	if err != nil {
		return fail("", fmt.Errorf("writing the job script: %w", err))
	}
	sub, err := renderSubmit(sp)
	if err != nil {
		return fail("", fmt.Errorf("writing the submit file: %w", err))
	}
	if err := os.WriteFile(sp.Script, []byte(text), 0o755); err != nil {
		return fail(sp.Script, fmt.Errorf("writing the job script: %w", err))
	}
	subFile := base + ".sub"
	if err := os.WriteFile(subFile, []byte(sub), 0o644); err != nil {
		return fail(subFile, fmt.Errorf("writing the submit file: %w", err))
	}
	out, err := p.run.Run(ctx, nil, "condor_submit", subFile)
	if err != nil {
		return fail(subFile, err)
	}
	id, err := parseSubmit(out)
	if err != nil {
		return fail(subFile, fmt.Errorf("%w; condor_submit printed %q", err, out))
	}
	p.mu.Lock()
	p.jobs[id] = &job{stdout: stdout, stderr: stderr}
	p.mu.Unlock()
	return id, nil
}

// chunkSize is how many jobs one condor_q or condor_history call asks
// about, as Parsl's cmd_chunk_size.
const chunkSize = 100

// Status implements provider.Provider. One condor_q per 100 jobs covers
// every job not known to be finished; the jobs it no longer lists are
// looked up with condor_history. A job neither knows (history rotated
// away) is Missing: not queued, but how it ended is lost. Parsl assumed
// such a job was COMPLETED... unless it set leave_in_queue, which keeps
// every finished job in the queue until removed by hand.
func (p *Provider) Status(ctx context.Context, ids []string) ([]provider.JobStatus, error) {
	s := batch.Status[row]{
		Lock: &p.mu, Lookup: p.lookup, Remember: p.remember,
		Invalid: func(id string) string {
			if !validID(id) {
				return "not an HTCondor job ID (cluster.proc)"
			}
			return ""
		},
		Queue: func(ctx context.Context, ids []string) (map[string]row, error) {
			return p.query(ctx, "condor_q", ids, "HoldReason")
		},
		History: func(ctx context.Context, ids []string) (map[string]row, error) {
			return p.query(ctx, "condor_history", ids, "RemoveReason")
		},
		Missing: func(histErr error) string {
			why := ""
			if histErr != nil {
				why = ": condor_history failed: " + histErr.Error()
			}
			return "HTCondor no longer knows this job (not in condor_q, nor in condor_history" + why + "); it is not queued, but its final state and exit code are lost"
		},
		Convert: func(id string, r row) (provider.JobStatus, bool) {
			st := r.status(id)
			return st, st.State.Terminal()
		},
	}
	return s.Run(ctx, ids)
}

// lookup returns what Status remembers of job id; p.mu is held.
func (p *Provider) lookup(id string) (final *provider.JobStatus, stdout, stderr string, known bool) {
	j := p.jobs[id]
	if j == nil {
		return nil, "", "", false
	}
	return j.final, j.stdout, j.stderr, true
}

// remember keeps the final status of job id, which the scheduler will
// forget.
func (p *Provider) remember(id string, st provider.JobStatus) {
	p.mu.Lock()
	if p.jobs[id] == nil {
		p.jobs[id] = &job{}
	}
	p.jobs[id].final = &st
	p.mu.Unlock()
}

// validID reports whether id is "cluster.proc"; anything else given to
// condor_q would be read as an owner name or an option.
func validID(id string) bool {
	c, pr, ok := strings.Cut(id, ".")
	_, err1 := strconv.ParseUint(c, 10, 64)
	_, err2 := strconv.ParseUint(pr, 10, 64)
	return ok && err1 == nil && err2 == nil
}

// query runs `<cmd> ids -af:jt JobStatus ExitCode <reason>` in chunks.
// The job IDs must come before -af: after it, condor_q reads them as
// more attributes to print.
func (p *Provider) query(ctx context.Context, cmd string, ids []string, reason string) (map[string]row, error) {
	found := map[string]row{}
	for _, chunk := range batch.Chunks(ids, chunkSize) {
		args := append(append([]string{}, chunk...), "-af:jt", "JobStatus", "ExitCode", reason)
		if cmd == "condor_history" {
			// Stop reading the history file once every job was found.
			args = append([]string{"-limit", strconv.Itoa(len(chunk))}, args...)
		}
		out, err := p.run.Run(ctx, nil, cmd, args...)
		if err != nil {
			return nil, err
		}
		rows, err := parseAf(out)
		if err != nil {
			return nil, &ParseError{Scheduler: "condor", Command: cmd + " " + strings.Join(args, " "), Output: out, Err: err}
		}
		for id, r := range rows {
			found[id] = r
		}
	}
	return found, nil
}

// Cancel implements provider.Provider: condor_rm every job. Jobs
// condor_rm cannot find (already gone) are not an error.
func (p *Provider) Cancel(ctx context.Context, ids []string) error {
	return errors.Join(p.run.CancelChunks(ctx, "condor_rm", ids, chunkSize, func(ce *CommandError) bool {
		return ce.ExitCode > 0 && onlyNotFound(ce.Stderr)
	})...)
}

// onlyNotFound reports whether every line of condor_rm's stderr is "Job
// N.M not found".
func onlyNotFound(stderr string) bool {
	seen := false
	for _, line := range strings.Split(stderr, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !strings.HasSuffix(strings.TrimSpace(line), "not found") {
			return false
		}
		seen = true
	}
	return seen
}

// common is batch.Common under a name that keeps the embedded field
// unexported.
type common = batch.Common

// CommandError is an HTCondor command that failed: not found, timed out,
// or exited with a non-zero code.
type CommandError = batch.CommandError

// SubmitError is a block that could not be submitted; when condor_submit
// ran, it carries its command line, exit code and output.
type SubmitError = batch.SubmitError

// ParseError is condor_q or condor_history output this provider could not
// read.
type ParseError = batch.ParseError

var _ provider.Provider = (*Provider)(nil)
