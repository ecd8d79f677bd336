package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestPerfMonitoring: with --monitoring, every task perf runs is in the
// database, and the report says how long the final Close took and what the
// database costs per task.
func TestPerfMonitoring(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "monitoring.db")
	out, _, err := run(t, "perf", "--tasks", "300", "--repeat", "1", "--latency-samples", "20", "--heap-tasks", "30",
		"--threads", "2", "--json", "--run-dir", dir, "--monitoring", db)
	if err != nil {
		t.Fatalf("perf: %v", err)
	}
	var r perfResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}
	m := r.Monitoring
	if m == nil {
		t.Fatalf("no monitoring in the report:\n%s", out)
	}
	// First result, warm-up and one round of 300, 20 latency samples after
	// as many warm-up ones, memo hits and 30 blocked tasks: at least 671.
	if m.DBPath != db || m.Tasks < 671 || m.DBBytes <= 0 || m.BytesPerTask <= 0 || m.CloseMs < 0 {
		t.Errorf("monitoring = %+v", m)
	}
	if !strings.Contains(r.Command, "--monitoring "+db) {
		t.Errorf("command %q lacks the flag", r.Command)
	}
}
