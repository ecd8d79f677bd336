package parsl

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/internal/dataflow"
)

// TestProgressSilentOffTerminal: a file or pipe gets no progress output.
func TestProgressSilentOffTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if newProgressBar(f) != nil {
		t.Fatal("progress bar on a regular file")
	}
	if newProgressBar(&bytes.Buffer{}) != nil {
		t.Fatal("progress bar on a buffer")
	}
}

// TestProgressCounts drives a bar with kernel events and checks what it
// draws.
func TestProgressCounts(t *testing.T) {
	var buf bytes.Buffer
	pb := startProgressBar(&buf)
	now := time.Now()
	for i := int64(0); i < 4; i++ {
		pb.TaskEvent(dataflow.Event{Time: now, TaskID: i, State: dataflow.Pending})
	}
	pb.TaskEvent(dataflow.Event{TaskID: 0, State: dataflow.ExecDone})
	pb.TaskEvent(dataflow.Event{TaskID: 1, Try: 1, State: dataflow.Pending}) // a retry: not a new task
	pb.TaskEvent(dataflow.Event{TaskID: 1, State: dataflow.Failed})
	pb.TaskEvent(dataflow.Event{TaskID: 2, State: dataflow.MemoDone})
	if pb.total.Load() != 4 || pb.done.Load() != 2 || pb.failed.Load() != 1 {
		t.Fatalf("total %d done %d failed %d, want 4 2 1", pb.total.Load(), pb.done.Load(), pb.failed.Load())
	}
	pb.close()
	out := buf.String()
	// close completes the bar (at Close every task is done); the counts
	// beside it still tell the truth.
	if !strings.Contains(out, "/4") || !strings.Contains(out, "failed 1") || !strings.Contains(out, "running 1") {
		t.Fatalf("bar output %q lacks /4, failed 1, running 1", out)
	}
}
