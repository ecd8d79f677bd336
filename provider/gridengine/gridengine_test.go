package gridengine

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

	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/internal/batch"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeSGE puts shell scripts named like the Grid Engine commands first in
// PATH; they replay the real output saved in testdata/. "$T" in a body is
// the testdata directory, "$L" a log of every call's arguments.
func fakeSGE(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "calls.log")
	for name, body := range scripts {
		text := "#!/bin/sh\nT=" + batch.ShellQuote(td) + "\nL=" + batch.ShellQuote(log) + "\necho \"" + name + " $*\" >>\"$L\"\n" + body + "\n"
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

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestScriptGolden(t *testing.T) {
	o := New(Options{
		Queue: "all.q", Project: "proj", PE: "smp", Slots: 8, Walltime: 90 * time.Minute,
		SchedulerOptions: []string{"-l h_vmem=4G", "#$ -j n", ""},
		WorkerInit:       []string{"module load go", "source 'my env/bin/activate'"},
	}).opts
	text, err := renderScript(scriptParams{
		JobName: "parsl.htex.0", Stdout: "/run/block-0.out", Stderr: "/run/block-0.err", Opts: o,
		Env: []string{"PARSL_ROLE=pool", "X=it's"}, Command: []string{"/bin/pool", "--config", "/run/pool.json"},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "script.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("reading %s (run go test -update to create it): %v", golden, err)
	}
	if text != string(want) {
		t.Fatalf("batch script changed:\n%s\nwant:\n%s", text, want)
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		f := filepath.Join(t.TempDir(), "s.sh")
		_ = os.WriteFile(f, []byte(text), 0o644)
		if out, err := exec.Command(bash, "-n", f).CombinedOutput(); err != nil {
			t.Fatalf("bash -n: %v\n%s", err, out)
		}
	}
}

func TestScriptRefusesBadValues(t *testing.T) {
	for _, o := range []Options{
		{Queue: "a b"},
		{Project: "p\n#$ -q evil"},
		{SchedulerOptions: []string{"-l x\n-q y"}},
	} {
		o := New(o).opts
		if _, err := renderScript(scriptParams{JobName: "n", Stdout: "/o", Stderr: "/e", Opts: o, Command: []string{"true"}}); err == nil {
			t.Errorf("options %+v: no error", o)
		}
	}
	o := New(Options{}).opts
	if _, err := renderScript(scriptParams{JobName: "n", Stdout: "/my dir/o", Stderr: "/e", Opts: o, Command: []string{"true"}}); err == nil {
		t.Error("an output path with a blank was accepted")
	}
}

func TestParseQsub(t *testing.T) {
	for _, c := range []struct{ file, want string }{{"qsub_terse.txt", "1"}, {"qsub_terse_array.txt", "9"}} {
		b, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := parseQsub(string(b)); err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.file, got, err, c.want)
		}
	}
	if got, err := parseQsub("Your job may be delayed\n42\n"); err != nil || got != "42" {
		t.Errorf("notice before the ID: %q, %v", got, err)
	}
	if _, err := parseQsub("Your job 42 (\"x\") has been submitted\n"); err == nil {
		t.Error("qsub without -terse: no error")
	}
}

func TestParseQstatXML(t *testing.T) {
	for _, c := range []struct {
		file string
		want map[string]string
	}{
		{"qstat_xml_mixed.xml", map[string]string{"1": "r", "3": "hqw"}},
		{"qstat_xml_states.xml", map[string]string{"4": "r", "5": "Eqw", "6": "hqw"}},
		{"qstat_xml_array.xml", map[string]string{"8": "r", "9": "r"}},
		{"qstat_xml_empty.xml", map[string]string{}},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseQstatXML(string(b))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: %v, want %v", c.file, got, c.want)
		}
		for id, code := range c.want {
			if got[id] != code {
				t.Errorf("%s: job %s %q, want %q", c.file, id, got[id], code)
			}
		}
	}
	if _, err := parseQstatXML("qstat: not XML"); err == nil {
		t.Error("garbage: no error")
	}
}

