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
	opts   Options
	run    batch.Runner
	script batch.ScriptDir

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
	p.script.Set(opts.ScriptDir)
	return p
}

func hint(e *CommandError) string {
	if e.Command[0] == "condor_submit" {
		return "check the submit file's commands (requirements, request_cpus/request_memory, scheduler options) and that you may submit here (not as root; `condor_q` works)"
	}
	return "check that the schedd is up (`condor_status -schedd`)"
}

// AppliesLauncher tells an executor that this provider wraps the command
// with its own Launcher, so the executor must not.
func (p *Provider) AppliesLauncher() bool { return true }

// BlockWalltime returns the walltime of every block.
func (p *Provider) BlockWalltime() time.Duration { return p.opts.Walltime }

// SetScriptDir sets the directory where job scripts and submit files are
// written. It affects later submits only.
func (p *Provider) SetScriptDir(dir string) { p.script.Set(dir) }

// ScriptDir returns the directory where job scripts are written.
func (p *Provider) ScriptDir() string { return p.script.Get() }

// Submit implements provider.Provider: it writes a job script (exports,
// WorkerInit, the launcher-wrapped command) and a submit description, and
// runs condor_submit.
func (p *Provider) Submit(ctx context.Context, command []string, env []string, blockID string, stdout, stderr string) (string, error) {
	fail := func(script string, err error) (string, error) {
		return "", batch.NewSubmitError("condor", blockID, script, err)
	}
	if len(command) == 0 {
		return fail("", errors.New("empty command"))
	}
	for _, f := range []*string{&stdout, &stderr} {
		abs, err := filepath.Abs(*f)
		if err != nil {
			return fail("", fmt.Errorf("output path %q: %w", *f, err))
		}
		*f = abs
	}
	dir, err := p.script.Ensure("condor")
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
	out := make([]provider.JobStatus, len(ids))
	var ask []string
	where := map[string][]int{}
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
		if !validID(id) {
			out[i].Message = "not an HTCondor job ID (cluster.proc)"
			continue
		}
		if _, ok := where[id]; !ok {
			ask = append(ask, id)
		}
		where[id] = append(where[id], i)
	}
	p.mu.Unlock()
	if len(ask) == 0 {
		return out, nil
	}
	found, err := p.query(ctx, "condor_q", ask, "HoldReason")
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, id := range ask {
		if _, ok := found[id]; !ok {
			gone = append(gone, id)
		}
	}
	why := ""
	if len(gone) > 0 {
		hist, err := p.query(ctx, "condor_history", gone, "RemoveReason")
		if err != nil {
			why = ": condor_history failed: " + err.Error()
		}
		for id, r := range hist {
			found[id] = r
		}
	}
	for _, id := range ask {
		r, ok := found[id]
		for _, i := range where[id] {
			if !ok {
				out[i].State = provider.Missing
				out[i].Message = "HTCondor no longer knows this job (not in condor_q, nor in condor_history" + why + "); it is not queued, but its final state and exit code are lost"
				continue
			}
			st := r.status(id)
			st.StdoutPath, st.StderrPath = out[i].StdoutPath, out[i].StderrPath
			out[i] = st
			if st.State.Terminal() {
				p.mu.Lock()
				if p.jobs[id] == nil {
					p.jobs[id] = &job{}
				}
				f := st
				p.jobs[id].final = &f
				p.mu.Unlock()
			}
		}
	}
	return out, nil
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
	var errs []error
	for _, chunk := range batch.Chunks(ids, chunkSize) {
		_, err := p.run.Run(ctx, nil, "condor_rm", chunk...)
		var ce *CommandError
		if err != nil && errors.As(err, &ce) && ce.ExitCode > 0 && onlyNotFound(ce.Stderr) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("condor provider: cancel: %w", err))
		}
	}
	return errors.Join(errs...)
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
