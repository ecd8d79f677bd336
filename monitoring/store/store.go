package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
)

// Options configures a Store. The zero value is usable.
type Options struct {
	// BatchSize is the number of rows after which the writer commits a
	// transaction without waiting for FlushInterval. Default 2000.
	BatchSize int
	// FlushInterval bounds how long an accepted row waits before it is
	// committed. Default 200ms.
	FlushInterval time.Duration
	// QueueSize is how many rows may wait for the writer; Enqueue blocks
	// (backpressure) while it is full. Default 8192.
	QueueSize int
	// BusyTimeout is SQLite's busy_timeout: how long a statement waits for
	// a lock held by another connection (e.g. a notebook) before failing;
	// the writer then retries the batch. Default 5s.
	BusyTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts to write a
	// failing batch. Defaults 50ms and 5s.
	RetryMin, RetryMax time.Duration
	// ReadConns is the number of connections for the read API. Default 4.
	ReadConns int
	// Logger receives write failures and retries. Default slog.Default().
	Logger *slog.Logger

	// beforeCommit, when set (tests only), runs inside each write
	// transaction before COMMIT; an error fails the transaction as a
	// database error would.
	beforeCommit func() error
}

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = 2000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 8192
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 50 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(5*time.Second, o.RetryMin)
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Stats are the writer's counters since Open.
type Stats struct {
	Accepted    int64 // rows accepted by Enqueue
	Written     int64 // rows committed
	Batches     int64 // committed transactions
	WriteErrors int64 // failed write attempts (each is retried)
	Rejected    int64 // rows the database refused permanently (e.g. constraint), logged
	Unwritten   int64 // rows given up when Close's context ended
	Queued      int   // rows waiting for the writer now
}

// Store is an open monitoring database. Its methods are safe for concurrent
// use.
type Store struct {
	path string
	opts Options
	log  *slog.Logger
	db   *sql.DB

	// Writer side, owned by the writer goroutine after Open.
	wconn   *sql.Conn
	stmts   map[string]*sql.Stmt
	runKeys map[string]int64
	appKeys map[string]int64
	pending map[taskKey]stateUpdate // current-state updates of the open transaction

	q        chan item
	mu       sync.RWMutex // guards closed against concurrent Enqueue
	closed   bool
	inflight sync.WaitGroup // Enqueue calls between the closed check and their send
	closing  chan struct{}  // closed when Close starts
	drain    chan struct{}  // closed when no Enqueue is in flight: writer empties q and exits
	abortCtx context.Context
	abort    context.CancelFunc // Close's context ended: stop retrying
	done     chan struct{}      // writer exited

	accepted, written, batches, writeErrors, rejected, unwritten atomic.Int64
	lastErr                                                      atomic.Pointer[error]
}

type item struct {
	rec  Record
	sync chan error // non-nil for a Sync barrier
}

