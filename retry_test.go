package parsl_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
)

// Retries and retry handlers, after Parsl's test_retries.py,
// test_retry_handler.py and test_retry_handler_failure.py (§3.1, §11.3).

// retryFlakyErr is the error of a flaky try.
type retryFlakyErr struct{ Try int64 }

func (e *retryFlakyErr) Error() string { return fmt.Sprintf("flaky failure on try %d", e.Try) }

var (
	// retryFlaky fails its first `fails` tries (counted per key) and then
	// returns the number of the try that succeeded (1-based).
	retryFlaky = parsl.Register2("test.retry.flaky", func(_ context.Context, key string, fails int) (int, error) {
		n := coreCounter(key).Add(1)
		if n <= int64(fails) {
			return 0, &retryFlakyErr{Try: n}
		}
		return int(n), nil
	})
	// retryFlakyAdd is retryFlaky with an input added to the result.
	retryFlakyAdd = parsl.Register3("test.retry.flakyadd", func(_ context.Context, key string, fails, x int) (int, error) {
		n := coreCounter(key).Add(1)
		if n <= int64(fails) {
			return 0, &retryFlakyErr{Try: n}
		}
		return x + 100, nil
	})
	// retryPanicky panics on its first `fails` tries.
	retryPanicky = parsl.Register2("test.retry.panicky", func(_ context.Context, key string, fails int) (int, error) {
		n := coreCounter(key).Add(1)
		if n <= int64(fails) {
			panic(fmt.Sprintf("panic on try %d", n))
		}
		return int(n), nil
	})
	// retryBashCounter increments a number in a file and succeeds once it
	// reaches succeedAt, as Parsl's test_retries bash app does.
	retryBashCounter = parsl.RegisterBash2("test.retry.bashcounter", func(_ context.Context, path string, succeedAt int) (string, error) {
		q := bashQuote(path)
		return fmt.Sprintf("n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; [ $n -ge %d ]", q, q, succeedAt), nil
	})
)

func TestRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		retries int
		fails   int
		// want is the succeeding try, or 0 for a failure after tries tries.
		want, tries int
	}{
		{"no retries, no failure", 0, 0, 1, 1},
		{"no retries, one failure", 0, 1, 0, 1},
		{"succeeds on try 3", 2, 2, 3, 3},
		{"succeeds on try 2", 2, 1, 2, 2},
		{"fails after 3 tries", 2, 3, 0, 3},
		{"fails after 3 tries, fails forever", 2, 100, 0, 3},
		{"large budget", 10, 7, 8, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dfk := coreLoad(t, parsl.Config{Retries: tc.retries})
			key := coreKey(t)
			f := retryFlaky.Submit(dfk, parsl.Val(key), parsl.Val(tc.fails))
			v, err := f.Get(coreCtx(t))
			if n := coreCounter(key).Load(); n != int64(tc.tries) {
				t.Errorf("app ran %d times, want %d", n, tc.tries)
			}
			if tc.want > 0 {
				if err != nil || v != tc.want {
					t.Fatalf("got %d, %v; want success on try %d", v, err, tc.want)
				}
				if f.State() != parsl.StateExecDone {
					t.Errorf("state %v", f.State())
				}
				return
			}
			if err == nil {
				t.Fatalf("succeeded with %d; want a failure", v)
			}
			if f.State() != parsl.StateFailed {
				t.Errorf("state %v", f.State())
			}
			last := coreAs[*retryFlakyErr](t, err)
			if last.Try != int64(tc.tries) {
				t.Errorf("errors.As finds try %d's error, want the last (%d)", last.Try, tc.tries)
			}
			ae := coreAs[*parsl.AppError](t, err)
			if ae.TaskID != f.TaskID() {
				t.Errorf("AppError.TaskID %d", ae.TaskID)
			}
			re, isRetry := errors.AsType[*parsl.RetryError](err)
			if tc.tries == 1 {
				if isRetry {
					t.Errorf("a single try must not be wrapped in a RetryError: %v", err)
				}
				return
			}
			if !isRetry {
				t.Fatalf("error %T, want *RetryError", err)
			}
			if len(re.Attempts) != tc.tries || re.TaskID != f.TaskID() || re.App != "test.retry.flaky" {
				t.Errorf("RetryError: %d attempts, task %d, app %s", len(re.Attempts), re.TaskID, re.App)
			}
			for i, a := range re.Attempts {
				if fe := coreAs[*retryFlakyErr](t, a); fe.Try != int64(i+1) {
					t.Errorf("attempt %d is try %d's error", i, fe.Try)
				}
			}
			coreContains(t, "error", err.Error(), fmt.Sprintf("%d tries", tc.tries), fmt.Sprintf("try %d", tc.tries))
		})
	}
}

