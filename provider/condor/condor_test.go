package condor

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

// fakeCondor puts shell scripts named like the HTCondor commands first in
// PATH. "$T" in a body is the testdata directory; every call is logged to
// the returned file.
func fakeCondor(t *testing.T, scripts map[string]string) string {
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

func golden(t *testing.T, name, text string) {
	t.Helper()
	f := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(f)
	if err != nil {
		t.Fatalf("reading %s (run go test -update to create it): %v", f, err)
	}
	if text != string(want) {
		t.Fatalf("%s changed:\n%s\nwant:\n%s", name, text, want)
	}
}

func TestScriptAndSubmitGolden(t *testing.T) {
	o := New(Options{
		CoresPerSlot: 4, MemPerSlotMB: 2048, Requirements: `(OpSys == "LINUX")`, Project: "proj",
		TransferInputFiles: []string{"/data/a", "/data/b"},
		SchedulerOptions:   []string{"+WantGPU = true", ""},
		WorkerInit:         []string{"module load go"},
	}).opts
	p := scriptParams{
		JobName: "parsl.7", Script: "/runs/s/parsl.7.1.sh", Log: "/runs/s/parsl.7.1.log",
		Stdout: "/runs/000/block-7.out", Stderr: "/runs/000/block-7.err", Opts: o,
		Env: []string{"PARSL_ROLE=pool", "ODD=it's $HOME"}, Command: launcher.SingleNode([]string{"/bin/pool", "--x"}, 1, 1),
	}
	text, err := renderScript(p)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "script.golden", text)
	if bash, err := exec.LookPath("bash"); err == nil {
		f := filepath.Join(t.TempDir(), "s.sh")
		_ = os.WriteFile(f, []byte(text), 0o644)
		if out, err := exec.Command(bash, "-n", f).CombinedOutput(); err != nil {
			t.Fatalf("bash -n: %v\n%s", err, out)
		}
	}
	sub, err := renderSubmit(p)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "submit.golden", sub)

	bad := p
	bad.Stdout = "/o\nexecutable = /bin/evil"
	if _, err := renderSubmit(bad); err == nil {
		t.Error("a newline in a value was accepted")
	}
	bad = p
	bad.Opts.SchedulerOptions = []string{"a = 1\nb = 2"}
	if _, err := renderSubmit(bad); err == nil {
		t.Error("a newline in a scheduler option was accepted")
	}
}

