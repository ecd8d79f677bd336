package memo

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func mustKey(t testing.TB, app, version string, args []any, extra ...any) [32]byte {
	t.Helper()
	k, err := Key(app, version, args, extra...)
	if err != nil {
		t.Fatalf("Key(%q, %q, %v): %v", app, version, args, err)
	}
	return k
}

func TestKeyDeterministic(t *testing.T) {
	args := []any{1, "two", 3.5, []int{4, 5}, map[string]any{"a": 1, "b": []string{"x"}}}
	k1 := mustKey(t, "app", "v1", args)
	k2 := mustKey(t, "app", "v1", []any{1, "two", 3.5, []int{4, 5}, map[string]any{"b": []string{"x"}, "a": 1}})
	if k1 != k2 {
		t.Fatal("same inputs gave different keys")
	}
	if mustKey(t, "app", "v1", nil) != mustKey(t, "app", "v1", []any{}) {
		t.Fatal("nil and empty args gave different keys")
	}
	if mustKey(t, "app", "v1", []any{1}) != mustKey(t, "app", "v1", []any{1}, nil...) {
		t.Fatal("no extra and nil extra gave different keys")
	}
}

func TestKeyDistinct(t *testing.T) {
	base := mustKey(t, "app", "v1", []any{1, 2})
	for name, k := range map[string][32]byte{
		"app":       mustKey(t, "other", "v1", []any{1, 2}),
		"version":   mustKey(t, "app", "v2", []any{1, 2}),
		"arg value": mustKey(t, "app", "v1", []any{1, 3}),
		"arg order": mustKey(t, "app", "v1", []any{2, 1}),
		"arg count": mustKey(t, "app", "v1", []any{1, 2, nil}),
		"arg type":  mustKey(t, "app", "v1", []any{1, "2"}),
		"extra":     mustKey(t, "app", "v1", []any{1, 2}, "x"),
		// Boundaries between fields must not be ambiguous.
		"shifted": mustKey(t, "ap", "pv1", []any{1, 2}),
	} {
		if k == base {
			t.Errorf("changing %s did not change the key", name)
		}
	}
}

func TestKeyMapOrder(t *testing.T) {
	// Build maps with different insertion histories; Go randomises
	// iteration anyway, so repeat to make a lucky pass unlikely.
	want := mustKey(t, "app", "v1", []any{map[string]int{"a": 1, "b": 2, "c": 3}})
	for i := range 50 {
		m := map[string]int{}
		keys := []string{"c", "a", "b"}
		if i%2 == 0 {
			keys = []string{"b", "c", "a"}
		}
		for _, k := range keys {
			m[k] = map[string]int{"a": 1, "b": 2, "c": 3}[k]
		}
		m["zzz"] = 9
		delete(m, "zzz")
		if got := mustKey(t, "app", "v1", []any{m}); got != want {
			t.Fatalf("map insertion order changed the key (iteration %d)", i)
		}
	}
	type S struct {
		A int
		M map[int]string
	}
	k1 := mustKey(t, "app", "v1", []any{S{A: 1, M: map[int]string{1: "a", 2: "b"}}})
	k2 := mustKey(t, "app", "v1", []any{S{A: 1, M: map[int]string{2: "b", 1: "a"}}})
	if k1 != k2 {
		t.Fatal("nested map order changed the key")
	}
}

func TestKeyUnencodable(t *testing.T) {
	cases := []struct {
		name  string
		args  []any
		extra []any
		want  string
	}{
		{"func", []any{1, func() {}}, nil, "argument 2"},
		{"chan", []any{make(chan int), 1, 2}, nil, "argument 1"},
		{"nested", []any{1, 2, []any{3, make(chan int)}}, nil, "argument 3"},
		{"extra", []any{1}, []any{"ok", func() {}}, "extra key value 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Key("app", "v1", c.args, c.extra...)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name %q", err, c.want)
			}
		})
	}
}

func TestTableConcurrent(t *testing.T) {
	tab := NewTable()
	const workers, per = 16, 500
	keys := make([][32]byte, workers*per)
	for i := range keys {
		keys[i] = mustKey(t, "app", "v", []any{i})
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				n := w*per + i
				tab.Put(keys[n], Entry{App: "app", Value: n, HasValue: true})
				// Read both our own and others' keys while they are written.
				if e, ok := tab.Get(keys[n]); !ok || e.Value != n {
					t.Errorf("Get after Put: %v %v", e, ok)
					return
				}
				if e, ok := tab.Get(keys[(n*7)%len(keys)]); ok && e.Value != (n*7)%len(keys) {
					t.Errorf("Get returned wrong entry %v", e)
					return
				}
				_ = tab.Len()
			}
		}()
	}
	wg.Wait()
	if tab.Len() != len(keys) {
		t.Fatalf("Len = %d, want %d", tab.Len(), len(keys))
	}
	if _, ok := tab.Get([32]byte{1}); ok {
		t.Fatal("Get of absent key succeeded")
	}
}

func TestTablePutRecords(t *testing.T) {
	tab := NewTable()
	k := [32]byte{9}
	tab.PutRecords([]Record{{Key: k, App: "a", Result: []byte{1}}, {Key: k, App: "a", Result: []byte{2}}})
	e, ok := tab.Get(k)
	if !ok || e.HasValue || string(e.Raw) != "\x02" || e.App != "a" {
		t.Fatalf("got %+v %v", e, ok)
	}
}

func BenchmarkKey(b *testing.B) {
	args := []any{3, 4}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Key("add", "v1", args); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTableGet(b *testing.B) {
	tab := NewTable()
	keys := make([][32]byte, 4096)
	for i := range keys {
		keys[i] = mustKey(b, "app", "v", []any{i})
		tab.Put(keys[i], Entry{Value: i, HasValue: true})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := tab.Get(keys[i&4095]); !ok {
				panic(fmt.Sprint("missing key ", i))
			}
			i++
		}
	})
}