// TestMapState covers the state codes of qstat(1) and the combinations
// Parsl's table lists.
func TestMapState(t *testing.T) {
	for code, want := range map[string]provider.JobState{
		"qw": provider.Pending, "hqw": provider.Held, "hRwq": provider.Held, "Rq": provider.Pending,
		"r": provider.Running, "t": provider.Running, "Rr": provider.Running, "Rt": provider.Running,
		"s": provider.Held, "ts": provider.Held, "S": provider.Held, "tS": provider.Held,
		"T": provider.Held, "tT": provider.Held, "rs": provider.Held, "Rs": provider.Held,
		"Eqw": provider.Failed, "Ehqw": provider.Failed, "EhRqw": provider.Failed,
		"dr": provider.Running, "dt": provider.Running, "dRr": provider.Running, "dqw": provider.Pending,
		"z": provider.Unknown, "": provider.Unknown, "?": provider.Unknown,
	} {
		if got, msg := mapState(code); got != want {
			t.Errorf("state %q → %v (%s), want %v", code, got, msg, want)
		}
	}
}

func TestParseQacct(t *testing.T) {
	for _, c := range []struct {
		file       string
		walltime   time.Duration
		cancelled  bool
		state      provider.JobState
		exit       int
		msgContain string
	}{
		{"qacct_completed.txt", time.Hour, false, provider.Completed, 0, ""},
		{"qacct_failed.txt", time.Hour, false, provider.Failed, 3, ""},
		{"qacct_deleted_running.txt", time.Hour, true, provider.Cancelled, 137, "assumedly after job"},
		{"qacct_deleted_running.txt", time.Hour, false, provider.Failed, 137, "signal 9"},
		{"qacct_timeout.txt", 3 * time.Second, false, provider.Timeout, 137, "h_rt"},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := parseQacct(string(b))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		st := rec.status("7", c.cancelled, c.walltime)
		if st.State != c.state || st.ExitCode != c.exit || !strings.Contains(st.Message, c.msgContain) {
			t.Errorf("%s (cancelled %v): %+v, want %v exit %d with %q", c.file, c.cancelled, st, c.state, c.exit, c.msgContain)
		}
	}
	if _, err := parseQacct("error: job id 3 not found\n"); err == nil {
		t.Error("no record: no error")
	}
}

func TestNotInAccounting(t *testing.T) {
	for _, f := range [][]string{{"qacct_notfound.stderr"}, {"qacct_unknown.txt", "qacct_unknown.stderr"}} {
		var s string
		for _, name := range f {
			b, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			s += string(b)
		}
		if !notInAccounting(s) {
			t.Errorf("%v: not read as an unknown job", f)
		}
	}
	if notInAccounting("error: can't open accounting file: Permission denied") {
		t.Error("a permission error read as an unknown job")
	}
}

func TestSubmitStatusCancel(t *testing.T) {
	log := fakeSGE(t, map[string]string{
		"qsub":   `cat "$T/qsub_terse.txt"`,
		"qstat":  `cat "$T/qstat_xml_mixed.xml"`,
		"qacct":  `case "$2" in 2) cat "$T/qacct_failed.txt";; *) cat "$T/qacct_notfound.stderr" >&2; exit 1;; esac`,
		"qdel":   `cat "$T/qdel_unknown.txt" >&2; exit 1`,
		"qconf":  `exit 9`,
		"unused": `exit 9`,
	})
	p := New(Options{ScriptDir: t.TempDir(), AccountingDelay: time.Hour})
	dir := t.TempDir()
	id, err := p.Submit(ctx(t), []string{"/bin/pool"}, []string{"A=b"}, "htex.0", filepath.Join(dir, "o"), filepath.Join(dir, "e"))
	if err != nil || id != "1" {
		t.Fatalf("Submit = %q, %v", id, err)
	}
	if !strings.Contains(calls(log), "qsub -terse "+p.ScriptDir()+"/parsl.htex.0.") {
		t.Errorf("qsub called as: %s", calls(log))
	}
	// 1 runs, 3 is held, 2 has finished with exit 3, 77 was submitted by
	// this provider and just left the queue (accounting not written yet),
	// 88 is unknown to this provider and to qacct, x is no job ID.
	p.mu.Lock()
	p.jobs["77"] = &job{seen: time.Now()}
	p.mu.Unlock()
	ids := []string{"1", "3", "2", "77", "88", "x"}
	sts, err := p.Status(ctx(t), ids)
	if err != nil {
		t.Fatal(err)
	}
	want := []provider.JobState{provider.Running, provider.Held, provider.Failed, provider.Unknown, provider.Missing, provider.Unknown}
	for i, st := range sts {
		if st.JobID != ids[i] || st.State != want[i] {
			t.Errorf("job %s: %+v, want %v", ids[i], st, want[i])
		}
	}
	if sts[0].StdoutPath != filepath.Join(dir, "o") || sts[2].ExitCode != 3 {
		t.Errorf("paths or exit code lost: %+v %+v", sts[0], sts[2])
	}
	if n := strings.Count(calls(log), "qstat -xml"); n != 1 {
		t.Errorf("Status ran qstat %d times, want once:\n%s", n, calls(log))
	}
	// A finished job's state is remembered: qacct is not asked again.
	before := strings.Count(calls(log), "qacct -j 2")
	if sts, err := p.Status(ctx(t), []string{"2"}); err != nil || sts[0].State != provider.Failed {
		t.Errorf("second Status = %+v, %v", sts, err)
	}
	if after := strings.Count(calls(log), "qacct -j 2"); after != before {
		t.Errorf("qacct asked again about a finished job")
	}

	// Cancel: qdel refuses an unknown job (not an error), and the job is
	// gone from qstat at once.
	if err := p.Cancel(ctx(t), []string{"99999"}); err != nil {
		t.Errorf("Cancel of a job qdel no longer knows: %v", err)
	}
	if err := p.Cancel(ctx(t), []string{"not-a-job"}); err == nil {
		t.Error("Cancel of a malformed ID: no error")
	}
}

