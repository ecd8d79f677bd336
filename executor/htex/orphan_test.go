package htex_test

import (
	"bytes"
	"context"
	"encoding/json"
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
)

// orphanDirEnv makes TestOrphanDriverChild act as the driver of
// TestDriverKilledTakesInterchangeAndPools, in the directory it names.
const orphanDirEnv = "HTEXTEST_ORPHAN_DIR"

// mark appends a line to the file path when it starts, then sleeps ms: the
// file counts how many tasks pools started.
var mark = parsl.Register2("htextest.mark", func(ctx context.Context, path string, ms int) (int, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	_, err = f.WriteString("start\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return ms, nil
})

// orphanPIDs is what the child driver writes once its pool runs tasks.
type orphanPIDs struct {
	Driver      int   `json:"driver"`
	Interchange int   `json:"interchange"`
	Pools       []int `json:"pools"`
}

// TestOrphanDriverChild is not a test on its own: run by
// TestDriverKilledTakesInterchangeAndPools with orphanDirEnv set, it is a
// driver with a child interchange and a local pool, busy with a long
// queue of tasks, waiting to be killed.
func TestOrphanDriverChild(t *testing.T) {
	dir := os.Getenv(orphanDirEnv)
	if dir == "" {
		t.Skip("helper of TestDriverKilledTakesInterchangeAndPools")
	}
	// The default heartbeat threshold: before the fix, it was how long the
	// interchange waited for its driver to come back.
	ex := htex.New(fast(htex.Options{Interchange: htex.InterchangeProcess, Blocks: 1, HeartbeatThreshold: 2 * time.Minute}))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dfk, err := parsl.Load(ctx, parsl.Config{Executors: []executor.Executor{ex}, RunDir: filepath.Join(dir, "run")})
	if err != nil {
		t.Fatal(err)
	}
	starts := filepath.Join(dir, "starts")
	for range 500 {
		mark.Submit(dfk, parsl.Val(starts), parsl.Val(1000))
	}
	for {
		if ms := ex.Managers(); len(ms) > 0 && ms[0].InFlight > 0 {
			if b, _ := os.ReadFile(starts); len(b) > 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("the pool never started a task")
		case <-time.After(10 * time.Millisecond):
		}
	}
	p := orphanPIDs{Driver: os.Getpid(), Interchange: ex.InterchangePID()}
	for _, id := range ex.JobIDs() {
		pid, err := strconv.Atoi(id)
		if err != nil {
			t.Fatalf("job id %q is not a pid", id)
		}
		p.Pools = append(p.Pools, pid)
	}
	b, _ := json.Marshal(p)
	tmp := filepath.Join(dir, "pids.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "pids.json")); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done() // killed by the parent long before
	t.Fatal("not killed by the parent test")
}

// processGone reports whether pid has exited. An orphan that exited stays
// a zombie until init reaps it, and kill(pid, 0) succeeds on a zombie, so
// on Linux the state in /proc decides.
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err == nil {
		// pid (comm) S ...: the state follows the last ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
			return b[i+2] == 'Z' || b[i+2] == 'X'
		}
		return false
	}
	if _, serr := os.Stat("/proc/self"); serr == nil {
		return true // /proc works and has no entry for pid
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// TestDriverKilledTakesInterchangeAndPools kills -9 a driver whose
// interchange is a child process ("process") while its pool works
// through a queue of tasks: the interchange and the pool must exit soon
// after, and start (almost) no task of the queue meanwhile. Before the
// fix the interchange waited out its grace period (the heartbeat
// threshold, 2 minutes by default) and kept handing queued tasks to the
// pool.
func TestDriverKilledTakesInterchangeAndPools(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a driver, an interchange and a pool")
	}
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "driver.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(exe, "-test.run=^TestOrphanDriverChild$", "-test.v")
	cmd.Env = append(os.Environ(), orphanDirEnv+"="+dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	var pids orphanPIDs
	t.Cleanup(func() {
		// Whatever the outcome, leave nothing running.
		_ = cmd.Process.Kill()
		<-exited
		for _, pid := range append([]int{pids.Interchange}, pids.Pools...) {
			if pid > 0 && !processGone(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	driverLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }

	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "pids.json"))
		if err == nil {
			if err := json.Unmarshal(b, &pids); err != nil {
				t.Fatal(err)
			}
			break
		}
		select {
		case <-exited:
			t.Fatalf("the driver exited before its pool ran tasks; its log:\n%s", driverLog())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the driver wrote no pid file in 60 s; its log:\n%s", driverLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pids.Interchange <= 0 || len(pids.Pools) == 0 {
		t.Fatalf("pid file %+v: want an interchange and a pool", pids)
	}
	countStarts := func() int {
		b, _ := os.ReadFile(filepath.Join(dir, "starts"))
		return strings.Count(string(b), "\n")
	}

	before := countStarts()
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited

	procs := map[int]string{pids.Interchange: "interchange"}
	for _, p := range pids.Pools {
		procs[p] = "pool"
	}
	failAt := killed.Add(30 * time.Second)
	for len(procs) > 0 {
		for pid, what := range procs {
			if processGone(pid) {
				t.Logf("%s %d gone %s after the driver's kill -9", what, pid, time.Since(killed).Round(time.Millisecond))
				delete(procs, pid)
			}
		}
		if len(procs) == 0 {
			break
		}
		if time.Now().After(failAt) {
			var ixLog []byte
			if ls, _ := filepath.Glob(filepath.Join(dir, "run", "*", "*", "interchange", "interchange.log")); len(ls) > 0 {
				ixLog, _ = os.ReadFile(ls[0])
			}
			t.Fatalf("still running 30 s after the driver's kill -9: %v (tasks started after the kill: %d); interchange log:\n%s",
				procs, countStarts()-before, ixLog)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Each of the two workers may have finished its 1 s task and been
	// handed the next one in the moment before the interchange noticed.
	after := countStarts() - before
	t.Logf("tasks started after the kill: %d (%d before)", after, before)
	if after > 4 {
		t.Errorf("%d queued tasks started after the driver was killed, want at most 4 (one per worker in flight, twice)", after)
	}
}
