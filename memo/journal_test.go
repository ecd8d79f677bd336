package memo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/parsl-go/parsl/internal/codec"
)

func testRecord(t testing.TB, i int, result any) Record {
	t.Helper()
	raw, err := codec.Marshal(result)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Key("app", "v1", []any{i})
	if err != nil {
		t.Fatal(err)
	}
	return Record{Key: k, App: fmt.Sprintf("app%d", i%3), Result: raw}
}

func writeJournal(t testing.TB, path string, recs ...Record) {
	t.Helper()
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Append(recs...); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

// noWarn fails the test if Load reports damage.
func noWarn(t *testing.T) func(string) {
	return func(msg string) { t.Errorf("unexpected warning: %s", msg) }
}

// warnings collects Load's warnings.
type warnings struct{ msgs []string }

func (w *warnings) add(msg string) { w.msgs = append(w.msgs, msg) }

func sameRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Key != want[i].Key || got[i].App != want[i].App || !bytes.Equal(got[i].Result, want[i].Result) {
			t.Fatalf("record %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestJournalRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "000", Dir, FileName)
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if j.Path() != path {
		t.Fatalf("Path = %q", j.Path())
	}
	want := []Record{
		testRecord(t, 1, 42),
		testRecord(t, 2, "hello"),
		testRecord(t, 3, map[string]any{"x": []int{1, 2, 3}}),
		{Key: [32]byte{7}, App: "nil-result"}, // empty Result is stored as CBOR null
	}
	if err := j.Append(want[0]); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(want[1:]...); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := j.Append(want[0]); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm()&0o600 != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}

	want[3].Result = []byte{0xf6}
	got, err := Load(path, noWarn(t))
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, want)
	var v map[string][]int
	if err := codec.Unmarshal(got[2].Result, &v); err != nil || len(v["x"]) != 3 {
		t.Fatalf("decode result: %v %v", v, err)
	}

	// Reopening appends after the existing records, without a second header.
	extra := testRecord(t, 4, true)
	writeJournal(t, path, extra)
	got, err = Load(path, noWarn(t))
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, append(want, extra))
	dirGot, err := LoadDir(filepath.Dir(path), noWarn(t))
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, dirGot, got)
}

func TestJournalEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := Load(path, noWarn(t))
	if err != nil || len(recs) != 0 {
		t.Fatalf("empty file: %v %v", recs, err)
	}
	writeJournal(t, path, testRecord(t, 1, 1))
	recs, err = Load(path, noWarn(t))
	if err != nil || len(recs) != 1 {
		t.Fatalf("after append: %v %v", recs, err)
	}
}

func TestJournalDuplicateHeader(t *testing.T) {
	// Two processes creating the file at once may both write the magic.
	path := filepath.Join(t.TempDir(), FileName)
	r1, r2 := testRecord(t, 1, 1), testRecord(t, 2, 2)
	writeJournal(t, path, r1)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte(magic))
	f.Close()
	writeJournal(t, path, r2)
	got, err := Load(path, noWarn(t))
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, []Record{r1, r2})
}

func TestJournalRejectsBadRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	deep := []byte{}
	for range codec.MaxNesting + 2 {
		deep = append(deep, 0x81) // array of one
	}
	deep = append(deep, 0x01)
	for name, r := range map[string]Record{
		"bad utf8 app":     {App: "a\xff"},
		"malformed result": {App: "a", Result: []byte{0x82, 0x01}},
		"too deep result":  {App: "a", Result: deep},
	} {
		if err := j.Append(testRecord(t, 1, 1), r); err == nil {
			t.Errorf("%s: Append succeeded", name)
		}
	}
	got, err := Load(path, noWarn(t))
	if err != nil || len(got) != 0 {
		t.Fatalf("rejected appends left records: %v %v", got, err)
	}
}

func TestJournalConcurrentAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), Dir, FileName)
	j1, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	j2, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, per = 8, 200
	want := map[[32]byte]Record{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := j1
			if g%2 == 1 {
				j = j2
			}
			for i := range per {
				n := g*per + i
				// Vary the size so that records straddle buffer boundaries.
				r := testRecord(t, n, strings.Repeat("x", n%1000))
				var err error
				if i%5 == 0 {
					r2 := testRecord(t, n+1_000_000, n)
					mu.Lock()
					want[r2.Key] = r2
					mu.Unlock()
					err = j.Append(r, r2)
				} else {
					err = j.Append(r)
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want[r.Key] = r
				mu.Unlock()
				if i%50 == 0 {
					if err := j.Sync(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := j1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, noWarn(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("loaded %d records, want %d", len(got), len(want))
	}
	for _, r := range got {
		w, ok := want[r.Key]
		if !ok || w.App != r.App || !bytes.Equal(w.Result, r.Result) {
			t.Fatalf("record %x does not match what was written", r.Key[:4])
		}
		delete(want, r.Key)
	}
}

func TestLoadTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	recs := []Record{testRecord(t, 1, 1), testRecord(t, 2, "two"), testRecord(t, 3, []int{3, 3, 3})}
	writeJournal(t, path, recs[:2]...)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	lastStart := st.Size()
	writeJournal(t, path, recs[2])
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for cut := lastStart + 1; cut < int64(len(full)); cut++ {
		if err := os.WriteFile(path, full[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		var w warnings
		got, err := Load(path, w.add)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		sameRecords(t, got, recs[:2])
		if len(w.msgs) != 1 {
			t.Fatalf("cut at %d: %d warnings", cut, len(w.msgs))
		}
		if !strings.Contains(w.msgs[0], path) || !strings.Contains(w.msgs[0], "offset "+strconv.FormatInt(lastStart, 10)) {
			t.Fatalf("cut at %d: warning %q does not name the file and offset %d", cut, w.msgs[0], lastStart)
		}
		// A nil warn must work too.
		if got, err := Load(path, nil); err != nil || len(got) != 2 {
			t.Fatalf("nil warn: %d %v", len(got), err)
		}
	}
	// A cut exactly at a record boundary is a clean file.
	os.WriteFile(path, full[:lastStart], 0o644)
	got, err := Load(path, noWarn(t))
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, recs[:2])
	// A torn file header.
	for cut := 1; cut < len(magic); cut++ {
		os.WriteFile(path, full[:cut], 0o644)
		var w warnings
		got, err := Load(path, w.add)
		if err != nil || len(got) != 0 || len(w.msgs) != 1 {
			t.Fatalf("header cut at %d: %v %v %v", cut, got, err, w.msgs)
		}
	}
}

func TestLoadCorruptMiddle(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	recs := []Record{testRecord(t, 1, 1), testRecord(t, 2, "two"), testRecord(t, 3, 3)}
	writeJournal(t, path, recs[0])
	st, _ := os.Stat(path)
	midStart := st.Size()
	writeJournal(t, path, recs[1])
	st, _ = os.Stat(path)
	midEnd := st.Size()
	writeJournal(t, path, recs[2])
	full, _ := os.ReadFile(path)

	// Flip each byte of the middle record in turn: header or payload.
	for i := midStart; i < midEnd; i++ {
		bad := bytes.Clone(full)
		bad[i] ^= 0x40
		os.WriteFile(path, bad, 0o644)
		var w warnings
		got, err := Load(path, w.add)
		if err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
		sameRecords(t, got, recs[:1])
		if len(w.msgs) != 1 || !strings.Contains(w.msgs[0], "offset "+strconv.FormatInt(midStart, 10)) || !strings.Contains(w.msgs[0], path) {
			t.Fatalf("byte %d: warnings %q do not name offset %d", i, w.msgs, midStart)
		}
	}

	// A valid checksum over bad content is still caught.
	for name, payload := range map[string][]byte{
		"bad cbor":  {0xff, 0x00},
		"short key": mustMarshal(t, wireRecord{K: []byte{1, 2}, A: "a", R: codec.RawMessage{1}}),
		"no result": mustMarshal(t, map[string]any{"k": make([]byte, 32), "a": "a"}),
	} {
		var b []byte
		b = append(b, full[:midStart]...)
		b = appendFrame(b, payload)
		b = append(b, full[midEnd:]...)
		os.WriteFile(path, b, 0o644)
		var w warnings
		got, err := Load(path, w.add)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameRecords(t, got, recs[:1])
		if len(w.msgs) != 1 {
			t.Fatalf("%s: warnings %q", name, w.msgs)
		}
	}

	// An absurd length is refused without reading it.
	b := append([]byte{}, full[:midStart]...)
	b = append(b, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0)
	os.WriteFile(path, b, 0o644)
	var w warnings
	got, err := Load(path, w.add)
	if err != nil || len(got) != 1 || len(w.msgs) != 1 || !strings.Contains(w.msgs[0], "limit") {
		t.Fatalf("huge length: %v %v %q", got, err, w.msgs)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := codec.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func appendFrame(b, payload []byte) []byte {
	b = append(b, byte(len(payload)), byte(len(payload)>>8), byte(len(payload)>>16), byte(len(payload)>>24))
	sum := crc32c(payload)
	return append(append(b, byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)), payload...)
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope", FileName)
	_, err := Load(missing, nil)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := LoadDir(filepath.Join(dir, "nope"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
	for name, content := range map[string]string{
		"text":  "hello, this is not a journal\n",
		"short": "PG!",
		"other": "PGCKPT2\n",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		_, err := Load(p, noWarn(t))
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: error %v does not name %s", name, err, p)
		}
		if _, err := OpenJournal(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Fatalf("OpenJournal on %s: %v", name, err)
		}
		if b, _ := os.ReadFile(p); string(b) != content {
			t.Fatalf("OpenJournal modified %s", name)
		}
	}
	if _, err := Load(dir, nil); err == nil {
		t.Fatal("Load of a directory succeeded")
	}
}

// TestOpenJournalTornHeader: a file holding only the start of the header
// (its writer met a full disk) is a journal with no records, not a foreign
// file that blocks the checkpoint for good.
func TestOpenJournalTornHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), Dir, FileName)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(magic[:3]), 0o644); err != nil {
		t.Fatal(err)
	}
	r := testRecord(t, 1, "one")
	writeJournal(t, path, r)
	got, err := Load(path, noWarn(t))
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, []Record{r})
}
