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
	chunks  map[chunkKey]*sql.Stmt // multi-row task upserts by row count and shape
	runs    map[string]*runState
	runKeys map[int64]*runState
	names   map[string]int64
	tx      txn // rows of the open transaction

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

	// Owned by the writer: a database that fails every write for hours
	// (a full disk) must not fill the log, or the disk, with a line per
	// attempt or per row.
	failLog, recoverLog, rejectLog logLimit
}

// logLimit lets through the first logBurst lines of one kind, then one
// line per logWindow, and counts the others; the next line let through
// carries their count, and the writer logs the count left at exit.
type logLimit struct {
	start   time.Time // of the current window
	windows int       // windows that let a line through
	logged  int       // lines in the current window
	held    int64     // lines held back since the last line let through
}

const (
	logBurst  = 3
	logWindow = time.Minute
)

// allow reports whether a line may be logged now and, if so, how many were
// held back before it.
func (l *logLimit) allow(now time.Time) (bool, int64) {
	if l.logged > 0 && now.Sub(l.start) >= logWindow {
		l.logged = 0
	}
	if l.logged == 0 {
		l.start = now
		l.windows++
	}
	if l.windows > 1 && l.logged >= 1 || l.logged >= logBurst {
		l.held++
		return false, 0
	}
	l.logged++
	held := l.held
	l.held = 0
	return true, held
}

// flushLogs logs the counts of lines still held back; the writer calls it
// as it exits.
func (s *Store) flushLogs() {
	for _, l := range []struct {
		lim *logLimit
		msg string
	}{{&s.failLog, "monitoring write failures not logged"}, {&s.recoverLog, "monitoring write recoveries not logged"},
		{&s.rejectLog, "monitoring row rejections not logged"}} {
		if l.lim.held > 0 {
			s.log.Warn(l.msg, "count", l.lim.held, "write_errors", s.writeErrors.Load(), "rejected", s.rejected.Load())
			l.lim.held = 0
		}
	}
}

type item struct {
	rec  Record
	sync chan error // non-nil for a Sync barrier
}

// rows is the number of rows the item carries.
func (it item) rows() int64 {
	switch r := it.rec.(type) {
	case nil:
		return 0
	case *Batch:
		return r.rows()
	}
	return 1
}

// splitRows returns items with one row each: a Batch becomes its rows, so
// that a row the database refuses costs only itself.
func splitRows(items []item) []item {
	var out []item
	for _, it := range items {
		b, ok := it.rec.(*Batch)
		if !ok {
			out = append(out, it)
			continue
		}
		for i := range b.Tasks {
			out = append(out, item{rec: &b.Tasks[i]})
		}
		for i := range b.Tries {
			out = append(out, item{rec: &b.Tries[i]})
		}
		for i := range b.Statuses {
			out = append(out, item{rec: &b.Statuses[i]})
		}
	}
	return out
}

