package memo

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/parsl-go/parsl/internal/codec"
)

// Dir is the checkpoint sub-directory of a run directory; the finders and
// the kernel agree on it so that a later run can locate earlier journals.
const Dir = "checkpoint"

// FileName is the journal file inside Dir.
const FileName = "tasks.ckpt"

// MaxRecordSize is the largest record payload accepted. It bounds the memory
// a damaged length field can make Load allocate, and Append refuses larger
// records so that everything written can be read back.
const MaxRecordSize = 256 << 20

// magic opens every journal so that Load can refuse files that are not one.
const magic = "PGCKPT1\n"

// recordHeaderSize is the length and checksum words before each payload.
const recordHeaderSize = 8

// maxWrite keeps each write(2) below the size at which the Go runtime would
// split it, because a split write could interleave with another process.
const maxWrite = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one checkpoint journal record: the result of one task, keyed as
// the memo table keys it.
type Record struct {
	// Key is the task's memo key (see Key).
	Key [32]byte
	// App is the name of the app that produced the result.
	App string
	// Result is the CBOR encoding of the result.
	Result []byte
}

// wireRecord is the CBOR payload of a record; short keys keep the per-record
// overhead small.
type wireRecord struct {
	K []byte           `cbor:"k"`
	A string           `cbor:"a"`
	R codec.RawMessage `cbor:"r"`
	// P, in a reference record only, names the checkpoint directories
	// whose results this journal stands on (see AppendRefs).
	P []string `cbor:"p,omitempty"`
}

// JournalPath returns the journal path for a run directory, so that writers
// and readers build it the same way.
func JournalPath(runDir string) string {
	return filepath.Join(runDir, Dir, FileName)
}

// Journal is an append-only checkpoint file. It is safe for concurrent use
// by many goroutines, and several processes may append to the same file at
// once: each Append is one write(2) on an O_APPEND descriptor.
//
// An Append writes all its records or none: when the disk fills in the
// middle of a write, the torn part is cut off again, so the journal still
// ends at a record boundary and later appends succeed once there is space.
// Only if the file has grown past the torn part (another writer appended
// after it) does the torn record stay; the Journal then refuses further
// appends.
type Journal struct {
	path string
	f    *os.File

	// mu is shared by Append and Sync; Close takes it exclusively.
	mu     sync.RWMutex
	closed bool

	// wmu serialises this Journal's writes: undoing a partial write needs
	// to know that the end of the file is the end of that write. Other
	// writers are detected through the flock (see lock_unix.go).
	wmu sync.Mutex
	// flocks is set when the file system supports flock; the Journal
	// then holds a shared lock on the file while it is open.
	flocks bool

	// broken is set when a torn record could not be cut off: anything
	// appended after it could never be read back.
	broken atomic.Pointer[error]
}

// OpenJournal opens the journal at path for appending, creating it and its
// parent directories if needed. An existing non-empty file must already be
// a journal, so that results are never appended to an unrelated file.
func OpenJournal(path string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("memo: create checkpoint directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("memo: open checkpoint: %w", err)
	}
	sole, flocks, err := tryLockSole(f)
	if err == nil && flocks && !sole {
		err = lockShared(f)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("memo: lock checkpoint %s: %w", path, err)
	}
	if err := writeHeader(f, path, sole || !flocks); err != nil {
		f.Close()
		return nil, err
	}
	if sole {
		if err := lockShared(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("memo: lock checkpoint %s: %w", path, err)
		}
	}
	return &Journal{path: path, f: f, flocks: flocks}, nil
}

// writeHeader writes the magic to an empty journal, or checks it in an
// existing one. With mayCut (no other Journal has the file open, or that
// cannot be known), a file holding only the start of the magic is taken as
// the torn header of a writer that met a full disk or was killed, and is
// written again, since nothing else can follow it.
func writeHeader(f *os.File, path string, mayCut bool) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("memo: open checkpoint: %w", err)
	}
	size := st.Size()
	if mayCut && size > 0 && size < int64(len(magic)) {
		// f is write-only.
		if h, err := os.ReadFile(path); err == nil && len(h) < len(magic) && string(h) == magic[:len(h)] {
			if err := f.Truncate(0); err != nil {
				return fmt.Errorf("memo: cut the torn header of checkpoint %s: %w", path, err)
			}
			size = 0
		}
	}
	if size != 0 {
		return checkMagic(path)
	}
	// A concurrent opener may write the magic too; Load skips the copy.
	n, err := f.Write([]byte(magic))
	if err != nil {
		if n > 0 && mayCut {
			if terr := f.Truncate(0); terr != nil {
				return fmt.Errorf("memo: write checkpoint header to %s: %w (and cutting the torn header failed: %v)", path, err, terr)
			}
		}
		return fmt.Errorf("memo: write checkpoint header to %s: %w", path, err)
	}
	return nil
}

