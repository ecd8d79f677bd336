package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/monitoring/store"
)

// TestVisualizeBadDatabase: a missing file, a file that is not a database
// and a database from a newer schema each give an error naming the file.
func TestVisualizeBadDatabase(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 500), 0o644); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(dir, "newer.db")
	st, err := store.Open(context.Background(), newer, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close(context.Background())
	bumpUserVersion(t, newer)
	missing := filepath.Join(dir, "missing.db")
	for _, tc := range []struct{ db, want string }{
		{missing, "no monitoring database at " + missing},
		{garbage, garbage},
		{newer, newer},
	} {
		_, _, err := run(t, "visualize", "--db", tc.db, "--listen", "127.0.0.1:0")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("visualize --db %s: %v; want an error containing %q", tc.db, err, tc.want)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("visualize created the missing database")
	}
}

// bumpUserVersion marks a database as written by a newer schema.
func bumpUserVersion(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// SQLite keeps user_version as a big-endian int at offset 60.
	b[60], b[61], b[62], b[63] = 0, 0, 0x03, 0xe7
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(path + "-wal")
	os.Remove(path + "-shm")
}

// TestVisualizeServes starts `parsl visualize` on a database, fetches the
// workflows page, and stops it by cancelling its context.
func TestVisualizeServes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	st, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	st.Enqueue(context.Background(), &store.Workflow{RunID: "run-1", WorkflowName: "viz-cli", TimeBegan: now, TimeCompleted: now.Add(time.Second), Host: "h", User: "u", RunDir: "/x"})
	st.Close(context.Background())

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	cmd := newRootCmd()
	cmd.SetOut(pw)
	cmd.SetErr(io.Discard)
	cmd.SetArgs([]string{"visualize", "--db", db, "--listen", "127.0.0.1:0"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx); pw.Close() }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("no URL in %q", line)
	}
	url := strings.Fields(line[i:])[0]
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "viz-cli") {
		t.Errorf("GET %s: %d\n%.300s", url, resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("visualize: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("visualize did not stop when its context ended")
	}
}
