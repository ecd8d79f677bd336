// Package monitoring records a run's tasks in a SQLite database with
// Python Parsl's schema (monitoring/store), fed by the kernel's state
// changes.
//
// The Hub sits on the kernel's hot path, so TaskEvent only appends a small
// pointer-free record to one of a few locked lists; it never waits for the
// database. One writer goroutine turns the records into rows and hands
// them to the store in large batches. While the kernel keeps producing
// events, the writer limits itself to a share of the time (Options.
// WriterShare), so that recording a burst of short tasks does not slow the
// burst: the records wait in memory, a few dozen bytes per state change,
// and are written when the burst ends, or at Close. Nothing recorded is
// dropped silently: what Close could not write is counted in its
// *DroppedError.
//
// While the run is open the Hub records a heartbeat every HeartbeatPeriod
// (store.Heartbeat), so that a reader can tell a run whose driver died
// without Close from one still going (store.WorkflowInfo.Lost).
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
	"sync/atomic"
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

	// WriterShare bounds the share of wall-clock time the writer spends
	// writing while task events keep arriving: after a write that took d,
	// it waits d*(1-share)/share before the next. It writes at full speed
	// when events stop arriving, when more than MaxBacklog events wait,
	// and at Close. Default 0.05; 1 writes at full speed always.
	WriterShare float64
	// MaxBacklog is the number of waiting events (about 32 bytes each)
	// above which the writer stops yielding to the kernel. Default
	// 4,000,000.
	MaxBacklog int
	// FlushDelay is how long the writer lets events gather after the first
	// one arrives, so that a short task's states are written together; it
	// bounds how stale a live view of the database is while the workflow
	// is quiet. Default 50ms.
	FlushDelay time.Duration
	// BatchEvents is the largest number of events written in one
	// transaction. Default 60,000.
	BatchEvents int
	// HeartbeatPeriod is how often the Hub records that the driver is
	// alive. Readers take a run with no recorded end for lost after
	// store.StaleHeartbeats periods without a heartbeat. Default 5s.
	HeartbeatPeriod time.Duration
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WriterShare <= 0 || o.WriterShare > 1 {
		o.WriterShare = 0.05
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = 4_000_000
	}
	if o.FlushDelay <= 0 {
		o.FlushDelay = 50 * time.Millisecond
	}
	if o.BatchEvents <= 0 {
		o.BatchEvents = 60_000
	}
	if o.HeartbeatPeriod <= 0 {
		o.HeartbeatPeriod = 5 * time.Second
	}
}

// DroppedError is returned by Hub.Close when part of the run could not be
// recorded: the database was full, locked or failing until Close's context
// ended, or refused rows. The database holds everything else; a run whose
// end was not recorded is shown as lost by the dashboard once its
// heartbeat is stale.
type DroppedError struct {
	DBPath string
	// Events is the number of task state changes the Hub received but did
	// not write; Written the number it wrote.
	Events, Written int64
	// Rows is the number of rows the store accepted but did not write, or
	// the database refused: the rows of Events it had been handed, and
	// block, node, resource and heartbeat rows.
	Rows int64
	// EndRecorded reports whether the run's end (time_completed and the
	// task counts of Parsl's workflow table) was written.
	EndRecorded bool
	// Err is the cause: the context's error if Close gave up, and the last
	// write error (a *store.UnwrittenError when the store lost rows).
	Err error
}

func (e *DroppedError) Error() string {
	end := "the run's end recorded"
	if !e.EndRecorded {
		end = "the run's end not recorded"
	}
	cause := e.Err
	if ue, ok := cause.(*store.UnwrittenError); ok {
		cause = ue.Last // its counts and path are in this message already
	}
	return fmt.Sprintf("monitoring: database %s is incomplete: %d task events not written (%d written), %d rows not written by the store, %s: %v;"+
		" free disk space, release other programs' locks on the database, or give Close a longer context",
		e.DBPath, e.Events, e.Written, e.Rows, end, cause)
}

func (e *DroppedError) Unwrap() error { return e.Err }

// nShards spreads TaskEvent's lock over this many lists, by task id, so
// that the submitting goroutine and the workers completing tasks rarely
// meet on one lock. A task's events share a list, in order.
const nShards = 4

