package lsf

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/launcher"
	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/internal/batch"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeLSF puts shell scripts named like the LSF commands first in PATH.
// "$T" in a body is the testdata directory; every call is logged to the
// returned file.
func fakeLSF(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "calls.log")
	for name, body := range scripts {
		text := "#!/bin/sh\nT=" + batch.ShellQuote(td) + "\necho \"" + name + " $*\" >>" + batch.ShellQuote(log) + "\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return log
}

func calls(log string) string {
	b, _ := os.ReadFile(log)
	return string(b)
}

func TestScriptGolden(t *testing.T) {
	for _, c := range []struct {
		byNodes bool
		golden  string
	}{{false, "script.golden"}, {true, "script_nnodes.golden"}} {
		o := New(Options{
			Queue: "debug", Project: "proj", NodesPerBlock: 2, CoresPerNode: 8, RequestByNodes: c.byNodes,
			Walltime: 90*time.Minute + time.Second, SchedulerOptions: []string{"-alloc_flags smt4", "#BSUB -B", ""},
			WorkerInit: []string{"module load go"},
		}).opts
		text, err := renderScript(scriptParams{
			JobName: "parsl.7", Stdout: "/runs/000/block-7.out", Stderr: "/runs/my dir/block-7.err", Opts: o,
			Env: []string{"PARSL_ROLE=pool", "ODD=it's $HOME"}, Command: launcher.SingleNode([]string{"/bin/pool"}, 1, 2),
		})
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join("testdata", c.golden)
		if *update {
			_ = os.WriteFile(f, []byte(text), 0o644)
		}
		want, err := os.ReadFile(f)
		if err != nil || text != string(want) {
			t.Fatalf("script changed (%v):\n%s\nwant:\n%s", err, text, want)
		}
		if bash, err := exec.LookPath("bash"); err == nil {
			s := filepath.Join(t.TempDir(), "s.sh")
			_ = os.WriteFile(s, []byte(text), 0o644)
			if out, err := exec.Command(bash, "-n", s).CombinedOutput(); err != nil {
				t.Fatalf("bash -n: %v\n%s", err, out)
			}
		}
	}
	for i, p := range []scriptParams{
		{JobName: "j", Stdout: "/o\n#BSUB -q x", Stderr: "/e", Opts: New(Options{}).opts, Command: []string{"true"}},
		{JobName: "j", Stdout: `/o"`, Stderr: "/e", Opts: New(Options{}).opts, Command: []string{"true"}},
		{JobName: "j", Stdout: "/o", Stderr: "/e", Opts: New(Options{}).opts, Env: []string{"1A=2"}, Command: []string{"true"}},
	} {
		if _, err := renderScript(p); err == nil {
			t.Errorf("case %d: expected an error", i)
		}
	}
}

func TestParseRealOutput(t *testing.T) {
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for f, want := range map[string]map[string]string{
		"bjobs_userguide.txt":  {"3926": "RUN", "605": "SSUSP", "1480": "PEND", "7678": "PEND", "7679": "PEND", "7680": "PEND"},
		"bjobs_run.txt":        {"111": "RUN"},
		"bjobs_a_done.txt":     {"735850": "DONE"},
		"bjobs_a_exit.txt":     {"282054": "EXIT"},
		"bjobs_unfinished.txt": {},
	} {
		rows, err := parseBjobs(read(f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(rows) != len(want) {
			t.Errorf("%s: %v", f, rows)
		}
		for id, s := range want {
			if rows[id] != s {
				t.Errorf("%s: job %s is %q, want %q", f, id, rows[id], s)
			}
		}
	}
	for f, want := range map[string]string{"bsub.txt": "1223", "bsub_large.txt": "1040418"} {
		if id, err := parseBsub(read(f)); err != nil || id != want {
			t.Errorf("%s: %q, %v", f, id, err)
		}
	}
	if _, err := parseBsub("Request aborted by esub. Job not submitted.\n"); err == nil {
		t.Error("no job ID, but no error")
	}
}

func TestStateTable(t *testing.T) {
	want := map[string]provider.JobState{
		"PEND": provider.Pending, "PROV": provider.Pending, "WAIT": provider.Pending, "RUN": provider.Running,
		"DONE": provider.Completed, "EXIT": provider.Failed, "PSUSP": provider.Held, "USUSP": provider.Held,
		"SSUSP": provider.Held, "ZOMBI": provider.Failed, "UNKWN": provider.Unknown,
	}
	if len(want) != len(states) {
		t.Errorf("states has %d entries, the test %d", len(states), len(want))
	}
	for stat, w := range want {
		t.Run(stat, func(t *testing.T) {
			fakeLSF(t, map[string]string{"bjobs": `echo "JOBID USER STAT QUEUE FROM_HOST EXEC_HOST JOB_NAME SUBMIT_TIME"; echo "5 u ` + stat + ` normal h h j Oct 22 09:22"`})
			sts, err := New(Options{}).Status(context.Background(), []string{"5"})
			if err != nil || sts[0].State != w {
				t.Errorf("%s → %+v, %v; want %v", stat, sts, err, w)
			}
		})
	}
}

func TestSubmit(t *testing.T) {
	log := fakeLSF(t, map[string]string{"bsub": `cat >"$(dirname "$0")/stdin.seen"; cat "$T/bsub.txt"`})
	dir := t.TempDir()
	p := New(Options{Queue: "scarf", ScriptDir: filepath.Join(dir, "s")})
	id, err := p.Submit(context.Background(), []string{"/bin/pool"}, []string{"A=1"}, "3", filepath.Join(dir, "o"), filepath.Join(dir, "e"))
	if err != nil {
		t.Fatal(err)
	}
	if id != "1223" {
		t.Errorf("job ID %q", id)
	}
	if c := calls(log); c != "bsub \n" {
		t.Errorf("bsub must read the script on stdin, with no arguments; calls %q", c)
	}
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(log), "stdin.seen"))
	for _, w := range []string{"#BSUB -J parsl.3\n", "#BSUB -q scarf\n", "#BSUB -W 1:00\n", "#BSUB -n 1\n", "export A=1\n", "\n/bin/pool\n"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("script lacks %q:\n%s", w, b)
		}
	}
}