func TestRetryPanics(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{Retries: 2})
	key := coreKey(t)
	if got := coreGet(t, retryPanicky.Submit(dfk, parsl.Val(key), parsl.Val(2))); got != 3 {
		t.Errorf("panicky app succeeded on try %d, want 3", got)
	}
	err := coreErr(t, retryPanicky.Submit(dfk, parsl.Val(key+"/always"), parsl.Val(10)))
	re := coreAs[*parsl.RetryError](t, err)
	if len(re.Attempts) != 3 {
		t.Errorf("%d attempts", len(re.Attempts))
	}
	if ae := coreAs[*parsl.AppError](t, err); !ae.Panicked || ae.Message != "panic on try 3" {
		t.Errorf("last attempt %+v", ae)
	}
}

func TestRetryHandler(t *testing.T) {
	t.Parallel()
	// Parsl's test_retry_handler: cost 0.5 per failure with retries=2
	// allows 5 tries: success on the 5th, failure when a 6th is needed.
	var (
		mu    sync.Mutex
		infos = map[int64][]parsl.TaskInfo{}
	)
	handler := func(err error, info parsl.TaskInfo) float64 {
		if _, ok := errors.AsType[*retryFlakyErr](err); !ok {
			t.Errorf("handler got %v, want the try's error", err)
		}
		mu.Lock()
		infos[info.ID] = append(infos[info.ID], info)
		mu.Unlock()
		return 0.5
	}
	dfk := coreLoad(t, parsl.Config{Retries: 2, RetryHandler: handler})

	key := coreKey(t)
	ok := retryFlaky.Submit(dfk, parsl.Val(key+"/4"), parsl.Val(4))
	if got := coreGet(t, ok); got != 5 {
		t.Errorf("succeeded on try %d, want 5", got)
	}
	bad := retryFlaky.Submit(dfk, parsl.Val(key+"/5"), parsl.Val(5))
	err := coreErr(t, bad)
	if re := coreAs[*parsl.RetryError](t, err); len(re.Attempts) != 5 {
		t.Errorf("%d attempts, want 5", len(re.Attempts))
	}
	if n := coreCounter(key + "/5").Load(); n != 5 {
		t.Errorf("app ran %d times, want 5", n)
	}

	mu.Lock()
	defer mu.Unlock()
	got := infos[ok.TaskID()]
	if len(got) != 4 {
		t.Fatalf("handler called %d times for the succeeding task, want 4", len(got))
	}
	for i, info := range got {
		want := parsl.TaskInfo{ID: ok.TaskID(), App: "test.retry.flaky", Try: i, FailCount: i + 1, FailCost: 0.5 * float64(i)}
		info.Executor = "" // not asserted
		if info != want {
			t.Errorf("handler call %d: %+v, want %+v", i, info, want)
		}
	}
}

func TestRetryHandlerFree(t *testing.T) {
	t.Parallel()
	// A handler returning 0 retries for free; a large cost stops at once.
	handler := func(err error, info parsl.TaskInfo) float64 {
		var fe *retryFlakyErr
		if errors.As(err, &fe) && fe.Try < 5 {
			return 0
		}
		return 1e9
	}
	dfk := coreLoad(t, parsl.Config{Retries: 0, RetryHandler: handler})
	key := coreKey(t)
	if got := coreGet(t, retryFlaky.Submit(dfk, parsl.Val(key+"/ok"), parsl.Val(4))); got != 5 {
		t.Errorf("succeeded on try %d, want 5", got)
	}
	err := coreErr(t, retryFlaky.Submit(dfk, parsl.Val(key+"/bad"), parsl.Val(10)))
	if n := coreCounter(key + "/bad").Load(); n != 5 {
		t.Errorf("ran %d times, want 5", n)
	}
	coreAs[*parsl.RetryError](t, err)
}

