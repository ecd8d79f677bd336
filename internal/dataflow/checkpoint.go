package dataflow

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/internal/failure"
	"github.com/parsl-go/parsl/internal/registry"
	"github.com/parsl-go/parsl/memo"
)

// CheckpointMode says when memoized results are written to the checkpoint.
type CheckpointMode string

// Checkpoint modes, as in Parsl.
const (
	CheckpointNone     CheckpointMode = ""
	CheckpointTaskExit CheckpointMode = "task_exit"
	CheckpointPeriodic CheckpointMode = "periodic"
	CheckpointDFKExit  CheckpointMode = "dfk_exit"
	CheckpointManual   CheckpointMode = "manual"
)

// CheckpointConfig configures memo persistence.
type CheckpointConfig struct {
	Mode   CheckpointMode
	Period time.Duration
	// Files are checkpoint directories to load. nil with a Mode set loads
	// every checkpoint under BaseRunDir, as Parsl does.
	Files      []string
	BaseRunDir string
}

// Limits on the results kept in memory while the journal cannot be written
// (a full disk). Past them a result is dropped and counted as lost, so that
// a disk that stays full cannot make the driver run out of memory. Tests
// lower them.
var (
	backlogMaxRecords = 1 << 20
	backlogMaxBytes   = 256 << 20
)

// retryInterval spaces the writes tried while the journal fails, so that a
// full disk costs one failed write per interval rather than one per task.
const retryInterval = 500 * time.Millisecond

// writeBatch bounds the records of one Append, so that a retry on a disk
// that is still full fails after a small write, not after a backlog-sized
// one.
const (
	writeBatchRecords = 4096
	writeBatchBytes   = 16 << 20
)

// Failed writes are logged one by one up to loggedFailures; after that, a
// line with the counts at most every failureLogEvery, and one at Close.
const (
	loggedFailures  = 3
	failureLogEvery = time.Minute
)

// checkpointer is the memo table plus its journal.
type checkpointer struct {
	cfg   CheckpointConfig
	log   *slog.Logger
	table *memo.Table
	path  string

	mu sync.Mutex
	// pending holds the records not yet in the journal: queued for the
	// next flush, or kept after a failed write until a retry succeeds.
	pending      []memo.Record
	pendingBytes int
	journal      *memo.Journal
	closed       bool

	// refs are the loaded checkpoint directories this run's journal
	// references instead of copying the results it reuses from them (see
	// memo.Chain); refsDone is set once the reference is in the journal.
	refs     []string
	refsDone bool
	// passWritten counts the records written since the last pass's log
	// line, including those task_exit wrote as tasks ended.
	passWritten int

	// failing is set from a failed write until a write succeeds; the
	// backlog limits apply meanwhile.
	failing  bool
	lastErr  error
	nextTry  time.Time
	dropped  int // results not kept because the backlog was full
	failures int // failed writes, for the log limit
	lastLog  time.Time

	stop chan struct{}
	wg   sync.WaitGroup
}

func newCheckpointer(cfg CheckpointConfig, runDir string, log *slog.Logger) (*checkpointer, error) {
	switch cfg.Mode {
	case CheckpointNone, CheckpointTaskExit, CheckpointDFKExit, CheckpointManual:
	case CheckpointPeriodic:
		if cfg.Period <= 0 {
			return nil, &failure.ConfigError{Field: "CheckpointPeriod", Reason: "must be > 0 with CheckpointMode periodic"}
		}
	default:
		return nil, &failure.ConfigError{Field: "CheckpointMode", Reason: fmt.Sprintf("unknown mode %q; use task_exit, periodic, dfk_exit or manual", cfg.Mode)}
	}
	c := &checkpointer{cfg: cfg, log: log, table: memo.NewTable(), path: filepath.Join(runDir, memo.Dir, memo.FileName), stop: make(chan struct{})}
	files := cfg.Files
	implicit := false
	if files == nil && cfg.Mode != CheckpointNone && cfg.BaseRunDir != "" {
		implicit = true
		all, err := memo.AllCheckpoints(cfg.BaseRunDir)
		if err != nil {
			return nil, fmt.Errorf("parsl: finding previous checkpoints under %s: %w", cfg.BaseRunDir, err)
		}
		files = all
	}
	n := 0
	chain := memo.NewChain(func(msg string) { log.Warn(msg) })
	for _, dir := range files {
		recs, err := chain.Load(dir)
		if err != nil {
			if implicit {
				// Found by scanning earlier runs, not asked for: one damaged
				// old run must not stop every later one.
				log.Warn("skipping an unreadable checkpoint of an earlier run", "dir", dir, "err", err)
				continue
			}
			return nil, &failure.ConfigError{Field: "CheckpointFiles", Reason: fmt.Sprintf("cannot load checkpoint %s: %v", dir, err)}
		}
		for _, r := range recs {
			c.table.Put(r.Key, memo.Entry{App: r.App, Raw: r.Result})
		}
		n += len(recs)
	}
	if len(files) > 0 {
		log.Info("loaded checkpoints", "dirs", len(files), "records", n)
	}
	c.refs = chain.Roots(filepath.Dir(c.path))
	return c, nil
}

