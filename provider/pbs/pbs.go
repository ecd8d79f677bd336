// Package pbs is the provider for PBS Professional (and OpenPBS) and for
// Torque: each block is a batch job submitted with qsub, watched with
// `qstat -f` (and, on PBS Pro, `qstat -x -f` once it has left the queue)
// and cancelled with qdel. Every command runs on this machine with a
// timeout, and its failure is a typed error carrying the command's output.
package pbs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/parsl-go/parsl/launcher"
	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/internal/batch"
)

// Flavor is which PBS the provider talks to; the two differ in how
// resources are requested and in whether finished jobs can be looked up.
type Flavor int

const (
	// PBSPro is PBS Professional or OpenPBS: "-l select=N:ncpus=C", and
	// `qstat -x` shows finished jobs.
	PBSPro Flavor = iota
	// Torque is Torque (or another PBS derivative with "-l nodes=N:ppn=C"):
	// it keeps a finished job in qstat (state C) only for the server's
	// keep_completed time and has no history beyond that.
	Torque
)

// String returns the flavor's name as in a configuration file.
func (f Flavor) String() string {
	if f == Torque {
		return "torque"
	}
	return "pbspro"
}

// Options configures the PBS provider. Zero fields take the defaults,
// which follow Parsl's PBSProProvider and TorqueProvider.
type Options struct {
	// Flavor is PBSPro (default) or Torque.
	Flavor Flavor
	// Queue and Account are passed as #PBS -q and -A when set.
	Queue   string
	Account string
	// NodesPerBlock is the number of nodes of each block; default 1.
	NodesPerBlock int
	// CPUsPerNode is ncpus (PBS Pro) or ppn (Torque) per node, also
	// exported as PARSL_CORES; default 1.
	CPUsPerNode int
	// SelectOptions are appended to the PBS Pro select statement
	// ("mem=4gb:ngpus=1"); ignored for Torque.
	SelectOptions string
	// Walltime is the time limit of each block; default 1 hour.
	Walltime time.Duration
	// SchedulerOptions are extra directives, one per element: whole lines
	// ("#PBS -l place=scatter") or bare options ("-l place=scatter").
	SchedulerOptions []string
	// WorkerInit are shell lines run in the batch script before the pool
	// starts.
	WorkerInit []string
	// Launcher wraps the pool command to start it on every node; default
	// launcher.SingleNode.
	Launcher launcher.Launcher
	// ScriptDir is where batch scripts are written; default a new
	// directory under os.TempDir(), made at the first Submit.
	ScriptDir string
	// CmdTimeout bounds each PBS command; default 120 s as in Parsl, since
	// a busy PBS server answers slowly.
	CmdTimeout time.Duration
}

// Provider submits blocks as PBS batch jobs. It is safe for concurrent use.
// Job IDs are what qsub prints ("1234.server").
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
	cancelled      bool
	// final is the job's status once it is terminal; PBS forgets jobs,
	// so it is kept rather than asked again.
	final *provider.JobStatus
}

// New returns a PBS provider. Nothing is run until the first Submit.
func New(opts Options) *Provider {
	if opts.NodesPerBlock <= 0 {
		opts.NodesPerBlock = 1
	}
	if opts.CPUsPerNode <= 0 {
		opts.CPUsPerNode = 1
	}
	if opts.Walltime <= 0 {
		opts.Walltime = time.Hour
	}
	if opts.Launcher == nil {
		opts.Launcher = launcher.SingleNode
	}
	if opts.CmdTimeout <= 0 {
		opts.CmdTimeout = 120 * time.Second
	}
	p := &Provider{opts: opts, jobs: map[string]*job{}}
	p.run = batch.Runner{Scheduler: "pbs", Timeout: opts.CmdTimeout, Hint: hint}
	batch.InitCommon(&p.common, opts.Walltime, opts.ScriptDir)
	return p
}

func hint(e *CommandError) string {
	switch e.Command[0] {
	case "qsub":
		return "check the queue, account, walltime and select/nodes request against `qstat -Q -f` and your allocation, and the batch script"
	default:
		return "check that the PBS server is up (`qstat -B`)"
	}
}

// Submit implements provider.Provider: it writes a batch script that
// exports env, runs WorkerInit and then the launcher-wrapped command, and
// submits it with qsub.
func (p *Provider) Submit(ctx context.Context, command []string, env []string, blockID string, stdout, stderr string) (string, error) {
	fail := func(script string, err error) (string, error) {
		return "", batch.NewSubmitError("pbs", blockID, script, err)
	}
	if err := batch.PrepareSubmit(command, &stdout, &stderr); err != nil {
		return fail("", err)
	}
	// PBS job names must start with a letter and, on older servers, be at
	// most 15 characters.
	name := "parsl." + blockID
	text, err := renderScript(scriptParams{
		JobName: name, Stdout: stdout, Stderr: stderr, Opts: p.opts, Env: env,
		Command: p.opts.Launcher(command, 1, p.opts.NodesPerBlock),
	})
	if err != nil {
		return fail("", fmt.Errorf("writing the batch script: %w", err))
	}
	script, err := batch.WriteScript(&p.common, "pbs", name, "qsub", text)
	if err != nil {
		return fail(script, err)
	}
	out, err := p.run.Run(ctx, nil, "qsub", script)
	if err != nil {
		return fail(script, err)
	}
	id, err := parseQsub(out)
	if err != nil {
		return fail(script, err)
	}
	p.mu.Lock()
	p.jobs[id] = &job{stdout: stdout, stderr: stderr}
	p.mu.Unlock()
	return id, nil
}

