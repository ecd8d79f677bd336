//go:build linux

package dataflow

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/parsl-go/parsl/internal/tmpfs"

	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/memo"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// TestCheckpointBacklogBound: on a disk that stays full, the results kept
// for a retry are bounded; the ones past the bound are dropped, logged
// once, and counted in Close's error with the kept ones.
func TestCheckpointBacklogBound(t *testing.T) {
	mnt := tmpfs.Mount(t, "64k")
	f, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = f.Write(make([]byte, 512))
	}
	f.Close()

	defer func(n int) { backlogMaxRecords = n }(backlogMaxRecords)
	backlogMaxRecords = 10
	var logs syncBuf
	c, err := newCheckpointer(CheckpointConfig{Mode: CheckpointTaskExit, Files: []string{}}, mnt, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c.start()
	raw, err := codec.Marshal(strings.Repeat("r", 100))
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		c.write(memo.Record{Key: [32]byte{byte(i), 1}, App: "app", Result: raw})
	}
	c.mu.Lock()
	kept, dropped := len(c.pending), c.dropped
	c.mu.Unlock()
	if kept != backlogMaxRecords || dropped != n-backlogMaxRecords {
		t.Errorf("%d records kept and %d dropped; want %d and %d", kept, dropped, backlogMaxRecords, n-backlogMaxRecords)
	}
	err = c.close()
	var je *memo.JournalError
	if !errors.As(err, &je) || je.Lost != n || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("close = %v; want a JournalError with Lost %d wrapping ENOSPC", err, n)
	}
	if c.pending != nil {
		t.Errorf("%d records still pending after close", len(c.pending))
	}
	if got := strings.Count(logs.b.String(), "checkpoint backlog full"); got != 1 {
		t.Errorf("backlog-full logged %d times, want once:\n%s", got, logs.b.String())
	}
}