// Open opens (creating if needed) the monitoring database at path, sets it
// up (WAL, synchronous=NORMAL, busy_timeout, schema) and starts the writer.
// Errors name the file; a file from a newer schema matches ErrNewerSchema,
// a file that is not a database matches ErrCorrupt.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	// The pragmas go in the DSN so that every pooled connection gets them.
	dsn := path + fmt.Sprintf("?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)",
		opts.BusyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, openErr(path, err)
	}
	db.SetMaxOpenConns(opts.ReadConns + 1)
	db.SetMaxIdleConns(opts.ReadConns + 1)
	s := &Store{
		path:    path,
		opts:    opts,
		log:     opts.Logger.With("db", path),
		db:      db,
		stmts:   map[string]*sql.Stmt{},
		runKeys: map[string]int64{},
		appKeys: map[string]int64{},
		pending: map[taskKey]stateUpdate{},
		q:       make(chan item, opts.QueueSize),
		closing: make(chan struct{}),
		drain:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	if err := s.init(ctx); err != nil {
		s.closeDB()
		return nil, openErr(path, err)
	}
	s.abortCtx, s.abort = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

func openErr(path string, err error) error {
	if isCode(err, codeNotADB, codeCorrupt) {
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return &OpenError{Path: path, Err: err}
}

// init checks the schema version, creates the schema and prepares the
// writer's statements on its dedicated connection.
func (s *Store) init(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	s.wconn = conn
	var v int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > SchemaVersion {
		return &SchemaVersionError{Found: v, Supported: SchemaVersion}
	}
	if v < SchemaVersion {
		if err := s.createSchema(ctx); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	for name, q := range writeSQL {
		st, err := conn.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %s: %w", name, err)
		}
		s.stmts[name] = st
	}
	return nil
}

func (s *Store) createSchema(ctx context.Context) (err error) {
	if _, err := s.wconn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_, _ = s.wconn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	for _, q := range schemaDDL {
		if _, err := s.wconn.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	// A database written by Python Parsl (version 0 with rows) gets its
	// dashboard index built from its tables.
	for _, q := range backfillSQL() {
		if _, err := s.wconn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("index existing rows: %w", err)
		}
	}
	if _, err := s.wconn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion)); err != nil {
		return err
	}
	_, err = s.wconn.ExecContext(ctx, "COMMIT")
	return err
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Enqueue hands a row to the writer. It returns once the row is queued: it
// blocks only while the queue is full, until ctx ends (then the row is not
// accepted and ctx's error is returned). A nil error means the row will be
// written unless Close gives up on it, which Close then reports.
func (s *Store) Enqueue(ctx context.Context, rec Record) error {
	if rec == nil {
		return errors.New("monitoring store: nil record")
	}
	return s.send(ctx, item{rec: rec})
}

func (s *Store) send(ctx context.Context, it item) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	s.inflight.Add(1)
	s.mu.RUnlock()
	defer s.inflight.Done()
	select {
	case s.q <- it:
	case <-ctx.Done():
		return fmt.Errorf("monitoring store: queue full: %w", ctx.Err())
	case <-s.closing:
		return ErrClosed
	}
	if it.rec != nil {
		s.accepted.Add(1)
	}
	return nil
}

// Sync waits until every row accepted before it has been committed (or
// given up on), so that the read API sees them.
func (s *Store) Sync(ctx context.Context) error {
	ch := make(chan error, 1)
	if err := s.send(ctx, item{sync: ch}); err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Accepted:    s.accepted.Load(),
		Written:     s.written.Load(),
		Batches:     s.batches.Load(),
		WriteErrors: s.writeErrors.Load(),
		Rejected:    s.rejected.Load(),
		Unwritten:   s.unwritten.Load(),
		Queued:      len(s.q),
	}
}

// Close stops accepting rows, writes everything accepted and closes the
// database. If ctx ends first, the writer stops retrying and Close returns
// an *UnwrittenError counting the rows left out; it also does so for rows the
// database refused. Close waits for the writer goroutine in every case.
func (s *Store) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	// Enqueue calls that passed the closed check either sent already or
	// return ErrClosed now; after this, q only shrinks.
	s.inflight.Wait()
	close(s.drain)
	select {
	case <-s.done:
	case <-ctx.Done():
		s.abort()
		<-s.done
	}
	s.abort()
	s.closeDB()
	if n := s.rejected.Load() + s.unwritten.Load(); n > 0 {
		var last error = errors.New("unknown")
		if p := s.lastErr.Load(); p != nil {
			last = *p
		}
		if ctx.Err() != nil && s.unwritten.Load() > 0 {
			last = fmt.Errorf("%w (last write error: %v)", ctx.Err(), last)
		}
		return &UnwrittenError{Rows: n, Last: last}
	}
	return nil
}

func (s *Store) closeDB() {
	for _, st := range s.stmts {
		_ = st.Close()
	}
	if s.wconn != nil {
		_ = s.wconn.Close()
	}
	_ = s.db.Close()
}

