package slurm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/provider/slurm"
)

// slurmSleeper records its shell's and its background child's pids, then
// waits for the child; the retry (try 1) returns at once.
var slurmSleeper = parsl.RegisterBash2("slurmtest.sleeper", func(ctx context.Context, dir string, tag string) (string, error) {
	return fmt.Sprintf(`if [ -e %[1]q/first.done ]; then exit 0; fi
echo $$ > %[1]q/shell.pid; touch %[1]q/first.done
sleep 300 & echo $! > %[1]q/child.pid; wait`, dir), nil
})

// TestRealKilledPoolTakesItsBashTask: kill -9 of a worker pool inside a
// Slurm job takes the bash task it was running along (shell and background
// child), so the retry on the replacement block does not run beside it.
func TestRealKilledPoolTakesItsBashTask(t *testing.T) {
	needSlurm(t)
	prov := newProvider(t, slurm.Options{Walltime: 10 * time.Minute})
	ex := htex.New(htex.Options{
		Provider: prov, InitBlocks: 1, MaxBlocks: 1, MaxWorkersPerNode: 1,
		HeartbeatPeriod: 200 * time.Millisecond, HeartbeatThreshold: 2 * time.Second,
	})
	dfk, err := parsl.Load(ctxT(t, 60*time.Second), parsl.Config{Executors: []executor.Executor{ex}, RunDir: t.TempDir(),
		Retries: 1, StrategyPeriod: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dfk.Close(context.Background()) })
	dir := t.TempDir()
	f := slurmSleeper.Submit(dfk, parsl.Val(dir), parsl.Val("a"))
	ctx := ctxT(t, 120*time.Second)
	readPid := func(name string) int {
		for {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
				return pid
			}
			if ctx.Err() != nil {
				t.Fatalf("%s never written", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	shell, child := readPid("shell.pid"), readPid("child.pid")
	pids := poolPids(t, ex, "0")
	if len(pids) != 1 {
		t.Fatalf("pool processes of block 0: %v, want one", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	t.Cleanup(func() { _ = syscall.Kill(shell, syscall.SIGKILL); _ = syscall.Kill(child, syscall.SIGKILL) })
	for _, p := range []struct {
		what string
		pid  int
	}{{"shell", shell}, {"background child", child}} {
		for alive(p.pid) {
			if ctx.Err() != nil {
				t.Fatalf("the bash task's %s (pid %d) outlived its killed pool", p.what, p.pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	gone := time.Since(killed)
	if _, err := f.Get(ctx); err != nil {
		t.Fatalf("the retry failed: %v", err)
	}
	t.Logf("bash task's shell and child gone %s after kill -9 of the pool; retry done on jobs %v", gone.Round(time.Millisecond), ex.JobIDs())
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}
