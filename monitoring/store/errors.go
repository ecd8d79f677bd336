package store

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by Enqueue and Sync after Close has started.
var ErrClosed = errors.New("monitoring store: closed")

// ErrNotFound is returned by the read API for a run or task that is not in
// the database.
var ErrNotFound = errors.New("monitoring store: not found")

// ErrNewerSchema is matched (errors.Is) by the error Open returns for a
// database written by a newer version of this package.
var ErrNewerSchema = errors.New("database schema is newer than this program supports")

// ErrCorrupt is matched (errors.Is) by the error Open returns for a file that
// is not a readable SQLite database.
var ErrCorrupt = errors.New("file is not a valid SQLite database")

// ErrNotMonitoring is matched (errors.Is) by the error Open returns for a
// SQLite database that holds something other than Parsl monitoring data.
var ErrNotMonitoring = errors.New("not a Parsl monitoring database")

// OpenError is returned by Open; it names the file, because a monitoring
// database is often found by path in a run directory and the path is what
// the user needs to act on.
type OpenError struct {
	Path string
	Err  error
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("monitoring store %s: %v", e.Path, e.Err)
}

func (e *OpenError) Unwrap() error { return e.Err }

// SchemaVersionError details ErrNewerSchema.
type SchemaVersionError struct {
	Found, Supported int
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("schema version %d: %v (supports up to %d)", e.Found, ErrNewerSchema, e.Supported)
}

func (e *SchemaVersionError) Unwrap() error { return ErrNewerSchema }

// UnwrittenError is returned by Close when some accepted rows could not be
// written before its context ended, or were rejected by the database.
type UnwrittenError struct {
	Path      string // the database file
	Rows      int64  // rows accepted by Enqueue but not in the database: Rejected + Unwritten
	Rejected  int64  // rows the database refused for good (e.g. a constraint)
	Unwritten int64  // rows given up when Close's context ended (disk full, locked, I/O errors)
	Last      error  // the last write error seen, wrapped with the context's error when that ended
}

func (e *UnwrittenError) Error() string {
	return fmt.Sprintf("monitoring store %s: %d rows not written (%d given up at Close, %d rejected): %v",
		e.Path, e.Rows, e.Unwritten, e.Rejected, e.Last)
}

func (e *UnwrittenError) Unwrap() error { return e.Last }
