package threads_test

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
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/threads"
)

// driverEnv makes this test binary a driver that runs bash apps on the
// threads executor and waits to be killed; its value is a directory.
const driverEnv = "PARSL_TEST_THREADS_DRIVER"

func TestMain(m *testing.M) {
	parsl.Main()
	if dir := os.Getenv(driverEnv); dir != "" {
		driver(dir)
		return
	}
	os.Exit(m.Run())
}

// run is a bash app that runs its argument.
var run = parsl.RegisterBash1("threadstest.run", func(ctx context.Context, cmd string) (string, error) { return cmd, nil })

// driver starts two bash apps that each leave a shell and a background
// child running, prints "ready" and waits for its SIGKILL.
func driver(dir string) {
	ctx := context.Background()
	dfk, err := parsl.Load(ctx, parsl.Config{
		Executors: []executor.Executor{threads.New(threads.Options{MaxThreads: 4})},
		RunDir:    filepath.Join(dir, "runinfo"),
	})
	if err != nil {
		fmt.Println("load:", err)
		os.Exit(3)
	}
	for i := range 2 {
		run.Submit(dfk, parsl.Val(fmt.Sprintf("echo $$ > %[1]s/shell%[2]d.tmp && mv %[1]s/shell%[2]d.tmp %[1]s/shell%[2]d; "+
			"(sleep 1000; echo late) & echo $! > %[1]s/kid%[2]d.tmp && mv %[1]s/kid%[2]d.tmp %[1]s/kid%[2]d; wait", dir, i)))
	}
	fmt.Println("ready")
	select {}
}

// alive reports whether pid is a live process (not gone, not a zombie).
func alive(pid int) bool {
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

func waitPid(t *testing.T, path string) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if b, err := os.ReadFile(path); err == nil {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never written", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// goneWithin polls with a generous deadline: the kill is meant to be
// immediate, this only keeps a failing test from hanging.
func goneWithin(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); alive(pid); {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func killGroup(pid int) {
	if pg, err := syscall.Getpgid(pid); err == nil && pg > 1 {
		_ = syscall.Kill(-pg, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// TestDriverKilledTakesBashApps: kill -9 of a driver whose threads
// executor runs bash apps. Before, both shells and their background
// children ran on as orphans (here for 1,000 s); now they die with it.
func TestDriverKilledTakesBashApps(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), driverEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("driver said %q", sc.Text())
	}
	var pids []int
	for i := range 2 {
		pids = append(pids, waitPid(t, filepath.Join(dir, fmt.Sprintf("shell%d", i))),
			waitPid(t, filepath.Join(dir, fmt.Sprintf("kid%d", i))))
	}
	t.Cleanup(func() {
		for _, p := range pids {
			killGroup(p)
		}
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	left := 0
	for _, p := range pids {
		if !goneWithin(p, 30*time.Second) {
			left++
		}
	}
	if left > 0 {
		t.Fatalf("%d of %d bash processes (shells %d, %d; children %d, %d) outlived the killed driver",
			left, len(pids), pids[0], pids[2], pids[1], pids[3])
	}
}

// TestBackgroundChildOfFinishedApp: a bash app that leaves `sleep 1000 &`
// behind succeeds, and the sleep is gone once the task is (Parsl leaves it
// running; so did this executor, past Close).
func TestBackgroundChildOfFinishedApp(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dfk, err := parsl.Load(ctx, parsl.Config{
		Executors: []executor.Executor{threads.New(threads.Options{})},
		RunDir:    filepath.Join(dir, "runinfo"),
	})
	if err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(dir, "pid")
	if _, err := run.Submit(dfk, parsl.Val("sleep 1000 & echo $! > "+pidfile)).Get(ctx); err != nil {
		t.Fatal(err)
	}
	pid := waitPid(t, pidfile)
	t.Cleanup(func() { killGroup(pid) })
	if !goneWithin(pid, 30*time.Second) {
		t.Errorf("background child %d of a finished bash app is still running", pid)
	}
	if err := dfk.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !goneWithin(pid, 30*time.Second) {
		t.Errorf("background child %d of a finished bash app survived Close", pid)
	}
}