// checkMagic verifies that the existing file at path is a journal.
func checkMagic(path string) error {
	r, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("memo: open checkpoint: %w", err)
	}
	defer r.Close()
	var h [len(magic)]byte
	n, err := io.ReadFull(r, h[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("memo: read checkpoint %s: %w", path, err)
	}
	if string(h[:n]) != magic {
		return fmt.Errorf("memo: %s is not a checkpoint journal (header %q, want %q)", path, h[:n], magic)
	}
	return nil
}

// Path returns the file the journal appends to, for log messages and for
// handing to Load.
func (j *Journal) Path() string { return j.path }

// Append writes recs to the journal with a single write(2), so that they
// never interleave with records from other goroutines or processes. It does
// not fsync; call Sync when the records must survive a machine crash.
//
// Every record is checked to decode exactly as Load will decode it, because
// one unreadable record would hide all the records after it. An App that is
// not valid UTF-8, a Result that is not well-formed CBOR or exceeds the
// codec decode limits, or a record over MaxRecordSize gives an error and
// nothing is written.
//
// A failed write (ENOSPC on a full disk) returns its error and leaves no
// trace: the part already written is cut off again, so the caller may keep
// the records and append them later. Only if that cut fails is the journal
// left ending in a torn record; then every later Append fails too.
func (j *Journal) Append(recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	chunks, err := encodeRecords(recs)
	if err != nil {
		return err
	}
	return j.write(chunks)
}

// write appends chunks, cutting them off again on a failure (see Append).
func (j *Journal) write(chunks [][]byte) error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return fmt.Errorf("memo: append to checkpoint %s: %w", j.path, os.ErrClosed)
	}
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if p := j.broken.Load(); p != nil {
		return *p
	}
	written := int64(0)
	for _, c := range chunks {
		n, err := j.f.Write(c)
		written += int64(n)
		if err != nil {
			err = fmt.Errorf("memo: append to checkpoint %s: %w", j.path, err)
			if written > 0 {
				if cerr := j.cutBack(written); cerr != nil {
					err = fmt.Errorf("%w; the file now ends in a torn record and no further appends are accepted: %v", err, cerr)
					j.broken.CompareAndSwap(nil, &err)
				}
			}
			return err
		}
	}
	return nil
}

// cutBack removes the last written bytes, the torn records of a failed
// Append, so that the file ends at a record boundary again. It refuses when
// the file has grown past this writer's end, since the bytes there are
// another writer's records.
//
// When no other Journal has the file open (the exclusive flock says so),
// nothing can be written between the check and the truncate. Otherwise a
// record another writer appends in that instant would be cut; that needs
// the full disk to get space in that very instant, and a torn record left
// in place would hide every later record of every writer, so cutting is
// still the better choice.
func (j *Journal) cutBack(written int64) error {
	if j.flocks {
		if _, _, err := tryLockSole(j.f); err != nil {
			return err
		}
		// Back to the shared lock of an open Journal, whatever happened.
		defer lockShared(j.f)
	}
	// O_APPEND leaves the offset at the end of this descriptor's write.
	end, err := j.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	st, err := j.f.Stat()
	if err != nil {
		return err
	}
	if end-written < int64(len(magic)) {
		return fmt.Errorf("the write ended at byte %d, before the header", end)
	}
	if st.Size() != end {
		return fmt.Errorf("the file grew from %d to %d bytes past the torn record: another writer appended", end, st.Size())
	}
	return j.f.Truncate(end - written)
}

// encodeRecords frames recs, grouping them into as few writes as the
// maxWrite bound allows (one, in practice).
func encodeRecords(recs []Record) ([][]byte, error) {
	var chunks [][]byte
	var buf []byte
	for i := range recs {
		r := &recs[i]
		bad := func(format string, a ...any) error {
			return &RecordError{Index: i, App: r.App, Err: fmt.Errorf(format, a...)}
		}
		if !utf8.ValidString(r.App) {
			return nil, bad("memo: checkpoint record %d: app name %q is not valid UTF-8", i+1, r.App)
		}
		payload, err := codec.Marshal(wireRecord{K: r.Key[:], A: r.App, R: r.Result})
		if err != nil {
			return nil, bad("memo: checkpoint record %d (app %s): encode: %w", i+1, r.App, err)
		}
		if len(payload) > MaxRecordSize {
			return nil, bad("memo: checkpoint record %d (app %s): %d bytes exceeds the %d byte limit", i+1, r.App, len(payload), MaxRecordSize)
		}
		if _, err := decodePayload(payload); err != nil {
			return nil, bad("memo: checkpoint record %d (app %s) would not load back: %w", i+1, r.App, err)
		}
		if len(buf) > 0 && len(buf)+recordHeaderSize+len(payload) > maxWrite {
			chunks = append(chunks, buf)
			buf = nil
		}
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(payload)))
		buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(payload, castagnoli))
		buf = append(buf, payload...)
	}
	return append(chunks, buf), nil
}

