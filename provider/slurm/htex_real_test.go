package slurm_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/slurm"
)

// square is registered at package level so that the pools (this test
// binary, started by sbatch with PARSL_ROLE=pool) have it too.
var square = parsl.Register1("slurmtest.square", func(ctx context.Context, x int) (int, error) { return x * x, nil })

// TestRealHtexEndToEnd runs Go tasks through the high-throughput executor
// whose pools are Slurm jobs (this test binary, started by sbatch and srun),
// and checks that no job of the run is left in the queue after Close.
func TestRealHtexEndToEnd(t *testing.T) {
	needSlurm(t)
	prov := newProvider(t, slurm.Options{Walltime: 10 * time.Minute})
	ex := htex.New(htex.Options{
		Provider: prov, Blocks: 2, MaxWorkersPerNode: 2,
		HeartbeatPeriod: 200 * time.Millisecond, HeartbeatThreshold: 5 * time.Second,
	})
	start := time.Now()
	dfk, err := parsl.Load(ctxT(t, 60*time.Second), parsl.Config{Executors: []executor.Executor{ex}, RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = dfk.Close(context.Background())
		}
	})
	const n = 200
	fs := make([]*parsl.Future[int], n)
	for i := range fs {
		fs[i] = square.Submit(dfk, parsl.Val(i))
	}
	ctx := ctxT(t, 90*time.Second)
	for i, f := range fs {
		v, err := f.Get(ctx)
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		if v != i*i {
			t.Fatalf("task %d = %d, want %d", i, v, i*i)
		}
	}
	t.Logf("%d tasks done %v after Load", n, time.Since(start))
	jobs := ex.JobIDs()
	if len(jobs) != 2 {
		t.Fatalf("job IDs %v, want 2 Slurm jobs", jobs)
	}
	// Both blocks are Slurm jobs that run. The first pool may finish every
	// task before Slurm starts the second job, so wait for it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		running, err := prov.Status(ctxT(t, 30*time.Second), jobs)
		if err != nil {
			t.Fatal(err)
		}
		all := true
		for _, st := range running {
			all = all && st.State == provider.Running
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("block jobs %+v, want both RUNNING within 30 s", running)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := dfk.Close(ctxT(t, 60*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	out, err := exec.Command("squeue", "--noheader", "--format=%i %t", "--jobs="+strings.Join(jobs, ",")).CombinedOutput()
	if strings.TrimSpace(string(out)) != "" {
		t.Fatalf("squeue still lists the run's jobs after Close: %s (%v)", out, err)
	}
	sts, err := prov.Status(ctxT(t, 30*time.Second), jobs)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		// A pool told to leave exits 0 (COMPLETED); one still leaving when
		// its block is cancelled reads CANCELLED. Anything else is a fault.
		if st.State != provider.Completed && st.State != provider.Cancelled {
			t.Errorf("block job %s ended %v exit %d (%s)", st.JobID, st.State, st.ExitCode, st.Message)
		}
	}
}