// statusBatch is how many jobs one qstat call asks about.
const statusBatch = 100

// Status implements provider.Provider. One `qstat -f` per 100 jobs covers
// every job not known to be finished. A job qstat no longer lists is looked
// up with `qstat -x -f` on PBS Pro, whose server keeps a job history. A job
// neither knows (Torque past keep_completed, or PBS Pro past
// job_history_duration) is Missing: not running, but how it ended is
// lost. Parsl instead assumed such a job had COMPLETED.
func (p *Provider) Status(ctx context.Context, ids []string) ([]provider.JobStatus, error) {
	s := batch.Status[record]{
		Lock: &p.mu, Lookup: p.lookup, Remember: p.remember,
		Queue: func(ctx context.Context, ids []string) (map[string]record, error) { return p.qstat(ctx, ids, false) },
		Missing: func(histErr error) string {
			why := "Torque keeps no job history; raise the server's keep_completed to see how jobs ended"
			switch {
			case p.opts.Flavor != PBSPro:
			case histErr != nil:
				why = "qstat -x failed: " + histErr.Error()
			default:
				why = "not in the server's job history either (job_history_enable off, or older than job_history_duration)"
			}
			return "PBS no longer knows this job (" + why + "); it is not running, but its final state and exit code are lost"
		},
		Convert: func(id string, r record) (provider.JobStatus, bool) {
			p.mu.Lock()
			j := p.jobs[id]
			cancelled := j != nil && j.cancelled
			p.mu.Unlock()
			st := r.status(id, cancelled)
			return st, st.State.Terminal()
		},
	}
	if p.opts.Flavor == PBSPro {
		s.History = func(ctx context.Context, ids []string) (map[string]record, error) { return p.qstat(ctx, ids, true) }
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

// qstat runs `qstat -f [-x] ids` in batches and returns the records by the
// job ID the caller used. Unknown job IDs are left out; qstat's non-zero
// exit for them is not an error.
func (p *Provider) qstat(ctx context.Context, ids []string, history bool) (map[string]record, error) {
	found := map[string]record{}
	for _, chunk := range batch.Chunks(ids, statusBatch) {
		args := []string{"-f"}
		if history {
			args = []string{"-x", "-f"}
		}
		out, err := p.run.Run(ctx, nil, "qstat", append(args, chunk...)...)
		if err != nil {
			var ce *CommandError
			if !errors.As(err, &ce) || ce.ExitCode <= 0 || !onlyGoneJobs(ce.Stderr) {
				return nil, err
			}
			out = ce.Stdout
		}
		recs, err := parseQstatFull(out)
		if err != nil {
			return nil, &ParseError{Scheduler: "pbs", Command: "qstat " + strings.Join(args, " "), Output: out, Err: err}
		}
		bySeq := map[string]record{}
		for _, r := range recs {
			bySeq[seq(r.id)] = r
		}
		for _, id := range chunk {
			// qstat may print a shorter server name than qsub did.
			if r, ok := bySeq[seq(id)]; ok {
				found[id] = r
			}
		}
	}
	return found, nil
}

// onlyGoneJobs reports whether every line of stderr says a job has left
// the queue (or, for qdel, that it no longer needs deleting): the one
// failure of qstat and qdel that is not an error here.
func onlyGoneJobs(stderr string) bool {
	seen := false
	for _, line := range strings.Split(stderr, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !isGoneJob(line) && !strings.Contains(line, "COMPLETE") {
			return false
		}
		seen = true
	}
	return seen
}

// NodesPerBlock returns the nodes of each block, so that the htex
// executor's scaling counts the right number of worker slots per block.
func (p *Provider) NodesPerBlock() int { return p.opts.NodesPerBlock }

// Cancel implements provider.Provider: qdel every job. Jobs that PBS
// says are unknown or already finished are not an error; a later Status
// reports them as Cancelled rather than Failed.
func (p *Provider) Cancel(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	p.mu.Lock()
	for _, id := range ids {
		if j := p.jobs[id]; j != nil {
			j.cancelled = true
		}
	}
	p.mu.Unlock()
	return errors.Join(p.run.CancelChunks(ctx, "qdel", ids, statusBatch, func(ce *CommandError) bool {
		return ce.ExitCode > 0 && onlyGoneJobs(ce.Stderr)
	})...)
}

// common is batch.Common under a name that keeps the embedded field
// unexported.
type common = batch.Common

// CommandError is a PBS command that failed: not found, timed out, or
// exited with a non-zero code.
type CommandError = batch.CommandError

// SubmitError is a block that could not be submitted; when qsub ran, it
// carries qsub's command line, exit code and output.
type SubmitError = batch.SubmitError

// ParseError is qstat output this provider could not read.
type ParseError = batch.ParseError

var _ provider.Provider = (*Provider)(nil)
