package local_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/local"
)

// parentEnv makes this test binary a driver that starts one block and
// waits to be killed; its value is the block's pid file.
const parentEnv = "PARSL_TEST_LOCAL_PARENT"

func TestMain(m *testing.M) {
	if pidFile := os.Getenv(parentEnv); pidFile != "" {
		p := local.New(local.Options{})
		dir := filepath.Dir(pidFile)
		if _, err := p.Submit(context.Background(), []string{"sh", "-c", "echo $$ > " + pidFile + ".tmp && mv " + pidFile + ".tmp " + pidFile + "; exec sleep 1000"},
			nil, "0", filepath.Join(dir, "out"), filepath.Join(dir, "err")); err != nil {
			fmt.Println("submit:", err)
			os.Exit(3)
		}
		fmt.Println("ready")
		select {}
	}
	os.Exit(m.Run())
}

// live: the process exists and is not a zombie.
func live(pid int) bool {
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

func readPidFile(t *testing.T, path string) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never written", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// goneWithin polls with a generous deadline: the kill is meant to be
// immediate, this keeps a failing test from hanging.
func goneWithin(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); live(pid); {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TestBlockDeathKillsItsGroup: the block's first process is killed with
// SIGKILL (a pool killed by hand, the OOM killer). What it started must not
// run on as orphans; before, the child below did, for 1,000 s.
func TestBlockDeathKillsItsGroup(t *testing.T) {
	p := local.New(local.Options{})
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child")
	id, _ := submit(t, p, "sh", "-c", "sleep 1000 & echo $! > "+pidFile+".tmp && mv "+pidFile+".tmp "+pidFile+"; wait")
	child := readPidFile(t, pidFile)
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	leader, _ := strconv.Atoi(id)
	if err := syscall.Kill(leader, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st := waitState(t, p, id, provider.Failed); st.ExitCode != 128+int(syscall.SIGKILL) {
		t.Errorf("exit code %d, want %d", st.ExitCode, 128+int(syscall.SIGKILL))
	}
	if !goneWithin(child, 30*time.Second) {
		t.Fatalf("child %d of the killed block is still running", child)
	}
}

// TestBlocksDieWithDriver: the process that started a block (the driver)
// is killed with SIGKILL; on Linux its block dies with it instead of
// running on (and taking tasks a rerun would run again) until its
// heartbeat threshold.
func TestBlocksDieWithDriver(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux only")
	}
	pidFile := filepath.Join(t.TempDir(), "block")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), parentEnv+"="+pidFile)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("driver said %q", sc.Text())
	}
	block := readPidFile(t, pidFile)
	t.Cleanup(func() { _ = syscall.Kill(block, syscall.SIGKILL) })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !goneWithin(block, 30*time.Second) {
		t.Fatalf("block %d outlived the killed driver", block)
	}
}
