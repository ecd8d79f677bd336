package slurm_test

import (
	"bytes"
	"context"
	"errors"
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
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/internal/wire"
	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/slurm"
)

// poolPids returns the processes on this machine that are pools of the
// executor's block: this test binary (not the batch script or srun, which
// share its environment) with the block's pool environment.
func poolPids(t *testing.T, ex *htex.Executor, block string) []int {
	t.Helper()
	self, err := os.Stat("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{[]byte("PARSL_ROLE=pool"), []byte(wire.PoolConfigEnv + "=" + ex.PoolConfigPath()), []byte(wire.BlockIDEnv + "=" + block)}
	ds, _ := filepath.Glob("/proc/[0-9]*/environ")
	var pids []int
	for _, d := range ds {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		vars := bytes.Split(b, []byte{0})
		ok := 0
		for _, w := range want {
			for _, v := range vars {
				if bytes.Equal(v, w) {
					ok++
					break
				}
			}
		}
		exe, err := os.Stat(filepath.Join(filepath.Dir(d), "exe"))
		if ok == len(want) && err == nil && os.SameFile(exe, self) {
			pid, _ := strconv.Atoi(strings.Split(d, "/")[2])
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestRealStoppedPoolReplaced: the pool of a one-block run on Slurm is
// stopped (SIGSTOP) mid-run. Its manager is dropped at the heartbeat
// threshold; the executor scancels the block's job and the strategy
// submits a new one, so that every task completes and the stopped process
// is gone.
func TestRealStoppedPoolReplaced(t *testing.T) {
	needSlurm(t)
	prov := newProvider(t, slurm.Options{Walltime: 10 * time.Minute})
	ex := htex.New(htex.Options{
		Provider: prov, InitBlocks: 1, MaxBlocks: 1, MaxWorkersPerNode: 2, Prefetch: 8,
		HeartbeatPeriod: 200 * time.Millisecond, HeartbeatThreshold: 2 * time.Second,
	})
	dfk, err := parsl.Load(ctxT(t, 60*time.Second), parsl.Config{Executors: []executor.Executor{ex}, RunDir: t.TempDir(),
		Retries: 2, StrategyPeriod: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = dfk.Close(context.Background())
		}
	})
	const n = 2000
	fs := make([]*parsl.Future[int], n)
	for i := range fs {
		fs[i] = square.Submit(dfk, parsl.Val(i))
	}
	ctx := ctxT(t, 120*time.Second)
	if _, err := fs[0].Get(ctx); err != nil {
		t.Fatal(err)
	}
	pids := poolPids(t, ex, "0")
	if len(pids) != 1 {
		t.Fatalf("pool processes of block 0: %v, want one", pids)
	}
	pid := pids[0]
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	stopped := time.Now()
	for i, f := range fs {
		v, err := f.Get(ctx)
		if err != nil {
			t.Fatalf("task %d: %v (blocks %v)", i, err, ex.JobIDs())
		}
		if v != i*i {
			t.Fatalf("task %d = %d, want %d", i, v, i*i)
		}
	}
	took := time.Since(stopped)
	jobs := ex.JobIDs()
	if len(jobs) < 2 {
		t.Fatalf("jobs %v: the stopped block was not replaced", jobs)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		if time.Now().After(deadline) {
			t.Fatalf("stopped pool process %d still exists 60 s after the run", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := prov.Status(ctxT(t, 30*time.Second), jobs[:1])
	if err != nil {
		t.Fatal(err)
	}
	if st[0].State != provider.Cancelled {
		t.Errorf("stopped block's job %s: %v (%s), want CANCELLED", jobs[0], st[0].State, st[0].Message)
	}
	t.Logf("all %d tasks %s after the stop; jobs %v, job %s %v", n, took.Round(time.Millisecond), jobs, jobs[0], st[0].State)
	if err := dfk.Close(ctxT(t, 60*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	out, _ := exec.Command("squeue", "--noheader", "--format=%i %t", "--jobs="+strings.Join(jobs, ",")).CombinedOutput()
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Fatalf("squeue still lists the run's jobs after Close: %s", s)
	}
}