func (c *checkpointer) start() {
	var period time.Duration
	var tick func()
	switch c.cfg.Mode {
	case CheckpointPeriodic:
		// flush logs its own failures.
		period, tick = c.cfg.Period, c.periodicFlush
	case CheckpointTaskExit:
		// Writes are retried when the next task ends; this covers a run
		// with no more tasks ending while it waits for disk space.
		period, tick = retryInterval, c.retry
	default:
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		tk := time.NewTicker(period)
		defer tk.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-tk.C:
				tick()
			}
		}
	}()
}

// lookup returns the memoized result for key, decoding a checkpointed one
// into the app's result type on first use.
func (c *checkpointer) lookup(key [32]byte, app *registry.App) (any, bool) {
	e, ok := c.table.Get(key)
	if !ok || e.App != app.Name {
		return nil, false
	}
	if e.HasValue {
		return e.Value, true
	}
	v, err := app.Result.Decode(e.Raw)
	if err != nil {
		c.log.Warn("checkpointed result does not decode into the app's result type; running the task again", "app", app.Name, "err", err)
		return nil, false
	}
	// Unlike Parsl, a result reused from an earlier checkpoint is not
	// copied into this run's journal: that made every rerun's journal as
	// large as all results so far. The journal references the loaded
	// checkpoints instead (see writeLocked), which a later run loading
	// only the last checkpoint (LastCheckpoint) follows.
	c.table.Put(key, memo.Entry{App: app.Name, Value: v, HasValue: true})
	return v, true
}

// record memoizes a successful result and queues or writes it for the
// checkpoint, depending on the mode.
func (c *checkpointer) record(key [32]byte, app *registry.App, res any) {
	c.table.Put(key, memo.Entry{App: app.Name, Value: res, HasValue: true})
	if c.cfg.Mode == CheckpointNone {
		return
	}
	raw, err := codec.MarshalChecked(res, app.Result.Type, codec.Limits{Nesting: memo.MaxResultNesting})
	if err == nil && app.Result.Lossy != nil {
		err = app.Result.Lossy
	}
	if err != nil {
		c.log.Warn("result cannot be checkpointed (not CBOR-encodable); it stays memoized for this run only", "app", app.Name, "err", err)
		return
	}
	c.write(memo.Record{Key: key, App: app.Name, Result: raw})
}

// write appends rec to the journal now (task_exit) or queues it for the
// next flush.
func (c *checkpointer) write(rec memo.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.queueLocked(rec)
	if c.cfg.Mode != CheckpointTaskExit || c.failing && time.Now().Before(c.nextTry) {
		return
	}
	// Written before the future completes, so a result the user has seen
	// is in the journal even if the driver is killed next. A failure is
	// logged and counted by writeLocked, and the record kept for a retry.
	_ = c.writeLocked()
}

// queueLocked adds rec to pending, unless the journal is failing and the
// backlog is full.
func (c *checkpointer) queueLocked(rec memo.Record) {
	if c.failing && (len(c.pending) >= backlogMaxRecords || c.pendingBytes+len(rec.Result) > backlogMaxBytes) {
		c.dropped++
		if c.dropped == 1 {
			c.log.Error("checkpoint backlog full: further results are not kept for the journal, and a resumed run will run their tasks again",
				"path", c.path, "kept", len(c.pending), "kept_bytes", c.pendingBytes, "err", c.lastErr)
		}
		return
	}
	c.pending = append(c.pending, rec)
	c.pendingBytes += len(rec.Result)
}

// periodicFlush is flush, spaced by retryInterval while writes fail; flush
// logs its own failures.
func (c *checkpointer) periodicFlush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.failing && time.Now().Before(c.nextTry) {
		return
	}
	if _, err := c.flushLocked(); err != nil && !c.failing {
		c.log.Error("periodic checkpoint failed", "err", err) // a sync error; write errors are logged already
	}
}

// retry writes the backlog of a failing journal.
func (c *checkpointer) retry() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.failing || len(c.pending) == 0 || time.Now().Before(c.nextTry) {
		return
	}
	_ = c.writeLocked()
}