// Hub receives kernel events and writes them to the store. It implements
// dataflow.Observer.
type Hub struct {
	opts  Options
	st    *store.Store
	began time.Time

	shards   [nShards]shard
	closed   atomic.Bool   // Close has started
	waiting  atomic.Bool   // the writer sleeps until an event wakes it
	wake     chan struct{} // capacity 1
	closing  chan struct{} // closed by Close: write the rest at full speed
	abortCtx context.Context
	abort    context.CancelFunc // Close's context ended: stop writing
	done     chan struct{}      // closed when the writer has exited

	stopBeat context.CancelFunc // ends the heartbeat goroutine
	beatDone chan struct{}      // closed when it has exited

	closeDone chan struct{} // closed when Close has finished; closeErr is its result
	closeErr  error

	freeMu sync.Mutex
	free   []*block // written blocks, for reuse

	nameMu sync.RWMutex
	nameID map[string]uint32
	names  []string // by id; names[0] is ""

	// Owned by the writer goroutine; read by Close after it exits.
	failed, completed int64
	written, lost     int64
	writeErr          error
}

// shard is one list of pending events, with its own lock, padded so that
// two shards never share a cache line. Events go into fixed-size blocks, so
// that a growing backlog is never copied and the blocks can be reused.
type shard struct {
	mu     sync.Mutex
	closed bool // set by Close: events are no longer recorded
	blocks []*block
	cur    *block // the last of blocks, being filled
	n      int    // events in blocks
	extras []extra
	// The last app and executor names interned through this shard: they
	// are few, so this skips the shared name table on nearly every event.
	lastApp, lastExec     string
	lastAppID, lastExecID uint32
	_                     [64]byte
}

// event is one state change in 24 bytes, without pointers, so that a
// backlog of millions costs the garbage collector nothing to scan.
type event struct {
	task  int64
	time  int64  // Unix nanoseconds
	name  uint32 // the app (pending, final states) or executor (launched)
	try   uint16 // tries beyond 65535 are recorded as 65535
	state int8
	extra bool // the next of the shard's extras belongs to this event
}

// blockEvents is the number of events per block: 96 KiB.
const blockEvents = 4096

type block struct {
	n  int
	ev [blockEvents]event
}

// extra holds the rare parts of an event that have pointers.
type extra struct {
	deps []int64
	err  error
}

// NewHub opens the database and records the start of the run.
func NewHub(ctx context.Context, opts Options) (*Hub, error) {
	if opts.DBPath == "" {
		return nil, errors.New("monitoring: no database path")
	}
	opts.defaults()
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
	h := &Hub{opts: opts, st: st, began: now, wake: make(chan struct{}, 1), closing: make(chan struct{}),
		done: make(chan struct{}), beatDone: make(chan struct{}), closeDone: make(chan struct{}),
		nameID: map[string]uint32{"": 0}, names: []string{""}}
	h.abortCtx, h.abort = context.WithCancel(context.Background())
	host, _ := os.Hostname()
	who := ""
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	if err := st.Enqueue(ctx, &store.Workflow{RunID: opts.RunID, WorkflowName: opts.WorkflowName,
		WorkflowVersion: opts.WorkflowVersion, TimeBegan: now, Host: host, User: who, RunDir: opts.RunDir}); err != nil {
		h.abort()
		_ = st.Close(context.Background())
		return nil, fmt.Errorf("monitoring: recording the run in %s: %w", opts.DBPath, err)
	}
	if err := st.Enqueue(ctx, h.heartbeat(now)); err != nil {
		h.abort()
		_ = st.Close(context.Background())
		return nil, fmt.Errorf("monitoring: recording the run in %s: %w", opts.DBPath, err)
	}
	var beatCtx context.Context
	beatCtx, h.stopBeat = context.WithCancel(h.abortCtx)
	go h.beat(beatCtx)
	go h.writer()
	return h, nil
}

func (h *Hub) heartbeat(at time.Time) *store.Heartbeat {
	return &store.Heartbeat{RunID: h.opts.RunID, Time: at, Period: h.opts.HeartbeatPeriod}
}

// beat is the goroutine that records the heartbeat until ctx ends (Close).
// It goes through the store's queue, not the Hub's event lists, so the
// writer's pacing never delays it; a database that cannot be written
// delays it, and the run then looks lost, which it is to the database.
func (h *Hub) beat(ctx context.Context) {
	defer close(h.beatDone)
	t := time.NewTicker(h.opts.HeartbeatPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			_ = h.st.Enqueue(ctx, h.heartbeat(now))
		}
	}
}

