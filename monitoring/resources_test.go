package monitoring_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/parsl-go/parsl/monitoring"
	"github.com/parsl-go/parsl/monitoring/store"
)

// TestHubBlocksNodesResources records a block, a node and resource
// samples through the Hub and reads them back from Parsl's tables with
// plain SQL, as a notebook would.
func TestHubBlocksNodesResources(t *testing.T) {
	db := filepath.Join(t.TempDir(), "monitoring.db")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := monitoring.NewHub(ctx, monitoring.Options{DBPath: db, WorkflowName: "res"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.Local)
	steps := []struct {
		name string
		call func() error
	}{
		{"pending", func() error {
			return h.Block(ctx, store.Block{ExecutorLabel: "htex", BlockID: "0", JobID: "123", Timestamp: at, Status: "PENDING"})
		}},
		{"running", func() error {
			return h.Block(ctx, store.Block{ExecutorLabel: "htex", BlockID: "0", JobID: "123", Timestamp: at.Add(time.Second), Status: "RUNNING"})
		}},
		{"node", func() error {
			return h.Node(ctx, store.Node{ID: 99, Hostname: "n1", UID: "m1", BlockID: "0", CPUCount: 4, TotalMemory: 8 << 30,
				Active: true, WorkerCount: 2, PythonV: "go1.26", Timestamp: at})
		}},
		{"sample 1", func() error {
			return h.Resource(ctx, store.Resource{TaskID: 7, TryID: 1, Timestamp: at, PID: 42, MemoryResident: 1 << 20, TimeUser: 0.5})
		}},
		{"sample 2", func() error {
			return h.Resource(ctx, store.Resource{TaskID: 7, TryID: 1, Timestamp: at.Add(time.Second), PID: 42, MemoryResident: 2 << 20, TimeUser: 1.5})
		}},
		// Rows with no time get the time of the call.
		{"no time", func() error { return h.Resource(ctx, store.Resource{TaskID: 8, PID: 43}) }},
	}
	for _, s := range steps {
		if err := s.call(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	run := h.RunID()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Block(ctx, store.Block{BlockID: "1", Status: "PENDING"}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Block after Close: %v, want ErrClosed", err)
	}

	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n int
	var job, hb string
	if err := conn.QueryRow(`SELECT count(*), max(job_id) FROM block WHERE run_id = ? AND block_id = '0'`, run).Scan(&n, &job); err != nil || n != 2 || job != "123" {
		t.Errorf("block rows: %d, job %q, %v; want 2 rows of job 123", n, job, err)
	}
	var id, cpus int
	if err := conn.QueryRow(`SELECT id, cpu_count, last_heartbeat FROM node WHERE run_id = ? AND hostname = 'n1'`, run).Scan(&id, &cpus, &hb); err != nil || id == 99 || cpus != 4 || hb == "" {
		t.Errorf("node row: id %d cpus %d heartbeat %q, %v; want a database id, 4 cpus, the heartbeat defaulted", id, cpus, hb, err)
	}
	var maxRSS, maxUser float64
	if err := conn.QueryRow(`SELECT count(*), max(psutil_process_memory_resident), max(psutil_process_time_user) FROM resource WHERE run_id = ? AND task_id = 7 AND try_id = 1`, run).Scan(&n, &maxRSS, &maxUser); err != nil || n != 2 || maxRSS != 2<<20 || maxUser != 1.5 {
		t.Errorf("resource rows: %d, RSS %v, user %v, %v", n, maxRSS, maxUser, err)
	}
	if err := conn.QueryRow(`SELECT count(*) FROM resource WHERE run_id = ? AND task_id = 8 AND timestamp > '2026-01-03'`, run).Scan(&n); err != nil || n != 1 {
		t.Errorf("row without a time: %d, %v", n, err)
	}
}
