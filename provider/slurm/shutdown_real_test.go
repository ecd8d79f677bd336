package slurm_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/provider/slurm"
)

// The tests in this file check issue 5 item 6: a driver whose blocks are
// Slurm jobs leaves none of them in the queue when it is stopped. The
// driver is a child process (this test binary, re-executed), since the
// signal handler ends the process it runs in.

// sleepy is a task that outlives any test unless it is stopped: the tasks
// the driver still has when it is signalled. It returns when its context
// ends, so a pool told to stop can exit at once.
var sleepy = parsl.Register1("slurmtest.sleepy", func(ctx context.Context, d time.Duration) (int, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
		return 1, nil
	}
})

// shutdownChildEnv carries the child driver's run directory and label,
// "dir|label|threshold"; its presence makes the test binary the driver.
const shutdownChildEnv = "PARSL_TEST_SLURM_SHUTDOWN_CHILD"

// shutdownChild is the driver the parent stops. It prints "jobs <ids>" and
// then "ready" once both pools have joined (so both jobs are RUNNING), and
// then waits on tasks that never finish by themselves.
func shutdownChild(spec string) {
	parts := strings.Split(spec, "|")
	dir, label := parts[0], parts[1]
	threshold, err := time.ParseDuration(parts[2])
	if err != nil {
		fmt.Println("bad threshold:", err)
		os.Exit(3)
	}
	no := false
	prov := slurm.New(slurm.Options{Walltime: 10 * time.Minute, Exclusive: &no, ScriptDir: filepath.Join(dir, "submit_scripts")})
	ex := htex.New(htex.Options{
		Label: label, Provider: prov, Blocks: 2, MaxWorkersPerNode: 2,
		HeartbeatPeriod: 200 * time.Millisecond, HeartbeatThreshold: threshold,
	})
	ctx := context.Background()
	dfk, err := parsl.Load(ctx, parsl.Config{Executors: []executor.Executor{ex}, RunDir: dir})
	if err != nil {
		fmt.Println("load:", err)
		os.Exit(3)
	}
	var fs []*parsl.Future[int]
	for i := 0; i < 8; i++ {
		fs = append(fs, sleepy.Submit(dfk, parsl.Val(10*time.Minute)))
	}
	for deadline := time.Now().Add(60 * time.Second); len(ex.Managers()) < 2; {
		if time.Now().After(deadline) {
			fmt.Println("pools did not join; jobs", strings.Join(ex.JobIDs(), ","))
			os.Exit(3)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("jobs", strings.Join(ex.JobIDs(), ","))
	fmt.Println("ready")
	_, err = fs[0].Get(ctx)
	// The signal handler ends the process before this in the normal case.
	fmt.Println("get returned:", err)
	time.Sleep(5 * time.Second)
	os.Exit(4)
}

// queued returns the jobs squeue lists (in any state it shows) whose name
// contains label, as "id state" lines.
func queued(t *testing.T, label string) []string {
	t.Helper()
	out, err := exec.Command("squeue", "--noheader", "--format=%i|%j|%T").CombinedOutput()
	if err != nil {
		t.Fatalf("squeue: %v: %s", err, out)
	}
	var rows []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) == 3 && strings.Contains(f[1], label) {
			rows = append(rows, f[0]+" "+f[2])
		}
	}
	return rows
}

