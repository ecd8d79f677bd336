package dataflow

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/threads"
)

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) TaskEvent(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) states(id int64) []State {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []State
	for _, e := range r.events {
		if e.TaskID == id {
			out = append(out, e.State)
		}
	}
	return out
}

// TestObserverSeesEveryTransition checks the event stream monitoring will
// record: a task that fails once and then succeeds, and its dependent.
func TestObserverSeesEveryTransition(t *testing.T) {
	rec := &recorder{}
	k, err := New(context.Background(), Config{
		RunDir:    t.TempDir(),
		Executors: []executor.Executor{threads.New(threads.Options{Label: "th"})},
		Retries:   1,
		Observer:  rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(context.Background())

	var calls atomic.Int32
	flaky := dfApp("obs.flaky", func(ctx context.Context, args []any) (any, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("first try fails")
		}
		return int64(1), nil
	})
	inc := dfApp("obs.inc", func(ctx context.Context, args []any) (any, error) { return args[0].(int64) + 1, nil })
	a, b := new(Task), new(Task)
	k.Submit(a, flaky, nil, nil)
	k.Submit(b, inc, []Source{a}, nil)
	dfWait(t, k)

	if got, want := rec.states(0), []State{Pending, Launched, FailRetryable, Pending, Launched, ExecDone}; !reflect.DeepEqual(got, want) {
		t.Errorf("task 0 events %v, want %v", got, want)
	}
	if got, want := rec.states(1), []State{Pending, Launched, ExecDone}; !reflect.DeepEqual(got, want) {
		t.Errorf("task 1 events %v, want %v", got, want)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.events {
		if e.TaskID == 1 && e.State == Pending && !reflect.DeepEqual(e.Depends, []int64{0}) {
			t.Errorf("task 1 depends %v, want [0]", e.Depends)
		}
		if e.State == Launched && e.Executor != "th" {
			t.Errorf("launched event executor %q, want th", e.Executor)
		}
		if e.State == FailRetryable && e.Err == nil {
			t.Error("fail_retryable event without its error")
		}
	}
}
