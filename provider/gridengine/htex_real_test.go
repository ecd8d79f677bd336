package gridengine_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/gridengine"
)

func TestMain(m *testing.M) {
	// The end-to-end test starts this binary as a worker pool through
	// qsub; parsl.Main turns it into the pool and never returns then.
	parsl.Main()
	os.Exit(m.Run())
}

// cube is registered at package level so that the pools (this test
// binary, started by Grid Engine with PARSL_ROLE=pool) have it too.
var cube = parsl.Register1("sgetest.cube", func(ctx context.Context, x int) (int, error) { return x * x * x, nil })

// TestRealSGEHtexEndToEnd runs Go tasks through the high-throughput
// executor whose pools are Grid Engine jobs, and checks that no job of the
// run is left in qstat after Close.
func TestRealSGEHtexEndToEnd(t *testing.T) {
	if os.Getenv("PARSL_TEST_SGE") != "1" {
		t.Skip("needs a real Grid Engine: run provider/gridengine/testdata/start-sge.sh as root, then set PARSL_TEST_SGE=1")
	}
	if os.Getenv("SGE_ROOT") == "" {
		t.Setenv("SGE_ROOT", "/var/lib/gridengine")
		t.Setenv("SGE_CELL", "default")
	}
	prov := gridengine.New(gridengine.Options{Walltime: 10 * time.Minute, ScriptDir: filepath.Join(t.TempDir(), "submit_scripts")})
	ex := htex.New(htex.Options{
		Provider: prov, Blocks: 2, MaxWorkersPerNode: 2,
		HeartbeatPeriod: 200 * time.Millisecond, HeartbeatThreshold: 5 * time.Second,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	dfk, err := parsl.Load(ctx, parsl.Config{Executors: []executor.Executor{ex}, RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = dfk.Close(context.Background())
		}
	}()
	const n = 200
	fs := make([]*parsl.Future[int], n)
	for i := range fs {
		fs[i] = cube.Submit(dfk, parsl.Val(i))
	}
	for i, f := range fs {
		v, err := f.Get(ctx)
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		if v != i*i*i {
			t.Fatalf("task %d = %d, want %d", i, v, i*i*i)
		}
	}
	t.Logf("%d tasks done %v after Load", n, time.Since(start))
	jobs := ex.JobIDs()
	if len(jobs) != 2 {
		t.Fatalf("job IDs %v, want 2 Grid Engine jobs", jobs)
	}
	sts, err := prov.Status(ctx, jobs)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		if st.State != provider.Running {
			t.Errorf("block job %s is %v (%s) while its pool serves tasks, want RUNNING", st.JobID, st.State, st.Message)
		}
	}
	if err := dfk.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	out, err := exec.Command("qstat").CombinedOutput()
	for _, id := range jobs {
		if strings.Contains(" "+string(out), " "+id+" ") {
			t.Errorf("qstat still lists job %s after Close (%v):\n%s", id, err, out)
		}
	}
}
