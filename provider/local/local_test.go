package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/local"
)

func submit(t *testing.T, p *local.Provider, cmd ...string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	id, err := p.Submit(context.Background(), cmd, []string{"PARSL_TEST_X=42"}, "0", out, filepath.Join(dir, "err"))
	if err != nil {
		t.Fatal(err)
	}
	return id, out
}

func waitState(t *testing.T, p *local.Provider, id string, want provider.JobState) provider.JobStatus {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := p.Status(context.Background(), []string{id})
		if err != nil {
			t.Fatal(err)
		}
		if st[0].State == want {
			return st[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: state %s, want %s", id, st[0].State, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCompletedWithEnvAndOutput(t *testing.T) {
	p := local.New(local.Options{})
	id, out := submit(t, p, "sh", "-c", "echo $PARSL_TEST_X")
	waitState(t, p, id, provider.Completed)
	b, _ := os.ReadFile(out)
	if strings.TrimSpace(string(b)) != "42" {
		t.Fatalf("stdout = %q, want 42", b)
	}
}

func TestFailedExitCode(t *testing.T) {
	p := local.New(local.Options{})
	id, _ := submit(t, p, "sh", "-c", "exit 3")
	if st := waitState(t, p, id, provider.Failed); st.ExitCode != 3 {
		t.Fatalf("exit code %d, want 3", st.ExitCode)
	}
}

func TestCancelKillsGroup(t *testing.T) {
	p := local.New(local.Options{KillGrace: 200 * time.Millisecond})
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child")
	// The block ignores SIGTERM and forks a child that also ignores it: the
	// provider must escalate to SIGKILL and reach the child via the group.
	id, _ := submit(t, p, "sh", "-c", `trap "" TERM; sh -c 'trap "" TERM; echo $$ > `+pidFile+`; sleep 60' & wait`)
	waitState(t, p, id, provider.Running)
	var child int
	for i := 0; i < 200 && child == 0; i++ {
		b, _ := os.ReadFile(pidFile)
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(10 * time.Millisecond)
	}
	if child == 0 {
		t.Fatal("child never started")
	}
	if err := p.Cancel(context.Background(), []string{id}); err != nil {
		t.Fatal(err)
	}
	st, _ := p.Status(context.Background(), []string{id})
	if st[0].State != provider.Cancelled {
		t.Fatalf("state %s after Cancel, want CANCELLED", st[0].State)
	}
	pid, _ := strconv.Atoi(id)
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("block process %d still exists after Cancel: %v", pid, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(child, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the child is reaped by init
	}
	if err := syscall.Kill(child, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("child %d of the block survived Cancel: %v", child, err)
	}
}

func TestUnknownJob(t *testing.T) {
	st, err := local.New(local.Options{}).Status(context.Background(), []string{"nope"})
	if err != nil || st[0].State != provider.Unknown {
		t.Fatalf("got %v, %v", st, err)
	}
}

// TestCancelStoppedBlock: a block whose process is stopped (SIGSTOP), as
// a stalled pool is, is killed by Cancel at once rather than after the
// grace it could not use, and reaped.
func TestCancelStoppedBlock(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: the provider cannot tell a stopped process")
	}
	p := local.New(local.Options{KillGrace: 10 * time.Minute})
	id, _ := submit(t, p, "sleep", "600")
	waitState(t, p, id, provider.Running)
	pid, _ := strconv.Atoi(id)
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile("/proc/" + id + "/stat")
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && b[i+2] == 'T' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped: %s", pid, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Cancel(ctx, []string{id}); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Cancel of a stopped block waited for the grace, until its context ended")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("stopped block process %d still exists after Cancel: %v", pid, err)
	}
	if st := waitState(t, p, id, provider.Cancelled); st.ExitCode != 128+int(syscall.SIGKILL) {
		t.Fatalf("exit code %d, want %d (SIGKILL)", st.ExitCode, 128+int(syscall.SIGKILL))
	}
}
