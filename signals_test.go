package parsl_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/memo"
)

var (
	sigDouble = parsl.Register1("test.signals.double", func(ctx context.Context, x int) (int, error) {
		return 2 * x, nil
	}, parsl.WithCache(true))
	sigSleeper = parsl.RegisterBash1("test.signals.sleeper", func(ctx context.Context, pidFile string) (string, error) {
		return fmt.Sprintf("sleep 300 & echo $! > %q; wait", pidFile), nil
	})
)

const signalChildEnv = "PARSL_TEST_SIGNAL_CHILD"

// signalChild is the workflow the parent interrupts: some finished, cached
// work, and a bash task that would run for minutes.
func signalChild() {
	dir := os.Getenv(signalChildEnv)
	ctx := context.Background()
	dfk, err := parsl.Load(ctx, parsl.Config{RunDir: dir, CheckpointMode: parsl.CheckpointDFKExit})
	if err != nil {
		fmt.Println("load:", err)
		os.Exit(3)
	}
	for i := 0; i < 5; i++ {
		if _, err := sigDouble.Submit(dfk, parsl.Val(i)).Get(ctx); err != nil {
			fmt.Println("double:", err)
			os.Exit(3)
		}
	}
	pidFile := filepath.Join(dir, "sleep.pid")
	long := sigSleeper.Submit(dfk, parsl.Val(pidFile))
	for {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("ready")
	_, err = long.Get(ctx)
	// The signal handler ends the process before this line in the normal
	// case; reaching it means Close ran but the re-raise did not.
	fmt.Println("get returned:", err)
	time.Sleep(5 * time.Second)
	os.Exit(4)
}

// TestSignalClosesDFK checks that SIGINT to a user's program closes the DFK
// cleanly: the bash task's process group is killed, the checkpoint is
// written, and the program then dies of the signal as it would without us.
func TestSignalClosesDFK(t *testing.T) {
	if os.Getenv(signalChildEnv) != "" {
		signalChild()
		return
	}
	for _, s := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(s.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestSignalClosesDFK$")
			cmd.Env = append(os.Environ(), signalChildEnv+"="+dir)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			lines := make(chan string, 16)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			select {
			case l := <-lines:
				if l != "ready" {
					t.Fatalf("child said %q before being ready", l)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("child never became ready")
			}
			pidBytes, err := os.ReadFile(filepath.Join(dir, "000", "sleep.pid"))
			if err != nil {
				pidBytes, err = os.ReadFile(filepath.Join(dir, "sleep.pid"))
			}
			if err != nil {
				t.Fatal(err)
			}
			sleepPID, _ := strconv.Atoi(strings.TrimSpace(string(pidBytes)))

			if err := cmd.Process.Signal(s); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var werr error
			select {
			case werr = <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("child did not exit after the signal")
			}
			var ee *exec.ExitError
			if !errors.As(werr, &ee) {
				t.Fatalf("child exit: %v; want death by %v", werr, s)
			}
			ws := ee.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != s {
				t.Fatalf("child exit status %v; want death by %v", ws, s)
			}
			for l := range lines {
				t.Logf("child: %s", l)
			}

			// The bash task's background sleep is gone (or a zombie about to be reaped).
			deadline := time.Now().Add(3 * time.Second)
			for processAlive(sleepPID) {
				if time.Now().After(deadline) {
					syscall.Kill(sleepPID, syscall.SIGKILL)
					t.Fatalf("bash task's child %d survived the signal", sleepPID)
				}
				time.Sleep(20 * time.Millisecond)
			}

			// The checkpoint was written at the signalled Close.
			recs, err := memo.LoadDir(filepath.Join(dir, "000", memo.Dir), nil)
			if err != nil {
				t.Fatalf("checkpoint after signal: %v", err)
			}
			if len(recs) != 5 {
				t.Fatalf("checkpoint has %d records, want 5", len(recs))
			}
			log, _ := os.ReadFile(filepath.Join(dir, "000", "parsl.log"))
			if !strings.Contains(string(log), "signal received") {
				t.Errorf("parsl.log does not mention the signal:\n%s", log)
			}
		})
	}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat))
	return len(fields) < 3 || fields[2] != "Z"
}
