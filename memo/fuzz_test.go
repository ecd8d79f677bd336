package memo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/parsl-go/parsl/internal/codec"
)

// minRecordSize is a lower bound on the bytes one loaded record takes: its
// frame header plus a 32-byte key string.
const minRecordSize = recordHeaderSize + 34

func FuzzLoad(f *testing.F) {
	// One directory per fuzz worker process, reused by every input it runs
	// (they run one at a time): a fresh t.TempDir per input makes the
	// fuzzer too slow to get anywhere.
	dir := f.TempDir()
	path := filepath.Join(dir, "seed")
	writeJournal(f, path, testRecord(f, 1, 1), testRecord(f, 2, "two"), testRecord(f, 3, []any{1.5, nil, map[string]int{"a": 1}}))
	valid, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	chained := filepath.Join(dir, "chained")
	j, err := OpenJournal(chained)
	if err != nil {
		f.Fatal(err)
	}
	if err := j.AppendRefs("../000/checkpoint", "/abs/001/checkpoint"); err != nil {
		f.Fatal(err)
	}
	if err := j.Append(testRecord(f, 1, 1)); err != nil {
		f.Fatal(err)
	}
	j.Close()
	withRef, err := os.ReadFile(chained)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(withRef)
	f.Add(valid[:len(valid)-5])
	f.Add(valid[:len(magic)+3])
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Add([]byte("garbage that is not a journal at all"))
	f.Add(append([]byte(magic), 0xff, 0xff, 0xff, 0x0f, 1, 2, 3, 4))
	f.Add(append(append([]byte(magic), magic...), valid[len(magic):]...))

	in := filepath.Join(dir, "input")
	out := filepath.Join(dir, "rewrite")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		warned := 0
		recs, err := Load(in, func(string) { warned++ })
		if warned > 1 {
			t.Fatalf("warn called %d times", warned)
		}
		if err != nil {
			if recs != nil {
				t.Fatalf("error %v with %d records", err, len(recs))
			}
			return
		}
		if len(data) < len(magic) {
			if len(recs) != 0 {
				t.Fatalf("%d records from %d bytes", len(recs), len(data))
			}
			return
		}
		if max := (len(data) - len(magic)) / minRecordSize; len(recs) > max {
			t.Fatalf("%d records from %d bytes (at most %d fit)", len(recs), len(data), max)
		}
		// Whatever loads must survive being written and loaded again.
		if len(recs) > 0 {
			if err := os.Remove(out); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			writeJournal(t, out, recs...)
			again, err := Load(out, func(msg string) { t.Errorf("rewrite warned: %s", msg) })
			if err != nil || len(again) != len(recs) {
				t.Fatalf("rewrite: %d records, %v; want %d", len(again), err, len(recs))
			}
		}
	})
}

// FuzzRecordPayload frames arbitrary payloads with a correct checksum, so
// that the fuzzer reaches the CBOR decoding that FuzzLoad's random bytes
// rarely get past the checksum to.
func FuzzRecordPayload(f *testing.F) {
	f.Add(mustMarshalF(f, wireRecord{K: make([]byte, 32), A: "app", R: []byte{0x01}}))
	f.Add(mustMarshalF(f, map[string]any{"k": make([]byte, 32), "a": "x", "r": []any{1, "2", 3.5}, "future": true}))
	f.Add([]byte{0xa0})
	f.Add([]byte{0x9f, 0xff})
	path := filepath.Join(f.TempDir(), FileName)
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > 1<<20 {
			return
		}
		data := appendFrame([]byte(magic), payload)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		warned := 0
		recs, refs, err := load(path, func(string) { warned++ })
		if err != nil {
			t.Fatal(err)
		}
		isRef := 0
		if refs != nil {
			isRef = 1
		}
		if len(recs)+warned+isRef != 1 {
			t.Fatalf("%d records, %d references and %d warnings from one record", len(recs), len(refs), warned)
		}
		if len(recs) == 1 {
			// A payload Load accepts must be one Append accepts too.
			if _, err := encodeRecords(recs); err != nil {
				t.Fatalf("loaded record does not re-encode: %v", err)
			}
		}
	})
}

func mustMarshalF(f *testing.F, v any) []byte {
	b, err := codec.Marshal(v)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
