package parsl_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/memo"
)

// Checkpoint tests. Apps are named "test.ckpt.*" and count their calls per
// tag like the memo tests (see memoCounter), so a test knows whether a
// result came from a checkpoint or from running the body.

type ckptInner struct {
	Label string
	Score float64
}

type ckptResult struct {
	Name   string
	N      int
	Vals   []float64
	Tags   map[string]int
	Inner  *ckptInner
	Empty  []string
	Matrix [][]int
	Flag   bool
}

var (
	ckptSq = parsl.Register2("test.ckpt.sq", func(_ context.Context, tag string, x int) (int, error) {
		memoCounter("ckpt.sq", tag).Add(1)
		return x * x, nil
	}, parsl.WithCache(true))

	ckptStruct = parsl.Register2("test.ckpt.struct", func(_ context.Context, tag string, x int) (ckptResult, error) {
		memoCounter("ckpt.struct", tag).Add(1)
		return ckptResult{
			Name:   fmt.Sprintf("r%d", x),
			N:      -x,
			Vals:   []float64{float64(x) / 3, 1e300, -0.5},
			Tags:   map[string]int{"x": x, "y": 2 * x},
			Inner:  &ckptInner{Label: "in", Score: 0.125},
			Matrix: [][]int{{x}, {}, {1, 2, 3}},
			Flag:   x%2 == 1,
		}, nil
	}, parsl.WithCache(true))

	ckptPtr = parsl.Register2("test.ckpt.ptr", func(_ context.Context, tag string, x int) (*ckptInner, error) {
		memoCounter("ckpt.ptr", tag).Add(1)
		if x == 0 {
			return nil, nil
		}
		return &ckptInner{Label: "p", Score: float64(x)}, nil
	}, parsl.WithCache(true))

	// ckptFail fails while its count for the tag is odd.
	ckptFail = parsl.Register2("test.ckpt.fail", func(_ context.Context, tag string, x int) (int, error) {
		if memoCounter("ckpt.fail", tag).Add(1)%2 == 1 {
			return 0, fmt.Errorf("failing call for %d", x)
		}
		return x, nil
	}, parsl.WithCache(true))

	ckptJoin = parsl.RegisterJoin2("test.ckpt.join", func(_ context.Context, dfk *parsl.DFK, tag string, x int) (*parsl.Future[int], error) {
		memoCounter("ckpt.join", tag).Add(1)
		return ckptSq.Submit(dfk, parsl.Val(tag+"/inner"), parsl.Val(x), parsl.Cache(false)), nil
	}, parsl.WithCache(true))
)

func ckptCount(app, tag string) int64 { return memoCount("ckpt."+app, tag) }

// ckptRun loads a DFK, runs fn, closes the DFK and returns its run dir.
func ckptRun(t *testing.T, cfg parsl.Config, fn func(dfk *parsl.DFK)) string {
	t.Helper()
	dfk, err := parsl.Load(context.Background(), cfg)
	if err != nil {
		t.Fatalf("parsl.Load: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			dfk.Close(context.Background())
		}
	}()
	fn(dfk)
	ctx, cancel := context.WithTimeout(context.Background(), memoTimeout)
	defer cancel()
	closed = true
	if err := dfk.Close(ctx); err != nil {
		t.Fatalf("dfk.Close: %v", err)
	}
	return dfk.RunDir()
}

// ckptRecords loads the journal of a run dir, failing on warnings.
func ckptRecords(t *testing.T, runDir string) []memo.Record {
	t.Helper()
	recs, err := memo.Load(memo.JournalPath(runDir), func(m string) { t.Errorf("checkpoint warning: %s", m) })
	if err != nil {
		t.Fatalf("memo.Load: %v", err)
	}
	return recs
}

func ckptLog(t *testing.T, runDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runDir, "parsl.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ckptPasses counts checkpoint passes in a run's log.
func ckptPasses(log string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "done checkpointing") || strings.Contains(l, "no tasks checkpointed in this pass") {
			n++
		}
	}
	return n
}