// Open opens (creating if needed) the monitoring database at path, sets it
// up (WAL, synchronous=NORMAL, busy_timeout, schema) and starts the writer.
// Errors name the file; a file from a newer schema matches ErrNewerSchema,
// a file that is not a database matches ErrCorrupt.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	// The pragmas go in the DSN so that every pooled connection gets them.
	// journal_size_limit truncates the WAL after a checkpoint, so that a
	// burst of writes does not leave a file as large as the burst.
	dsn := path + fmt.Sprintf("?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"+
		"&_pragma=journal_size_limit(%d)", opts.BusyTimeout.Milliseconds(), 64<<20)
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
		chunks:  map[chunkKey]*sql.Stmt{},
		runs:    map[string]*runState{},
		runKeys: map[int64]*runState{},
		names:   map[string]int64{},
		tx:      txn{taskIdx: map[taskKey]int{}, old: map[taskKey]storedTask{}, delta: map[countKey]int64{}},
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
	// The writer's transactions change tens of thousands of rows: a larger
	// page cache keeps SQLite from spilling pages to the WAL in the middle
	// of one, and temp_store keeps the statement journals of the
	// multi-row upserts in memory instead of temporary files.
	for _, p := range []string{"PRAGMA cache_size = -65536", "PRAGMA temp_store = MEMORY"} {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			return err
		}
	}
	var v int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > SchemaVersion {
		return &SchemaVersionError{Found: v, Supported: SchemaVersion}
	}
	if v < SchemaVersion {
		if err := s.createSchema(ctx, v); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	if err := s.ensureHeartbeat(ctx); err != nil {
		return fmt.Errorf("create heartbeat table: %w", err)
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

// ensureHeartbeat creates the heartbeat table in a database written before
// it existed. It looks first, so that opening a current database takes no
// write lock.
func (s *Store) ensureHeartbeat(ctx context.Context) error {
	var n int
	if err := s.wconn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'parslgo_heartbeat'`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err := s.wconn.ExecContext(ctx, heartbeatDDL)
	return err
}

// createSchema creates the schema in a new database and migrates an older
// one (see SchemaVersion), in one transaction: a failure leaves the file
// as it was.
func (s *Store) createSchema(ctx context.Context, from int) (err error) {
	if _, err := s.wconn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_, _ = s.wconn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	tables := map[string]string{} // name → type, of Parsl's task, try and status
	rows, err := s.wconn.QueryContext(ctx, `SELECT name, type FROM sqlite_master WHERE name IN ('task', 'try', 'status', 'workflow')`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return err
		}
		tables[name] = typ
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if from == 0 && len(tables) == 0 {
		var other string
		err := s.wconn.QueryRowContext(ctx, `SELECT group_concat(name, ', ') FROM
			(SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' LIMIT 5)`).Scan(&other)
		if err == nil && other != "" {
			return fmt.Errorf("%w: it has other tables (%s)", ErrNotMonitoring, other)
		}
	}
	var ddl []string
	if from == 1 {
		ddl = append(ddl, version1Leftovers...)
	}
	ddl = append(ddl, parslTablesDDL...)
	ddl = append(ddl, compactDDL...)
	// Parsl's tables as plain tables (Python Parsl's database, or ours
	// before version 2): move their rows into the compact tables.
	migrate := tables["task"] == "table" && tables["try"] == "table" && tables["status"] == "table"
	if migrate {
		ddl = append(ddl, migrateSQL()...)
	} else {
		for _, t := range []string{"task", "try", "status"} {
			if typ := tables[t]; typ != "" && typ != "view" {
				return fmt.Errorf("%w: its %s is a %s but task, try and status are not all tables", ErrNotMonitoring, t, typ)
			}
		}
	}
	ddl = append(ddl, viewsDDL()...)
	for _, q := range ddl {
		if _, err := s.wconn.ExecContext(ctx, q); err != nil {
			if migrate {
				return fmt.Errorf("migrate Parsl's tables to schema version %d: %w", SchemaVersion, err)
			}
			return err
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
	s.accepted.Add(it.rows())
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
			last = fmt.Errorf("%w (last write error: %w)", ctx.Err(), last)
		}
		return &UnwrittenError{Path: s.path, Rows: n, Rejected: s.rejected.Load(), Unwritten: s.unwritten.Load(), Last: last}
	}
	return nil
}

func (s *Store) closeDB() {
	for _, st := range s.stmts {
		_ = st.Close()
	}
	for _, st := range s.chunks {
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
	defer s.flushLogs()
	batch := make([]item, 0, s.opts.BatchSize)
	var rows int64
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
			batch, rows = batch[:0], 0
		}
	}
	add := func(it item) {
		batch = append(batch, it)
		rows += it.rows()
		if it.sync != nil || rows >= int64(s.opts.BatchSize) {
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
		for _, it := range splitRows(batch) {
			if e := s.commitRetry([]item{it}); e != nil {
				if s.abortCtx.Err() != nil {
					err = e
					continue
				}
				if it.rec != nil {
					s.rejected.Add(1)
					if ok, held := s.rejectLog.allow(time.Now()); ok {
						args := []any{"table", it.rec.table(), "err", e}
						if held > 0 {
							args = append(args, "rejections_not_logged", held)
						}
						s.log.Error("monitoring row rejected", args...)
					}
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
		rows += it.rows()
	}
	backoff := s.opts.RetryMin
	start := time.Now()
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
				if ok, held := s.recoverLog.allow(time.Now()); ok {
					args := []any{"attempts", attempt, "rows", rows}
					if held > 0 {
						args = append(args, "recoveries_not_logged", held)
					}
					s.log.Info("monitoring write succeeded after retry", args...)
				}
			}
			return nil
		}
		if s.abortCtx.Err() != nil {
			// Close's abort interrupted this attempt; the cause worth
			// reporting is the earlier failure, not the interruption,
			// unless there was none: then the write was waiting, most
			// likely for another program's lock.
			s.unwritten.Add(rows)
			if s.lastErr.Load() == nil {
				e := fmt.Errorf("a write in progress was interrupted: %w", err)
				if d := time.Since(start); d >= time.Second {
					e = fmt.Errorf("a write was still waiting after %v (is the database locked by another program?): %w",
						d.Round(time.Millisecond), err)
				}
				s.lastErr.Store(&e)
			}
			return err
		}
		s.writeErrors.Add(1)
		s.lastErr.Store(&err)
		if !transient(err) {
			return err
		}
		if ok, held := s.failLog.allow(time.Now()); ok {
			args := []any{"attempt", attempt, "rows", rows, "backoff", backoff, "err", err}
			if held > 0 {
				args = append(args, "failures_not_logged", held)
			}
			s.log.Warn("monitoring write failed; retrying", args...)
		}
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
	// fails (after busy_timeout) before any work is done. BEGIN and COMMIT
	// are the statements that wait for other connections' locks: they run
	// under Close's abort, which interrupts the wait, so that Close returns
	// when its context ends rather than up to busy_timeout later. Two
	// watched statements per transaction cost nothing measurable.
	if _, err := s.wconn.ExecContext(s.abortCtx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if _, rerr := s.wconn.ExecContext(context.Background(), "ROLLBACK"); rerr != nil && !strings.Contains(rerr.Error(), "no transaction") {
				s.log.Warn("monitoring rollback failed", "err", rerr)
			}
			// Keys cached during the rolled-back transaction may not exist.
			clear(s.runs)
			clear(s.runKeys)
			clear(s.names)
		}
		s.tx.reset()
	}()
	for _, it := range items {
		if it.rec == nil {
			continue
		}
		if err := s.apply(ctx, it.rec); err != nil {
			return fmt.Errorf("%s row: %w", it.rec.table(), err)
		}
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	if s.opts.beforeCommit != nil {
		if err := s.opts.beforeCommit(); err != nil {
			return err
		}
	}
	_, err = s.wconn.ExecContext(s.abortCtx, "COMMIT")
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
