package slurm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/provider"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMapStateEveryCode checks that every Slurm state, long and short,
// maps to a known provider state: an unknown mapping made Parsl read
// RUNNING jobs as UNKNOWN and ask for blocks without end (Parsl #2255).
func TestMapStateEveryCode(t *testing.T) {
	cases := []struct {
		words []string
		want  provider.JobState
	}{
		{[]string{"PENDING", "PD", "CONFIGURING", "CF", "REQUEUED", "RQ", "REQUEUE_FED", "RF"}, provider.Pending},
		{[]string{"RUNNING", "R", "COMPLETING", "CG", "RESIZING", "RS", "SIGNALING", "SI", "STAGE_OUT", "SO"}, provider.Running},
		{[]string{"SUSPENDED", "S", "STOPPED", "ST", "REQUEUE_HOLD", "RH", "RESV_DEL_HOLD", "RD"}, provider.Held},
		{[]string{"COMPLETED", "CD"}, provider.Completed},
		{[]string{"CANCELLED", "CA", "CANCELLED by 0", "CANCELLED+", "cancelled"}, provider.Cancelled},
		{[]string{"FAILED", "F", "NODE_FAIL", "NF", "BOOT_FAIL", "BF", "OUT_OF_MEMORY", "OOM", "REVOKED", "RV", "SPECIAL_EXIT", "SE"}, provider.Failed},
		{[]string{"TIMEOUT", "TO", "DEADLINE", "DL", "PREEMPTED", "PR"}, provider.Timeout},
		{[]string{"", "WHATEVER", "X"}, provider.Unknown},
	}
	for _, c := range cases {
		for _, w := range c.words {
			if got, _ := mapState(w); got != c.want {
				t.Errorf("mapState(%q) = %v, want %v", w, got, c.want)
			}
		}
	}
	if _, long := mapState("OOM"); long != "OUT_OF_MEMORY" {
		t.Errorf("long name of OOM = %q", long)
	}
}

func TestParseSbatch(t *testing.T) {
	cases := []struct {
		out, want string
		cluster   string
		err       bool
	}{
		{readTestdata(t, "sbatch_parsable.txt"), "14", "", false},
		{readTestdata(t, "sbatch_parsable_cluster.txt"), "15;ci", "ci", false},
		{"sbatch: notice: site filter says hi\n123\n", "123", "", false},
		{"77_3\n", "77_3", "", false},
		{"", "", "", true},
		{"Submitted batch job 12\n", "", "", true},
	}
	for _, c := range cases {
		ref, err := parseSbatch(c.out)
		if (err != nil) != c.err {
			t.Errorf("parseSbatch(%q) error = %v, want error %v", c.out, err, c.err)
			continue
		}
		if err == nil && (ref.String() != c.want || ref.cluster != c.cluster) {
			t.Errorf("parseSbatch(%q) = %q (cluster %q), want %q (cluster %q)", c.out, ref, ref.cluster, c.want, c.cluster)
		}
	}
}

// ids.txt: 16 ok 17 fail 18 cancel 19 hold 20 run 21 pend 22 sig.
func TestParseSqueue(t *testing.T) {
	want := map[string]provider.JobState{
		"16": provider.Completed, "17": provider.Failed, "18": provider.Cancelled,
		"19": provider.Held, "20": provider.Running, "21": provider.Pending, "22": provider.Pending,
	}
	for _, file := range []string{"squeue_all.txt", "squeue_all_long.txt", "squeue_all_cluster.txt"} {
		rows := parseSqueue(readTestdata(t, file))
		if len(rows) != len(want) {
			t.Errorf("%s: %d rows, want %d: %v", file, len(rows), len(want), rows)
		}
		for id, st := range want {
			if rows[id].state != st {
				t.Errorf("%s: job %s = %v, want %v", file, id, rows[id].state, st)
			}
		}
		if r := rows["19"]; r.reason != "JobHeldUser" {
			t.Errorf("%s: held job's reason = %q", file, r.reason)
		}
		if r := rows["20"]; r.reason != "" {
			t.Errorf("%s: reason None must read as empty, got %q", file, r.reason)
		}
	}
	active := parseSqueue(readTestdata(t, "squeue_active.txt"))
	if len(active) != 4 {
		t.Errorf("squeue_active.txt: %d rows, want the 4 live jobs: %v", len(active), active)
	}
	if len(parseSqueue("CLUSTER: ci\nsqueue: error: whatever\n\n")) != 0 {
		t.Error("banners and errors must not read as jobs")
	}
	st := parseSqueue("5|NF|None\n")["5"].status("5")
	if st.State != provider.Failed || st.Message != "Slurm state NODE_FAIL" {
		t.Errorf("NODE_FAIL status = %+v", st)
	}
}

