//go:build linux

package parsl_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl/internal/tmpfs"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/memo"
)

// Disk-full checkpoint tests: the run directory lives on a tiny tmpfs that
// the test mounts, so the journal meets a real ENOSPC (and real partial
// writes) from the kernel.

// diskfullRuns counts the executions of ckptDiskFull per "tag/x".
var diskfullRuns sync.Map

func diskfullRan(tag string, x int) int64 { return memoCount("ckpt.diskfull", tag+"/"+strconv.Itoa(x)) }

// diskfullGate, when set for a tag, holds the tasks with x >= the gate's
// threshold until it is closed.
type diskfullGate struct {
	from int
	ch   chan struct{}
}

var ckptDiskFull = parsl.Register3("test.ckpt.diskfull", func(ctx context.Context, tag string, x, pad int) (string, error) {
	if g, ok := diskfullRuns.Load(tag); ok && x >= g.(*diskfullGate).from {
		select {
		case <-g.(*diskfullGate).ch:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	memoCounter("ckpt.diskfull", tag+"/"+strconv.Itoa(x)).Add(1)
	memoCounter("ckpt.diskfull", tag).Add(1)
	return strconv.Itoa(x) + "|" + strings.Repeat("r", pad), nil
}, parsl.WithCache(true))

// ckptTmpfs mounts a tmpfs of the given size (as mount(8) takes it, "2m")
// and unmounts it when the test ends.
func ckptTmpfs(t *testing.T, size string) string { return tmpfs.Mount(t, size) }

// ckptFill writes a file under dir until the file system is full, then
// gives back leave bytes.
func ckptFill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{'f'}, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// A page-sized write fails with a few bytes left; fill those too.
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			break
		}
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(max(st.Size()-leave, 0)); err != nil {
		t.Fatal(err)
	}
	return path
}

// ckptLogBuf is a log sink that a test can read while the DFK writes to it.
type ckptLogBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *ckptLogBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *ckptLogBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// checkpointProblems returns the WARN and ERROR lines about the checkpoint.
func (l *ckptLogBuf) checkpointProblems() []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if (strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN")) && strings.Contains(line, "checkpoint") {
			out = append(out, line)
		}
	}
	return out
}

// ckptJournaledXs loads a journal written by ckptDiskFull and returns the
// x of every record.
func ckptJournaledXs(t *testing.T, path string) map[int]bool {
	t.Helper()
	recs, err := memo.Load(path, func(m string) { t.Errorf("checkpoint warning: %s", m) })
	if err != nil {
		t.Fatalf("memo.Load: %v", err)
	}
	xs := map[int]bool{}
	for _, r := range recs {
		var s string
		if err := codec.Unmarshal(r.Result, &s); err != nil {
			t.Fatalf("record result: %v", err)
		}
		x, err := strconv.Atoi(s[:strings.IndexByte(s, '|')])
		if err != nil {
			t.Fatalf("record result %.20q: %v", s, err)
		}
		if xs[x] {
			t.Errorf("result %d journaled twice", x)
		}
		xs[x] = true
	}
	return xs
}

func ckptDiskFullSubmit(t *testing.T, dfk *parsl.DFK, tag string, n, pad int) {
	t.Helper()
	fs := make([]*parsl.Future[string], n)
	for i := range fs {
		fs[i] = ckptDiskFull.Submit(dfk, parsl.Val(tag), parsl.Val(i), parsl.Val(pad))
	}
	ctx, cancel := context.WithTimeout(context.Background(), memoTimeout)
	defer cancel()
	for i, f := range fs {
		v, err := f.Get(ctx)
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		if want := strconv.Itoa(i) + "|"; !strings.HasPrefix(v, want) {
			t.Fatalf("task %d: result %.20q", i, v)
		}
	}
}

// TestCkptDiskFull: with the disk full for the whole run, Close reports
// every result that is not in the journal, the log stays short, and a run
// resumed from the journal reruns exactly those tasks.
func TestCkptDiskFull(t *testing.T) {
	for _, mode := range []parsl.CheckpointMode{parsl.CheckpointTaskExit, parsl.CheckpointPeriodic, parsl.CheckpointDFKExit} {
		t.Run(string(mode), func(t *testing.T) { testCkptDiskFull(t, mode) })
	}
}