// writeLocked appends the pending records in batches, removing each batch
// once written. On a failure the rest stays pending.
func (c *checkpointer) writeLocked() error {
	if len(c.pending) == 0 {
		return nil
	}
	if err := c.openLocked(); err != nil {
		return c.failedLocked(err)
	}
	// Before the first result, so that a journal with results always
	// brings the checkpoints its run reused along. A run that computes
	// nothing new writes no journal at all, and LastCheckpoint then finds
	// the checkpoint it loaded from.
	if !c.refsDone {
		if err := c.journal.AppendRefs(c.refs...); err != nil {
			return c.failedLocked(err)
		}
		c.refsDone = true
	}
	// After a failure, a one-record probe first: a disk that is still full
	// then costs one small write. After a failed batch, the probe and
	// then half the batch, so that what fits on the disk is written.
	all, written := c.pending, 0
	limit, next := writeBatchRecords, writeBatchRecords
	if c.failing {
		limit = 1
	}
	for len(c.pending) > 0 {
		n, size := 0, 0
		for n < len(c.pending) && n < limit && (n == 0 || size+len(c.pending[n].Result) <= writeBatchBytes) {
			size += len(c.pending[n].Result)
			n++
		}
		err := c.journal.Append(c.pending[:n]...)
		var bad *memo.RecordError
		if errors.As(err, &bad) && bad.Index < n {
			// This record can never be written; the others can.
			c.log.Warn("result cannot be checkpointed; it stays memoized for this run only", "app", bad.App, "err", err)
			c.pendingBytes -= len(c.pending[bad.Index].Result)
			c.pending = slices.Delete(c.pending, bad.Index, bad.Index+1)
			continue
		}
		if err != nil && n > 1 {
			limit, next = 1, n/2
			continue
		}
		if err != nil {
			return c.failedLocked(err)
		}
		clear(c.pending[:n])
		c.pending = c.pending[n:]
		c.pendingBytes -= size
		written += n
		c.passWritten += n
		limit = next
	}
	c.pending, c.pendingBytes = all[:0], 0
	if cap(all) > writeBatchRecords {
		c.pending = nil // a drained backlog
	}
	if c.failing {
		c.failing = false
		// Within the same limit as the failures, for a disk that fills
		// and empties all day.
		if now := time.Now(); c.failures <= loggedFailures || now.Sub(c.lastLog) >= failureLogEvery {
			c.log.Warn("checkpoint writes succeed again; the results kept in memory are in the journal now", "path", c.path, "written", written, "failed_writes", c.failures)
			c.lastLog = now
		}
	}
	return nil
}

// failedLocked records a failed write and logs it within the log limit.
func (c *checkpointer) failedLocked(err error) error {
	c.failing = true
	c.lastErr = err
	now := time.Now()
	c.nextTry = now.Add(retryInterval)
	c.failures++
	switch {
	case c.failures < loggedFailures:
		c.log.Error("checkpoint write failed; the results are kept in memory and written when it succeeds again",
			"path", c.path, "unwritten", len(c.pending), "err", err)
	case c.failures == loggedFailures:
		c.log.Error("checkpoint write failed; the results are kept in memory and written when it succeeds again (further failures are counted, logged once a minute and reported by Close)",
			"path", c.path, "unwritten", len(c.pending), "err", err)
	case now.Sub(c.lastLog) >= failureLogEvery:
		c.log.Error("checkpoint writes still failing", "path", c.path, "failures", c.failures, "unwritten", len(c.pending), "dropped", c.dropped, "err", err)
	default:
		return err
	}
	c.lastLog = now
	return err
}

func (c *checkpointer) openLocked() error {
	if c.journal != nil {
		return nil
	}
	j, err := memo.OpenJournal(c.path)
	if err != nil {
		return err
	}
	c.journal = j
	return nil
}

// flush writes the pending records and syncs the journal.
func (c *checkpointer) flush() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		// Close wrote everything and closed the journal; syncing it now
		// would fail with "file already closed".
		return 0, nil
	}
	return c.flushLocked()
}

func (c *checkpointer) flushLocked() (int, error) {
	n := len(c.pending)
	if n == 0 {
		if c.journal != nil {
			if err := c.journal.Sync(); err != nil {
				return 0, fmt.Errorf("parsl: syncing checkpoint %s: %w", c.path, err)
			}
		}
		c.logPassLocked()
		return 0, nil
	}
	if err := c.writeLocked(); err != nil {
		return n - len(c.pending), fmt.Errorf("parsl: writing checkpoint %s: %w (%d results kept in memory for the next try)", c.path, err, len(c.pending))
	}
	if err := c.journal.Sync(); err != nil {
		return n, fmt.Errorf("parsl: syncing checkpoint %s: %w", c.path, err)
	}
	c.logPassLocked()
	return n, nil
}

// logPassLocked logs what a checkpoint pass wrote, counting the records
// task_exit wrote since the last pass, so that a run whose results all went
// out as tasks ended does not end with "no tasks checkpointed".
func (c *checkpointer) logPassLocked() {
	if c.passWritten == 0 {
		c.log.Info("no tasks checkpointed in this pass")
		return
	}
	c.log.Info(fmt.Sprintf("done checkpointing %d tasks", c.passWritten), "path", c.path)
	c.passWritten = 0
}

// close writes what is pending, one last try whatever the retry interval,
// and reports the results that never reached the journal as a
// *memo.JournalError.
func (c *checkpointer) close() error {
	close(c.stop)
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	if c.cfg.Mode != CheckpointNone {
		if _, err := c.flushLocked(); err != nil && len(c.pending) == 0 {
			errs = append(errs, err) // a sync error; a write error is reported below
		}
	}
	c.closed = true
	if lost := c.dropped + len(c.pending); lost > 0 {
		c.log.Error("results not written to the checkpoint; a resumed run will run their tasks again",
			"path", c.path, "lost", lost, "failed_writes", c.failures, "err", c.lastErr)
		errs = append(errs, &memo.JournalError{Path: c.path, Lost: lost, Err: c.lastErr})
		c.pending = nil
	}
	if c.journal != nil {
		if err := c.journal.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
