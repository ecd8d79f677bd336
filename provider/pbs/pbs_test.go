package pbs

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

// fakePBS puts shell scripts named like the PBS commands first in PATH.
// "$T" in a body is the testdata directory, "$L" a log file every fake may
// append its arguments to.
func fakePBS(t *testing.T, scripts map[string]string) string {
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

func calls(t *testing.T, log string) string {
	b, _ := os.ReadFile(log)
	return string(b)
}

func checkGolden(t *testing.T, name, text string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
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

func TestScriptGolden(t *testing.T) {
	for _, c := range []struct {
		flavor Flavor
		golden string
	}{{PBSPro, "script_pbspro.golden"}, {Torque, "script_torque.golden"}} {
		o := New(Options{
			Flavor: c.flavor, Queue: "debug", Account: "proj", NodesPerBlock: 2, CPUsPerNode: 8,
			SelectOptions: "mem=4gb", Walltime: 90 * time.Minute,
			SchedulerOptions: []string{"-l place=scatter", "#PBS -j oe", ""},
			WorkerInit:       []string{"module load go", "source 'my env/bin/activate'"},
		}).opts
		text, err := renderScript(scriptParams{
			JobName: "parsl.7", Stdout: "/runs/000/block-7.out", Stderr: "/runs/000/block-7.err", Opts: o,
			Env:     []string{"PARSL_ROLE=pool", "ODD=it's $HOME"},
			Command: launcher.SingleNode([]string{"/bin/pool", "--x"}, 1, 2),
		})
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, c.golden, text)
	}
}

func TestScriptRefusesInjection(t *testing.T) {
	o := New(Options{}).opts
	for i, p := range []scriptParams{
		{JobName: "j", Stdout: "/o\n#PBS -u root", Stderr: "/e", Opts: o, Command: []string{"true"}},
		{JobName: "j", Stdout: "/my dir/o", Stderr: "/e", Opts: o, Command: []string{"true"}},
		{JobName: "j", Stdout: "/o", Stderr: "/e", Opts: o, Env: []string{"A B=1"}, Command: []string{"true"}},
		{JobName: "j", Stdout: "/o", Stderr: "/e", Opts: Options{NodesPerBlock: 1, CPUsPerNode: 1, SchedulerOptions: []string{"-a\n-b"}}, Command: []string{"true"}},
	} {
		if _, err := renderScript(p); err == nil {
			t.Errorf("case %d: expected an error", i)
		}
	}
}

func TestStateTable(t *testing.T) {
	want := map[string]provider.JobState{
		"B": provider.Running, "E": provider.Running, "H": provider.Held, "M": provider.Pending,
		"Q": provider.Pending, "R": provider.Running, "S": provider.Held, "T": provider.Pending,
		"U": provider.Held, "W": provider.Pending,
		// Finished ones go by the exit status; these have exit 0.
		"F": provider.Completed, "X": provider.Completed, "C": provider.Completed,
	}
	for letter, w := range want {
		r := record{id: "1.s", attrs: map[string]string{"job_state": letter, "Exit_status": "0"}}
		if got := r.status("1.s", false).State; got != w {
			t.Errorf("state %s → %v, want %v", letter, got, w)
		}
	}
	if len(states) != len(want) {
		t.Errorf("states has %d letters, the test %d", len(states), len(want))
	}
	r := record{id: "1.s", attrs: map[string]string{"job_state": "Z"}}
	if st := r.status("1.s", false); st.State != provider.Unknown || !strings.Contains(st.Message, "Z") {
		t.Errorf("unknown letter → %+v", st)
	}
	for _, c := range []struct {
		attrs     map[string]string
		cancelled bool
		want      provider.JobState
	}{
		{map[string]string{"job_state": "F", "Exit_status": "1"}, false, provider.Failed},
		{map[string]string{"job_state": "F", "Exit_status": "-29"}, false, provider.Timeout},
		{map[string]string{"job_state": "F", "Exit_status": "271"}, true, provider.Cancelled},
		{map[string]string{"job_state": "F"}, false, provider.Cancelled},
		{map[string]string{"job_state": "C", "exit_status": "2"}, false, provider.Failed},
	} {
		if got := (record{attrs: c.attrs}).status("1", c.cancelled).State; got != c.want {
			t.Errorf("%v cancelled=%v → %v, want %v", c.attrs, c.cancelled, got, c.want)
		}
	}
}

func TestParseRealOutput(t *testing.T) {
	for _, c := range []struct {
		file, id, state string
		exit            string
	}{
		{"qstat_xf_pbspro_failed.txt", "49223.gc-prd-hpcadm", "F", "271"},
		{"qstat_f_torque_completed.txt", "9.torque01.bcgsc.ca", "C", "0"},
		{"qstat_f_torque_running.txt", "548.moab", "R", ""},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := parseQstatFull(string(b))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if len(recs) != 1 || recs[0].id != c.id || recs[0].attrs["job_state"] != c.state {
			t.Fatalf("%s: %+v", c.file, recs)
		}
		if e := recs[0].attrs["Exit_status"] + recs[0].attrs["exit_status"]; e != c.exit {
			t.Errorf("%s: exit status %q, want %q", c.file, e, c.exit)
		}
	}
	b, _ := os.ReadFile("testdata/qstat_xf_pbspro_failed.txt")
	recs, _ := parseQstatFull(string(b))
	if c := recs[0].attrs["comment"]; c != "Job run at Wed Jun 24 at 15:33 on (gc-prd-hpcn001:ncpus=1) and failed" {
		t.Errorf("wrapped comment read as %q", c)
	}
	if _, err := parseQstatFull("garbage\n"); err == nil {
		t.Error("garbage parsed")
	}
}

func TestSubmit(t *testing.T) {
	for _, c := range []struct {
		flavor Flavor
		out    string
		want   string
		dir    string
	}{{PBSPro, "qsub_pbspro.txt", "49230.gc-prd-hpcadm", "select=1:ncpus=4"}, {Torque, "qsub_torque.txt", "141.torque01.bcgsc.ca", "nodes=1:ppn=4"}} {
		log := fakePBS(t, map[string]string{"qsub": `cp "$1" "$1.seen"; cat "$T/` + c.out + `"`})
		dir := t.TempDir()
		p := New(Options{Flavor: c.flavor, CPUsPerNode: 4, ScriptDir: filepath.Join(dir, "s")})
		id, err := p.Submit(context.Background(), []string{"/bin/pool"}, []string{"A=1"}, "3", filepath.Join(dir, "o"), filepath.Join(dir, "e"))
		if err != nil {
			t.Fatal(err)
		}
		if id != c.want {
			t.Errorf("job ID %q, want %q", id, c.want)
		}
		seen, _ := filepath.Glob(filepath.Join(dir, "s", "parsl.3.*.qsub.seen"))
		if len(seen) != 1 {
			t.Fatalf("qsub did not get the script: %v; calls %s", seen, calls(t, log))
		}
		b, _ := os.ReadFile(seen[0])
		for _, w := range []string{"#PBS -N parsl.3\n", "#PBS -l " + c.dir + "\n", "#PBS -o " + filepath.Join(dir, "o") + "\n", "export A=1\n", "\n/bin/pool\n"} {
			if !strings.Contains(string(b), w) {
				t.Errorf("script lacks %q:\n%s", w, b)
			}
		}
	}
}

func TestSubmitErrors(t *testing.T) {
	dir := t.TempDir()
	fakePBS(t, map[string]string{"qsub": `echo "qsub: Unknown queue" >&2; exit 170`})
	_, err := New(Options{ScriptDir: dir, Queue: "nope"}).Submit(context.Background(), []string{"true"}, nil, "0", "/o", "/e")
	var se *SubmitError
	if !errors.As(err, &se) || se.ExitCode != 170 || !strings.Contains(se.Stderr, "Unknown queue") || se.Script == "" || se.Command[0] != "qsub" {
		t.Fatalf("error %+v, want a *SubmitError with qsub's details", err)
	}
	if !strings.Contains(err.Error(), "check the queue") {
		t.Errorf("message %q should say what to check", err)
	}
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Errorf("error %v should wrap a *CommandError", err)
	}

	fakePBS(t, map[string]string{"qsub": `echo "hello"`})
	if _, err = New(Options{ScriptDir: dir}).Submit(context.Background(), []string{"true"}, nil, "0", "/o", "/e"); !errors.As(err, &se) || !strings.Contains(err.Error(), "hello") {
		t.Fatalf("error %v, want a *SubmitError quoting qsub's output", err)
	}

	t.Setenv("PATH", t.TempDir())
	_, err = New(Options{ScriptDir: dir}).Submit(context.Background(), []string{"true"}, nil, "0", "/o", "/e")
	if !errors.As(err, &se) || !errors.Is(err, exec.ErrNotFound) || !strings.Contains(err.Error(), "on PATH") {
		t.Fatalf("error %v, want a *SubmitError saying qsub is not on PATH", err)
	}
}

