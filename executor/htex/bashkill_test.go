package htex_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor/htex"
)

// sideEffect is a bash app with an outside effect on dir/log: "start PID",
// then, from a background child and then the shell itself, "bg-end PID"
// and "end PID". The first try (no dir/first yet) takes 60 s, so that it is
// still running when its pool is killed; a retry is quick.
var sideEffect = parsl.RegisterBash1("htextest.sideeffect", func(_ context.Context, dir string) (string, error) {
	return fmt.Sprintf(`d=%s
if mkdir "$d/first" 2>/dev/null; then t=60; else t=0.2; fi
echo "start $$" >> "$d/log"
(sleep $t; echo "bg-end $$" >> "$d/log") &
echo $! > "$d/kid.$$.tmp" && mv "$d/kid.$$.tmp" "$d/kid.$$"
sleep $t
wait
echo "end $$" >> "$d/log"`, dir), nil
})

// procAlive: the process exists and is not a zombie.
func procAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		// No /proc (macOS): kill 0 is all there is, and a zombie there is
		// reaped promptly by launchd.
		_, noProc := os.Stat("/proc/self")
		return noProc != nil || !errors.Is(err, os.ErrNotExist)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return !(i >= 0 && i+2 < len(s) && s[i+2] == 'Z')
}

// parentOf reads the parent pid from /proc/pid/stat.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatalf("stat of %d: %q", pid, s)
	}
	return ppid
}

// TestKilledPoolTakesItsBashTask: the pool running a bash task is killed
// with SIGKILL; the task is retried on the other pool. The first try's
// shell and background child must die with their pool: before, they ran
// on, and the log read "start A, start B, bg-end B, end B, bg-end A,
// end A" — the task's side effect done twice, the two tries overlapping.
func TestKilledPoolTakesItsBashTask(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	dfk, ex := load(t, htex.Options{Blocks: 2, MaxWorkersPerNode: 1}, 1)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log")
	f := sideEffect.Submit(dfk, parsl.Val(dir))

	// The first try's shell pid is in its "start" line.
	var shell int
	for deadline := time.Now().Add(30 * time.Second); shell == 0; {
		b, _ := os.ReadFile(logPath)
		if line, _, ok := strings.Cut(string(b), "\n"); ok {
			shell, _ = strconv.Atoi(strings.TrimPrefix(line, "start "))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task never started; log %q", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var kid int
	for deadline := time.Now().Add(30 * time.Second); kid == 0; {
		if b, err := os.ReadFile(filepath.Join(dir, "kid."+strconv.Itoa(shell))); err == nil {
			kid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			t.Fatal("the task's background child never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() {
		for _, p := range []int{shell, kid} {
			if procAlive(p) {
				_ = syscall.Kill(-p, syscall.SIGKILL)
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
	pool := parentOf(t, shell)
	if !slices.Contains(ex.JobIDs(), strconv.Itoa(pool)) {
		t.Fatalf("the shell's parent %d is not one of the pools %v", pool, ex.JobIDs())
	}
	if err := syscall.Kill(pool, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	ctx := ctxT(t, 60*time.Second)
	if _, err := f.Get(ctx); err != nil {
		t.Fatalf("the retry failed: %v", err)
	}
	// The first try's processes would write their end lines after 60 s;
	// they must be gone long before.
	for _, p := range []struct {
		what string
		pid  int
	}{{"shell", shell}, {"background child", kid}} {
		for deadline := time.Now().Add(30 * time.Second); procAlive(p.pid); {
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(logPath)
				t.Fatalf("the first try's %s (pid %d) outlived its killed pool by 30 s, while the retry ran; log:\n%s", p.what, p.pid, b)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	// Exactly: the first try's start, then the whole retry; never two
	// tries running at once.
	if len(lines) != 4 || lines[0] != "start "+strconv.Itoa(shell) || !strings.HasPrefix(lines[1], "start ") ||
		lines[2] != "bg-end "+strings.TrimPrefix(lines[1], "start ") || lines[3] != "end "+strings.TrimPrefix(lines[1], "start ") {
		t.Fatalf("log:\n%s\nwant the first try's start and then the retry alone", b)
	}
}

// shell runs its argument.
var shell = parsl.RegisterBash1("htextest.shell", func(_ context.Context, cmd string) (string, error) { return cmd, nil })

// TestBackgroundChildOfFinishedBashTask: a bash task that leaves
// `sleep 1000 &` behind succeeds on a pool, and the sleep does not outlive
// it (before, it ran on after the task, the pool and Close).
func TestBackgroundChildOfFinishedBashTask(t *testing.T) {
	t.Parallel()
	dfk, _ := load(t, htex.Options{}, 0)
	pidfile := filepath.Join(t.TempDir(), "pid")
	ctx := ctxT(t, 60*time.Second)
	if _, err := shell.Submit(dfk, parsl.Val("sleep 1000 & echo $! > "+pidfile)).Get(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	for deadline := time.Now().Add(30 * time.Second); procAlive(pid); {
		if time.Now().After(deadline) {
			t.Fatalf("background child %d of a finished bash task is still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