func ckptNoFile(t *testing.T, runDir, when string) {
	t.Helper()
	if _, err := os.Stat(memo.JournalPath(runDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: checkpoint file exists (stat: %v); want none yet", when, err)
	}
}

func TestCkptTaskExitRecords(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	const n = 12
	base := t.TempDir()
	dfk := memoLoad(t, parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointTaskExit})
	fs := make([]*parsl.Future[int], n)
	for i := range fs {
		fs[i] = ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(i))
	}
	for _, f := range fs {
		memoGet(t, f)
	}
	// task_exit writes each result before its future completes.
	recs := ckptRecords(t, dfk.RunDir())
	if len(recs) != n {
		t.Fatalf("%d records after %d tasks, want %d", len(recs), n, n)
	}
	seen := map[int]bool{}
	keys := map[[32]byte]bool{}
	for _, r := range recs {
		if r.App != "test.ckpt.sq" {
			t.Errorf("record app = %q", r.App)
		}
		var v int
		if err := codec.Unmarshal(r.Result, &v); err != nil {
			t.Fatalf("record result does not decode as int: %v", err)
		}
		seen[v] = true
		keys[r.Key] = true
	}
	for i := range n {
		if !seen[i*i] {
			t.Errorf("no record with result %d", i*i)
		}
	}
	if len(keys) != n {
		t.Errorf("%d distinct keys for %d distinct calls", len(keys), n)
	}
	// Uncached calls and failures are not written.
	memoGet(t, ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(100), parsl.Cache(false)))
	ctx, cancel := context.WithTimeout(context.Background(), memoTimeout)
	defer cancel()
	if _, err := ckptFail.Submit(dfk, parsl.Val(tag), parsl.Val(1)).Get(ctx); err == nil {
		t.Fatal("ckptFail succeeded on its first call")
	}
	if got := len(ckptRecords(t, dfk.RunDir())); got != n {
		t.Errorf("%d records after an uncached call and a failure, want %d", got, n)
	}
	if got := filepath.Dir(filepath.Dir(memo.JournalPath(dfk.RunDir()))); got != dfk.RunDir() {
		t.Errorf("journal is not in the run dir: %s", got)
	}
	if filepath.Dir(dfk.RunDir()) != base {
		t.Errorf("run dir %s is not under %s", dfk.RunDir(), base)
	}
}

