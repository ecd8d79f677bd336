package dataflow

import (
	"fmt"
	"log/slog"
	"path/filepath"
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

// checkpointer is the memo table plus its journal.
type checkpointer struct {
	cfg   CheckpointConfig
	log   *slog.Logger
	table *memo.Table
	path  string

	mu      sync.Mutex
	pending []memo.Record
	journal *memo.Journal
	closed  bool

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
	for _, dir := range files {
		recs, err := memo.LoadDir(dir, func(msg string) { log.Warn(msg) })
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
	return c, nil
}

func (c *checkpointer) start() {
	if c.cfg.Mode != CheckpointPeriodic {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		tk := time.NewTicker(c.cfg.Period)
		defer tk.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-tk.C:
				if _, err := c.flush(); err != nil {
					c.log.Error("periodic checkpoint failed", "err", err)
				}
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
	c.table.Put(key, memo.Entry{App: app.Name, Value: v, HasValue: true})
	// As in Parsl, a result reused from an earlier checkpoint goes into this
	// run's checkpoint too, so that a later run loading only the last
	// checkpoint (LastCheckpoint) still finds it. Only the first use in
	// this run gets here (the entry held Raw until now); two tasks hitting
	// it at once may both write it, which is harmless.
	if c.cfg.Mode != CheckpointNone {
		c.write(memo.Record{Key: key, App: app.Name, Result: e.Raw})
	}
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
	if c.cfg.Mode == CheckpointTaskExit {
		// Written before the future completes, so a result the user has
		// seen is in the journal even if the driver is killed next.
		if err := c.openLocked(); err != nil {
			c.log.Error("checkpoint write failed", "path", c.path, "err", err)
			return
		}
		if err := c.journal.Append(rec); err != nil {
			c.log.Error("checkpoint write failed", "path", c.path, "err", err)
		}
		return
	}
	c.pending = append(c.pending, rec)
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
		c.log.Info("no tasks checkpointed in this pass")
		return 0, nil
	}
	if err := c.openLocked(); err != nil {
		return 0, fmt.Errorf("parsl: opening checkpoint %s: %w", c.path, err)
	}
	if err := c.journal.Append(c.pending...); err != nil {
		return 0, fmt.Errorf("parsl: writing checkpoint %s: %w", c.path, err)
	}
	if err := c.journal.Sync(); err != nil {
		return 0, fmt.Errorf("parsl: syncing checkpoint %s: %w", c.path, err)
	}
	c.pending = c.pending[:0]
	c.log.Info(fmt.Sprintf("done checkpointing %d tasks", n), "path", c.path)
	return n, nil
}

func (c *checkpointer) close() error {
	close(c.stop)
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if c.cfg.Mode != CheckpointNone {
		_, err = c.flushLocked()
	}
	c.closed = true
	if c.journal != nil {
		if cerr := c.journal.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}