func TestParseScontrol(t *testing.T) {
	cases := []struct {
		file     string
		id       string
		state    provider.JobState
		exitCode int
		message  string
	}{
		{"scontrol_completed.txt", "16", provider.Completed, 0, ""},
		{"scontrol_failed.txt", "17", provider.Failed, 3, "reason NonZeroExitCode"},
		{"scontrol_cancelled.txt", "18", provider.Cancelled, 0, "reason Priority"},
		{"scontrol_cancelled_running.txt", "23", provider.Cancelled, 128 + 15, "killed by signal 15"},
		{"scontrol_signal.txt", "22", provider.Failed, 128 + 9, "killed by signal 9; reason JobLaunchFailure"},
		{"scontrol_held.txt", "19", provider.Held, 0, "Slurm state PENDING; reason JobHeldUser"},
		{"scontrol_running.txt", "20", provider.Running, 0, ""},
		{"scontrol_timeout.txt", "13", provider.Timeout, 128 + 15, "killed by signal 15; reason TimeLimit"},
	}
	for _, c := range cases {
		m, err := parseScontrol(readTestdata(t, c.file))
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		fs, ok := m[c.id]
		if !ok {
			t.Errorf("%s: no job %s in %v", c.file, c.id, m)
			continue
		}
		st := fs.status(c.id)
		if st.State != c.state || st.ExitCode != c.exitCode || st.Message != c.message {
			t.Errorf("%s: got %v exit %d %q, want %v exit %d %q", c.file, st.State, st.ExitCode, st.Message, c.state, c.exitCode, c.message)
		}
	}
	// Spaces inside other values (a command, a directory) must not shift
	// the fields that are read.
	m, err := parseScontrol("JobId=9 JobName=a b JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15 Command=/x/my job.sh WorkDir=/a b\n")
	if err != nil || m["9"].state != provider.Timeout || m["9"].reason != "TimeLimit" || m["9"].signal != 15 {
		t.Errorf("line with spaces: %+v, %v", m, err)
	}
	if _, err := parseScontrol("No jobs in the system\n"); err == nil {
		t.Error("a line without the fields must be an error")
	}
	if _, err := parseScontrol("JobId=1 JobState=FAILED ExitCode=x:y\n"); err == nil {
		t.Error("a bad exit code must be an error")
	}
}

func TestParseSacct(t *testing.T) {
	for _, file := range []string{"sacct.txt", "sacct_cluster.txt"} {
		m, err := parseSacct(readTestdata(t, file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		want := map[string]provider.JobState{
			"16": provider.Completed, "17": provider.Failed, "18": provider.Cancelled,
			"19": provider.Held, "20": provider.Running,
		}
		for id, st := range want {
			if m[id].state != st {
				t.Errorf("%s: job %s = %v, want %v", file, id, m[id].state, st)
			}
		}
		if m["17"].exitCode != 3 {
			t.Errorf("%s: failed job's exit code = %d, want 3", file, m["17"].exitCode)
		}
		if _, ok := m["99999"]; ok {
			t.Errorf("%s: unknown job must be absent", file)
		}
	}
	m, err := parseSacct(readTestdata(t, "sacct_timeout.txt"))
	if err != nil || m["13"].state != provider.Timeout {
		t.Errorf("sacct_timeout.txt: %+v, %v", m, err)
	}
	// A requeued job has several records; the last one counts.
	m, err = parseSacct("7|NODE_FAIL|0:0|None\n7|TIMEOUT|0:0|TimeLimit\n")
	if err != nil || m["7"].state != provider.Timeout {
		t.Errorf("requeued job: %+v, %v", m, err)
	}
}

func TestFormatWalltime(t *testing.T) {
	cases := map[time.Duration]string{
		0:                             "00:01:00",
		time.Second:                   "00:01:00",
		time.Minute:                   "00:01:00",
		90 * time.Second:              "00:02:00",
		time.Hour:                     "01:00:00",
		10*time.Hour + 30*time.Minute: "10:30:00",
		48*time.Hour + 5*time.Minute:  "2-00:05:00",
		25*time.Hour + 59*time.Minute: "1-01:59:00",
	}
	for d, want := range cases {
		if got := formatWalltime(d); got != want {
			t.Errorf("formatWalltime(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	cases := map[string]string{
		"":           "''",
		"plain/path": "plain/path",
		"a b":        "'a b'",
		"it's":       `'it'\''s'`,
		"$HOME":      "'$HOME'",
	}
	for in, want := range cases {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestCommandErrorSaysWhatToCheck(t *testing.T) {
	e := &CommandError{Command: []string{"sbatch", "--parsable", "/s"}, ExitCode: 1, Stderr: "sbatch: error: invalid partition specified: nope\n"}
	msg := e.Error()
	for _, want := range []string{"sbatch --parsable /s", "code 1", "invalid partition", "sinfo"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}
