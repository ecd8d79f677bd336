package store

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl/internal/tmpfs"
)

// smallDisk mounts a 2 MiB tmpfs for the test and returns its directory;
// it skips the test when that is not possible (not root, no mount).
func smallDisk(t *testing.T) string { return tmpfs.Mount(t, "2m") }

// fillDisk writes a file in dir until the disk is full and returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
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
			return p
		}
	}
}

// fillQueue enqueues n task rows big enough that their transaction does
// not fit in the space the WAL already has.
func fillQueue(t *testing.T, s *Store, n int64) {
	t.Helper()
	out := strings.Repeat("x", 300)
	for i := range n {
		put(t, s, &Task{RunID: run, TaskID: i, FuncName: "f", Stdout: out, TimeInvoked: t0})
	}
}

func countLines(logs, msg string) int { return strings.Count(logs, msg) }

// TestDiskFullBoundedLogAndReport: on a full disk every write fails; the
// writer keeps retrying, logs a few lines rather than one per attempt, and
// Close, at its deadline, reports every row it could not write with the
// cause, never success.
func TestDiskFullBoundedLogAndReport(t *testing.T) {
	dir := smallDisk(t)
	logs := &syncBuffer{}
	s, err := Open(context.Background(), filepath.Join(dir, "monitoring.db"), Options{RetryMin: time.Millisecond,
		RetryMax: 2 * time.Millisecond, Logger: newTestLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed { // the test failed: give up on the full disk at once
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = s.Close(ctx)
		}
	})
	fillDisk(t, dir)
	const rows = 3000
	fillQueue(t, s, rows)
	waitFor(t, func() bool { return s.Stats().WriteErrors >= 10 })
	if n := countLines(logs.String(), "monitoring write failed; retrying"); n > logBurst {
		t.Errorf("%d write failures logged one line each (want at most %d, then a count):\n%.2000s", n, logBurst, logs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err = s.Close(ctx)
	closed = true
	t.Logf("Close with a 2 s context on a full disk: %v, %v", time.Since(start).Round(time.Millisecond), err)
	var ue *UnwrittenError
	if !errors.As(err, &ue) || ue.Rows != rows || ue.Unwritten != rows || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "full") {
		t.Fatalf("Close = %v; want an *UnwrittenError for %d rows, the deadline and the full disk", err, rows)
	}
	if st := s.Stats(); st.Written != 0 || st.Unwritten != rows {
		t.Errorf("stats = %+v", st)
	}
	if !strings.Contains(logs.String(), "monitoring write failures not logged") {
		t.Errorf("the count of failures not logged is not in the log:\n%.2000s", logs)
	}
}

// TestDiskFullRecovers: a disk full for a while costs nothing once space
// returns: the writer's retries write every row, and Close succeeds.
func TestDiskFullRecovers(t *testing.T) {
	dir := smallDisk(t)
	logs := &syncBuffer{}
	path := filepath.Join(dir, "monitoring.db")
	s, err := Open(context.Background(), path, Options{RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond,
		Logger: newTestLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed { // the test failed: give up on the full disk at once
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = s.Close(ctx)
		}
	})
	filler := fillDisk(t, dir)
	const rows = 2000
	fillQueue(t, s, rows)
	waitFor(t, func() bool { return s.Stats().WriteErrors >= 20 })
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	closed = true
	closeOK(t, s)
	if st := s.Stats(); st.Written != rows || st.Unwritten != 0 {
		t.Errorf("stats = %+v", st)
	}
	if n := countRows(t, rawDB(t, path), "task"); n != rows {
		t.Errorf("task rows = %d, want %d", n, rows)
	}
	if !strings.Contains(logs.String(), "monitoring write succeeded after retry") {
		t.Errorf("recovery not logged:\n%.2000s", logs)
	}
}

// TestCloseInterruptsLockWait: a statement waiting for another
// connection's lock (busy_timeout, here ten minutes) is interrupted when
// Close's context ends, so that Close returns then, with the count.
func TestCloseInterruptsLockWait(t *testing.T) {
	s, path, _ := testOpen(t, Options{BusyTimeout: 10 * time.Minute, FlushInterval: time.Millisecond})
	other := rawDB(t, path)
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	put(t, s, &Status{RunID: run, TaskID: 1, State: "pending", Timestamp: t0})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res := make(chan error, 1)
	start := time.Now()
	go func() { res <- s.Close(ctx) }()
	select {
	case err = <-res:
	case <-time.After(60 * time.Second):
		t.Fatal("Close still waiting for the lock 60 s after its context ended")
	}
	t.Logf("Close with a 300 ms context on a locked database: %v, %v", time.Since(start).Round(time.Millisecond), err)
	var ue *UnwrittenError
	if !errors.As(err, &ue) || ue.Unwritten != 1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v; want an *UnwrittenError for 1 row and the deadline", err)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
}

func newTestLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestHeartbeatLost: a run with no end whose heartbeat is older than
// StaleHeartbeats periods reads as lost; a fresh heartbeat, a recorded end
// or no heartbeat at all (Python Parsl's runs) does not.
func TestHeartbeatLost(t *testing.T) {
	s, path, _ := testOpen(t, Options{})
	now := time.Now()
	wf := func(id string, completed time.Time) *Workflow {
		return &Workflow{RunID: id, TimeBegan: now.Add(-time.Hour), TimeCompleted: completed, Host: "h", User: "u", RunDir: "r"}
	}
	put(t, s, wf("dead", time.Time{}), &Heartbeat{RunID: "dead", Time: now.Add(-time.Minute), Period: 5 * time.Second},
		wf("alive", time.Time{}), &Heartbeat{RunID: "alive", Time: now, Period: time.Minute},
		wf("ended", now.Add(-time.Minute)), &Heartbeat{RunID: "ended", Time: now.Add(-time.Hour), Period: time.Second},
		wf("python", time.Time{}),
		// An older beat arriving late does not move the heartbeat back.
		&Heartbeat{RunID: "alive", Time: now.Add(-time.Hour), Period: time.Minute})
	syncOK(t, s)
	ctx := context.Background()
	for id, want := range map[string]struct{ lost, running bool }{
		"dead": {true, false}, "alive": {false, true}, "ended": {false, false}, "python": {false, true}} {
		for name, read := range map[string]func() (WorkflowInfo, error){
			"Workflow":  func() (WorkflowInfo, error) { return s.Workflow(ctx, id) },
			"RunHeader": func() (WorkflowInfo, error) { return s.RunHeader(ctx, id) },
		} {
			w, err := read()
			if err != nil || w.Lost != want.lost || w.Running() != want.running {
				t.Errorf("%s(%s) = lost %v running %v (beat %v), %v; want lost %v running %v", name, id, w.Lost, w.Running(),
					w.LastHeartbeat, err, want.lost, want.running)
			}
		}
	}
	wfs, err := s.ListWorkflows(ctx)
	if err != nil || len(wfs) != 4 {
		t.Fatalf("ListWorkflows = %v, %v", wfs, err)
	}
	for _, w := range wfs {
		if w.Lost != (w.RunID == "dead") {
			t.Errorf("ListWorkflows: %s lost = %v", w.RunID, w.Lost)
		}
	}
	closeOK(t, s)
	// A database of this schema version written before heartbeats gets
	// the table when opened, and Parsl's tables are untouched.
	db := rawDB(t, path)
	if _, err := db.Exec("DROP TABLE parslgo_heartbeat"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s2, &Heartbeat{RunID: "dead", Time: now, Period: time.Second})
	syncOK(t, s2)
	if w, err := s2.Workflow(ctx, "dead"); err != nil || w.Lost || !w.Running() {
		t.Errorf("after reopening and a new beat: %+v, %v", w, err)
	}
	closeOK(t, s2)
}