func TestCkptRoundTrip(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	base := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), memoTimeout)
	defer cancel()

	ints := map[int]int{}
	structs := map[int]ckptResult{}
	ptrs := map[int]*ckptInner{}
	var joinVal int
	run1 := ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointTaskExit}, func(dfk *parsl.DFK) {
		for i := range 5 {
			ints[i] = memoGet(t, ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(i)))
		}
		for i := range 3 {
			structs[i] = memoGet(t, ckptStruct.Submit(dfk, parsl.Val(tag), parsl.Val(i)))
			ptrs[i] = memoGet(t, ckptPtr.Submit(dfk, parsl.Val(tag), parsl.Val(i)))
		}
		joinVal = memoGet(t, ckptJoin.Submit(dfk, parsl.Val(tag), parsl.Val(6)))
		if _, err := ckptFail.Submit(dfk, parsl.Val(tag), parsl.Val(7)).Get(ctx); err == nil {
			t.Error("ckptFail succeeded on its first call")
		}
	})
	for _, r := range ckptRecords(t, run1) {
		if r.App == "test.ckpt.fail" {
			t.Errorf("a failed task was checkpointed: %+v", r)
		}
	}
	if ckptCount("fail", tag) != 1 || ckptCount("join", tag) != 1 {
		t.Fatal("run 1 did not run the apps")
	}

	last, err := parsl.LastCheckpoint(base)
	if err != nil || len(last) != 1 || last[0] != filepath.Join(run1, memo.Dir) {
		t.Fatalf("LastCheckpoint(%s) = %v, %v; want [%s]", base, last, err, filepath.Join(run1, memo.Dir))
	}
	sq, st, pt := ckptCount("sq", tag), ckptCount("struct", tag), ckptCount("ptr", tag)
	run2 := ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointTaskExit, CheckpointFiles: last}, func(dfk *parsl.DFK) {
		for i := range 5 {
			f := ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(i))
			if v := memoGet(t, f); v != ints[i] {
				t.Errorf("sq(%d) from checkpoint = %d, want %d", i, v, ints[i])
			}
			memoWantState(t, f, parsl.StateMemoDone)
		}
		for i := range 3 {
			f := ckptStruct.Submit(dfk, parsl.Val(tag), parsl.Val(i))
			v := memoGet(t, f)
			if !reflect.DeepEqual(v, structs[i]) {
				t.Errorf("struct(%d) from checkpoint = %#v, want %#v", i, v, structs[i])
			}
			memoWantState(t, f, parsl.StateMemoDone)
			p := memoGet(t, ckptPtr.Submit(dfk, parsl.Val(tag), parsl.Val(i)))
			if !reflect.DeepEqual(p, ptrs[i]) {
				t.Errorf("ptr(%d) from checkpoint = %#v, want %#v", i, p, ptrs[i])
			}
		}
		f := ckptJoin.Submit(dfk, parsl.Val(tag), parsl.Val(6))
		if v := memoGet(t, f); v != joinVal {
			t.Errorf("join from checkpoint = %d, want %d", v, joinVal)
		}
		memoWantState(t, f, parsl.StateMemoDone)
		// The failure of run 1 was not checkpointed: the task runs (and,
		// on this second call, succeeds).
		g := ckptFail.Submit(dfk, parsl.Val(tag), parsl.Val(7))
		if v, err := g.Get(ctx); err != nil || v != 7 {
			t.Errorf("fail(7) in run 2 = %d, %v; want 7 from running the task again", v, err)
		}
		memoWantState(t, g, parsl.StateExecDone)
		// A value absent from the checkpoint still runs.
		memoGet(t, ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(50)))
	})
	if d := ckptCount("sq", tag) - sq; d != 1 {
		t.Errorf("sq body ran %d times in run 2, want 1 (only the new argument)", d)
	}
	if ckptCount("struct", tag) != st || ckptCount("ptr", tag) != pt || ckptCount("join", tag) != 1 {
		t.Error("run 2 ran bodies whose results were checkpointed")
	}
	if ckptCount("fail", tag) != 2 {
		t.Errorf("fail body ran %d times in total, want 2", ckptCount("fail", tag))
	}
	if !strings.Contains(ckptLog(t, run2), "loaded checkpoints") {
		t.Error("run 2 log does not mention loading checkpoints")
	}
}

// TestCkptChainLastCheckpoint runs three runs, each loading only the last
// checkpoint. A run's checkpoint references the checkpoints it loaded
// (memo.Chain), so the third run still finds what the first one computed.
func TestCkptChainLastCheckpoint(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	base := t.TempDir()
	for _, mode := range []parsl.CheckpointMode{parsl.CheckpointTaskExit, parsl.CheckpointDFKExit} {
		base := filepath.Join(base, string(mode))
		tag := tag + string(mode)
		ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: mode}, func(dfk *parsl.DFK) {
			memoGet(t, ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(1)))
		})
		for run := 2; run <= 3; run++ {
			last, err := parsl.LastCheckpoint(base)
			if err != nil || len(last) != 1 {
				t.Fatalf("%s run %d: LastCheckpoint = %v, %v", mode, run, last, err)
			}
			ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: mode, CheckpointFiles: last}, func(dfk *parsl.DFK) {
				for x := 1; x <= run; x++ {
					f := ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(x))
					memoGet(t, f)
					if x < run && f.State() != parsl.StateMemoDone {
						t.Errorf("%s run %d: sq(%d) state %v; want memo_done from the last checkpoint", mode, run, x, f.State())
					}
				}
			})
		}
		if n := ckptCount("sq", tag); n != 3 {
			t.Errorf("%s: sq ran %d times over three runs, want 3 (1, 2 and 3 once each)", mode, n)
		}
	}
}

