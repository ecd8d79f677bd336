package parsl_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl/internal/tmpfs"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/monitoring"
	"github.com/parsl-go/parsl/monitoring/dashboard"
	"github.com/parsl-go/parsl/monitoring/store"
)

// monSmallDisk mounts a 2 MiB tmpfs for the test and returns its directory;
// it skips the test when that is not possible (not root, no mount).
func monSmallDisk(t *testing.T) string { return tmpfs.Mount(t, "2m") }

// monFillDisk writes a file in dir until the disk is full.
func monFillDisk(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

const lockChildEnv = "PARSL_TEST_LOCK_DB"

// lockChild holds the write lock of the database named by its environment
// until its stdin closes, as another program (a notebook) would.
func lockChild() {
	db, err := sql.Open("sqlite", os.Getenv(lockChildEnv))
	if err == nil {
		_, err = db.Exec("BEGIN EXCLUSIVE")
	}
	if err != nil {
		fmt.Println("lock:", err)
		os.Exit(3)
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// monLockByOtherProcess starts a process that holds path's write lock until
// the test ends.
func monLockByOtherProcess(t *testing.T, path string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMonitoringCloseHonoursContext$")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("lock holder said %q", line)
	}
}

// TestMonitoringCloseHonoursContext: with the monitoring database on a
// full disk, or locked by another process, DFK.Close returns when its
// context ends (it used to wait up to five minutes) with a
// *monitoring.DroppedError that counts what was not written.
func TestMonitoringCloseHonoursContext(t *testing.T) {
	if os.Getenv(lockChildEnv) != "" {
		lockChild()
		return
	}
	for _, c := range []struct {
		name  string
		dir   func(t *testing.T) string
		spoil func(t *testing.T, dir, db string)
	}{
		{"disk full", monSmallDisk, func(t *testing.T, dir, _ string) { monFillDisk(t, dir) }},
		{"locked", func(t *testing.T) string { return t.TempDir() }, func(t *testing.T, _, db string) { monLockByOtherProcess(t, db) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := c.dir(t)
			db := filepath.Join(dir, "monitoring.db")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			runs := t.TempDir()
			dfk, err := parsl.Load(ctx, parsl.Config{RunDir: runs, NoSignalHandler: true,
				Monitoring: &parsl.MonitoringConfig{DBPath: db}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { // after a failure: let go of the database before unmounting
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_ = dfk.Close(ctx)
			})
			c.spoil(t, dir, db)
			const n = 2000
			var fs []*parsl.Future[int]
			for i := range n {
				fs = append(fs, monInc.Submit(dfk, parsl.Val(i)))
			}
			for _, f := range fs {
				if _, err := f.Get(ctx); err != nil {
					t.Fatal(err)
				}
			}
			cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer ccancel()
			start := time.Now()
			res := make(chan error, 1)
			go func() { res <- dfk.Close(cctx) }()
			select {
			case err = <-res:
			case <-time.After(60 * time.Second):
				t.Fatal("DFK.Close with a 2 s context still running after 60 s")
			}
			t.Logf("DFK.Close with a 2 s context: %v: %v", time.Since(start).Round(time.Millisecond), err)
			var de *monitoring.DroppedError
			if !errors.As(err, &de) || de.Events+de.Written != 3*n || de.EndRecorded || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Close = %v; want a *monitoring.DroppedError counting the %d task events and the deadline", err, 3*n)
			}
			// The log has a few lines about it, not one per row or retry.
			logs, _ := filepath.Glob(filepath.Join(runs, "*", "parsl.log"))
			if len(logs) != 1 {
				t.Fatalf("run logs %v", logs)
			}
			b, err := os.ReadFile(logs[0])
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(b), "component=monitoring"); n > 8 {
				t.Errorf("%d log lines about monitoring, want a few:\n%.3000s", n, b)
			}
		})
	}
}

const killedDriverEnv = "PARSL_TEST_KILLED_DRIVER"

// killedDriver runs a workflow with monitoring and waits to be killed.
func killedDriver() {
	parsl.SetMonitoringHeartbeat(200 * time.Millisecond)
	ctx := context.Background()
	dir := os.Getenv(killedDriverEnv)
	dfk, err := parsl.Load(ctx, parsl.Config{RunDir: dir, Monitoring: &parsl.MonitoringConfig{DBPath: filepath.Join(dir, "monitoring.db")}})
	if err != nil {
		fmt.Println("load:", err)
		os.Exit(3)
	}
	for i := range 10 {
		if _, err := monInc.Submit(dfk, parsl.Val(i)).Get(ctx); err != nil {
			fmt.Println("inc:", err)
			os.Exit(3)
		}
	}
	fmt.Println("ready")
	time.Sleep(time.Hour) // until killed; Close is never called
	os.Exit(4)
}

// TestKilledDriverShownLost: a driver killed with SIGKILL never records the
// end of its run. While it lives the dashboard shows the run as running
// and live; once its heartbeat is stale, as ended uncleanly, no longer
// live (it used to show "Running ● live" forever).
func TestKilledDriverShownLost(t *testing.T) {
	if os.Getenv(killedDriverEnv) != "" {
		killedDriver()
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledDriverShownLost$")
	cmd.Env = append(os.Environ(), killedDriverEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("driver said %q", line)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "monitoring.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	h, err := dashboard.New(dashboard.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	var run string
	monWaitUntil(t, "the driver's run in the database", func() bool {
		wfs, err := st.ListWorkflows(ctx)
		if err != nil || len(wfs) > 1 {
			t.Fatalf("workflows %v, %v; want one", wfs, err)
		}
		if len(wfs) == 1 {
			run = wfs[0].RunID
		}
		return run != ""
	})
	page := func() string {
		t.Helper()
		resp, err := http.Get(srv.URL + "/workflow/" + run + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	monWaitUntil(t, "the live run to show as running", func() bool {
		w, err := st.Workflow(ctx, run)
		return err == nil && w.Running() && strings.Contains(page(), "● live")
	})

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true
	monWaitUntil(t, "the killed driver's run to show as lost", func() bool {
		w, err := st.Workflow(ctx, run)
		return err == nil && w.Lost
	})
	w, _ := st.Workflow(ctx, run)
	if w.Running() || !w.TimeCompleted.IsZero() {
		t.Errorf("killed run %+v: want not running, no end recorded", w)
	}
	body := page()
	if !strings.Contains(body, "Ended uncleanly") || strings.Contains(body, "● live") {
		t.Errorf("workflow page of a killed run: want \"Ended uncleanly\", not live:\n%s", body)
	}
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "Ended uncleanly") {
		t.Errorf("workflow list: the killed run is not shown as ended uncleanly:\n%s", b)
	}
}

// monWaitUntil polls cond until it holds, for up to a minute.
func monWaitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