func testCkptDiskFull(t *testing.T, mode parsl.CheckpointMode) {
	mnt := ckptTmpfs(t, "2m")
	tag := t.Name()
	const n, pad = 5000, 1000
	var logs ckptLogBuf
	cfg := parsl.Config{RunDir: mnt, CheckpointMode: mode, CheckpointPeriod: 20 * time.Millisecond, CheckpointFiles: []string{},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	dfk, err := parsl.Load(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ckptDiskFullSubmit(t, dfk, tag, n, pad)
	ctx, cancel := context.WithTimeout(context.Background(), memoTimeout)
	defer cancel()
	closeErr := dfk.Close(ctx)

	journaled := ckptJournaledXs(t, memo.JournalPath(dfk.RunDir()))
	lost := n - len(journaled)
	t.Logf("%d of %d results journaled, %d lost; Close: %v", len(journaled), n, lost, closeErr)
	if lost == 0 {
		t.Fatalf("every result fit on the 2 MiB disk; the test needs a full one")
	}
	if len(journaled) < n/4 {
		t.Errorf("only %d results journaled; ~1,900 fit on the disk", len(journaled))
	}
	var je *parsl.JournalError
	if !errors.As(closeErr, &je) {
		t.Fatalf("Close = %v; want a *parsl.JournalError reporting %d unjournaled results", closeErr, lost)
	}
	if je.Lost != lost {
		t.Errorf("JournalError.Lost = %d; %d results are missing from the journal", je.Lost, lost)
	}
	if !errors.Is(closeErr, syscall.ENOSPC) {
		t.Errorf("Close error does not wrap ENOSPC: %v", closeErr)
	}
	if !strings.Contains(closeErr.Error(), strconv.Itoa(lost)) {
		t.Errorf("Close error does not give the count %d: %v", lost, closeErr)
	}
	problems := logs.checkpointProblems()
	t.Logf("%d checkpoint WARN/ERROR log lines:\n%s", len(problems), strings.Join(problems, "\n"))
	if len(problems) > 10 {
		t.Errorf("%d checkpoint WARN/ERROR log lines for one full disk; want a few. First ones:\n%s", len(problems), strings.Join(problems[:10], "\n"))
	}

	// Resume on a disk with space, from a copy of the journal.
	ckptDir := filepath.Join(t.TempDir(), memo.Dir)
	if err := os.MkdirAll(ckptDir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(memo.JournalPath(dfk.RunDir()))
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.Create(filepath.Join(ckptDir, memo.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	src.Close()
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	before := make([]int64, n)
	for x := range n {
		before[x] = diskfullRan(tag, x)
	}
	cfg2 := parsl.Config{RunDir: t.TempDir(), CheckpointMode: parsl.CheckpointTaskExit, CheckpointFiles: []string{ckptDir}}
	ckptRun(t, cfg2, func(dfk *parsl.DFK) { ckptDiskFullSubmit(t, dfk, tag, n, pad) })
	reran, wrong := 0, 0
	for x := range n {
		ran := diskfullRan(tag, x) - before[x]
		switch {
		case journaled[x] && ran != 0:
			wrong++
			if wrong <= 5 {
				t.Errorf("task %d: its result was journaled, but the resumed run ran it %d times", x, ran)
			}
		case !journaled[x] && ran != 1:
			wrong++
			if wrong <= 5 {
				t.Errorf("task %d: its result was not journaled, but the resumed run ran it %d times", x, ran)
			}
		}
		reran += int(ran)
	}
	t.Logf("resumed run reran %d tasks (%d lost)", reran, lost)
}

// TestCkptDiskFullThenFreed: a disk that is full at first and then gets
// space again loses nothing: every result ends up in the journal and Close
// returns nil.
func TestCkptDiskFullThenFreed(t *testing.T) {
	for _, mode := range []parsl.CheckpointMode{parsl.CheckpointTaskExit, parsl.CheckpointPeriodic} {
		t.Run(string(mode), func(t *testing.T) { testCkptDiskFullThenFreed(t, mode) })
	}
}

func testCkptDiskFullThenFreed(t *testing.T, mode parsl.CheckpointMode) {
	mnt := ckptTmpfs(t, "8m")
	tag := t.Name()
	const n, pad, early = 20000, 100, 2000
	gate := &diskfullGate{from: early, ch: make(chan struct{})}
	diskfullRuns.Store(tag, gate)
	t.Cleanup(func() { diskfullRuns.Delete(tag) })
	// Room for a few hundred records: the disk fills in the middle of one.
	filler := ckptFill(t, mnt, 64<<10)

	var logs ckptLogBuf
	cfg := parsl.Config{RunDir: mnt, CheckpointMode: mode, CheckpointPeriod: 20 * time.Millisecond, CheckpointFiles: []string{},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	dfk, err := parsl.Load(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dfk.Close(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ckptDiskFullSubmit(t, dfk, tag, n, pad)
	}()
	// The first results meet the full disk; then space comes back.
	deadline := time.Now().Add(memoTimeout)
	for memoCount("ckpt.diskfull", tag) < early {
		if time.Now().After(deadline) {
			close(gate.ch)
			t.Fatalf("only %d tasks ran in %v", memoCount("ckpt.diskfull", tag), memoTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	close(gate.ch)
	<-done
	// Every result reaches the journal while the run goes on, not only at
	// Close: the kept results are retried once there is space.
	path := memo.JournalPath(dfk.RunDir())
	for {
		recs, _ := memo.Load(path, nil)
		if len(recs) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d results journaled %v after space came back", len(recs), n, memoTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), memoTimeout)
	defer cancel()
	closeErr := dfk.Close(ctx)
	journaled := ckptJournaledXs(t, path)
	t.Logf("%d of %d results journaled; Close: %v", len(journaled), n, closeErr)
	if closeErr != nil {
		t.Errorf("Close = %v; want nil, as the disk had space again", closeErr)
	}
	if len(journaled) != n {
		t.Errorf("%d of %d results journaled; want all", len(journaled), n)
	}
	problems := logs.checkpointProblems()
	t.Logf("%d checkpoint WARN/ERROR log lines:\n%s", len(problems), strings.Join(problems, "\n"))
	if len(problems) > 10 {
		t.Errorf("%d checkpoint WARN/ERROR log lines; want a few. First ones:\n%s", len(problems), strings.Join(problems[:10], "\n"))
	}
}