func TestCkptDefaultLoadsAllRuns(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	base := t.TempDir()
	ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointTaskExit}, func(dfk *parsl.DFK) {
		memoGet(t, ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(1)))
	})
	ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointDFKExit}, func(dfk *parsl.DFK) {
		memoGet(t, ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(2)))
	})
	all, err := parsl.AllCheckpoints(base)
	if err != nil || len(all) != 2 {
		t.Fatalf("AllCheckpoints = %v, %v; want two dirs", all, err)
	}
	// A mode set and CheckpointFiles nil: every earlier run is loaded.
	ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointManual}, func(dfk *parsl.DFK) {
		for x := 1; x <= 2; x++ {
			f := ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(x))
			memoGet(t, f)
			memoWantState(t, f, parsl.StateMemoDone)
		}
	})
	if n := ckptCount("sq", tag); n != 2 {
		t.Errorf("sq ran %d times, want 2", n)
	}
	// No mode and no files: nothing is loaded.
	ckptRun(t, parsl.Config{RunDir: base}, func(dfk *parsl.DFK) {
		f := ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(1))
		memoGet(t, f)
		memoWantState(t, f, parsl.StateExecDone)
	})
	// An empty, non-nil list loads nothing either.
	ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointTaskExit, CheckpointFiles: []string{}}, func(dfk *parsl.DFK) {
		f := ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(2))
		memoGet(t, f)
		memoWantState(t, f, parsl.StateExecDone)
	})
}

func TestCkptManual(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: t.TempDir(), CheckpointMode: parsl.CheckpointManual})
	if err != nil {
		t.Fatal(err)
	}
	defer dfk.Close(context.Background())
	for i := range 3 {
		memoGet(t, ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(i)))
	}
	ckptNoFile(t, dfk.RunDir(), "manual mode before Checkpoint")
	n, err := dfk.Checkpoint()
	if err != nil || n != 3 {
		t.Fatalf("Checkpoint() = %d, %v; want 3", n, err)
	}
	if got := len(ckptRecords(t, dfk.RunDir())); got != 3 {
		t.Fatalf("%d records after Checkpoint, want 3", got)
	}
	if !strings.Contains(ckptLog(t, dfk.RunDir()), "done checkpointing 3 tasks") {
		t.Error(`log lacks "done checkpointing 3 tasks"`)
	}
	if n, err := dfk.Checkpoint(); err != nil || n != 0 {
		t.Errorf("second Checkpoint() = %d, %v; want 0", n, err)
	}
	if !strings.Contains(ckptLog(t, dfk.RunDir()), "no tasks checkpointed in this pass") {
		t.Error(`log lacks "no tasks checkpointed in this pass"`)
	}
	for i := 3; i < 5; i++ {
		memoGet(t, ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(i)))
	}
	if got := len(ckptRecords(t, dfk.RunDir())); got != 3 {
		t.Errorf("%d records before the next Checkpoint, want 3", got)
	}
	if err := dfk.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(ckptRecords(t, dfk.RunDir())); got != 5 {
		t.Errorf("%d records after Close, want 5 (Close writes what is pending)", got)
	}
	// Close wrote everything: a Checkpoint after it has nothing to do.
	if n, err := dfk.Checkpoint(); n != 0 || err != nil {
		t.Errorf("Checkpoint after Close = %d, %v; want 0, nil", n, err)
	}
}

func TestCkptDFKExit(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: t.TempDir(), CheckpointMode: parsl.CheckpointDFKExit})
	if err != nil {
		t.Fatal(err)
	}
	defer dfk.Close(context.Background())
	for i := range 4 {
		memoGet(t, ckptStruct.Submit(dfk, parsl.Val(tag), parsl.Val(i)))
	}
	ckptNoFile(t, dfk.RunDir(), "dfk_exit mode before Close")
	if err := dfk.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := ckptRecords(t, dfk.RunDir())
	if len(recs) != 4 {
		t.Fatalf("%d records after Close, want 4", len(recs))
	}
	for _, r := range recs {
		var v ckptResult
		if err := codec.Unmarshal(r.Result, &v); err != nil || v.Inner == nil {
			t.Errorf("record does not decode into ckptResult: %v, %+v", err, v)
		}
	}
	if !strings.Contains(ckptLog(t, dfk.RunDir()), "done checkpointing 4 tasks") {
		t.Error(`log lacks "done checkpointing 4 tasks"`)
	}
}

