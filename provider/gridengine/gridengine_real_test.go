package gridengine

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/provider"
)

// The tests in this file run against a real Grid Engine whose jobs run on
// this machine (their files are read back here); testdata/start-sge.sh
// sets one up on Debian.

func needSGE(t *testing.T) *Provider {
	t.Helper()
	if os.Getenv("PARSL_TEST_SGE") != "1" {
		t.Skip("needs a real Grid Engine: run provider/gridengine/testdata/start-sge.sh as root, then set PARSL_TEST_SGE=1")
	}
	if _, err := exec.LookPath("qsub"); err != nil {
		t.Fatalf("PARSL_TEST_SGE=1 but qsub is not on PATH: %v", err)
	}
	// Debian's packages install under /var/lib/gridengine, cell default.
	if os.Getenv("SGE_ROOT") == "" {
		t.Setenv("SGE_ROOT", "/var/lib/gridengine")
		t.Setenv("SGE_CELL", "default")
	}
	return New(Options{ScriptDir: filepath.Join(t.TempDir(), "submit_scripts"), Walltime: 10 * time.Minute})
}

type realJob struct{ id, stdout, stderr string }

func realSubmit(t *testing.T, p *Provider, script string) realJob {
	t.Helper()
	dir := t.TempDir()
	j := realJob{stdout: filepath.Join(dir, "out"), stderr: filepath.Join(dir, "err")}
	var err error
	j.id, err = p.Submit(ctx(t), []string{"/bin/sh", "-c", script}, []string{"GREETING=ok"}, "t", j.stdout, j.stderr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Cancel(context.Background(), []string{j.id}) })
	return j
}

func realWait(t *testing.T, p *Provider, id string, d time.Duration, done func(provider.JobState) bool) (provider.JobStatus, []provider.JobState) {
	t.Helper()
	var seen []provider.JobState
	for deadline := time.Now().Add(d); ; {
		sts, err := p.Status(ctx(t), []string{id})
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
			t.Fatalf("job %s still %v after %v (seen %v; %s)", id, st.State, d, seen, st.Message)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestRealSGECompletesAndFails(t *testing.T) {
	p := needSGE(t)
	ok := realSubmit(t, p, `sleep 1; echo "$GREETING"`)
	bad := realSubmit(t, p, `echo bad >&2; exit 3`)
	st, seen := realWait(t, p, ok.id, 60*time.Second, provider.JobState.Terminal)
	if st.State != provider.Completed || st.ExitCode != 0 {
		t.Fatalf("job ended %v exit %d (%s), want COMPLETED 0 (seen %v)", st.State, st.ExitCode, st.Message, seen)
	}
	if b, _ := os.ReadFile(ok.stdout); string(b) != "ok\n" {
		t.Errorf("stdout %q, want \"ok\\n\"", b)
	}
	st, _ = realWait(t, p, bad.id, 60*time.Second, provider.JobState.Terminal)
	if st.State != provider.Failed || st.ExitCode != 3 {
		t.Fatalf("job ended %v exit %d (%s), want FAILED 3", st.State, st.ExitCode, st.Message)
	}
	if b, _ := os.ReadFile(bad.stderr); !strings.Contains(string(b), "bad") {
		t.Errorf("stderr %q lacks the job's message", b)
	}
}

func TestRealSGECancelRunning(t *testing.T) {
	p := needSGE(t)
	j := realSubmit(t, p, `echo started; sleep 300`)
	realWait(t, p, j.id, 60*time.Second, func(s provider.JobState) bool { return s == provider.Running })
	start := time.Now()
	if err := p.Cancel(ctx(t), []string{j.id}); err != nil {
		t.Fatal(err)
	}
	t.Logf("Cancel returned after %v", time.Since(start))
	if out, _ := exec.Command("qstat").CombinedOutput(); strings.Contains(" "+string(out), " "+j.id+" ") {
		t.Errorf("qstat still lists job %s after Cancel:\n%s", j.id, out)
	}
	st, _ := realWait(t, p, j.id, 60*time.Second, provider.JobState.Terminal)
	if st.State != provider.Cancelled {
		t.Fatalf("cancelled job reads %v (%s), want CANCELLED", st.State, st.Message)
	}
}