// RecordError is a record that Append refuses whatever the state of the
// disk (see Append), so that a caller retrying failed writes can drop it
// and keep the others.
type RecordError struct {
	// Index is the record's position in the Append call, from 0.
	Index int
	// App is the record's app name.
	App string
	// Err says what is wrong with it.
	Err error
}

func (e *RecordError) Error() string { return e.Err.Error() }

// Unwrap returns the reason.
func (e *RecordError) Unwrap() error { return e.Err }

// Sync flushes appended records to stable storage.
func (j *Journal) Sync() error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return fmt.Errorf("memo: sync checkpoint %s: %w", j.path, os.ErrClosed)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("memo: sync checkpoint %s: %w", j.path, err)
	}
	return nil
}

// Close syncs and closes the journal. Later calls do nothing and return nil,
// so that it can be both deferred and called explicitly.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	serr := j.f.Sync()
	cerr := j.f.Close()
	if serr != nil {
		return fmt.Errorf("memo: sync checkpoint %s: %w", j.path, serr)
	}
	if cerr != nil {
		return fmt.Errorf("memo: close checkpoint %s: %w", j.path, cerr)
	}
	return nil
}

// AppendRefs writes a reference record naming checkpoint directories (as
// AllCheckpoints returns them) whose results this journal relies on instead
// of holding copies: LoadChain loads them, and what they reference in turn,
// before this journal's own records. A directory is stored relative to the
// journal's own directory when it can be, so that a base run directory
// moved or copied as a whole keeps its chain.
//
// Readers that predate references load the record as a result under the
// all-zero key with no app name, which no task has.
func (j *Journal) AppendRefs(dirs ...string) error {
	if len(dirs) == 0 {
		return nil
	}
	here := filepath.Dir(j.path)
	if abs, err := filepath.Abs(here); err == nil {
		here = abs
	}
	w := wireRecord{K: make([]byte, 32), R: codec.RawMessage{0xf6}} // null
	for _, d := range dirs {
		if !utf8.ValidString(d) {
			return fmt.Errorf("memo: checkpoint reference %q is not valid UTF-8", d)
		}
		if abs, err := filepath.Abs(d); err == nil {
			if rel, err := filepath.Rel(here, abs); err == nil {
				d = rel
			} else {
				d = abs
			}
		}
		w.P = append(w.P, filepath.ToSlash(d))
	}
	payload, err := codec.Marshal(w)
	if err != nil {
		return fmt.Errorf("memo: encode checkpoint reference: %w", err)
	}
	if len(payload) > MaxRecordSize {
		return fmt.Errorf("memo: checkpoint reference of %d directories is %d bytes, over the %d byte limit", len(dirs), len(payload), MaxRecordSize)
	}
	buf := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(payload, castagnoli))
	return j.write([][]byte{append(buf, payload...)})
}

// decodePayload is the one place that decides whether a payload is a valid
// record; Append uses it too, so that what is written can be read.
func decodePayload(p []byte) (Record, error) {
	r, refs, err := decodeAny(p)
	if err == nil && refs != nil {
		return Record{}, errors.New("a reference record, not a result")
	}
	return r, err
}

// decodeAny decodes a result record, or a reference record (refs non-nil).
func decodeAny(p []byte) (Record, []string, error) {
	var w wireRecord
	if err := codec.Unmarshal(p, &w); err != nil {
		return Record{}, nil, fmt.Errorf("bad CBOR: %w", err)
	}
	if len(w.P) > 0 {
		if len(w.K) != 32 || w.A != "" || slices.ContainsFunc(w.K, func(b byte) bool { return b != 0 }) {
			return Record{}, nil, errors.New("reference record with a key or app name")
		}
		return Record{}, w.P, nil
	}
	r, err := decodeResult(w)
	return r, nil, err
}

func decodeResult(w wireRecord) (Record, error) {
	if len(w.K) != len(Record{}.Key) {
		return Record{}, fmt.Errorf("key is %d bytes, want 32", len(w.K))
	}
	if len(w.R) == 0 {
		return Record{}, errors.New("no result")
	}
	r := Record{App: w.A, Result: []byte(w.R)}
	copy(r.Key[:], w.K)
	return r, nil
}