// RunID returns the run's ID in the database.
func (h *Hub) RunID() string { return h.opts.RunID }

// TaskEvent implements dataflow.Observer: it appends the event to a list
// and returns; it never waits for the database.
func (h *Hub) TaskEvent(e dataflow.Event) {
	ev := event{task: e.TaskID, time: e.Time.UnixNano(), try: uint16(min(e.Try, 1<<16-1)), state: int8(e.State)}
	name := e.App
	if e.State == dataflow.Launched {
		name = e.Executor
	}
	sh := &h.shards[uint64(e.TaskID)%nShards]
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return
	}
	switch {
	case e.State == dataflow.Launched && name == sh.lastExec:
		ev.name = sh.lastExecID
	case e.State != dataflow.Launched && name == sh.lastApp:
		ev.name = sh.lastAppID
	case e.State == dataflow.Launched:
		ev.name = h.intern(name)
		sh.lastExec, sh.lastExecID = name, ev.name
	default:
		ev.name = h.intern(name)
		sh.lastApp, sh.lastAppID = name, ev.name
	}
	if len(e.Depends) > 0 || e.Err != nil {
		sh.extras = append(sh.extras, extra{deps: e.Depends, err: e.Err})
		ev.extra = true
	}
	b := sh.cur
	if b == nil || b.n == blockEvents {
		b = h.newBlock()
		sh.blocks = append(sh.blocks, b)
		sh.cur = b
	}
	b.ev[b.n] = ev
	b.n++
	sh.n++
	sh.mu.Unlock()
	if h.waiting.Load() && h.waiting.CompareAndSwap(true, false) {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// intern returns the id of an app or executor name.
func (h *Hub) intern(name string) uint32 {
	h.nameMu.RLock()
	id, ok := h.nameID[name]
	h.nameMu.RUnlock()
	if ok {
		return id
	}
	h.nameMu.Lock()
	defer h.nameMu.Unlock()
	if id, ok := h.nameID[name]; ok {
		return id
	}
	id = uint32(len(h.names))
	h.names = append(h.names, name)
	h.nameID[name] = id
	return id
}

// newBlock returns an empty block, reused if one is free.
func (h *Hub) newBlock() *block {
	h.freeMu.Lock()
	defer h.freeMu.Unlock()
	if n := len(h.free); n > 0 {
		b := h.free[n-1]
		h.free = h.free[:n-1]
		return b
	}
	return new(block)
}

// maxFreeBlocks bounds the blocks kept for reuse (6 MiB).
const maxFreeBlocks = 64

func (h *Hub) freeBlocks(bs []*block) {
	h.freeMu.Lock()
	defer h.freeMu.Unlock()
	for _, b := range bs {
		if len(h.free) < maxFreeBlocks {
			b.n = 0
			h.free = append(h.free, b)
		}
	}
}

// taken is what the writer takes from the shards at once.
type taken struct {
	blocks [nShards][]*block
	extras [nShards][]extra
}

// take swaps every shard's lists for t's (emptied) ones, and returns the
// number of events taken.
func (h *Hub) take(t *taken) int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		bs, ex := t.blocks[i][:0], t.extras[i][:0]
		sh.mu.Lock()
		t.blocks[i], sh.blocks = sh.blocks, bs
		t.extras[i], sh.extras = sh.extras, ex
		n += sh.n
		sh.cur, sh.n = nil, 0
		sh.mu.Unlock()
	}
	return n
}

// pending returns the number of events waiting.
func (h *Hub) pending() int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}

