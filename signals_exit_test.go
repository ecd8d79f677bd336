package parsl_test

import (
	"bufio"
	"context"
	"database/sql"
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
	_ "modernc.org/sqlite"
)

var (
	sigExitSleep = parsl.RegisterBash1("test.sigexit.sleep", func(ctx context.Context, i int) (string, error) {
		return "sleep 300", nil
	})
	sigExitCount = parsl.Register1("test.sigexit.count", func(ctx context.Context, xs []int) (int, error) {
		return len(xs), nil
	})
)

const sigExitEnv = "PARSL_TEST_SIGEXIT_CHILD"

// sigExitChild is a workflow whose main carries on as soon as Get returns:
// it prints the error and exits 0, as many real programs do. With
// monitoring on when asked, so that the parent can make Close slow.
func sigExitChild() {
	dir := os.Getenv(sigExitEnv)
	ctx := context.Background()
	cfg := parsl.Config{RunDir: dir}
	if os.Getenv("PARSL_TEST_SIGEXIT_DB") != "" {
		cfg.Monitoring = &parsl.MonitoringConfig{DBPath: filepath.Join(dir, "monitoring.db")}
	}
	dfk, err := parsl.Load(ctx, cfg)
	if err != nil {
		fmt.Println("load:", err)
		os.Exit(3)
	}
	var fs []*parsl.Future[int]
	for i := 0; i < 1000; i++ {
		fs = append(fs, sigExitSleep.Submit(dfk, parsl.Val(i)))
	}
	total := sigExitCount.Submit(dfk, parsl.Gather(fs...))
	for dfk.Counts()[parsl.StateLaunched] == 0 && dfk.Counts()[parsl.StateRunning] == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("ready")
	_, err = total.Get(ctx)
	fmt.Println("get returned:", err)
	os.Exit(0)
}

type sigExitResult struct {
	status syscall.WaitStatus
	stdout []string
	stderr string
	log    string
}

// runSigExitChild starts the child, waits for it to be ready, calls act,
// and collects how it ended.
func runSigExitChild(t *testing.T, env []string, act func(pid int, stderrLines <-chan string)) sigExitResult {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSignalExitStatus$")
	cmd.Env = append(append(os.Environ(), sigExitEnv+"="+dir), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	errLines := make(chan string, 64)
	var stderr strings.Builder
	errDone := make(chan struct{})
	go func() {
		defer close(errDone)
		sc := bufio.NewScanner(errPipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			select {
			case errLines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case l := <-lines:
		if l != "ready" {
			t.Fatalf("child said %q before being ready", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("child never became ready")
	}
	act(cmd.Process.Pid, errLines)
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	<-errDone
	werr := cmd.Wait()
	var ee *exec.ExitError
	res := sigExitResult{stdout: rest, stderr: stderr.String()}
	if errors.As(werr, &ee) {
		res.status = ee.Sys().(syscall.WaitStatus)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*", "parsl.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		res.log += string(b)
	}
	return res
}

// TestSignalExitStatus: a program interrupted by SIGINT or SIGTERM dies of
// that signal (a shell shows 130 or 143), even when its main would return
// as soon as Get fails; it prints one short line per cause, and its log
// stays short, however many tasks were cancelled.
func TestSignalExitStatus(t *testing.T) {
	if os.Getenv(sigExitEnv) != "" {
		sigExitChild()
		return
	}
	for _, s := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(s.String(), func(t *testing.T) {
			res := runSigExitChild(t, nil, func(pid int, _ <-chan string) {
				if err := syscall.Kill(pid, s); err != nil {
					t.Fatal(err)
				}
			})
			if !res.status.Signaled() || res.status.Signal() != s {
				t.Errorf("child ended with %v (stdout %q); want death by %v", res.status, res.stdout, s)
			}
			if len(res.stdout) > 0 {
				t.Errorf("main carried on after the signal and printed %q", res.stdout)
			}
			t.Logf("stderr (%d bytes):\n%s", len(res.stderr), res.stderr)
			name := map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[s]
			if !strings.Contains(res.stderr, "1,001 tasks cancelled by "+name) {
				t.Errorf("stderr does not count the cancelled tasks:\n%s", res.stderr)
			}
			if n := strings.Count(res.stderr, "\n"); n > 4 || len(res.stderr) > 1024 {
				t.Errorf("stderr has %d lines, %d bytes; want a few short lines", n, len(res.stderr))
			}
			if n := strings.Count(res.log, "level=WARN"); n > 5 {
				t.Errorf("parsl.log has %d WARN lines for one cancelled run; want a summary", n)
			}
		})
	}
}

// TestSecondSignalStopsAtOnce: while the first signal's Close is stuck
// writing the monitoring database (locked by another process), a second
// SIGINT ends the program at once, by that signal.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	if os.Getenv(sigExitEnv) != "" {
		t.Skip("child of TestSignalExitStatus")
	}
	var db *sql.DB
	res := runSigExitChild(t, []string{"PARSL_TEST_SIGEXIT_DB=1"}, func(pid int, stderr <-chan string) {
		dbPath := findChildDB(t, pid)
		var err error
		db, err = sql.Open("sqlite", dbPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		db.SetMaxOpenConns(1)
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
			t.Fatalf("locking the child's database: %v", err)
		}
		if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		for l := range stderr {
			if strings.Contains(l, "closing") {
				break
			}
		}
		if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
	})
	if !res.status.Signaled() || res.status.Signal() != syscall.SIGINT {
		t.Errorf("child ended with %v; want death by SIGINT", res.status)
	}
	t.Logf("stderr:\n%s", res.stderr)
	if !strings.Contains(res.stderr, "second signal") {
		t.Errorf("stderr does not mention the second signal:\n%s", res.stderr)
	}
	if strings.Contains(res.stderr, "closed the run") {
		t.Errorf("the first Close finished: the database lock did not hold it, so the test proves nothing")
	}
}

// findChildDB returns the monitoring database the child opened.
func findChildDB(t *testing.T, pid int) string {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot read the child's open files: %v", err)
	}
	for _, fd := range fds {
		p, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasSuffix(p, "monitoring.db") {
			return p
		}
	}
	t.Fatal("the child has no monitoring.db open")
	return ""
}
