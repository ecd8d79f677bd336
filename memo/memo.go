// Package memo implements app caching (memoization) and checkpoints.
//
// The kernel computes a Key per task from the app name, the app version and
// the resolved arguments. A result whose key is already in the Table is
// reused instead of running the task again. Results are also appended to a
// Journal (the checkpoint file) so that a later run can load them with Load
// and skip work an earlier run already did.
//
// # Keys
//
// A key is SHA-256 over the core deterministic CBOR encoding of
// [app, version, args, extra]. Because it is computed from the encoding,
// values that encode alike key alike: int(1), uint8(1) and int64(1) give the
// same key, a map's insertion order does not matter, and a nil args slice is
// the same as an empty one. Values that have no CBOR encoding (funcs, chans,
// complex numbers) cannot be keyed.
//
// # Checkpoint file format
//
// A checkpoint journal lives at <run dir>/checkpoint/tasks.ckpt (see Dir and
// FileName) and is append-only:
//
//	file   = magic *record
//	magic  = "PGCKPT1\n"                     (8 bytes)
//	record = length crc payload
//	length = uint32, little endian            (payload size in bytes, ≤ MaxRecordSize)
//	crc    = uint32, little endian            (CRC-32C, Castagnoli, of payload)
//	payload = CBOR map {"k": bstr .size 32, "a": tstr, "r": any CBOR item}
//
// "k" is the memo key, "a" the app name and "r" the encoded result. Readers
// ignore unknown map keys, so later versions may add fields.
//
// A reference record names earlier checkpoint directories whose results
// the journal relies on without copying them (see Journal.AppendRefs and
// Chain): "k" is 32 zero bytes, "a" empty, "r" null, and "p" an array of
// directory paths, relative to the journal's directory when possible. A
// rerun writes one before its first result instead of copying every
// reused result, so a chain of reruns stays as large as its distinct
// results; Chain follows the references, LoadDir and Load skip them.
//
// The magic may appear again at a record boundary: two processes that open a
// new, empty file at the same moment may both write it. The reader skips such
// copies. This is unambiguous because the magic read as a length is larger
// than MaxRecordSize.
//
// Every Append call is written with one write(2) on a file opened with
// O_APPEND, so records from concurrent writers, in one process or several,
// never interleave on a local file system (NFS gives no such promise).
// A writer killed in the middle of a write leaves a torn last record; Load
// reports it through its warn callback and returns every record before it.
// The same happens for a record whose checksum or CBOR is bad: reading stops
// there, since nothing after a damaged length can be trusted.
//
// A write cut short by a full disk does not leave such a tail: Append
// truncates the file back to where its write began and returns the error,
// so the caller can keep the records and append them once there is space.
// It does so only when the file has not grown past the torn write (another
// writer appending after it). A Journal holds a shared flock on its file
// while open, and takes an exclusive one, asked for without waiting, around
// the truncate: when it gets it, no other Journal can write in between.
// OpenJournal likewise writes again a header torn by a full disk.
package memo

import (
	"crypto/sha256"
	"fmt"

	"github.com/parsl-go/parsl/internal/codec"
)

// Key returns SHA-256 over the canonical CBOR of [app, version, args, extra].
// It identifies a task invocation across processes and runs, which is what
// lets a checkpointed result stand in for running the task again.
//
// An argument that cannot be encoded gives an error that names its 1-based
// position and wraps the codec error.
func Key(app, version string, args []any, extra ...any) ([32]byte, error) {
	// nil and empty encode differently (null vs []), but mean the same call.
	if args == nil {
		args = []any{}
	}
	if extra == nil {
		extra = []any{}
	}
	if k, ok := fastKey(app, version, args, extra); ok {
		return k, nil
	}
	// The encoder has no cycle detection and recurses once per level: a
	// cyclic or absurdly deep argument must fail here, not overflow the
	// stack and kill the program.
	for i, a := range args {
		if err := codec.Check(a, nil, codec.Limits{}); err != nil {
			return [32]byte{}, &KeyError{Arg: i + 1, Value: a, Err: err}
		}
	}
	for i, a := range extra {
		if err := codec.Check(a, nil, codec.Limits{}); err != nil {
			return [32]byte{}, &KeyError{Extra: i + 1, Value: a, Err: err}
		}
	}
	b, err := codec.Marshal([4]any{app, version, args, extra})
	if err != nil {
		return [32]byte{}, keyError(args, extra, err)
	}
	return sha256.Sum256(b), nil
}

// MaxResultNesting is the deepest nesting a checkpointed result may have:
// codec.MaxNesting less the level of the journal record around it. A
// deeper one could be written but not read back, and reading stops at the
// first record that does not decode.
const MaxResultNesting = codec.MaxNesting - 1

// KeyError is a memo key that cannot be computed because a value in it
// cannot be encoded.
type KeyError struct {
	// Arg is the 1-based position of the argument at fault, or 0.
	Arg int
	// Extra is the 1-based position of the extra key value at fault, or 0.
	Extra int
	// Value is the value at fault.
	Value any
	Err   error
}

func (e *KeyError) Error() string {
	switch {
	case e.Arg > 0:
		return fmt.Sprintf("memo: argument %d (%T) cannot be encoded for the memo key: %v", e.Arg, e.Value, e.Err)
	case e.Extra > 0:
		return fmt.Sprintf("memo: extra key value %d (%T) cannot be encoded for the memo key: %v", e.Extra, e.Value, e.Err)
	}
	return fmt.Sprintf("memo: cannot encode memo key: %v", e.Err)
}

// Unwrap returns the encoder's error.
func (e *KeyError) Unwrap() error { return e.Err }

// keyError finds which value broke the encoding of a key, so that the user
// learns which argument to fix rather than just that something failed.
func keyError(args, extra []any, whole error) error {
	for i, a := range args {
		if _, err := codec.Marshal(a); err != nil {
			return &KeyError{Arg: i + 1, Value: a, Err: err}
		}
	}
	for i, a := range extra {
		if _, err := codec.Marshal(a); err != nil {
			return &KeyError{Extra: i + 1, Value: a, Err: err}
		}
	}
	return &KeyError{Err: whole}
}
