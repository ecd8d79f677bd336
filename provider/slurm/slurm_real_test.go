package slurm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/slurm"
)

// The tests in this file run against a real Slurm. They need the
// scheduler's commands and a controller that starts jobs on this machine
// (the job's files are read back here), which .ci/slurm/start-slurm.sh
// sets up.

func TestMain(m *testing.M) {
	// The end-to-end test starts this binary as a worker pool through
	// sbatch; parsl.Main turns it into the pool and never returns then.
	parsl.Main()
	os.Exit(m.Run())
}

func needSlurm(t *testing.T) {
	t.Helper()
	if os.Getenv("PARSL_TEST_SLURM") != "1" {
		t.Skip("needs a real Slurm: run `.ci/slurm/start-slurm.sh` as root, then set PARSL_TEST_SLURM=1")
	}
	if _, err := exec.LookPath("sbatch"); err != nil {
		t.Fatalf("PARSL_TEST_SLURM=1 but sbatch is not on PATH: %v", err)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newProvider returns a provider whose jobs share the node (so that the
// tests' jobs need not wait for each other) and are cancelled when the test
// ends, whatever happens.
func newProvider(t *testing.T, o slurm.Options) *slurm.Provider {
	t.Helper()
	no := false
	if o.Exclusive == nil {
		o.Exclusive = &no
	}
	if o.ScriptDir == "" {
		o.ScriptDir = filepath.Join(t.TempDir(), "submit_scripts")
	}
	return slurm.New(o)
}

type block struct {
	id             string
	stdout, stderr string
}

func submit(t *testing.T, p *slurm.Provider, script string) block {
	t.Helper()
	dir := t.TempDir()
	b := block{stdout: filepath.Join(dir, "out"), stderr: filepath.Join(dir, "err")}
	var err error
	b.id, err = p.Submit(ctxT(t, 30*time.Second), []string{"/bin/sh", "-c", script}, []string{"GREETING=ok"}, "t", b.stdout, b.stderr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Cancel(context.Background(), []string{b.id}) })
	return b
}

// waitFor polls the job until done(state) or the deadline, and returns
// the last status and every state seen.
func waitFor(t *testing.T, p *slurm.Provider, id string, d time.Duration, done func(provider.JobState) bool) (provider.JobStatus, []provider.JobState) {
	t.Helper()
	deadline := time.Now().Add(d)
	var seen []provider.JobState
	for {
		sts, err := p.Status(ctxT(t, 30*time.Second), []string{id})
		if err != nil {
			t.Fatal(err)
		}
		st := sts[0]
		if len(seen) == 0 || seen[len(seen)-1] != st.State {
			seen = append(seen, st.State)
		}
		if done(st.State) {
			return st, seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %v after %v (states seen %v; %s)", id, st.State, d, seen, st.Message)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func terminal(s provider.JobState) bool { return s.Terminal() }

func TestRealCompletes(t *testing.T) {
	needSlurm(t)
	p := newProvider(t, slurm.Options{})
	b := submit(t, p, `sleep 2; echo "$GREETING"`)
	st, seen := waitFor(t, p, b.id, 60*time.Second, terminal)
	if st.State != provider.Completed || st.ExitCode != 0 {
		t.Fatalf("job ended %v exit %d (%s), want COMPLETED 0; stderr: %s", st.State, st.ExitCode, st.Message, readFile(b.stderr))
	}
	if seen[0] != provider.Pending && seen[0] != provider.Running {
		t.Errorf("first state %v, want PENDING or RUNNING (seen %v)", seen[0], seen)
	}
	if st.StdoutPath != b.stdout || st.StderrPath != b.stderr {
		t.Errorf("paths %q %q, want %q %q", st.StdoutPath, st.StderrPath, b.stdout, b.stderr)
	}
	if got := readFile(b.stdout); got != "ok\n" {
		t.Errorf("stdout %q, want \"ok\\n\"", got)
	}
	// The script was kept where it was asked to be.
	scripts, _ := filepath.Glob(filepath.Join(p.ScriptDir(), "parsl.t.*.sbatch"))
	if len(scripts) != 1 {
		t.Errorf("scripts in %s: %v, want one", p.ScriptDir(), scripts)
	}
}

func TestRealFailedJobKeepsExitCode(t *testing.T) {
	needSlurm(t)
	p := newProvider(t, slurm.Options{})
	b := submit(t, p, `echo bad >&2; exit 3`)
	st, _ := waitFor(t, p, b.id, 60*time.Second, terminal)
	if st.State != provider.Failed || st.ExitCode != 3 {
		t.Fatalf("job ended %v exit %d (%s), want FAILED 3", st.State, st.ExitCode, st.Message)
	}
	if !strings.Contains(readFile(b.stderr), "bad") {
		t.Errorf("stderr %q lacks the job's message", readFile(b.stderr))
	}
	// A later Status gives the same answer (remembered, not assumed).
	again, err := p.Status(ctxT(t, 30*time.Second), []string{b.id})
	if err != nil || again[0] != st {
		t.Errorf("second Status = %+v, %v; want %+v", again, err, st)
	}
}

func TestRealCancelRunning(t *testing.T) {
	needSlurm(t)
	p := newProvider(t, slurm.Options{})
	b := submit(t, p, `echo started; sleep 300`)
	waitFor(t, p, b.id, 60*time.Second, func(s provider.JobState) bool { return s == provider.Running })
	// Wait until the command itself runs: Slurm 22.05 with proctrack/linuxproc
	// was once seen to keep a job cancelled while its srun step was still
	// launching in COMPLETING for 66 s, which is Slurm's business, not ours.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(readFile(b.stdout), "started"); {
		if time.Now().After(deadline) {
			t.Fatalf("the job's command did not start within 30 s; stderr: %s", readFile(b.stderr))
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	if err := p.Cancel(ctxT(t, 30*time.Second), []string{b.id}); err != nil {
		t.Fatal(err)
	}
	t.Logf("Cancel returned after %v", time.Since(start))
	out, err := exec.Command("squeue", "--noheader", "--jobs="+b.id).CombinedOutput()
	if strings.TrimSpace(string(out)) != "" {
		t.Errorf("squeue still lists job %s after Cancel: %s (%v)", b.id, out, err)
	}
	st, _ := waitFor(t, p, b.id, 30*time.Second, terminal)
	if st.State != provider.Cancelled {
		t.Fatalf("cancelled job reads %v (%s), want CANCELLED", st.State, st.Message)
	}
}

// TestRealStatusManyInOneCall checks one Status call over many jobs, of
// every kind: running, finished, never known, malformed. A squeue wrapper
// first in PATH counts the squeue calls.
func TestRealStatusManyInOneCall(t *testing.T) {
	needSlurm(t)
	p := newProvider(t, slurm.Options{})
	var ids []string
	for i := 0; i < 12; i++ {
		ids = append(ids, submit(t, p, fmt.Sprintf("exit %d", i%3)).id)
	}
	long := submit(t, p, "sleep 300").id
	for _, id := range ids {
		waitFor(t, p, id, 90*time.Second, terminal)
	}
	waitFor(t, p, long, 60*time.Second, func(s provider.JobState) bool { return s == provider.Running })

	real, err := exec.LookPath("squeue")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	count := filepath.Join(dir, "calls")
	wrapper := fmt.Sprintf("#!/bin/sh\necho x >>%q\nexec %q \"$@\"\n", count, real)
	if err := os.WriteFile(filepath.Join(dir, "squeue"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	// A fresh provider knows nothing cached: every final state is asked.
	fresh := newProvider(t, slurm.Options{})
	all := append(append(append([]string{}, ids...), long), "99999999", "not-a-job")
	sts, err := fresh.Status(ctxT(t, 30*time.Second), all)
	if err != nil {
		t.Fatal(err)
	}
	if calls := strings.Count(readFile(count), "x"); calls != 1 {
		t.Errorf("Status ran squeue %d times for %d jobs, want once", calls, len(all))
	}
	if len(sts) != len(all) {
		t.Fatalf("%d statuses for %d ids", len(sts), len(all))
	}
	for i, id := range ids {
		want, code := provider.Completed, i%3
		if code != 0 {
			want = provider.Failed
		}
		if sts[i].JobID != id || sts[i].State != want || sts[i].ExitCode != code {
			t.Errorf("job %s (exit %d) = %+v, want %v", id, code, sts[i], want)
		}
	}
	if st := sts[len(ids)]; st.State != provider.Running {
		t.Errorf("long job = %+v, want RUNNING", st)
	}
	if st := sts[len(ids)+1]; st.State != provider.Missing {
		t.Errorf("never-known job = %+v, want MISSING (not COMPLETED)", st)
	}
	if st := sts[len(ids)+2]; st.State != provider.Unknown {
		t.Errorf("malformed id = %+v, want UNKNOWN", st)
	}
}

func TestRealSubmitErrorSaysWhy(t *testing.T) {
	needSlurm(t)
	p := newProvider(t, slurm.Options{Partition: "no-such-partition"})
	dir := t.TempDir()
	_, err := p.Submit(ctxT(t, 30*time.Second), []string{"true"}, nil, "bad", filepath.Join(dir, "o"), filepath.Join(dir, "e"))
	var se *slurm.SubmitError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want *slurm.SubmitError", err, err)
	}
	if se.ExitCode <= 0 || !strings.Contains(se.Stderr, "partition") || se.Command[0] != "sbatch" || se.Script == "" {
		t.Errorf("SubmitError lacks sbatch's details: %+v", se)
	}
	if !strings.Contains(err.Error(), "sinfo") {
		t.Errorf("message %q does not say what to check", err)
	}
}

// TestRealTimeout waits for Slurm to end a job at its walltime; the
// smallest walltime is a minute, so it runs only with
// PARSL_TEST_SLURM_SLOW=1. testdata/scontrol_timeout.txt covers the parsing.
func TestRealTimeout(t *testing.T) {
	needSlurm(t)
	if os.Getenv("PARSL_TEST_SLURM_SLOW") != "1" {
		t.Skip("takes over a minute; set PARSL_TEST_SLURM_SLOW=1 to run it")
	}
	p := newProvider(t, slurm.Options{Walltime: time.Minute})
	b := submit(t, p, "sleep 600")
	st, _ := waitFor(t, p, b.id, 3*time.Minute, terminal)
	if st.State != provider.Timeout {
		t.Fatalf("job ended %v (%s), want TIMEOUT", st.State, st.Message)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
