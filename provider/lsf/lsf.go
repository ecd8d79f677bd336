// Package lsf is the provider for IBM Spectrum LSF: each block is a batch
// job submitted with bsub, watched with bjobs (and `bjobs -a` once it has
// finished) and killed with bkill. Every command runs on this machine with
// a timeout, and its failure is a typed error carrying the command's
// output.
package lsf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/parsl-go/parsl/launcher"
	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/internal/batch"
)

// Options configures the LSF provider. Zero fields take the defaults,
// which follow Parsl's LSFProvider except where noted.
type Options struct {
	// Queue and Project are passed as #BSUB -q and -P when set.
	Queue   string
	Project string
	// NodesPerBlock is the number of nodes of each block; default 1.
	NodesPerBlock int
	// CoresPerNode is the number of slots asked on each node (#BSUB -n
	// NodesPerBlock×CoresPerNode with span[ptile=CoresPerNode]), exported
	// as PARSL_CORES; default 1.
	CoresPerNode int
	// RequestByNodes asks for whole nodes with #BSUB -nnodes instead. Only
	// LSF with IBM CSM (Summit, Lassen) knows -nnodes, so unlike Parsl this
	// is off by default.
	RequestByNodes bool
	// Walltime is the time limit of each block (#BSUB -W, whole minutes);
	// default 1 hour.
	Walltime time.Duration
	// SchedulerOptions are extra directives, one per element: whole lines
	// ("#BSUB -alloc_flags smt4") or bare options ("-alloc_flags smt4").
	SchedulerOptions []string
	// WorkerInit are shell lines run in the batch script before the pool
	// starts.
	WorkerInit []string
	// Launcher wraps the pool command; default launcher.SingleNode.
	Launcher launcher.Launcher
	// ScriptDir is where batch scripts are written; default a new
	// directory under os.TempDir().
	ScriptDir string
	// CmdTimeout bounds each LSF command; default 120 s as in Parsl.
	CmdTimeout time.Duration
}

// Provider submits blocks as LSF batch jobs. It is safe for concurrent use.
// Job IDs are LSF's numbers ("1234").
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
	killed         bool
	// final is the job's terminal status; `bjobs -a` forgets jobs after
	// CLEAN_PERIOD, so it is kept rather than asked again.
	final *provider.JobStatus
}

