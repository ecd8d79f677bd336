// Package gridengine is the provider for Grid Engine (Son of Grid Engine,
// Univa/Altair Grid Engine, Open Cluster Scheduler): each block is a batch
// job submitted with `qsub -terse`, watched with `qstat -xml` (one call for
// every job) and, once it has left the queue, looked up with `qacct -j`;
// it is cancelled with qdel. Every command runs on this machine with a
// timeout, and its failure is a typed error carrying the command's output.
package gridengine

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

// Options configures the Grid Engine provider. Zero fields take the
// defaults, which follow Parsl's GridEngineProvider.
type Options struct {
	// Queue and Project are passed as #$ -q and -P when set.
	Queue   string
	Project string
	// PE is the parallel environment to request Slots slots in
	// (#$ -pe PE Slots); "" requests none, so the job gets one slot.
	// Parallel environments are site-specific (`qconf -spl` lists them).
	PE    string
	Slots int
	// Walltime is the time limit of each block (#$ -l h_rt); default 1
	// hour.
	Walltime time.Duration
	// SchedulerOptions are extra directives, one per element: whole lines
	// ("#$ -l h_vmem=4G") or bare options ("-l h_vmem=4G").
	SchedulerOptions []string
	// WorkerInit are shell lines run in the batch script before the pool
	// starts.
	WorkerInit []string
	// Launcher wraps the pool command; default launcher.SingleNode, as in
	// Parsl.
	Launcher launcher.Launcher
	// ScriptDir is where batch scripts are written; default a new
	// directory under os.TempDir(), made at the first Submit.
	ScriptDir string
	// CmdTimeout bounds each Grid Engine command; default 60 s.
	CmdTimeout time.Duration
	// AccountingDelay is how long after a job was last seen in qstat a
	// missing qacct record is taken to be late rather than lost: the
	// qmaster writes the accounting file some seconds after a job ends
	// (reporting_params accounting_flush_time). Within it the job reads
	// Unknown; after it, Missing. Default 30 s.
	AccountingDelay time.Duration
}

// Provider submits blocks as Grid Engine batch jobs. It is safe for
// concurrent use. Job IDs are the numbers `qsub -terse` prints.
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
	// seen is when qstat last listed the job (or it was submitted).
	seen time.Time
	// final is the job's status once it is terminal; qacct's answer never
	// changes, so it is not asked again.
	final *provider.JobStatus
}

// New returns a Grid Engine provider. Nothing is run until the first
// Submit.
func New(opts Options) *Provider {
	if opts.Slots <= 0 {
		opts.Slots = 1
	}
	if opts.Walltime <= 0 {
		opts.Walltime = time.Hour
	}
	if opts.Launcher == nil {
		opts.Launcher = launcher.SingleNode
	}
	if opts.CmdTimeout <= 0 {
		opts.CmdTimeout = 60 * time.Second
	}
	if opts.AccountingDelay <= 0 {
		opts.AccountingDelay = 30 * time.Second
	}
	p := &Provider{opts: opts, jobs: map[string]*job{}}
	p.run = batch.Runner{Scheduler: "gridengine", Timeout: opts.CmdTimeout, Hint: hint}
	batch.InitCommon(&p.common, opts.Walltime, opts.ScriptDir)
	return p
}

func hint(e *CommandError) string {
	switch e.Command[0] {
	case "qsub":
		return "check the queue (`qconf -sql`), parallel environment (`qconf -spl`), project and h_rt against the site's limits, and the batch script"
	case "qacct":
		return "qacct reads the accounting file under $SGE_ROOT/$SGE_CELL/common; is it readable here?"
	default:
		return "check that the qmaster is up (`qstat -g c`) and that SGE_ROOT and SGE_CELL are set"
	}
}

