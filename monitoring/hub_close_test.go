package monitoring

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl/internal/tmpfs"

	"github.com/parsl-go/parsl/monitoring/store"
)

// smallDisk mounts a 2 MiB tmpfs for the test and returns its directory;
// it skips the test when that is not possible (not root, no mount).
func smallDisk(t *testing.T) string { return tmpfs.Mount(t, "2m") }

// fillDisk writes a file in dir until the disk is full.
func fillDisk(t *testing.T, dir string) {
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

// TestHubCloseOnFullDisk: with the database on a full disk, Close returns
// when its context ends with a *DroppedError that counts every task event
// not written and says the run's end was not recorded.
func TestHubCloseOnFullDisk(t *testing.T) {
	dir := smallDisk(t)
	h, err := NewHub(context.Background(), Options{DBPath: filepath.Join(dir, "monitoring.db"), FlushDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fillDisk(t, dir)
	const tasks = 20000
	emit(h, 0, tasks, 2)
	events := int64(tasks*3 + tasks/10*3) // pending, launched, final; a retry adds three
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	res := make(chan error, 1)
	go func() { res <- h.Close(ctx) }()
	select {
	case err = <-res:
	case <-time.After(60 * time.Second):
		t.Fatal("Close still running 60 s after its 2 s context")
	}
	t.Logf("Close with a 2 s context on a full disk: %v: %v", time.Since(start).Round(time.Millisecond), err)
	var de *DroppedError
	if !errors.As(err, &de) {
		t.Fatalf("Close = %v; want a *DroppedError", err)
	}
	if de.Events == 0 || de.Events+de.Written != events || de.EndRecorded || de.Rows == 0 ||
		!errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "full") {
		t.Errorf("DroppedError %+v: want the %d events counted, written or not, the end not recorded, the deadline and the full disk", de, events)
	}
	var ue *store.UnwrittenError
	if !errors.As(err, &ue) {
		t.Errorf("Close = %v; want the store's *UnwrittenError inside", err)
	}
	if h.Close(context.Background()) != err {
		t.Error("a second Close does not return the first one's result")
	}
}

// TestHubCloseOnLockedDatabase: another connection holds the database's
// write lock; Close returns when its context ends, with the counts,
// although the store would wait much longer for the lock.
func TestHubCloseOnLockedDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "monitoring.db")
	h, err := NewHub(context.Background(), Options{DBPath: path, FlushDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lock := lockDB(t, path)
	emit(h, 0, 1000, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err = h.Close(ctx)
	t.Logf("Close with a 1 s context on a locked database: %v: %v", time.Since(start).Round(time.Millisecond), err)
	var de *DroppedError
	if !errors.As(err, &de) || de.Events == 0 || de.EndRecorded || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v; want a *DroppedError with the events and the deadline", err)
	}
	lock()
}

// lockDB takes the write lock of the database at path on a connection of
// its own, as a notebook's open transaction does; the returned func lets go.
func lockDB(t *testing.T, path string) func() {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		db.Close()
	}
}

// TestHubHeartbeat: the hub records a heartbeat while it is open; after
// Close the run reads as ended, not lost, however old the heartbeat.
func TestHubHeartbeat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "monitoring.db")
	h, err := NewHub(context.Background(), Options{DBPath: path, HeartbeatPeriod: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	var first time.Time
	deadline := time.Now().Add(30 * time.Second)
	for {
		w, err := st.Workflow(ctx, h.RunID())
		if err == nil && w.HeartbeatPeriod == 10*time.Millisecond && !w.LastHeartbeat.IsZero() {
			if first.IsZero() {
				first = w.LastHeartbeat
			} else if w.LastHeartbeat.After(first) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat did not advance: %+v, %v", w, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		w, err := st.Workflow(ctx, h.RunID())
		if err != nil || w.Running() || w.Lost {
			t.Fatalf("after Close: %+v, %v; want ended, not lost", w, err)
		}
		if time.Since(w.LastHeartbeat) > 2*store.StaleHeartbeats*w.HeartbeatPeriod {
			break // stale: still ended, not lost
		}
		time.Sleep(5 * time.Millisecond)
	}
}