// New returns an LSF provider. Nothing is run until the first Submit.
func New(opts Options) *Provider {
	if opts.NodesPerBlock <= 0 {
		opts.NodesPerBlock = 1
	}
	if opts.CoresPerNode <= 0 {
		opts.CoresPerNode = 1
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
	p.run = batch.Runner{Scheduler: "lsf", Timeout: opts.CmdTimeout, Hint: hint}
	batch.InitCommon(&p.common, opts.Walltime, opts.ScriptDir)
	return p
}

func hint(e *CommandError) string {
	if e.Command[0] == "bsub" {
		return "check the queue, project, walltime and slot request against `bqueues -l` and your project, and the batch script"
	}
	return "check that LSF answers (`lsid`, `bqueues`)"
}

// Submit implements provider.Provider: it writes a batch script and feeds
// it to bsub on standard input. bsub reads #BSUB directives only from a
// script on its standard input; given the script as an argument, it would
// run it as a plain command and ignore them.
func (p *Provider) Submit(ctx context.Context, command []string, env []string, blockID string, stdout, stderr string) (string, error) {
	fail := func(script string, err error) (string, error) {
		return "", batch.NewSubmitError("lsf", blockID, script, err)
	}
	if err := batch.PrepareSubmit(command, &stdout, &stderr); err != nil {
		return fail("", err)
	}
	name := "parsl." + blockID
	text, err := renderScript(scriptParams{
		JobName: name, Stdout: stdout, Stderr: stderr, Opts: p.opts, Env: env,
		Command: p.opts.Launcher(command, 1, p.opts.NodesPerBlock),
	})
	if err != nil {
		return fail("", fmt.Errorf("writing the batch script: %w", err))
	}
	script, err := batch.WriteScript(&p.common, "lsf", name, "bsub", text)
	if err != nil {
		return fail(script, err)
	}
	f, err := os.Open(script)
	if err != nil {
		return fail(script, err)
	}
	defer f.Close()
	out, err := p.run.Run(ctx, f, "bsub")
	if err != nil {
		return fail(script, err)
	}
	id, err := parseBsub(out)
	if err != nil {
		return fail(script, fmt.Errorf("%w; bsub printed %q", err, out))
	}
	p.mu.Lock()
	p.jobs[id] = &job{stdout: stdout, stderr: stderr}
	p.mu.Unlock()
	return id, nil
}

// chunkSize is how many jobs one bjobs call asks about.
const chunkSize = 100

// Status implements provider.Provider. One bjobs per 100 jobs covers every
// job not known to be finished; bjobs without -a lists unfinished jobs
// only, so the jobs it no longer lists are looked up with `bjobs -a`,
// which knows jobs that finished within CLEAN_PERIOD (1 hour by default).
// A job neither lists is Missing: not running, but how it ended is lost.
// Parsl instead assumed such a job had COMPLETED.
func (p *Provider) Status(ctx context.Context, ids []string) ([]provider.JobStatus, error) {
	s := batch.Status[string]{
		Lock: &p.mu, Lookup: p.lookup, Remember: p.remember,
		Queue:   func(ctx context.Context, ids []string) (map[string]string, error) { return p.bjobs(ctx, ids, false) },
		History: func(ctx context.Context, ids []string) (map[string]string, error) { return p.bjobs(ctx, ids, true) },
		Missing: func(histErr error) string {
			why := "nor in `bjobs -a`: it finished longer ago than CLEAN_PERIOD; `bhist -l` may still know it"
			if histErr != nil {
				why = "and `bjobs -a` failed: " + histErr.Error()
			}
			return "LSF no longer lists this job (not in bjobs, " + why + "); it is not running, but its final state is lost"
		},
		Convert: func(id string, stat string) (provider.JobStatus, bool) {
			p.mu.Lock()
			j := p.jobs[id]
			killed := j != nil && j.killed
			p.mu.Unlock()
			st := provider.JobStatus{JobID: id, State: provider.Unknown}
			info, known := states[stat]
			switch {
			case !known:
				st.Message = fmt.Sprintf("unknown LSF job state %q", stat)
			case killed && (stat == "EXIT" || stat == "ZOMBI"):
				// bkill ends a job as EXIT; it was ours to end.
				st.State, st.Message = provider.Cancelled, "killed by bkill"
			default:
				st.State, st.Message = info.state, info.name
			}
			// ZOMBI is not final: the job becomes EXIT later.
			return st, st.State.Terminal() && stat != "ZOMBI"
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

// bjobs runs `bjobs [-a] -w ids` in chunks and returns each listed job's
// STAT. bjobs exits 255 when some job is not found, still printing the
// others; that alone is not an error.
func (p *Provider) bjobs(ctx context.Context, ids []string, all bool) (map[string]string, error) {
	found := map[string]string{}
	for _, chunk := range batch.Chunks(ids, chunkSize) {
		args := []string{"-w"}
		if all {
			args = []string{"-a", "-w"}
		}
		args = append(args, chunk...)
		out, err := p.run.Run(ctx, nil, "bjobs", args...)
		if err != nil {
			var ce *CommandError
			if !errors.As(err, &ce) || ce.ExitCode <= 0 || !onlyGone(ce.Stderr) {
				return nil, err
			}
			out = ce.Stdout
		}
		rows, err := parseBjobs(out)
		if err != nil {
			return nil, &ParseError{Scheduler: "lsf", Command: "bjobs " + strings.Join(args, " "), Output: out, Err: err}
		}
		for _, id := range chunk {
			if s, ok := rows[id]; ok {
				found[id] = s
			}
		}
	}
	return found, nil
}

// onlyGone reports whether every line of stderr says a job is not there
// (any more).
func onlyGone(stderr string) bool {
	seen := false
	for _, line := range strings.Split(stderr, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !isGoneLine(line) {
			return false
		}
		seen = true
	}
	return seen
}

// NodesPerBlock returns the nodes of each block, so that the htex
// executor's scaling counts the right number of worker slots per block.
func (p *Provider) NodesPerBlock() int { return p.opts.NodesPerBlock }

// Cancel implements provider.Provider: bkill every job. Jobs that have
// already finished or are unknown are not an error.
func (p *Provider) Cancel(ctx context.Context, ids []string) error {
	p.mu.Lock()
	for _, id := range ids {
		if p.jobs[id] == nil {
			p.jobs[id] = &job{}
		}
		p.jobs[id].killed = true
	}
	p.mu.Unlock()
	return errors.Join(p.run.CancelChunks(ctx, "bkill", ids, chunkSize, func(ce *CommandError) bool {
		return ce.ExitCode > 0 && onlyGone(ce.Stderr)
	})...)
}

// common is batch.Common under a name that keeps the embedded field
// unexported.
type common = batch.Common

// CommandError is an LSF command that failed: not found, timed out, or
// exited with a non-zero code.
type CommandError = batch.CommandError

// SubmitError is a block that could not be submitted; when bsub ran, it
// carries bsub's command line, exit code and output.
type SubmitError = batch.SubmitError

// ParseError is bjobs output this provider could not read.
type ParseError = batch.ParseError

var _ provider.Provider = (*Provider)(nil)
