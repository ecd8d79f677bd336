package htex_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor/htex"
)

// overlapProbe is a bash app with a side effect on dir/log: "start PID"
// when it begins, "end PID" when it is done. Before its start line it
// looks for an earlier try whose shell or child is still alive (pid files
// and /proc) and writes "overlap PID" if there is one: the moment a retry
// starts is the moment the earlier try must be dead. The first try (no
// dir/first yet) runs 30 s, so that it is surely running when its pool
// is stopped and dropped; the retry is quick.
var overlapProbe = parsl.RegisterBash1("htextest.overlapprobe", func(_ context.Context, dir string) (string, error) {
	return fmt.Sprintf(`d=%s
if mkdir "$d/first" 2>/dev/null; then t=30; else t=0.5; fi
alive() { [ -r /proc/$1/stat ] && [ "$(sed 's/.*) //' /proc/$1/stat | cut -c1)" != Z ]; }
for f in "$d"/pid.* "$d"/kid.*; do
  [ -e "$f" ] || continue
  p=$(cat "$f")
  if [ "$p" != $$ ] && alive "$p"; then echo "overlap $p" >> "$d/log"; fi
done
echo $$ > "$d/pid.$$"
echo "start $$" >> "$d/log"
sleep $t &
echo $! > "$d/kid.$$"
wait
echo "end $$" >> "$d/log"`, dir), nil
})

// TestLostTryDeadBeforeRetry: the pool running a bash task is stopped
// (SIGSTOP); its manager is dropped at the heartbeat threshold and the
// task, lost with it, is retried. The stopped pool's task runs on in its
// own process group until the block is cancelled, so the retry must wait
// for that: when the retry starts, the first try's shell and its child
// must be dead. Before the fix the retry was handed out at once, and the
// first try was killed only on the executor's next 250 ms tick, so the
// two tries overlapped (the log read "overlap").
func TestLostTryDeadBeforeRetry(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	for _, c := range []struct {
		name string
		o    htex.Options
	}{
		// The retry runs on the block that replaces the stopped one.
		{"replacement", htex.Options{InitBlocks: 1, MaxBlocks: 1}},
		// The retry could run at once on the other, healthy block.
		{"other-block", htex.Options{Blocks: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.MaxWorkersPerNode = 1
			c.o.HeartbeatPeriod = 100 * time.Millisecond
			c.o.HeartbeatThreshold = time.Second
			testLostTryDeadBeforeRetry(t, c.o)
		})
	}
}

func testLostTryDeadBeforeRetry(t *testing.T, o htex.Options) {
	dfk, ex := loadScaling(t, o, parsl.Config{StrategyPeriod: 100 * time.Millisecond, Retries: 2})
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log")
	f := overlapProbe.Submit(dfk, parsl.Val(dir))

	var first int
	for deadline := time.Now().Add(30 * time.Second); first == 0; {
		b, _ := os.ReadFile(logPath)
		if line, _, ok := strings.Cut(string(b), "\n"); ok {
			first, _ = strconv.Atoi(strings.TrimPrefix(line, "start "))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task never started; log %q", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var kid int
	for deadline := time.Now().Add(30 * time.Second); kid == 0; {
		if b, err := os.ReadFile(filepath.Join(dir, "kid."+strconv.Itoa(first))); err == nil {
			kid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			t.Fatal("the first try's child never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() {
		for _, p := range []int{first, kid} {
			if procAlive(p) {
				_ = syscall.Kill(-p, syscall.SIGKILL)
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
	pool := parentOf(t, first)
	if !slices.Contains(ex.JobIDs(), strconv.Itoa(pool)) {
		t.Fatalf("the shell's parent %d is not one of the pools %v", pool, ex.JobIDs())
	}
	if err := syscall.Kill(pool, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pool, syscall.SIGKILL) })

	if _, err := f.Get(ctxT(t, 60*time.Second)); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("the retry failed: %v; log:\n%s", err, b)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || lines[0] != "start "+strconv.Itoa(first) || !strings.HasPrefix(lines[1], "start ") ||
		lines[2] != "end "+strings.TrimPrefix(lines[1], "start ") {
		t.Fatalf("log:\n%s\nwant the first try's start, then the retry alone (an overlap line: the retry started while the first try's shell %d or child %d still ran)", b, first, kid)
	}
	for _, p := range []int{first, kid} {
		if procAlive(p) {
			t.Errorf("the first try's process %d is alive after the retry finished", p)
		}
	}
}