func TestRetryHandlerPanics(t *testing.T) {
	t.Parallel()
	calls := 0
	var mu sync.Mutex
	handler := func(err error, info parsl.TaskInfo) float64 {
		mu.Lock()
		calls++
		mu.Unlock()
		panic("handler is broken")
	}
	dfk := coreLoad(t, parsl.Config{Retries: 5, RetryHandler: handler})
	key := coreKey(t)
	f := retryFlaky.Submit(dfk, parsl.Val(key), parsl.Val(1))
	err := coreErr(t, f)
	if n := coreCounter(key).Load(); n != 1 {
		t.Errorf("app ran %d times; a panicking handler must stop retries", n)
	}
	mu.Lock()
	if calls != 1 {
		t.Errorf("handler called %d times", calls)
	}
	mu.Unlock()
	// The handler's panic replaces the task's error, as in Parsl.
	ae := coreAs[*parsl.AppError](t, err)
	if !ae.Panicked || !strings.Contains(ae.Message, "handler is broken") {
		t.Errorf("AppError = %+v, want the handler's panic", ae)
	}
	coreContains(t, "error", err.Error(), "retry handler", "handler is broken")
	if _, ok := errors.AsType[*parsl.RetryError](err); ok {
		t.Error("one try must not be a RetryError")
	}
	// Tasks that do not fail never call the handler.
	if got := coreGet(t, retryFlaky.Submit(dfk, parsl.Val(key+"/ok"), parsl.Val(0))); got != 1 {
		t.Errorf("got %d", got)
	}
}

func TestRetryHandlerPanicsAfterRetries(t *testing.T) {
	t.Parallel()
	// The handler allows one retry, then panics: two tries, and the error
	// still says the handler panicked.
	handler := func(err error, info parsl.TaskInfo) float64 {
		if info.FailCount >= 2 {
			panic("handler gives up")
		}
		return 1
	}
	dfk := coreLoad(t, parsl.Config{Retries: 5, RetryHandler: handler})
	key := coreKey(t)
	err := coreErr(t, retryFlaky.Submit(dfk, parsl.Val(key), parsl.Val(10)))
	if n := coreCounter(key).Load(); n != 2 {
		t.Errorf("app ran %d times, want 2", n)
	}
	coreContains(t, "error", err.Error(), "handler gives up")
	if ae := coreAs[*parsl.AppError](t, err); !ae.Panicked || !strings.Contains(ae.Message, "handler gives up") {
		t.Errorf("last error %+v, want the handler's panic", ae)
	}
}

func TestRetriesWithDependencies(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{Retries: 2})
	key := coreKey(t)
	// Upstream fails once, downstream fails twice: both recover, and the
	// downstream task sees the upstream's value on every try.
	up := retryFlaky.Submit(dfk, parsl.Val(key+"/up"), parsl.Val(1))
	down := retryFlakyAdd.Submit(dfk, parsl.Val(key+"/down"), parsl.Val(2), up)
	if got := coreGet(t, down); got != 102 {
		t.Errorf("downstream = %d, want 102", got)
	}
	if n := coreCounter(key + "/down").Load(); n != 3 {
		t.Errorf("downstream ran %d times, want 3", n)
	}

	// An upstream that exhausts its retries: the dependent is not retried
	// and never runs.
	upBad := retryFlaky.Submit(dfk, parsl.Val(key+"/upbad"), parsl.Val(10))
	downBad := retryFlakyAdd.Submit(dfk, parsl.Val(key+"/downbad"), parsl.Val(0), upBad)
	err := coreErr(t, downBad)
	de := coreAs[*parsl.DependencyError](t, err)
	if len(de.TaskIDs()) != 1 || de.TaskIDs()[0] != upBad.TaskID() {
		t.Errorf("TaskIDs() %v", de.TaskIDs())
	}
	coreAs[*parsl.RetryError](t, err)
	if n := coreCounter(key + "/downbad").Load(); n != 0 {
		t.Errorf("dependent ran %d times", n)
	}
	if downBad.State() != parsl.StateDepFail {
		t.Errorf("state %v", downBad.State())
	}
	if n := coreCounter(key + "/upbad").Load(); n != 3 {
		t.Errorf("upstream ran %d times, want 3", n)
	}
}