func TestJobStatusCodes(t *testing.T) {
	for code, want := range map[int]provider.JobState{
		1: provider.Pending, 2: provider.Running, 3: provider.Cancelled, 4: provider.Completed,
		5: provider.Held, 6: provider.Running, 7: provider.Held, 99: provider.Unknown,
	} {
		if got := (row{jobStatus: code, exitCode: "0"}).status("1.0").State; got != want {
			t.Errorf("JobStatus %d → %v, want %v", code, got, want)
		}
	}
	if st := (row{jobStatus: 4, exitCode: "3"}).status("1.0"); st.State != provider.Failed || st.ExitCode != 3 {
		t.Errorf("exit 3 → %+v", st)
	}
	if st := (row{jobStatus: 4, exitCode: "undefined"}).status("1.0"); st.State != provider.Failed {
		t.Errorf("no exit code → %+v", st)
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
	id, err := parseSubmit(read("condor_submit.txt"))
	if err != nil || id != "1.0" {
		t.Errorf("parseSubmit = %q, %v", id, err)
	}
	if _, err := parseSubmit(read("condor_submit_bad.stdout")); err == nil {
		t.Error("no cluster in the output, but no error")
	}
	for f, want := range map[string]map[string]provider.JobState{
		"condor_q_idle.txt":          {"1.0": provider.Pending, "4.0": provider.Pending},
		"condor_q_running_held.txt":  {"3.0": provider.Running, "4.0": provider.Held},
		"condor_history_done.txt":    {"1.0": provider.Completed, "2.0": provider.Failed},
		"condor_history_removed.txt": {"3.0": provider.Cancelled, "1.0": provider.Completed, "2.0": provider.Failed},
	} {
		rows, err := parseAf(read(f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for id, w := range want {
			if got := rows[id].status(id).State; got != w {
				t.Errorf("%s: %s → %v, want %v", f, id, got, w)
			}
		}
	}
	rows, _ := parseAf(read("condor_q_running_held.txt"))
	if m := rows["4.0"].status("4.0").Message; !strings.Contains(m, "Transfer input files failure") {
		t.Errorf("held job's message %q lacks the HoldReason", m)
	}
	if _, err := parseAf("1.0 2 undefined\n"); err == nil {
		t.Error("space-separated line parsed")
	}
}

func TestSubmit(t *testing.T) {
	log := fakeCondor(t, map[string]string{"condor_submit": `cp "$1" "$1.seen"; cat "$T/condor_submit.txt"`})
	dir := t.TempDir()
	p := New(Options{CoresPerSlot: 2, ScriptDir: filepath.Join(dir, "s")})
	id, err := p.Submit(context.Background(), []string{"/bin/pool"}, []string{"A=1"}, "3", filepath.Join(dir, "o"), filepath.Join(dir, "e"))
	if err != nil {
		t.Fatal(err)
	}
	if id != "1.0" {
		t.Errorf("job ID %q", id)
	}
	seen, _ := filepath.Glob(filepath.Join(dir, "s", "parsl.3.*.sub.seen"))
	if len(seen) != 1 {
		t.Fatalf("condor_submit did not get the submit file: %v; %s", seen, calls(log))
	}
	b, _ := os.ReadFile(seen[0])
	sh := strings.TrimSuffix(seen[0], ".sub.seen") + ".sh"
	for _, w := range []string{"executable = " + sh + "\n", "output = " + filepath.Join(dir, "o") + "\n", "request_cpus = 2\n", "queue 1\n"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("submit file lacks %q:\n%s", w, b)
		}
	}
	s, _ := os.ReadFile(sh)
	if !strings.Contains(string(s), "export A=1\n") || !strings.HasSuffix(string(s), "\n/bin/pool\n") {
		t.Errorf("job script:\n%s", s)
	}
}

func TestSubmitErrors(t *testing.T) {
	fakeCondor(t, map[string]string{"condor_submit": `cat "$T/condor_submit_bad.stdout"; cat "$T/condor_submit_bad.stderr" >&2; exit 1`})
	_, err := New(Options{ScriptDir: t.TempDir()}).Submit(context.Background(), []string{"true"}, nil, "0", "/o", "/e")
	var se *SubmitError
	if !errors.As(err, &se) || se.ExitCode != 1 || !strings.Contains(se.Stderr, "does not exist") || se.Command[0] != "condor_submit" || se.Script == "" {
		t.Fatalf("error %+v, want a *SubmitError with condor_submit's details", err)
	}
	if !strings.Contains(err.Error(), "check the submit file") {
		t.Errorf("message %q should say what to check", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err = New(Options{ScriptDir: t.TempDir()}).Submit(context.Background(), []string{"true"}, nil, "0", "/o", "/e")
	if !errors.As(err, &se) || !errors.Is(err, exec.ErrNotFound) || !strings.Contains(err.Error(), "on PATH") {
		t.Fatalf("error %v, want a *SubmitError saying condor_submit is not on PATH", err)
	}
}

// TestStatusFallsBackToHistory replays one moment of the real HTCondor:
// 3.0 runs and 4.0 is held (condor_q); 1.0 and 2.0 have left the queue
// and condor_history has them; 99.0 is in neither and is Missing.
func TestStatusFallsBackToHistory(t *testing.T) {
	log := fakeCondor(t, map[string]string{
		"condor_q":       `cat "$T/condor_q_running_held.txt"`,
		"condor_history": `cat "$T/condor_history_done.txt"`,
	})
	p := New(Options{})
	ids := []string{"1.0", "2.0", "3.0", "4.0", "99.0", "bogus"}
	sts, err := p.Status(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	want := []provider.JobState{provider.Completed, provider.Failed, provider.Running, provider.Held, provider.Missing, provider.Unknown}
	for i, w := range want {
		if sts[i].JobID != ids[i] || sts[i].State != w {
			t.Errorf("%s = %+v, want %v", ids[i], sts[i], w)
		}
	}
	if sts[1].ExitCode != 3 {
		t.Errorf("2.0 exit code %d, want 3", sts[1].ExitCode)
	}
	got := calls(log)
	if !strings.Contains(got, "condor_q 1.0 2.0 3.0 4.0 99.0 -af:jt JobStatus ExitCode HoldReason\n") ||
		!strings.Contains(got, "condor_history -limit 3 1.0 2.0 99.0 -af:jt JobStatus ExitCode RemoveReason\n") {
		t.Errorf("calls:\n%s", got)
	}
	// Finished jobs are remembered; only the live ones are asked again.
	_ = os.Remove(log)
	if _, err := p.Status(context.Background(), ids[:4]); err != nil {
		t.Fatal(err)
	}
	if got := calls(log); strings.Contains(got, "1.0") || !strings.Contains(got, "condor_q 3.0 4.0 ") {
		t.Errorf("second round calls:\n%s", got)
	}
}

func TestStatusScheddDown(t *testing.T) {
	fakeCondor(t, map[string]string{"condor_q": `echo "-- Failed to fetch ads from: <127.0.0.1:9618> : vm" >&2; exit 1`})
	_, err := New(Options{}).Status(context.Background(), []string{"1.0"})
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "condor_status -schedd") {
		t.Fatalf("error %v, want a *CommandError saying to check the schedd", err)
	}
}

func TestCancel(t *testing.T) {
	log := fakeCondor(t, map[string]string{"condor_rm": `cat "$T/condor_rm.txt"`})
	if err := New(Options{}).Cancel(context.Background(), []string{"3.0"}); err != nil {
		t.Fatal(err)
	}
	if calls(log) != "condor_rm 3.0\n" {
		t.Errorf("calls %q", calls(log))
	}
	fakeCondor(t, map[string]string{"condor_rm": `cat "$T/condor_rm_notfound.stderr" >&2; exit 1`})
	if err := New(Options{}).Cancel(context.Background(), []string{"99.0"}); err != nil {
		t.Errorf("removing a job that is gone: %v", err)
	}
	fakeCondor(t, map[string]string{"condor_rm": `echo "Couldn't find/remove all jobs matching constraint" >&2; exit 1`})
	var ce *CommandError
	if err := New(Options{}).Cancel(context.Background(), []string{"3.0"}); !errors.As(err, &ce) {
		t.Errorf("error %v, want a *CommandError", err)
	}
}

// TestRealCondor runs a block through a real HTCondor. It needs the
// HTCondor commands on PATH, submitting as a user the schedd accepts, and
// ScriptDir on a filesystem the execute node shares (the path is the
// same). See testdata/README.md for how the samples were captured.
func TestRealCondor(t *testing.T) {
	dir := os.Getenv("PARSL_TEST_CONDOR_DIR")
	if dir == "" {
		t.Skip("needs a real HTCondor: set PARSL_TEST_CONDOR_DIR to a directory shared with the execute node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := New(Options{ScriptDir: dir, CoresPerSlot: 1})
	ok, err := p.Submit(ctx, []string{"/bin/sh", "-c", "echo hi from $JOBNAME"}, []string{"X=1"}, "ok", filepath.Join(dir, "ok.out"), filepath.Join(dir, "ok.err"))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := p.Submit(ctx, []string{"/bin/sh", "-c", "exit 3"}, nil, "bad", filepath.Join(dir, "bad.out"), filepath.Join(dir, "bad.err"))
	if err != nil {
		t.Fatal(err)
	}
	long, err := p.Submit(ctx, []string{"sleep", "300"}, nil, "long", filepath.Join(dir, "long.out"), filepath.Join(dir, "long.err"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Cancel(ctx, []string{long}); err != nil {
		t.Fatal(err)
	}
	want := map[string]provider.JobState{ok: provider.Completed, bad: provider.Failed, long: provider.Cancelled}
	for {
		sts, err := p.Status(ctx, []string{ok, bad, long})
		if err != nil {
			t.Fatal(err)
		}
		done := true
		for _, st := range sts {
			if !st.State.Terminal() {
				done = false
			}
		}
		if done {
			for _, st := range sts {
				if st.State != want[st.JobID] {
					t.Errorf("%s = %+v, want %v", st.JobID, st, want[st.JobID])
				}
			}
			if sts[1].ExitCode != 3 {
				t.Errorf("exit code %d, want 3", sts[1].ExitCode)
			}
			b, _ := os.ReadFile(filepath.Join(dir, "ok.out"))
			if string(b) != "hi from parsl.ok\n" {
				t.Errorf("ok.out = %q", b)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("jobs not finished: %+v", sts)
		case <-time.After(time.Second):
		}
	}
}
