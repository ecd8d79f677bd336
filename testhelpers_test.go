package parsl_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
)

// Helpers shared by core_test.go, errors_test.go, bash_test.go, join_test.go
// and retry_test.go. Names carry a "core" prefix because other files of this
// package are written by other people at the same time.

// coreTimeout bounds every wait of these tests, so that a bug shows as a
// failure rather than a hung test binary.
const coreTimeout = 60 * time.Second

// coreLoad starts a DFK with its own run directory and closes it when the
// test ends.
func coreLoad(t testing.TB, cfg parsl.Config) *parsl.DFK {
	t.Helper()
	if cfg.RunDir == "" {
		cfg.RunDir = t.TempDir()
	}
	dfk, err := parsl.Load(context.Background(), cfg)
	if err != nil {
		t.Fatalf("parsl.Load: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), coreTimeout)
		defer cancel()
		if err := dfk.Close(ctx); err != nil {
			t.Errorf("dfk.Close: %v", err)
		}
	})
	return dfk
}

// coreCtx returns a context that ends when the test does, or after
// coreTimeout.
func coreCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), coreTimeout)
	t.Cleanup(cancel)
	return ctx
}

// coreGet waits for f and fails the test on an error.
func coreGet[T any](t testing.TB, f *parsl.Future[T]) T {
	t.Helper()
	v, err := f.Get(coreCtx(t))
	if err != nil {
		t.Fatalf("task %d: unexpected error: %v", f.TaskID(), err)
	}
	return v
}

// coreErr waits for f and returns its error, failing the test if it
// succeeded or if the wait itself timed out.
func coreErr[T any](t testing.TB, f *parsl.Future[T]) error {
	t.Helper()
	ctx := coreCtx(t)
	v, err := f.Get(ctx)
	if err == nil {
		t.Fatalf("task %d succeeded with %v; want an error", f.TaskID(), v)
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		t.Fatalf("task %d did not complete within %s", f.TaskID(), coreTimeout)
	}
	return err
}

// coreAs is errors.As returning the target, failing the test if absent.
func coreAs[E error](t testing.TB, err error) E {
	t.Helper()
	var target E
	if !errors.As(err, &target) {
		t.Fatalf("error %q (%T) does not contain a %T", err, err, target)
	}
	return target
}

// coreContains fails the test unless s contains every one of subs.
func coreContains(t testing.TB, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q does not contain %q", what, s, sub)
		}
	}
}

// coreReadFile returns a file's contents, failing the test on an error.
func coreReadFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return string(b)
}

var coreKeySeq atomic.Int64

// coreKey returns a key for coreCounter and coreGate that is unique to this
// run of the test (t.Name() alone repeats under -count).
func coreKey(t testing.TB) string {
	return fmt.Sprintf("%s#%d", t.Name(), coreKeySeq.Add(1))
}

// coreCounters hands out per-key counters to apps that must behave
// differently on each try (fail twice, then succeed). Keys are unique per
// test (see coreKey), so parallel tests do not share counts.
var coreCounters sync.Map // string → *atomic.Int64

func coreCounter(key string) *atomic.Int64 {
	c, _ := coreCounters.LoadOrStore(key, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// coreGates lets a test hold an app inside its body until the test opens
// the gate; keyed like coreCounters.
var coreGates sync.Map // string → chan struct{}

func coreGate(key string) chan struct{} {
	c, _ := coreGates.LoadOrStore(key, make(chan struct{}))
	return c.(chan struct{})
}

// coreEventually polls cond until it holds or 10 s pass. It is for values
// the kernel updates just after a future completes (Counts, Outstanding),
// not for timing.
func coreEventually(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
