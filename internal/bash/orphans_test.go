package bash

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hostEnv makes this test binary a process that runs one command through a
// Runner and then waits to be killed: the stand-in for a worker pool or a
// driver whose death must take the command's processes with it.
const hostEnv = "PARSL_TEST_BASH_HOST"

func TestMain(m *testing.M) {
	if cmd := os.Getenv(hostEnv); cmd != "" {
		host(cmd)
		return
	}
	os.Exit(m.Run())
}

// host runs cmd on a Runner and prints "started" once the command is
// running; it never returns by itself.
func host(cmd string) {
	var r Runner
	go func() {
		_, err := r.Run(context.Background(), Spec{Command: cmd})
		fmt.Println("run returned:", err)
	}()
	fmt.Println("started")
	select {}
}

// deadWithin polls until pid is gone (or a zombie); a generous deadline,
// not a timing claim: the kill is meant to be immediate.
func deadWithin(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); !processDead(pid); {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// killLeftover stops pid and its group so that a failing test leaves
// nothing behind.
func killLeftover(pid int) {
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid > 1 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// waitPidFile polls for a pid file written by a command.
func waitPidFile(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			return readPid(t, path)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never written", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBackgroundChildDiesWithShell: a command that leaves `sleep 1000 &`
// behind and exits. Parsl leaves such children running for ever; here the
// task's process group is killed as soon as the shell has exited, so
// nothing of a finished task runs on (and nothing of it can overlap a
// rerun).
func TestBackgroundChildDiesWithShell(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "pid")
	res, err := Run(context.Background(), Spec{Command: "sleep 1000 & echo $! > " + pidfile})
	if err != nil || res != (Result{}) {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	pid := readPid(t, pidfile)
	if !deadWithin(pid, 10*time.Second) {
		killLeftover(pid)
		t.Fatalf("background child %d of a finished command is still running", pid)
	}
}

// TestRunnerCloseKillsRunning: Close stops the commands still running on
// the Runner, their background children included.
func TestRunnerCloseKillsRunning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "pid")
	var r Runner
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := r.Run(context.Background(), Spec{Command: "sleep 1000 & echo $! > " + pidfile + "; wait"})
		done <- outcome{res, err}
	}()
	pid := waitPidFile(t, pidfile)
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case o := <-done:
		// Close may come before Run has recorded the group (the shell
		// is quick to write the pid file): then Run kills it and says so.
		if o.res.ExitCode != 128+int(syscall.SIGKILL) && !errors.Is(o.err, ErrClosed) {
			t.Errorf("Run after Close = %+v, %v; want killed or ErrClosed", o.res, o.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if !deadWithin(pid, 10*time.Second) {
		killLeftover(pid)
		t.Fatalf("background child %d survived Close", pid)
	}
	if _, err := r.Run(context.Background(), Spec{Command: "true"}); err == nil {
		t.Error("Run after Close succeeded, want an error")
	}
}

// TestHostKilled: the process that runs the command (a pool, a driver) is
// killed with SIGKILL. The shell and its background child, which sits in
// the shell's process group, must die with it; before, both ran on as
// orphans.
func TestHostKilled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	shellFile, kidFile := filepath.Join(dir, "shell"), filepath.Join(dir, "kid")
	cmd := fmt.Sprintf("echo $$ > %s; (sleep 1000; echo late) & echo $! > %s; wait", shellFile, kidFile)
	h := exec.Command(os.Args[0], "-test.run=^$")
	h.Env = append(os.Environ(), hostEnv+"="+cmd)
	out, err := h.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Process.Kill(); _ = h.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "started" {
		t.Fatalf("host said %q", sc.Text())
	}
	shell, kid := waitPidFile(t, shellFile), waitPidFile(t, kidFile)
	t.Cleanup(func() { killLeftover(shell); killLeftover(kid) })

	if err := h.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = h.Wait()
	for name, pid := range map[string]int{"shell": shell, "background child": kid} {
		if !deadWithin(pid, 30*time.Second) {
			t.Errorf("the command's %s (pid %d) outlived the killed host", name, pid)
		}
	}
}

// TestLockedForkThread: Pdeathsig fires when the OS thread that forked the
// shell exits, not the process. Go retires a thread whenever a goroutine
// locked to it returns without unlocking; if the shell had been forked on
// such a thread it would be killed in mid-task. Runner forks on a thread
// locked to its goroutine until the shell is reaped, so these thread exits
// cannot reach it.
func TestLockedForkThread(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux only")
	}
	t.Parallel()
	var r Runner
	defer r.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Keep retiring threads while the commands run.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			var inner sync.WaitGroup
			for range 8 {
				inner.Go(func() {
					runtime.LockOSThread()
					// Returning while locked terminates the thread.
				})
			}
			inner.Wait()
		}
	})
	var fails []string
	var mu sync.Mutex
	var runs sync.WaitGroup
	for i := range 8 {
		runs.Go(func() {
			for j := range 5 {
				res, err := r.Run(context.Background(), Spec{Command: "sleep 0.2"})
				if err != nil || res != (Result{}) {
					mu.Lock()
					fails = append(fails, fmt.Sprintf("run %d.%d: %+v, %v", i, j, res, err))
					mu.Unlock()
				}
			}
		})
	}
	runs.Wait()
	close(stop)
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d of 40 commands were killed while their Runner lived: %s", len(fails), strings.Join(fails, "; "))
	}
}

// TestWatchdogReplaced: a watchdog that was killed is replaced at the next
// command, which is told about every group still running.
func TestWatchdogReplaced(t *testing.T) {
	t.Parallel()
	var r Runner
	defer r.Close()
	if _, err := r.Run(context.Background(), Spec{Command: "true"}); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	old := r.wd.cmd.Process.Pid
	r.mu.Unlock()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The kill is asynchronous: a write may still reach the dying
	// watchdog. Run until a write finds the pipe broken.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := r.Run(context.Background(), Spec{Command: "true"}); err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		cur := r.wd.cmd.Process.Pid
		r.mu.Unlock()
		if cur != old {
			if !processDead(cur) {
				return
			}
			t.Fatalf("the new watchdog %d is not running", cur)
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed watchdog was never replaced")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