// TestRealShutdown signals a driver whose two blocks are running Slurm
// jobs and checks that they are gone from squeue once the driver has
// exited. SIGTERM and SIGINT go through the DFK's signal handler, which
// closes the executor and so cancels the blocks. SIGKILL gives the driver
// no chance: the kernel closes its connections, the pools see the
// interchange gone and exit, which ends their jobs. SIGSTOP stands for a
// driver that vanished without closing anything (its machine died, the
// network broke): the connections stay open but silent, and the pools
// must give up after the heartbeat threshold (2 s here).
func TestRealShutdown(t *testing.T) {
	if spec := os.Getenv(shutdownChildEnv); spec != "" {
		shutdownChild(spec)
		return
	}
	needSlurm(t)
	const threshold = 2 * time.Second
	for _, s := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGKILL, syscall.SIGSTOP} {
		t.Run(s.String(), func(t *testing.T) {
			var rnd [4]byte
			_, _ = rand.Read(rnd[:])
			// The label makes the run's job names ("parsl.<label>.<block>")
			// unique, so that squeue can be asked about this run only.
			label := "sd" + hex.EncodeToString(rnd[:])
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestRealShutdown$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s", shutdownChildEnv, dir, label, threshold))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-done
				// Whatever happened, leave nothing in the queue.
				for _, r := range queued(t, label) {
					_ = exec.Command("scancel", strings.Fields(r)[0]).Run()
				}
			})
			lines := make(chan string, 16)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
				done <- cmd.Wait()
			}()
			var jobs []string
		wait:
			for {
				select {
				case l, ok := <-lines:
					switch {
					case !ok:
						t.Fatal("child exited before it was ready")
					case strings.HasPrefix(l, "jobs "):
						jobs = strings.Split(strings.TrimPrefix(l, "jobs "), ",")
					case l == "ready":
						break wait
					default:
						t.Fatalf("child said %q before being ready", l)
					}
				case <-time.After(60 * time.Second):
					t.Fatal("child never became ready")
				}
			}
			if len(jobs) != 2 {
				t.Fatalf("child's jobs %v, want 2", jobs)
			}
			// Both blocks are RUNNING Slurm jobs, named after the run.
			rows := queued(t, label)
			if len(rows) != 2 {
				t.Fatalf("squeue lists %v for run %s, want the child's 2 jobs %v", rows, label, jobs)
			}
			for _, r := range rows {
				f := strings.Fields(r)
				if f[1] != "RUNNING" || (f[0] != jobs[0] && f[0] != jobs[1]) {
					t.Fatalf("squeue lists %v, want jobs %v RUNNING", rows, jobs)
				}
			}

			sent := time.Now()
			if err := cmd.Process.Signal(s); err != nil {
				t.Fatal(err)
			}
			if s == syscall.SIGSTOP {
				// The cleanup's SIGKILL ends the stopped child.
				waitGone(t, label, sent, threshold)
				if took := time.Since(sent); took < threshold-500*time.Millisecond {
					t.Errorf("the jobs ended %v after the driver froze, before the heartbeat threshold %v: something else stopped the pools", took, threshold)
				}
				return
			}
			var werr error
			select {
			case werr = <-done:
				done <- werr // for the cleanup
			case <-time.After(30 * time.Second):
				t.Fatal("child did not exit after the signal")
			}
			exited := time.Since(sent)
			var ee *exec.ExitError
			if !errors.As(werr, &ee) {
				t.Fatalf("child exit: %v; want death by %v", werr, s)
			}
			if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != s {
				t.Fatalf("child exit status %v; want death by %v", ws, s)
			}

			if s != syscall.SIGKILL {
				// The handler cancelled the blocks and waited for squeue
				// to drop them before the child died.
				if rows := queued(t, label); len(rows) != 0 {
					t.Fatalf("squeue still lists %v after the child exited on %v", rows, s)
				}
				t.Logf("%v: child exited %v after the signal with no job left", s, exited.Round(time.Millisecond))
				return
			}
			waitGone(t, label, sent, threshold)
		})
	}
}

// waitGone waits until squeue lists no job of the run, which nobody
// cancels: the pools must end their jobs by exiting, within the heartbeat
// threshold and a few seconds for Slurm.
func waitGone(t *testing.T, label string, sent time.Time, threshold time.Duration) {
	t.Helper()
	limit := threshold + 10*time.Second
	for {
		rows := queued(t, label)
		if len(rows) == 0 {
			break
		}
		if time.Since(sent) > limit {
			t.Fatalf("squeue still lists %v %v after the signal (heartbeat threshold %v)", rows, time.Since(sent).Round(time.Millisecond), threshold)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the jobs left squeue %v after the signal, nobody cancelling them (heartbeat threshold %v)", time.Since(sent).Round(time.Millisecond), threshold)
}