func TestCkptPeriodic(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	if _, err := parsl.Load(context.Background(), parsl.Config{RunDir: t.TempDir(), CheckpointMode: parsl.CheckpointPeriodic}); err == nil {
		t.Error("periodic mode without a period loaded")
	} else {
		var ce *parsl.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("error %v is not a *ConfigError", err)
		}
	}
	dfk := memoLoad(t, parsl.Config{RunDir: t.TempDir(), CheckpointMode: parsl.CheckpointPeriodic, CheckpointPeriod: 200 * time.Millisecond})
	for i := range 5 {
		memoGet(t, ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(i)))
	}
	deadline := time.Now().Add(20 * time.Second)
	for ckptPasses(ckptLog(t, dfk.RunDir())) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 4 checkpoint passes in 20 s with a 200 ms period; log:\n%s", ckptLog(t, dfk.RunDir()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// By now a pass has written the five results, before any Close.
	if got := len(ckptRecords(t, dfk.RunDir())); got != 5 {
		t.Errorf("%d records after several periodic passes, want 5", got)
	}
	if !strings.Contains(ckptLog(t, dfk.RunDir()), "done checkpointing 5 tasks") {
		t.Error(`log lacks "done checkpointing 5 tasks"`)
	}
}

// ckptOffsets returns the byte offset of each record in a journal.
func ckptOffsets(t *testing.T, data []byte) []int {
	t.Helper()
	const magic = "PGCKPT1\n"
	if !bytes.HasPrefix(data, []byte(magic)) {
		t.Fatalf("journal does not start with %q", magic)
	}
	var offs []int
	for off := len(magic); off < len(data); {
		offs = append(offs, off)
		off += 8 + int(binary.LittleEndian.Uint32(data[off:]))
	}
	return offs
}

func TestCkptTornFile(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	base := t.TempDir()
	const n = 5
	run1 := ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointTaskExit}, func(dfk *parsl.DFK) {
		for i := range n { // one at a time, so records are in argument order
			memoGet(t, ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(i)))
		}
	})
	path := memo.JournalPath(run1)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	offs := ckptOffsets(t, data)
	if len(offs) != n {
		t.Fatalf("%d records, want %d", len(offs), n)
	}
	// Cut the last record short, as a writer killed mid-write would.
	if err := os.Truncate(path, int64(len(data)-3)); err != nil {
		t.Fatal(err)
	}
	before := ckptCount("sq", tag)
	last, _ := parsl.LastCheckpoint(base)
	run2 := ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointTaskExit, CheckpointFiles: last}, func(dfk *parsl.DFK) {
		for i := range n {
			f := ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(i))
			if v := memoGet(t, f); v != i*i {
				t.Errorf("sq(%d) = %d", i, v)
			}
			want := parsl.StateMemoDone
			if i == n-1 {
				want = parsl.StateExecDone // its record was torn
			}
			memoWantState(t, f, want)
		}
	})
	if d := ckptCount("sq", tag) - before; d != 1 {
		t.Errorf("run 2 ran sq %d times, want 1 (only the torn record's task)", d)
	}
	log := ckptLog(t, run2)
	var warn string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "torn") {
			warn = l
		}
	}
	if warn == "" {
		t.Fatalf("no warning about the torn record in the log:\n%s", log)
	}
	for _, want := range []string{path, fmt.Sprintf("byte offset %d", offs[n-1])} {
		if !strings.Contains(warn, want) {
			t.Errorf("warning %q does not contain %q", warn, want)
		}
	}
}

