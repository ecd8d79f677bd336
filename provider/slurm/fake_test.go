package slurm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/provider"
)

// fakeSlurm puts shell scripts named like the Slurm commands first in
// PATH, so that the provider's command handling (how it combines squeue,
// scontrol and sacct; its errors and timeouts) is tested on any machine.
// Each script gets its body from scripts; "$T" in a body is the testdata
// directory.
func fakeSlurm(t *testing.T, scripts map[string]string) {
	t.Helper()
	dir := t.TempDir()
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range scripts {
		text := "#!/bin/sh\nT=" + shellQuote(td) + "\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// TestStatusCombinesCommands replays the captured outputs: squeue for the
// live and recently finished jobs, scontrol for the exit codes of finished
// ones, sacct (here: accounting disabled) for the forgotten one.
func TestStatusCombinesCommands(t *testing.T) {
	fakeSlurm(t, map[string]string{
		"squeue": `cat "$T/squeue_all.txt"`,
		"scontrol": `for a; do id=$a; done
case $id in
16) cat "$T/scontrol_completed.txt" ;;
17) cat "$T/scontrol_failed.txt" ;;
18) cat "$T/scontrol_cancelled.txt" ;;
*) cat "$T/scontrol_invalid.stderr" >&2; exit 1 ;;
esac`,
		"sacct": `echo "Slurm accounting storage is disabled" >&2; exit 1`,
	})
	p := New(Options{})
	ids := []string{"16", "17", "18", "19", "20", "99999"}
	sts, err := p.Status(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		state provider.JobState
		code  int
	}{{provider.Completed, 0}, {provider.Failed, 3}, {provider.Cancelled, 0}, {provider.Held, 0}, {provider.Running, 0}, {provider.Missing, 0}}
	for i, w := range want {
		if sts[i].JobID != ids[i] || sts[i].State != w.state || sts[i].ExitCode != w.code {
			t.Errorf("job %s = %+v, want %v exit %d", ids[i], sts[i], w.state, w.code)
		}
	}
	if m := sts[5].Message; !strings.Contains(m, "accounting storage is disabled") || !strings.Contains(m, "not running") {
		t.Errorf("forgotten job's message %q should say why its end is unknown", m)
	}
}

// TestStatusSqueueAllPurged: squeue fails when every job it is asked about
// is gone (Parsl PR #2259); that is not an error.
func TestStatusSqueueAllPurged(t *testing.T) {
	fakeSlurm(t, map[string]string{
		"squeue": `cat "$T/squeue_invalid.stderr" >&2; exit 1`,
		"sacct":  `cat "$T/sacct_timeout.txt"`,
	})
	sts, err := New(Options{}).Status(context.Background(), []string{"13"})
	if err != nil {
		t.Fatal(err)
	}
	if sts[0].State != provider.Timeout {
		t.Errorf("job 13 = %+v, want TIMEOUT from sacct", sts[0])
	}
}

func TestStatusControllerDownIsAnError(t *testing.T) {
	fakeSlurm(t, map[string]string{
		"squeue": `echo "squeue: error: slurm_load_jobs: Unable to contact slurm controller (connect failure)" >&2; exit 1`,
	})
	_, err := New(Options{}).Status(context.Background(), []string{"1"})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 1 || !strings.Contains(err.Error(), "scontrol ping") {
		t.Fatalf("error %v, want a *CommandError saying to check the controller", err)
	}
}

func TestCommandTimeout(t *testing.T) {
	fakeSlurm(t, map[string]string{"squeue": `exec sleep 30`})
	start := time.Now()
	_, err := New(Options{CmdTimeout: 200 * time.Millisecond}).Status(context.Background(), []string{"1"})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Timeout != 200*time.Millisecond || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a timed-out *CommandError", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Status took %v despite the 200 ms timeout", d)
	}
	if !strings.Contains(err.Error(), "CmdTimeout") {
		t.Errorf("message %q should name the option to raise", err)
	}
}