// TestStatusPBSProHistory: qstat knows the running job; the finished one
// is only in `qstat -x` (and plain qstat says so on stderr); the third is
// in neither and is Missing, never Completed.
func TestStatusPBSProHistory(t *testing.T) {
	log := fakePBS(t, map[string]string{"qstat": `
if [ "$1" = -x ]; then
  cat "$T/qstat_xf_pbspro_failed.txt"; cat "$T/qstat_unknown.stderr" >&2; exit 153
fi
# The live queue: job 548 runs (a Torque record, the format is the same).
cat "$T/qstat_f_torque_running.txt"; cat "$T/qstat_finished.stderr" "$T/qstat_unknown.stderr" >&2; exit 153`})
	p := New(Options{})
	ids := []string{"548.moab", "49223.gc-prd-hpcadm", "10000.c2cf5fbe1102"}
	sts, err := p.Status(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	want := []provider.JobState{provider.Running, provider.Failed, provider.Missing}
	for i, w := range want {
		if sts[i].JobID != ids[i] || sts[i].State != w {
			t.Errorf("%s = %+v, want %v", ids[i], sts[i], w)
		}
	}
	if sts[1].ExitCode != 271 || !strings.Contains(sts[1].Message, "signal 15") {
		t.Errorf("failed job %+v should carry exit 271 (SIGTERM)", sts[1])
	}
	if !strings.Contains(sts[2].Message, "not running") {
		t.Errorf("missing job's message %q", sts[2].Message)
	}
	got := calls(t, log)
	if !strings.Contains(got, "qstat -f 548.moab 49223.gc-prd-hpcadm 10000.c2cf5fbe1102\n") ||
		!strings.Contains(got, "qstat -x -f 49223.gc-prd-hpcadm 10000.c2cf5fbe1102\n") {
		t.Errorf("qstat calls:\n%s", got)
	}
	// The final state is remembered: no further qstat for that job.
	_ = os.Remove(log)
	sts, err = p.Status(context.Background(), ids[1:2])
	if err != nil || sts[0].State != provider.Failed || calls(t, log) != "" {
		t.Errorf("second Status = %+v, %v; calls %q", sts, err, calls(t, log))
	}
}

func TestStatusTorqueNoHistory(t *testing.T) {
	log := fakePBS(t, map[string]string{"qstat": `cat "$T/qstat_f_torque_completed.txt"; echo "qstat: Unknown Job Id Error 10.torque01.bcgsc.ca" >&2; exit 153`})
	sts, err := New(Options{Flavor: Torque}).Status(context.Background(), []string{"9.torque01.bcgsc.ca", "10.torque01.bcgsc.ca"})
	if err != nil {
		t.Fatal(err)
	}
	if sts[0].State != provider.Completed || sts[1].State != provider.Missing || !strings.Contains(sts[1].Message, "keep_completed") {
		t.Errorf("statuses %+v", sts)
	}
	if strings.Contains(calls(t, log), "-x") {
		t.Errorf("Torque has no qstat -x:\n%s", calls(t, log))
	}
}

func TestStatusServerDownIsAnError(t *testing.T) {
	fakePBS(t, map[string]string{"qstat": `echo "Connection refused" >&2; echo "qstat: cannot connect to server pbs01 (errno=111)" >&2; exit 2`})
	_, err := New(Options{}).Status(context.Background(), []string{"1.s"})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 2 || !strings.Contains(err.Error(), "qstat -B") {
		t.Fatalf("error %v, want a *CommandError saying to check the server", err)
	}
}

func TestCancel(t *testing.T) {
	log := fakePBS(t, map[string]string{
		"qdel":  `cat "$T/qstat_unknown.stderr" | sed s/qstat/qdel/ >&2; exit 153`,
		"qstat": `if [ "$1" = -x ]; then cat "$T/qstat_xf_pbspro_failed.txt"; else cat "$T/qstat_finished.stderr" >&2; exit 153; fi`,
	})
	p := New(Options{})
	p.jobs["49223.gc-prd-hpcadm"] = &job{}
	if err := p.Cancel(context.Background(), []string{"49223.gc-prd-hpcadm", "10000.c2cf5fbe1102"}); err != nil {
		t.Fatalf("qdel of gone jobs: %v", err)
	}
	if !strings.Contains(calls(t, log), "qdel 49223.gc-prd-hpcadm 10000.c2cf5fbe1102\n") {
		t.Errorf("calls:\n%s", calls(t, log))
	}
	// Killed by qdel: the non-zero exit status means Cancelled, not Failed.
	sts, err := p.Status(context.Background(), []string{"49223.gc-prd-hpcadm"})
	if err != nil || sts[0].State != provider.Cancelled {
		t.Errorf("Status after Cancel = %+v, %v", sts, err)
	}

	fakePBS(t, map[string]string{"qdel": `echo "qdel: Unauthorized Request  49223.gc-prd-hpcadm" >&2; exit 159`})
	var ce *CommandError
	if err := p.Cancel(context.Background(), []string{"49223.gc-prd-hpcadm"}); !errors.As(err, &ce) || ce.ExitCode != 159 {
		t.Errorf("error %v, want qdel's *CommandError", err)
	}
}

func TestCommandTimeout(t *testing.T) {
	fakePBS(t, map[string]string{"qstat": `exec sleep 30`})
	start := time.Now()
	_, err := New(Options{CmdTimeout: 200 * time.Millisecond}).Status(context.Background(), []string{"1"})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Timeout == 0 || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "CmdTimeout") {
		t.Fatalf("error %v, want a timed-out *CommandError", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}