func TestCkptCorruptFile(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	mk := func(name string, content []byte) string {
		dir := filepath.Join(t.TempDir(), name, memo.Dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if content != nil {
			if err := os.WriteFile(filepath.Join(dir, memo.FileName), content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	garbage := []byte("\x00\xffthis is not a checkpoint journal at all\x01\x02\x03")

	// Not a journal, or no journal: Load refuses, naming the file; it does
	// not crash and does not silently run without the results asked for.
	for name, dir := range map[string]string{
		"garbage":     mk("garbage", garbage),
		"empty dir":   mk("nofile", nil),
		"missing dir": filepath.Join(t.TempDir(), "does-not-exist"),
	} {
		dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: t.TempDir(), CheckpointFiles: []string{dir}})
		if err == nil {
			dfk.Close(context.Background())
			t.Errorf("%s: Load accepted checkpoint %s", name, dir)
			continue
		}
		var ce *parsl.ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: Load error %v (%T) is not a ConfigError naming %s", name, err, err, dir)
		}
	}

	// A journal header followed by garbage: a warning, nothing loaded, and
	// the tasks run.
	dir := mk("damaged", append([]byte("PGCKPT1\n"), garbage...))
	base := t.TempDir()
	run := ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointTaskExit, CheckpointFiles: []string{dir}}, func(dfk *parsl.DFK) {
		f := ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(3))
		if v := memoGet(t, f); v != 9 {
			t.Errorf("= %d", v)
		}
		memoWantState(t, f, parsl.StateExecDone)
	})
	log := ckptLog(t, run)
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, filepath.Join(dir, memo.FileName)) || !strings.Contains(log, "byte offset 8") {
		t.Errorf("no warning naming the damaged file and offset 8 in the log:\n%s", log)
	}

	// A record whose result does not decode into the app's result type
	// (same app name and key, wrong shape) is ignored: the task runs.
	key := ckptKeyOf(t, "test.ckpt.sq", tag, 4)
	path := filepath.Join(t.TempDir(), "wrongtype", memo.Dir, memo.FileName)
	j, err := memo.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := codec.Marshal("sixteen")
	if err := j.Append(memo.Record{Key: key, App: "test.ckpt.sq", Result: raw}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	before := ckptCount("sq", tag)
	ckptRun(t, parsl.Config{RunDir: t.TempDir(), CheckpointFiles: []string{filepath.Dir(path)}}, func(dfk *parsl.DFK) {
		f := ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(4))
		if v := memoGet(t, f); v != 16 {
			t.Errorf("= %d, want 16", v)
		}
	})
	if ckptCount("sq", tag) != before+1 {
		t.Error("a record of the wrong type stood in for running the task")
	}
}

// ckptKeyOf finds the memo key the kernel uses for app(tag, x) by running
// it in a throwaway task_exit run and reading the record back.
func ckptKeyOf(t *testing.T, app, tag string, x int) [32]byte {
	t.Helper()
	run := ckptRun(t, parsl.Config{RunDir: t.TempDir(), CheckpointMode: parsl.CheckpointTaskExit}, func(dfk *parsl.DFK) {
		memoGet(t, ckptSq.Submit(dfk, parsl.Val(tag), parsl.Val(x)))
	})
	recs := ckptRecords(t, run)
	if len(recs) != 1 || recs[0].App != app {
		t.Fatalf("key run wrote %v", recs)
	}
	return recs[0].Key
}

// TestCkptKillChild is the driver that TestCkptSurvivesKill9 kills: it runs
// a task_exit workflow until it is killed.
func TestCkptKillChild(t *testing.T) {
	base := os.Getenv("PARSL_TEST_CKPT_KILL_DIR")
	if base == "" {
		t.Skip("helper process for TestCkptSurvivesKill9")
	}
	dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointTaskExit, NoSignalHandler: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	stop := time.Now().Add(60 * time.Second) // in case the parent is gone
	for i := 0; time.Now().Before(stop); i += 8 {
		fs := make([]*parsl.Future[ckptResult], 8)
		for j := range fs {
			fs[j] = ckptStruct.Submit(dfk, parsl.Val("kill"), parsl.Val(i+j))
		}
		for _, f := range fs {
			if _, err := f.Get(context.Background()); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
		}
	}
	os.Exit(4)
}

func TestCkptSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	t.Parallel()
	base := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCkptKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PARSL_TEST_CKPT_KILL_DIR="+base)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	// Wait until the child has written some records, let it run on, kill it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		all, _ := memo.AllCheckpoints(base)
		if len(all) > 0 {
			if st, err := os.Stat(filepath.Join(all[0], memo.FileName)); err == nil && st.Size() > 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("child wrote no checkpoint in 30 s; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	waited = true
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, not by SIGKILL; stderr:\n%s", err, stderr.String())
	}

	last, err := parsl.LastCheckpoint(base)
	if err != nil || len(last) != 1 {
		t.Fatalf("LastCheckpoint = %v, %v", last, err)
	}
	var warnings []string
	recs, err := memo.LoadDir(last[0], func(m string) { warnings = append(warnings, m) })
	if err != nil || len(recs) == 0 {
		t.Fatalf("journal of the killed driver: %d records, %v", len(recs), err)
	}
	t.Logf("killed driver left %d records (%d warnings)", len(recs), len(warnings))

	// A fresh DFK loads it (default: every checkpoint under base) and
	// reuses the results.
	before := ckptCount("struct", "kill")
	dfk := memoLoad(t, parsl.Config{RunDir: base, CheckpointMode: parsl.CheckpointTaskExit})
	reused := 0
	for i := range min(len(recs), 8) {
		f := ckptStruct.Submit(dfk, parsl.Val("kill"), parsl.Val(i))
		v := memoGet(t, f)
		if v.Name != fmt.Sprintf("r%d", i) || v.N != -i {
			t.Errorf("struct(%d) = %+v", i, v)
		}
		if f.State() == parsl.StateMemoDone {
			reused++
		}
	}
	if reused == 0 {
		t.Error("no result of the killed driver was reused")
	}
	if ran := ckptCount("struct", "kill") - before; int(ran)+reused != min(len(recs), 8) {
		t.Errorf("ran %d + reused %d != %d tasks", ran, reused, min(len(recs), 8))
	}
}

func TestCkptConcurrentWriters(t *testing.T) {
	t.Parallel()
	tag := t.Name()
	base := t.TempDir() // shared: each DFK gets its own numbered run dir
	const perDFK = 300
	var wg sync.WaitGroup
	runs := make([]string, 2)
	for d := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mode := parsl.CheckpointTaskExit
			if d == 1 {
				mode = parsl.CheckpointManual
			}
			dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: base, CheckpointMode: mode, CheckpointFiles: []string{}})
			if err != nil {
				t.Error(err)
				return
			}
			runs[d] = dfk.RunDir()
			fs := make([]*parsl.Future[int], perDFK)
			for i := range fs {
				fs[i] = ckptSq.Submit(dfk, parsl.Val(fmt.Sprintf("%s/%d", tag, d)), parsl.Val(i))
				if mode == parsl.CheckpointManual && i%50 == 0 {
					if _, err := dfk.Checkpoint(); err != nil {
						t.Error(err)
					}
				}
			}
			for _, f := range fs {
				if _, err := f.Get(context.Background()); err != nil {
					t.Error(err)
				}
			}
			if err := dfk.Close(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if runs[0] == runs[1] {
		t.Fatalf("two DFKs share run dir %s", runs[0])
	}
	for _, r := range runs {
		if got := len(ckptRecords(t, r)); got != perDFK {
			t.Errorf("%s: %d records, want %d", r, got, perDFK)
		}
	}

	// Two journals on one file, appending concurrently from many goroutines.
	path := filepath.Join(t.TempDir(), memo.Dir, memo.FileName)
	js := make([]*memo.Journal, 2)
	for i := range js {
		j, err := memo.OpenJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		js[i] = j
	}
	const perG, gs = 200, 8
	for g := range gs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := js[g%2]
			for i := range perG {
				var k [32]byte
				binary.LittleEndian.PutUint32(k[:], uint32(g))
				binary.LittleEndian.PutUint32(k[4:], uint32(i))
				raw, _ := codec.Marshal(strings.Repeat("x", i))
				if err := j.Append(memo.Record{Key: k, App: "test.ckpt.concurrent", Result: raw}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, j := range js {
		if err := j.Close(); err != nil {
			t.Error(err)
		}
	}
	recs, err := memo.Load(path, func(m string) { t.Errorf("warning: %s", m) })
	if err != nil || len(recs) != perG*gs {
		t.Fatalf("two journals on one file: %d records, %v; want %d", len(recs), err, perG*gs)
	}
	seen := map[[32]byte]bool{}
	for _, r := range recs {
		i := binary.LittleEndian.Uint32(r.Key[4:])
		var s string
		if err := codec.Unmarshal(r.Result, &s); err != nil || len(s) != int(i) {
			t.Fatalf("record %x: result %q, %v", r.Key[:8], s, err)
		}
		seen[r.Key] = true
	}
	if len(seen) != perG*gs {
		t.Errorf("%d distinct records, want %d", len(seen), perG*gs)
	}
}