func TestSubmitWithFakeSbatch(t *testing.T) {
	fakeSlurm(t, map[string]string{"sbatch": `for a; do s=$a; done; cp "$s" "$s.seen"; echo "42;c2"`})
	dir := t.TempDir()
	p := New(Options{Clusters: "c1,c2", ScriptDir: filepath.Join(dir, "scripts")})
	id, err := p.Submit(context.Background(), []string{"/bin/pool"}, []string{"A=1"}, "3", filepath.Join(dir, "o"), filepath.Join(dir, "e"))
	if err != nil {
		t.Fatal(err)
	}
	if id != "42;c2" {
		t.Errorf("job ID %q, want 42;c2", id)
	}
	seen, _ := filepath.Glob(filepath.Join(dir, "scripts", "parsl.3.*.sbatch.seen"))
	if len(seen) != 1 {
		t.Fatalf("sbatch did not get the script: %v", seen)
	}
	b, _ := os.ReadFile(seen[0])
	for _, want := range []string{"#SBATCH --job-name=parsl.3\n", "#SBATCH --clusters=c1,c2\n", "export A=1\n", "parsl-srun 1 1 /bin/pool\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("script lacks %q:\n%s", want, b)
		}
	}

	// Status of that job asks the cluster sbatch named.
	fakeSlurm(t, map[string]string{"squeue": `case "$*" in *--clusters=c2*--jobs=42*) echo "42|R|None" ;; *) echo "wrong args: $*" >&2; exit 1 ;; esac`})
	sts, err := p.Status(context.Background(), []string{id})
	if err != nil || sts[0].State != provider.Running || sts[0].StdoutPath != filepath.Join(dir, "o") {
		t.Errorf("Status = %+v, %v; want RUNNING with the stdout path", sts, err)
	}
}

func TestSubmitErrors(t *testing.T) {
	dir := t.TempDir()
	fakeSlurm(t, map[string]string{"sbatch": `echo "sbatch: error: Batch job submission failed: Invalid account" >&2; exit 1`})
	_, err := New(Options{ScriptDir: dir}).Submit(context.Background(), []string{"true"}, nil, "0", "/o", "/e")
	var se *SubmitError
	if !errors.As(err, &se) || se.ExitCode != 1 || !strings.Contains(se.Stderr, "Invalid account") || se.Script == "" || se.Command[0] != "sbatch" {
		t.Fatalf("error %+v, want a *SubmitError with sbatch's details", err)
	}

	fakeSlurm(t, map[string]string{"sbatch": `echo "Submitted batch job 12"`})
	_, err = New(Options{ScriptDir: dir}).Submit(context.Background(), []string{"true"}, nil, "0", "/o", "/e")
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "Submitted batch job 12") {
		t.Fatalf("error %v, want a *SubmitError quoting sbatch's output", err)
	}

	t.Setenv("PATH", t.TempDir())
	_, err = New(Options{ScriptDir: dir}).Submit(context.Background(), []string{"true"}, nil, "0", "/o", "/e")
	if !errors.As(err, &se) || !errors.Is(err, exec.ErrNotFound) || !strings.Contains(err.Error(), "on PATH") {
		t.Fatalf("error %v, want a *SubmitError saying sbatch is not on PATH", err)
	}
}

func TestCancelWaitsUntilGone(t *testing.T) {
	dir := t.TempDir()
	// squeue lists the job for its first two calls, then no more.
	fakeSlurm(t, map[string]string{
		"scancel": `echo "$*" >>` + shellQuote(filepath.Join(dir, "scancel")),
		"squeue": `f=` + shellQuote(filepath.Join(dir, "n")) + `; echo x >>"$f"
[ "$(wc -l <"$f")" -gt 2 ] || echo "7|CG|None"`,
	})
	if err := New(Options{}).Cancel(context.Background(), []string{"7", "8;c2"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "scancel"))
	if got := string(b); !strings.Contains(got, "7\n") || !strings.Contains(got, "--clusters=c2 8\n") {
		t.Errorf("scancel calls:\n%s", got)
	}

	// A job that never leaves: Cancel gives up when ctx ends, naming it.
	fakeSlurm(t, map[string]string{"scancel": `true`, "squeue": `echo "7|CG|None"`})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := New(Options{}).Cancel(ctx, []string{"7"})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "7") {
		t.Fatalf("error %v, want the deadline naming job 7", err)
	}
}