func TestRetryCounts(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{Retries: 1})
	key := coreKey(t)
	coreGet(t, retryFlaky.Submit(dfk, parsl.Val(key), parsl.Val(1)))
	if err := dfk.Wait(coreCtx(t)); err != nil {
		t.Fatal(err)
	}
	c := dfk.Counts()
	if c[parsl.StateExecDone] != 1 || c[parsl.StateFailed] != 0 || c[parsl.StateFailRetryable] != 0 || c[parsl.StatePending] != 0 || c[parsl.StateLaunched] != 0 {
		t.Errorf("Counts() after a retried success = %v; want exec_done 1 only", c)
	}
}

func TestRetryBash(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{Retries: 2})
	dir := t.TempDir()

	counter := filepath.Join(dir, "counter")
	out := filepath.Join(dir, "stderr")
	f := retryBashCounter.Submit(dfk, parsl.Val(counter), parsl.Val(3), parsl.Stderr(out))
	if got := coreGet(t, f); got != 0 {
		t.Errorf("got %d", got)
	}
	if got := strings.TrimSpace(coreReadFile(t, counter)); got != "3" {
		t.Errorf("counter = %s, want 3 (succeeded on the third try)", got)
	}
	// The stderr file is appended to on each try: three banners.
	if n := strings.Count(coreReadFile(t, out), "--> executable follows <--"); n != 3 {
		t.Errorf("%d banners in stderr, want 3", n)
	}

	counter2 := filepath.Join(dir, "counter2")
	err := coreErr(t, retryBashCounter.Submit(dfk, parsl.Val(counter2), parsl.Val(4)))
	re := coreAs[*parsl.RetryError](t, err)
	if len(re.Attempts) != 3 {
		t.Errorf("%d attempts", len(re.Attempts))
	}
	if be := coreAs[*parsl.BashExitError](t, err); be.ExitCode != 1 {
		t.Errorf("exit code %d", be.ExitCode)
	}
	if got := strings.TrimSpace(coreReadFile(t, counter2)); got != "3" {
		t.Errorf("counter = %s, want 3", got)
	}
}

func TestRetryWalltime(t *testing.T) {
	t.Parallel()
	// A walltime failure is a failure like any other: retried, and a later
	// fast try succeeds.
	dfk := coreLoad(t, parsl.Config{Retries: 1})
	key := coreKey(t)
	f := retrySlowFirst.Submit(dfk, parsl.Val(key), parsl.Walltime(50*time.Millisecond))
	if got := coreGet(t, f); got != 2 {
		t.Errorf("got %d, want success on try 2", got)
	}
}

// retrySlowFirst hangs (respecting ctx) on its first try and returns at once
// on later ones.
var retrySlowFirst = parsl.Register1("test.retry.slowfirst", func(ctx context.Context, key string) (int, error) {
	n := coreCounter(key).Add(1)
	if n == 1 {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return int(n), nil
})

func TestRetryHandlerNaN(t *testing.T) {
	t.Parallel()
	// A NaN cost must not mean "retry forever": as in Parsl, a task is
	// retried only while its accumulated cost is known to be within budget.
	dfk := coreLoad(t, parsl.Config{Retries: 2, RetryHandler: func(error, parsl.TaskInfo) float64 { return math.NaN() }})
	key := coreKey(t)
	// The app gives up failing after 50 tries, so a bug ends the test.
	f := retryFlaky.Submit(dfk, parsl.Val(key), parsl.Val(50))
	v, err := f.Get(coreCtx(t))
	if n := coreCounter(key).Load(); n != 1 || err == nil {
		t.Errorf("app ran %d times (result %d, %v); want one failed try", n, v, err)
	}
}