// TestCancelWaitsForQstat checks that Cancel returns only once qstat no
// longer lists the job (it shows dr while its processes are killed).
func TestCancelWaitsForQstat(t *testing.T) {
	state := filepath.Join(t.TempDir(), "n")
	log := fakeSGE(t, map[string]string{
		"qdel": `cat "$T/qdel.txt"`,
		// Two listings with job 4 running, then an empty queue.
		"qstat": `n=$(cat ` + batch.ShellQuote(state) + ` 2>/dev/null || echo 0); echo $((n+1)) >` + batch.ShellQuote(state) + `
if [ "$n" -lt 2 ]; then cat "$T/qstat_xml_states.xml"; else cat "$T/qstat_xml_empty.xml"; fi`,
	})
	p := New(Options{})
	if err := p.Cancel(ctx(t), []string{"4", "5", "6"}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(calls(log), "qstat -xml"); n != 3 {
		t.Errorf("qstat ran %d times, want 3:\n%s", n, calls(log))
	}
	// Cancel does not wait past its context.
	_ = os.Remove(state)
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	fakeSGE(t, map[string]string{"qdel": `cat "$T/qdel.txt"`, "qstat": `cat "$T/qstat_xml_states.xml"`})
	if err := p.Cancel(short, []string{"4"}); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "qstat -j 4") {
		t.Errorf("Cancel past its context: %v", err)
	}
}

func TestSubmitErrorIsTyped(t *testing.T) {
	fakeSGE(t, map[string]string{"qsub": `cat "$T/qsub_badq.stderr" >&2; exit 1`})
	p := New(Options{Queue: "nosuchq", ScriptDir: t.TempDir()})
	_, err := p.Submit(ctx(t), []string{"/bin/pool"}, nil, "b", "/tmp/o", "/tmp/e")
	var se *SubmitError
	if !errors.As(err, &se) || se.ExitCode != 1 || !strings.Contains(se.Stderr, `unknown queue "nosuchq"`) || se.Script == "" {
		t.Fatalf("error %v (%T), want a *SubmitError with qsub's output", err, err)
	}
	if !strings.Contains(err.Error(), "qconf -sql") {
		t.Errorf("message %q does not say what to check", err)
	}
}

func TestStatusQstatFailure(t *testing.T) {
	fakeSGE(t, map[string]string{"qstat": `echo "error: commlib error: got select error (Connection refused)" >&2; exit 1`})
	_, err := New(Options{}).Status(ctx(t), []string{"1"})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 1 {
		t.Fatalf("error %v (%T), want a *CommandError", err, err)
	}
	fakeSGE(t, map[string]string{"qstat": `echo "<job_info><queue_info><job_list><JB_job_number>x"`})
	_, err = New(Options{}).Status(ctx(t), []string{"1"})
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T), want a *ParseError", err, err)
	}
}