func TestSubmitErrors(t *testing.T) {
	fakeLSF(t, map[string]string{"bsub": `cat >/dev/null; echo "nope: No such queue. Job not submitted." >&2; exit 255`})
	_, err := New(Options{Queue: "nope", ScriptDir: t.TempDir()}).Submit(context.Background(), []string{"true"}, nil, "0", "/o", "/e")
	var se *SubmitError
	if !errors.As(err, &se) || se.ExitCode != 255 || !strings.Contains(se.Stderr, "No such queue") || se.Command[0] != "bsub" || se.Script == "" {
		t.Fatalf("error %+v, want a *SubmitError with bsub's details", err)
	}
	if !strings.Contains(err.Error(), "bqueues -l") {
		t.Errorf("message %q should say what to check", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err = New(Options{ScriptDir: t.TempDir()}).Submit(context.Background(), []string{"true"}, nil, "0", "/o", "/e")
	if !errors.As(err, &se) || !errors.Is(err, exec.ErrNotFound) || !strings.Contains(err.Error(), "on PATH") {
		t.Fatalf("error %v, want a *SubmitError saying bsub is not on PATH", err)
	}
}

// TestStatusFallsBackToBjobsA: bjobs (unfinished jobs only) lists 111;
// `bjobs -a` knows the finished 735850 and 282054; 123 is in neither and
// is Missing, never Completed.
func TestStatusFallsBackToBjobsA(t *testing.T) {
	log := fakeLSF(t, map[string]string{"bjobs": `
if [ "$1" = -a ]; then cat "$T/bjobs_a_done.txt" "$T/bjobs_a_exit.txt"; cat "$T/bjobs_notfound.stderr" >&2; exit 255; fi
cat "$T/bjobs_run.txt"; cat "$T/bjobs_notfound.stderr" >&2; exit 255`})
	p := New(Options{})
	ids := []string{"111", "735850", "282054", "123"}
	sts, err := p.Status(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	want := []provider.JobState{provider.Running, provider.Completed, provider.Failed, provider.Missing}
	for i, w := range want {
		if sts[i].JobID != ids[i] || sts[i].State != w {
			t.Errorf("%s = %+v, want %v", ids[i], sts[i], w)
		}
	}
	if !strings.Contains(sts[3].Message, "not running") {
		t.Errorf("missing job's message %q", sts[3].Message)
	}
	if got := calls(log); !strings.Contains(got, "bjobs -w 111 735850 282054 123\n") || !strings.Contains(got, "bjobs -a -w 735850 282054 123\n") {
		t.Errorf("calls:\n%s", got)
	}
}

func TestStatusAllFinished(t *testing.T) {
	// With LSB_BJOBS_CONSISTENT_EXIT_CODE=Y, bjobs exits 255 when every
	// job asked about has finished.
	fakeLSF(t, map[string]string{"bjobs": `
if [ "$1" = -a ]; then cat "$T/bjobs_a_done.txt"; exit 0; fi
cat "$T/bjobs_unfinished.txt" >&2; exit 255`})
	sts, err := New(Options{}).Status(context.Background(), []string{"735850"})
	if err != nil || sts[0].State != provider.Completed {
		t.Fatalf("Status = %+v, %v", sts, err)
	}
}

func TestStatusLSFDown(t *testing.T) {
	fakeLSF(t, map[string]string{"bjobs": `echo "LSF is down. Please wait ..." >&2; exit 255`})
	_, err := New(Options{CmdTimeout: time.Second}).Status(context.Background(), []string{"1"})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 255 || !strings.Contains(err.Error(), "lsid") {
		t.Fatalf("error %v, want a *CommandError saying to check LSF", err)
	}
}

func TestCancel(t *testing.T) {
	log := fakeLSF(t, map[string]string{
		"bkill": `echo "Job <282054> is being terminated"`,
		"bjobs": `if [ "$1" = -a ]; then cat "$T/bjobs_a_exit.txt"; else cat "$T/bjobs_unfinished.txt"; fi`,
	})
	p := New(Options{})
	if err := p.Cancel(context.Background(), []string{"282054"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(calls(log), "bkill 282054\n") {
		t.Errorf("calls:\n%s", calls(log))
	}
	// Ended by bkill: EXIT means Cancelled, not Failed.
	if sts, err := p.Status(context.Background(), []string{"282054"}); err != nil || sts[0].State != provider.Cancelled {
		t.Errorf("Status after Cancel = %+v, %v", sts, err)
	}
	fakeLSF(t, map[string]string{"bkill": `echo "Job <735850>: Job has already finished" >&2; exit 255`})
	if err := p.Cancel(context.Background(), []string{"735850"}); err != nil {
		t.Errorf("killing a finished job: %v", err)
	}
	fakeLSF(t, map[string]string{"bkill": `echo "Job <1>: User permission denied" >&2; exit 255`})
	var ce *CommandError
	if err := p.Cancel(context.Background(), []string{"1"}); !errors.As(err, &ce) {
		t.Errorf("error %v, want a *CommandError", err)
	}
}