// writer is the goroutine that writes events: it waits for some, lets
// more gather for FlushDelay, takes them all and writes them in batches,
// pausing between batches as WriterShare asks while the kernel is busy.
func (h *Hub) writer() {
	defer close(h.done)
	var t taken
	var conv converter
	conv.h, conv.batch = h, &store.Batch{}
	w := pacer{h: h, perEvent: 5 * time.Microsecond}
	for {
		if h.pending() == 0 {
			select {
			case <-h.closing:
				// Closed after the shards' barrier: nothing more comes.
				if h.pending() == 0 {
					return
				}
				continue
			default:
			}
			h.waiting.Store(true)
			if h.pending() == 0 {
				select {
				case <-h.wake:
				case <-h.closing:
				}
			}
			h.waiting.Store(false)
			h.sleep(h.opts.FlushDelay)
		}
		backlog := h.take(&t)
		h.nameMu.RLock()
		conv.names = h.names
		h.nameMu.RUnlock()
		for i := range t.blocks {
			extras := t.extras[i] // consumed in event order
			for _, b := range t.blocks[i] {
				evs := b.ev[:b.n]
				for len(evs) > 0 {
					if h.aborted() {
						h.lost += int64(len(evs))
						break
					}
					k := min(len(evs), w.batch()-conv.events)
					conv.add(evs[:k], &extras)
					evs = evs[k:]
					backlog -= k
					if conv.events >= w.batch() {
						w.write(&conv, backlog)
					}
				}
			}
			h.freeBlocks(t.blocks[i])
			clear(t.blocks[i])
			clear(t.extras[i]) // drop references to dependency lists and errors
		}
		if conv.events > 0 {
			w.write(&conv, backlog)
		}
	}
}

// pacer sizes the writer's batches and spaces them out. Batches take
// about pacedBatch each; while the kernel produces events, each is followed
// by a pause that keeps the writer to WriterShare of the time: short
// pauses often rather than long ones rarely, so that a short burst of tasks
// is slowed by about WriterShare rather than stalled by a long write. When
// the kernel is quiet, batches follow each other at once; at Close they are
// as large as BatchEvents allows.
type pacer struct {
	h        *Hub
	perEvent time.Duration // measured cost of writing one event
}

// pacedBatch is the time a batch takes until Close.
const pacedBatch = 10 * time.Millisecond

func (w *pacer) batch() int {
	if w.h.closed.Load() {
		return w.h.opts.BatchEvents
	}
	return max(256, min(w.h.opts.BatchEvents, int(pacedBatch/max(w.perEvent, time.Nanosecond))))
}

// write writes the converted events, then, unless Close is waiting, pauses
// as WriterShare asks if the kernel is still producing events and the
// backlog (events taken but not written) allows.
func (w *pacer) write(c *converter, backlog int) {
	h := w.h
	start := time.Now()
	n := c.events
	err := h.st.Enqueue(h.abortCtx, c.batch)
	if err == nil {
		err = h.st.Sync(h.abortCtx)
	}
	if err != nil {
		// The store counts, logs and reports rows it gives up on; this is
		// the hub's own account of the events behind them. When Close
		// gave up, its error says it all.
		if !h.aborted() {
			h.opts.Logger.Error("monitoring: task events not recorded", "events", n, "err", err)
		}
		h.lost += int64(n)
		h.writeErr = err
		c.batch = &store.Batch{} // the store may still hold the old one
	} else {
		h.written += int64(n)
	}
	h.failed += c.failed
	h.completed += c.completed
	c.reset()
	d := time.Since(start)
	if n > 0 {
		w.perEvent = (w.perEvent*3 + d/time.Duration(n)) / 4
	}
	if h.closed.Load() || h.opts.WriterShare >= 1 {
		return
	}
	if arriving := h.pending(); arriving == 0 || backlog+arriving > h.opts.MaxBacklog {
		return
	}
	h.sleep(time.Duration(float64(d) * (1 - h.opts.WriterShare) / h.opts.WriterShare))
}

// sleep waits for d, or until Close.
func (h *Hub) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-h.closing:
	}
}

func (h *Hub) aborted() bool { return h.abortCtx.Err() != nil }

// converter turns events into the store's task, try and status rows. The
// store merges the rows of one task within a transaction, so a short
// task's pending, launched and exec_done end up as one task row.
type converter struct {
	h                 *Hub
	names             []string
	batch             *store.Batch
	events            int
	failed, completed int64
}

func (c *converter) reset() {
	clear(c.batch.Tasks)
	clear(c.batch.Tries)
	clear(c.batch.Statuses)
	c.batch.Tasks, c.batch.Tries, c.batch.Statuses = c.batch.Tasks[:0], c.batch.Tries[:0], c.batch.Statuses[:0]
	c.events, c.failed, c.completed = 0, 0, 0
}