// Submit implements provider.Provider: it writes a batch script that
// exports env, runs WorkerInit and then the launcher-wrapped command, and
// submits it with `qsub -terse`.
func (p *Provider) Submit(ctx context.Context, command []string, env []string, blockID string, stdout, stderr string) (string, error) {
	fail := func(script string, err error) (string, error) {
		return "", batch.NewSubmitError("gridengine", blockID, script, err)
	}
	if err := batch.PrepareSubmit(command, &stdout, &stderr); err != nil {
		return fail("", err)
	}
	// Grid Engine refuses job names with "/", ":", "@", "\", "*" or "?".
	name := batch.UnsafeName.ReplaceAllString("parsl."+blockID, "_")
	text, err := renderScript(scriptParams{
		JobName: name, Stdout: stdout, Stderr: stderr, Opts: p.opts, Env: env,
		Command: p.opts.Launcher(command, 1, 1), // one pool per block, sized by PARSL_CORES
	})
	if err != nil {
		return fail("", fmt.Errorf("writing the batch script: %w", err))
	}
	script, err := batch.WriteScript(&p.common, "gridengine", name, "qsub", text)
	if err != nil {
		return fail(script, err)
	}
	out, err := p.run.Run(ctx, nil, "qsub", "-terse", script)
	if err != nil {
		return fail(script, err)
	}
	id, err := parseQsub(out)
	if err != nil {
		return fail(script, err)
	}
	p.mu.Lock()
	p.jobs[id] = &job{stdout: stdout, stderr: stderr, seen: time.Now()}
	p.mu.Unlock()
	return id, nil
}

// Status implements provider.Provider. One `qstat -xml` covers every job
// not known to be finished. A job qstat no longer lists is looked up with
// `qacct -j` for its exit status. One that qacct does not know either is
// Unknown for Options.AccountingDelay after it was last seen (the record
// is written late), then Missing: certainly not running, but how it ended
// is lost. Parsl instead assumed that such a job had COMPLETED.
func (p *Provider) Status(ctx context.Context, ids []string) ([]provider.JobStatus, error) {
	out := make([]provider.JobStatus, len(ids))
	var ask []int
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
		if !jobIDRe.MatchString(id) {
			out[i].Message = "not a Grid Engine job ID"
			continue
		}
		ask = append(ask, i)
	}
	p.mu.Unlock()
	if len(ask) == 0 {
		return out, nil
	}
	codes, err := p.qstat(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	acct := map[string]acctResult{} // by job ID, so that a repeated ID is asked once
	for _, i := range ask {
		id := ids[i]
		if code, ok := codes[id]; ok && !strings.Contains(code, "z") {
			st, msg := mapState(code)
			out[i].State, out[i].Message = st, msg
			p.mu.Lock()
			if j := p.jobs[id]; j != nil {
				j.seen = now
			}
			p.mu.Unlock()
			// Not remembered even when terminal: an error-state job is
			// still queued, and its removal by Cancel must show.
			continue
		}
		r, ok := acct[id]
		if !ok {
			r = p.qacct(ctx, id)
			acct[id] = r
		}
		p.mu.Lock()
		j := p.jobs[id]
		cancelled := j != nil && j.cancelled
		var seen time.Time
		if j != nil {
			seen = j.seen
		}
		p.mu.Unlock()
		switch {
		case r.err == nil && r.found:
			p.setFinal(&out[i], r.rec.status(id, cancelled, p.opts.Walltime))
		case !seen.IsZero() && now.Sub(seen) < p.opts.AccountingDelay:
			out[i].State = provider.Unknown
			out[i].Message = "left the queue; waiting for qacct to record how it ended"
			if r.err != nil {
				out[i].Message += " (" + r.err.Error() + ")"
			}
		default:
			out[i].State = provider.Missing
			out[i].Message = "Grid Engine no longer knows this job (not in qstat, nor in qacct"
			if r.err != nil {
				out[i].Message += ": " + r.err.Error()
			}
			out[i].Message += "); it is not running, but its final state and exit code are lost"
		}
	}
	return out, nil
}

// setFinal copies a terminal status into dst, keeping dst's output paths,
// and remembers it for the job.
func (p *Provider) setFinal(dst *provider.JobStatus, st provider.JobStatus) {
	st.StdoutPath, st.StderrPath = dst.StdoutPath, dst.StderrPath
	*dst = st
	p.mu.Lock()
	j := p.jobs[st.JobID]
	if j == nil {
		// A job of an earlier provider (a restarted driver): its end is
		// known now and will not change either.
		j = &job{}
		p.jobs[st.JobID] = j
	}
	f := st
	j.final = &f
	p.mu.Unlock()
}

// qstat runs `qstat -xml`, which lists every job of this user (running
// and pending) in one call, and returns the state code of each by ID.
// Asking for the user's whole list, rather than `qstat -j` per job, keeps
// Status to one command however many blocks there are.
func (p *Provider) qstat(ctx context.Context) (map[string]string, error) {
	out, err := p.run.Run(ctx, nil, "qstat", "-xml")
	if err != nil {
		return nil, err
	}
	codes, err := parseQstatXML(out)
	if err != nil {
		return nil, &ParseError{Scheduler: "gridengine", Command: "qstat -xml", Output: out, Err: err}
	}
	return codes, nil
}

