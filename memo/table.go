package memo

import "sync"

// Entry is one memoized result. A result produced in this process is kept as
// Value (HasValue set, since nil is a legitimate result); a result loaded
// from a checkpoint is kept as its CBOR bytes in Raw, because only the caller
// knows the Go type to decode it into.
type Entry struct {
	// App is the name of the app that produced the result; it lets the
	// kernel report and filter cache hits by app.
	App string
	// Value is the result itself, valid when HasValue is set.
	Value any
	// Raw is the CBOR encoding of the result, set for checkpointed entries.
	Raw []byte
	// HasValue tells Value apart from Raw, as a nil Value is a real result.
	HasValue bool
}

// shardCount spreads keys over independent locks so that many goroutines
// rarely contend; keys are SHA-256 sums, so their first byte is uniform.
const shardCount = 64

type shard struct {
	mu sync.RWMutex
	m  map[[32]byte]Entry
	// Keeps the hot words of neighbouring shards on separate cache lines.
	_ [64]byte
}

// Table maps memo keys to results. It is safe for concurrent use and built
// for many concurrent Get and Put calls. Create it with NewTable.
type Table struct {
	shards [shardCount]shard
}

// NewTable returns an empty table.
func NewTable() *Table {
	t := &Table{}
	for i := range t.shards {
		t.shards[i].m = make(map[[32]byte]Entry)
	}
	return t
}

func (t *Table) shard(k [32]byte) *shard { return &t.shards[k[0]%shardCount] }

// Get returns the entry stored under k, if any.
func (t *Table) Get(k [32]byte) (Entry, bool) {
	s := t.shard(k)
	s.mu.RLock()
	e, ok := s.m[k]
	s.mu.RUnlock()
	return e, ok
}

// Put stores e under k, replacing any earlier entry.
func (t *Table) Put(k [32]byte, e Entry) {
	s := t.shard(k)
	s.mu.Lock()
	s.m[k] = e
	s.mu.Unlock()
}

// PutRecords stores checkpoint records as Raw entries, so that a run can be
// primed from Load's output in one call. Later records replace earlier ones
// with the same key, so records loaded oldest first leave the newest result.
func (t *Table) PutRecords(recs []Record) {
	for _, r := range recs {
		t.Put(r.Key, Entry{App: r.App, Raw: r.Result})
	}
}

// Len returns the number of entries. Under concurrent Puts it is a snapshot
// that may already be stale.
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