// add converts evs; extras holds the extras of these events and the
// following ones, in order, and is advanced past those used.
func (c *converter) add(evs []event, extras *[]extra) {
	run := c.h.opts.RunID
	b := c.batch
	for i := range evs {
		e := &evs[i]
		var x extra
		if e.extra {
			x = (*extras)[0]
			*extras = (*extras)[1:]
		}
		name := c.names[e.name]
		at := time.Unix(0, e.time)
		state := dataflow.State(e.state)
		switch state {
		case dataflow.Pending:
			if e.try == 0 {
				b.Tasks = append(b.Tasks, store.Task{RunID: run, TaskID: e.task, FuncName: name,
					Depends: joinIDs(x.deps), TimeInvoked: at})
			}
		case dataflow.Launched:
			b.Tries = append(b.Tries, store.Try{RunID: run, TaskID: e.task, TryID: int64(e.try), Executor: name, TimeLaunched: at})
		case dataflow.FailRetryable:
			b.Tries = append(b.Tries, store.Try{RunID: run, TaskID: e.task, TryID: int64(e.try), TimeReturned: at,
				FailHistory: errText(x.err)})
		case dataflow.ExecDone, dataflow.MemoDone, dataflow.Failed, dataflow.DepFail:
			// Parsl's task_fail_count counts the failed tries.
			t := store.Task{RunID: run, TaskID: e.task, FuncName: name, TimeReturned: at, FailCount: int64(e.try),
				Memoize: state == dataflow.MemoDone}
			if state == dataflow.Failed || state == dataflow.DepFail {
				t.FailCount = int64(e.try) + 1
				c.failed++
			} else {
				c.completed++
			}
			b.Tasks = append(b.Tasks, t)
			if state != dataflow.DepFail {
				b.Tries = append(b.Tries, store.Try{RunID: run, TaskID: e.task, TryID: int64(e.try), TimeReturned: at,
					FailHistory: errText(x.err)})
			}
		}
		b.Statuses = append(b.Statuses, store.Status{RunID: run, TaskID: e.task, TryID: int64(e.try),
			State: state.String(), Timestamp: at})
	}
	c.events += len(evs)
}

// Close writes every recorded event and the end of the run, then closes the
// database. If ctx ends first, it stops writing at once, leaves the rest
// out (the run's end too: the run then reads as lost once its heartbeat is
// stale) and returns a *DroppedError that counts what was not written; it
// does so too when the database refused rows. Later calls return the first
// call's result.
func (h *Hub) Close(ctx context.Context) error {
	if h.closed.Swap(true) {
		<-h.closeDone
		return h.closeErr
	}
	defer close(h.closeDone)
	// After this, TaskEvent records nothing, and every event it recorded
	// is in a list for the writer.
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		sh.closed = true
		sh.mu.Unlock()
	}
	close(h.closing)
	select {
	case <-h.done:
	case <-ctx.Done():
		h.abort()
		<-h.done
	}
	h.stopBeat()
	<-h.beatDone
	endRecorded := false
	if ctx.Err() == nil {
		err := h.st.Enqueue(ctx, &store.Workflow{RunID: h.opts.RunID, TimeBegan: h.began, TimeCompleted: time.Now(),
			TasksFailedCount: h.failed, TasksCompletedCount: h.completed})
		if err == nil {
			err = h.st.Sync(ctx)
		}
		endRecorded = err == nil
	}
	h.abort()
	stErr := h.st.Close(ctx)
	if h.lost == 0 && stErr == nil && endRecorded {
		return nil
	}
	e := &DroppedError{DBPath: h.opts.DBPath, Events: h.lost, Written: h.written, EndRecorded: endRecorded}
	var ue *store.UnwrittenError
	switch {
	case errors.As(stErr, &ue):
		e.Rows = ue.Rows
		e.Err = stErr
	case stErr != nil:
		e.Err = stErr
	case ctx.Err() != nil:
		e.Err = ctx.Err()
	default:
		e.Err = h.writeErr
	}
	if e.Err == nil {
		e.Err = errors.New("unknown cause")
	}
	h.closeErr = e
	return e
}

func joinIDs(ids []int64) string {
	if len(ids) == 0 {
		return ""
	}
	b := make([]byte, 0, 8*len(ids))
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(b)
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