// acctResult is qacct's answer about one job.
type acctResult struct {
	rec   acctRecord
	found bool
	err   error
}

// qacct looks a finished job up in the accounting file. qacct exits 1 both
// when the job is not (yet) in the file and when there is no file yet;
// either way the job is not found, which is not an error.
func (p *Provider) qacct(ctx context.Context, id string) acctResult {
	out, err := p.run.Run(ctx, nil, "qacct", "-j", id)
	if err != nil {
		var ce *CommandError
		if errors.As(err, &ce) && ce.ExitCode == 1 && notInAccounting(ce.Stdout+ce.Stderr) {
			return acctResult{}
		}
		return acctResult{err: err}
	}
	rec, err := parseQacct(out)
	if err != nil {
		return acctResult{err: &ParseError{Scheduler: "gridengine", Command: "qacct -j " + id, Output: out, Err: err}}
	}
	return acctResult{rec: rec, found: true}
}

// notInAccounting reports whether qacct's output says only that it knows
// no such job: "error: job id N not found", or, before any job has ended,
// "no jobs running since startup" and a missing accounting file.
func notInAccounting(s string) bool {
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "error: job id ") && strings.HasSuffix(line, " not found"):
		case strings.HasPrefix(line, "error: job name ") && strings.HasSuffix(line, " not found"):
		case line == "no jobs running since startup":
		case strings.HasSuffix(line, "/accounting: No such file or directory"):
		default:
			return false
		}
	}
	return true
}

// Cancel implements provider.Provider: qdel the jobs, then wait until qstat
// no longer lists them (or ctx ends), so that the caller may count their
// slots as released. Jobs qdel says do not exist are already gone, not an
// error; a later Status reports cancelled jobs as Cancelled.
func (p *Provider) Cancel(ctx context.Context, ids []string) error {
	var errs []error
	var bare []string
	for _, id := range ids {
		if !jobIDRe.MatchString(id) {
			errs = append(errs, fmt.Errorf("gridengine provider: cancel: %q is not a Grid Engine job ID", id))
			continue
		}
		bare = append(bare, id)
	}
	if len(bare) == 0 {
		return errors.Join(errs...)
	}
	p.mu.Lock()
	for _, id := range bare {
		if j := p.jobs[id]; j != nil {
			j.cancelled = true
		}
	}
	p.mu.Unlock()
	// qdel exits 1 and says so (on stdout or stderr) for jobs already gone.
	errs = append(errs, p.run.CancelChunks(ctx, "qdel", bare, 100, func(ce *CommandError) bool {
		return ce.ExitCode == 1 && onlyGone(ce.Stdout+"\n"+ce.Stderr)
	})...)
	stillListed := func(left []string) error {
		return errors.Join(append(errs, fmt.Errorf("gridengine provider: jobs %s still listed by qstat after qdel (check `qstat -j %s`): %w",
			strings.Join(left, ","), left[0], ctx.Err()))...)
	}
	left := bare
	delay := 50 * time.Millisecond
	for {
		codes, err := p.qstat(ctx)
		if err != nil {
			if ctx.Err() != nil {
				// ctx ended during qstat: the jobs last listed are
				// what the caller needs to hear about.
				return stillListed(left)
			}
			return errors.Join(append(errs, fmt.Errorf("gridengine provider: checking that cancelled jobs are gone: %w", err))...)
		}
		left = left[:0:0]
		for _, id := range bare {
			if _, ok := codes[id]; ok {
				left = append(left, id)
			}
		}
		if len(left) == 0 {
			return errors.Join(errs...)
		}
		select {
		case <-ctx.Done():
			return stillListed(left)
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// onlyGone reports whether qdel's output has only acknowledgements and
// "does not exist" refusals: qdel exits 1 if any job was unknown, even
// when it deleted the others.
func onlyGone(s string) bool {
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "denied: job ") && strings.HasSuffix(line, " does not exist"):
		case strings.Contains(line, " has deleted job "), strings.Contains(line, " has registered the job "):
		default:
			return false
		}
	}
	return true
}

// common is batch.Common under a name that keeps the embedded field
// unexported.
type common = batch.Common

// CommandError is a Grid Engine command that failed: not found, timed
// out, or exited with a non-zero code.
type CommandError = batch.CommandError

// SubmitError is a block that could not be submitted; when qsub ran, it
// carries qsub's command line, exit code and output.
type SubmitError = batch.SubmitError

// ParseError is qstat or qacct output this provider could not read.
type ParseError = batch.ParseError

var _ provider.Provider = (*Provider)(nil)
