// Package monitoring records a run's tasks in a SQLite database with
// Python Parsl's schema (monitoring/store), fed by the kernel's state
// changes.
//
// The Hub sits on the kernel's hot path, so it only appends events to an
// in-memory list; one goroutine turns them into rows and hands them to the
// store, which batches them into transactions. A slow disk therefore grows
// that list instead of slowing the workflow, and everything recorded is
// written by Close.
package monitoring

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parsl-go/parsl/internal/dataflow"
	"github.com/parsl-go/parsl/monitoring/store"
)

// Options configures a Hub.
type Options struct {
	// DBPath is the database file; it is created if missing and shared by
	// every run that names it, as Parsl's monitoring.db is.
	DBPath string
	// RunID identifies the run; default a new UUID.
	RunID string
	// WorkflowName and WorkflowVersion label the run; defaults: the
	// program's name and the start time.
	WorkflowName, WorkflowVersion string
	// RunDir is recorded with the run.
	RunDir string
	// Logger receives write failures.
	Logger *slog.Logger
}

// Hub receives kernel events and writes them to the store. It implements
// dataflow.Observer.
type Hub struct {
	opts  Options
	st    *store.Store
	began time.Time

	mu     sync.Mutex
	events []dataflow.Event
	wake   chan struct{}
	closed bool
	failed int64
	done   int64

	wg sync.WaitGroup
}

// NewHub opens the database and records the start of the run.
func NewHub(ctx context.Context, opts Options) (*Hub, error) {
	if opts.DBPath == "" {
		return nil, errors.New("monitoring: no database path")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RunID == "" {
		opts.RunID = newUUID()
	}
	now := time.Now()
	if opts.WorkflowName == "" {
		opts.WorkflowName = programName()
	}
	if opts.WorkflowVersion == "" {
		opts.WorkflowVersion = now.Format(time.RFC3339)
	}
	st, err := store.Open(ctx, opts.DBPath, store.Options{Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	h := &Hub{opts: opts, st: st, began: now, wake: make(chan struct{}, 1)}
	host, _ := os.Hostname()
	who := ""
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	if err := st.Enqueue(ctx, &store.Workflow{RunID: opts.RunID, WorkflowName: opts.WorkflowName,
		WorkflowVersion: opts.WorkflowVersion, TimeBegan: now, Host: host, User: who, RunDir: opts.RunDir}); err != nil {
		_ = st.Close(context.Background())
		return nil, fmt.Errorf("monitoring: recording the run in %s: %w", opts.DBPath, err)
	}
	h.wg.Add(1)
	go h.drain()
	return h, nil
}

// RunID returns the run's ID in the database.
func (h *Hub) RunID() string { return h.opts.RunID }

// TaskEvent implements dataflow.Observer: it only queues the event.
func (h *Hub) TaskEvent(e dataflow.Event) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.events = append(h.events, e)
	first := len(h.events) == 1
	h.mu.Unlock()
	if first {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

func (h *Hub) drain() {
	defer h.wg.Done()
	var batch []dataflow.Event
	for {
		h.mu.Lock()
		for len(h.events) == 0 && !h.closed {
			h.mu.Unlock()
			<-h.wake
			h.mu.Lock()
		}
		batch, h.events = h.events, batch[:0]
		closed := h.closed
		h.mu.Unlock()
		h.writeBatch(batch)
		clear(batch)
		if closed {
			h.mu.Lock()
			empty := len(h.events) == 0
			h.mu.Unlock()
			if empty {
				return
			}
		}
	}
}

type tryKey struct {
	task int64
	try  int
}

// writeBatch turns events into rows. A task that starts and ends within
// one batch (the common case for short tasks) gets one task row and one try
// row instead of two of each: the store's task and try rows are upserts, so
// merging them first halves those writes without changing the result.
func (h *Hub) writeBatch(batch []dataflow.Event) {
	run := h.opts.RunID
	tasks := map[int64]*store.Task{}
	tries := map[tryKey]*store.Try{}
	var order []store.Record
	task := func(id int64) *store.Task {
		t := tasks[id]
		if t == nil {
			t = &store.Task{RunID: run, TaskID: id}
			tasks[id] = t
			order = append(order, t)
		}
		return t
	}
	try := func(id int64, n int) *store.Try {
		k := tryKey{id, n}
		t := tries[k]
		if t == nil {
			t = &store.Try{RunID: run, TaskID: id, TryID: int64(n)}
			tries[k] = t
			order = append(order, t)
		}
		return t
	}
	var statuses []store.Record
	var failed, done int64
	for _, e := range batch {
		switch e.State {
		case dataflow.Pending:
			if e.Try == 0 {
				t := task(e.TaskID)
				t.FuncName, t.Depends, t.TimeInvoked = e.App, joinIDs(e.Depends), e.Time
			}
		case dataflow.Launched:
			tr := try(e.TaskID, e.Try)
			tr.Executor, tr.TimeLaunched = e.Executor, e.Time
		case dataflow.FailRetryable:
			tr := try(e.TaskID, e.Try)
			tr.TimeReturned, tr.FailHistory = e.Time, errText(e.Err)
		case dataflow.ExecDone, dataflow.MemoDone, dataflow.Failed, dataflow.DepFail:
			t := task(e.TaskID)
			t.FuncName, t.TimeReturned = e.App, e.Time
			t.Memoize = t.Memoize || e.State == dataflow.MemoDone
			if e.State == dataflow.Failed || e.State == dataflow.DepFail {
				t.FailCount = int64(e.Try) + 1
				failed++
			} else {
				done++
			}
			if e.State != dataflow.DepFail {
				tr := try(e.TaskID, e.Try)
				tr.TimeReturned, tr.FailHistory = e.Time, errText(e.Err)
			}
		}
		statuses = append(statuses, &store.Status{RunID: run, TaskID: e.TaskID, TryID: int64(e.Try), State: e.State.String(), Timestamp: e.Time})
	}
	h.mu.Lock()
	h.failed += failed
	h.done += done
	h.mu.Unlock()
	ctx := context.Background()
	for _, recs := range [][]store.Record{order, statuses} {
		for _, r := range recs {
			if err := h.st.Enqueue(ctx, r); err != nil {
				h.opts.Logger.Error("monitoring: row not recorded", "err", err)
			}
		}
	}
}

// Close writes every recorded event and the end of the run, then closes the
// database. It returns an error if some rows could not be written.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	h.wg.Wait()
	h.mu.Lock()
	failed, done := h.failed, h.done
	h.mu.Unlock()
	err := h.st.Enqueue(ctx, &store.Workflow{RunID: h.opts.RunID, TimeBegan: h.began, TimeCompleted: time.Now(),
		TasksFailedCount: failed, TasksCompletedCount: done})
	return errors.Join(err, h.st.Close(ctx))
}

func joinIDs(ids []int64) string {
	if len(ids) == 0 {
		return ""
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ",")
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func programName() string {
	if len(os.Args) > 0 {
		p := os.Args[0]
		if i := strings.LastIndexByte(p, '/'); i >= 0 {
			p = p[i+1:]
		}
		if p != "" {
			return p
		}
	}
	return "unnamed"
}