// run is the writer goroutine: it collects rows into batches and commits a
// batch when it is full, when the oldest row has waited FlushInterval, at a
// Sync barrier, and at Close.
func (s *Store) run() {
	defer close(s.done)
	batch := make([]item, 0, s.opts.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	timerOn := false
	flush := func() {
		if timerOn {
			timer.Stop()
			timerOn = false
		}
		if len(batch) > 0 {
			s.writeBatch(batch)
			clear(batch) // drop references to written records
			batch = batch[:0]
		}
	}
	add := func(it item) {
		batch = append(batch, it)
		if it.sync != nil || len(batch) >= s.opts.BatchSize {
			flush()
		} else if !timerOn {
			timer.Reset(s.opts.FlushInterval)
			timerOn = true
		}
	}
	for {
		select {
		case it := <-s.q:
			add(it)
		case <-timer.C:
			timerOn = false
			flush()
		case <-s.drain:
			for {
				select {
				case it := <-s.q:
					add(it)
				default:
					flush()
					return
				}
			}
		}
	}
}

// writeBatch commits batch, retrying transient failures until Close aborts.
// If the database refuses the batch for a reason retrying cannot fix, rows
// are written one by one so that only the offending rows are lost.
func (s *Store) writeBatch(batch []item) {
	err := s.commitRetry(batch)
	if err != nil && s.abortCtx.Err() == nil {
		err = nil
		for i := range batch {
			if e := s.commitRetry(batch[i : i+1]); e != nil {
				if s.abortCtx.Err() != nil {
					err = e
					continue
				}
				if batch[i].rec != nil {
					s.rejected.Add(1)
					s.log.Error("monitoring row rejected", "table", batch[i].rec.table(), "err", e)
				}
			}
		}
	}
	for _, it := range batch {
		if it.sync != nil {
			it.sync <- err
		}
	}
}

// commitRetry commits items in one transaction. It returns nil on success,
// a permanent error at once, and the last error when Close aborts.
func (s *Store) commitRetry(items []item) error {
	rows := int64(0)
	for _, it := range items {
		if it.rec != nil {
			rows++
		}
	}
	backoff := s.opts.RetryMin
	for attempt := 1; ; attempt++ {
		if err := s.abortCtx.Err(); err != nil {
			s.unwritten.Add(rows)
			return err
		}
		err := s.commit(items)
		if err == nil {
			s.written.Add(rows)
			s.batches.Add(1)
			if attempt > 1 {
				s.log.Info("monitoring write succeeded after retry", "attempts", attempt, "rows", rows)
			}
			return nil
		}
		if s.abortCtx.Err() != nil {
			// Close's abort interrupted this attempt; the cause worth
			// reporting is the earlier failure, not the interruption.
			s.unwritten.Add(rows)
			return err
		}
		s.writeErrors.Add(1)
		s.lastErr.Store(&err)
		if !transient(err) {
			return err
		}
		s.log.Warn("monitoring write failed; retrying", "attempt", attempt, "rows", rows, "backoff", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.abortCtx.Done():
			t.Stop()
		}
		backoff = min(2*backoff, s.opts.RetryMax)
	}
}

// commit writes items in one transaction.
func (s *Store) commit(items []item) (err error) {
	if err := s.abortCtx.Err(); err != nil {
		return err
	}
	// Statements run without a cancellable context: the driver starts a
	// goroutine per statement to watch one, which cost ~10% of write
	// throughput. A blocked statement is bounded by busy_timeout and Close's
	// abort is checked between attempts.
	ctx := context.Background()
	// IMMEDIATE takes the write lock up front, so a lock held elsewhere
	// fails (after busy_timeout) before any work is done.
	if _, err := s.wconn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if _, rerr := s.wconn.ExecContext(context.Background(), "ROLLBACK"); rerr != nil && !strings.Contains(rerr.Error(), "no transaction") {
				s.log.Warn("monitoring rollback failed", "err", rerr)
			}
			// Keys cached during the rolled-back transaction may not exist.
			clear(s.runKeys)
			clear(s.appKeys)
		}
		clear(s.pending)
	}()
	for _, it := range items {
		if it.rec == nil {
			continue
		}
		if err := s.apply(ctx, it.rec); err != nil {
			return fmt.Errorf("%s row: %w", it.rec.table(), err)
		}
	}
	if err := s.flushStates(ctx); err != nil {
		return fmt.Errorf("task state index: %w", err)
	}
	if s.opts.beforeCommit != nil {
		if err := s.opts.beforeCommit(); err != nil {
			return err
		}
	}
	_, err = s.wconn.ExecContext(ctx, "COMMIT")
	return err
}

// errPermanent marks a row that can never be written.
var errPermanent = errors.New("row cannot be written")

// SQLite primary result codes (sqlite3.h); stable across versions.
const (
	codeError      = 1
	codeCorrupt    = 11
	codeTooBig     = 18
	codeConstraint = 19
	codeMismatch   = 20
	codeMisuse     = 21
	codeRange      = 25
	codeNotADB     = 26
)

func isCode(err error, codes ...int) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code() & 0xff
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

// transient reports whether retrying a failed write may succeed: locks,
// I/O errors, a full disk, a read-only file can all go away; a row that
// breaks a constraint or a malformed statement will not.
func transient(err error) bool {
	return !errors.Is(err, errPermanent) && !isCode(err, codeError, codeTooBig, codeConstraint, codeMismatch, codeMisuse, codeRange)
}