// Load reads the journal at path. Damage (a torn tail left by a killed
// writer, a bad checksum, bad CBOR, a bad length) ends the read: warn is
// called once with a message naming the file and the byte offset, and the
// records before the damage are returned with a nil error, because losing a
// few cached results only costs re-running their tasks. A missing file (the
// error wraps os.ErrNotExist) or a file that is not a journal gives an error
// naming the path. warn may be nil.
//
// Reference records (see AppendRefs) are skipped; LoadChain follows them.
func Load(path string, warn func(msg string)) ([]Record, error) {
	recs, _, err := load(path, warn)
	return recs, err
}

// load is Load that also returns the directories named by reference
// records, as written.
func load(path string, warn func(msg string)) (recs []Record, refs []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("memo: load checkpoint: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)

	damaged := func(off int64, n int, format string, a ...any) {
		if warn != nil {
			warn(fmt.Sprintf("memo: checkpoint %s: %s at byte offset %d; ignoring the rest of the file (%d records loaded)",
				path, fmt.Sprintf(format, a...), off, n))
		}
	}

	var h [recordHeaderSize]byte
	n, err := io.ReadFull(r, h[:len(magic)])
	switch {
	case errors.Is(err, io.EOF):
		return nil, nil, nil // created but header not yet written
	case errors.Is(err, io.ErrUnexpectedEOF) && magic[:n] == string(h[:n]):
		damaged(0, 0, "torn file header (%d of %d bytes)", n, len(magic))
		return nil, nil, nil
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return nil, nil, fmt.Errorf("memo: load checkpoint %s: %w", path, err)
	case string(h[:n]) != magic:
		return nil, nil, fmt.Errorf("memo: %s is not a checkpoint journal (header %q, want %q)", path, h[:n], magic)
	}

	off := int64(len(magic))
	for {
		n, err := io.ReadFull(r, h[:])
		if errors.Is(err, io.EOF) {
			return recs, refs, nil
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			damaged(off, len(recs), "torn record (file ends %d bytes into the record header)", n)
			return recs, refs, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("memo: load checkpoint %s at byte offset %d: %w", path, off, err)
		}
		if string(h[:]) == magic {
			off += int64(len(magic))
			continue
		}
		size := binary.LittleEndian.Uint32(h[0:4])
		sum := binary.LittleEndian.Uint32(h[4:8])
		if size > MaxRecordSize {
			damaged(off, len(recs), "corrupt record (length %d exceeds the %d byte limit)", size, MaxRecordSize)
			return recs, refs, nil
		}
		payload, err := readPayload(r, int(size))
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			damaged(off, len(recs), "torn record (file ends %d bytes into a %d byte payload)", len(payload), size)
			return recs, refs, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("memo: load checkpoint %s at byte offset %d: %w", path, off, err)
		}
		if got := crc32.Checksum(payload, castagnoli); got != sum {
			damaged(off, len(recs), "corrupt record (checksum %08x, want %08x)", got, sum)
			return recs, refs, nil
		}
		rec, more, err := decodeAny(payload)
		if err != nil {
			damaged(off, len(recs), "corrupt record (%v)", err)
			return recs, refs, nil
		}
		if more != nil {
			refs = append(refs, more...)
		} else {
			recs = append(recs, rec)
		}
		off += recordHeaderSize + int64(size)
	}
}

// readPayload reads n bytes, growing its buffer only as data arrives, so a
// damaged length cannot make it allocate far more than the file holds.
func readPayload(r io.Reader, n int) ([]byte, error) {
	const chunk = 1 << 20
	buf := make([]byte, 0, min(n, chunk))
	for len(buf) < n {
		want := min(n-len(buf), chunk)
		buf = slices.Grow(buf, want)
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+want])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// LoadDir loads the journal in a checkpoint directory as returned by
// AllCheckpoints and LastCheckpoint.
func LoadDir(dir string, warn func(msg string)) ([]Record, error) {
	return Load(filepath.Join(dir, FileName), warn)
}

// JournalError reports results that were given to the checkpoint but are
// not in its journal, so a later run will run their tasks again. It is
// returned by Close of the DFK.
type JournalError struct {
	// Path is the journal file.
	Path string
	// Lost is the number of records that could not be written.
	Lost int
	// Err is the first write error, such as one wrapping syscall.ENOSPC.
	Err error
}

func (e *JournalError) Error() string {
	return fmt.Sprintf("memo: %d results were not written to checkpoint %s (a later run will run their tasks again): %v; free space or fix the file system", e.Lost, e.Path, e.Err)
}

// Unwrap returns the first write error.
func (e *JournalError) Unwrap() error { return e.Err }
