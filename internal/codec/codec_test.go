package codec

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
)

type detInner struct {
	M map[string]int
	S []string
}

type detOuter struct {
	B     int
	A     string
	Inner detInner
	Any   map[string]any
}

// TestDeterministicMaps checks that equal maps give equal bytes whatever
// order they were built in: memo keys depend on it.
func TestDeterministicMaps(t *testing.T) {
	const n = 200
	keys := make([]string, n)
	for i := range keys {
		keys[i] = strings.Repeat("k", i%7+1) + string(rune('a'+i%26)) + string(rune('A'+i/26))
	}
	build := func(order []int) map[string]int {
		m := map[string]int{}
		for _, i := range order {
			m[keys[i]] = i
		}
		return m
	}
	fwd, rev, odd := make([]int, n), make([]int, n), make([]int, 0, n)
	for i := range n {
		fwd[i], rev[i] = i, n-1-i
	}
	for i := 1; i < n; i += 2 {
		odd = append(odd, i)
	}
	for i := 0; i < n; i += 2 {
		odd = append(odd, i)
	}
	want, err := Marshal(build(fwd))
	if err != nil {
		t.Fatal(err)
	}
	for _, order := range [][]int{rev, odd, fwd} {
		for range 5 { // map iteration order is random on each range
			got, err := Marshal(build(order))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("equal maps built in different orders encode differently")
			}
		}
	}

	// Nested maps, maps in structs, maps of interface values, int keys.
	mk := func(rev bool) detOuter {
		o := detOuter{B: 1, A: "a", Inner: detInner{M: map[string]int{}, S: []string{"x"}}, Any: map[string]any{}}
		ks := []string{"z", "y", "x", "w", "v", "u", "t"}
		if rev {
			for i, j := 0, len(ks)-1; i < j; i, j = i+1, j-1 {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
		for i, k := range ks {
			o.Inner.M[k] = i
			o.Any[k] = map[int]string{i: k, -i: k + k, 100 + i: ""}
		}
		// Same contents whatever the order of insertion.
		for k := range o.Inner.M {
			o.Inner.M[k] = int(k[0])
		}
		for k := range o.Any {
			o.Any[k] = map[int]string{int(k[0]): k, -int(k[0]): k + k}
		}
		return o
	}
	a, err := Marshal(mk(false))
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		b, err := Marshal(mk(true))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("equal nested maps encode differently")
		}
	}

	// Core deterministic: shortest integer and float forms, so that values
	// that are equal key alike whatever their Go type.
	for _, pair := range [][2]any{{int(1), uint8(1)}, {int64(-5), int8(-5)}, {float64(1.5), float32(1.5)}} {
		x, _ := Marshal(pair[0])
		y, _ := Marshal(pair[1])
		if !bytes.Equal(x, y) {
			t.Errorf("%T(%v) encodes as %x but %T(%v) as %x", pair[0], pair[0], x, pair[1], pair[1], y)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	in := detOuter{B: -3, A: "é", Inner: detInner{M: map[string]int{"a": 1}, S: []string{"s"}},
		Any: map[string]any{"n": nil, "l": []any{"x", true}}}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out detOuter
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.B != in.B || out.A != in.A || !reflect.DeepEqual(out.Inner, in.Inner) {
		t.Errorf("round trip: got %#v, want %#v", out, in)
	}
	// Maps decoded into an interface are map[string]any.
	var v any
	if err := Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.(map[string]any); !ok {
		t.Errorf("a map decoded into any is %T, want map[string]any", v)
	}
	tm := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	b, err = Marshal(tm)
	if err != nil {
		t.Fatal(err)
	}
	var tm2 time.Time
	if err := Unmarshal(b, &tm2); err != nil || !tm2.Equal(tm) {
		t.Errorf("time round trip: %v, %v; want %v", tm2, err, tm)
	}
}

func nested(depth int) []byte {
	b := bytes.Repeat([]byte{0x81}, depth) // array of one element, depth times
	return append(b, 0x01)
}

func nestedMaps(depth int) []byte {
	var b []byte
	for range depth {
		b = append(b, 0xa1, 0x61, 'k') // map of one pair, key "k"
	}
	return append(b, 0x01)
}

func TestDecodeNestingLimit(t *testing.T) {
	var v any
	if err := Unmarshal(nested(MaxNesting), &v); err != nil {
		t.Errorf("nesting of %d arrays rejected: %v", MaxNesting, err)
	}
	if err := Unmarshal(nestedMaps(MaxNesting), &v); err != nil {
		t.Errorf("nesting of %d maps rejected: %v", MaxNesting, err)
	}
	for _, depth := range []int{MaxNesting + 1, 1000, 100000} {
		if err := Unmarshal(nested(depth), &v); err == nil {
			t.Errorf("nesting of %d arrays accepted", depth)
		}
		if err := Unmarshal(nestedMaps(depth), &v); err == nil {
			t.Errorf("nesting of %d maps accepted", depth)
		}
		var s []any
		if err := Unmarshal(nested(depth), &s); err == nil {
			t.Errorf("nesting of %d arrays accepted into []any", depth)
		}
	}
}

// heapDelta runs f and returns how many bytes it allocated.
func heapDelta(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func TestDecodeHugeLengths(t *testing.T) {
	head := func(major byte, n uint64) []byte {
		b := []byte{major | 27}
		return binary.BigEndian.AppendUint64(b, n)
	}
	inputs := map[string][]byte{
		"array 2^63":                  head(0x80, 1<<63),
		"array 2^32":                  head(0x80, 1<<32),
		"array over the limit":        head(0x80, MaxArrayElements+1),
		"array at the limit, no data": head(0x80, MaxArrayElements),
		"map 2^40":                    head(0xa0, 1<<40),
		"map over the limit":          head(0xa0, MaxMapPairs+1),
		"map at the limit, no data":   head(0xa0, MaxMapPairs),
		"byte string 2^62":            head(0x40, 1<<62),
		"text string 2^40":            head(0x60, 1<<40),
		"byte string 1 GiB, no data":  head(0x40, 1<<30),
	}
	for name, in := range inputs {
		var err1, err2, err3, err4 error
		alloc := heapDelta(func() {
			var a any
			err1 = Unmarshal(in, &a)
			var s []int
			err2 = Unmarshal(in, &s)
			var m map[string]int
			err3 = Unmarshal(in, &m)
			var b []byte
			err4 = Unmarshal(in, &b)
		})
		for i, err := range []error{err1, err2, err3, err4} {
			if err == nil {
				t.Errorf("%s: decode %d accepted", name, i+1)
			}
		}
		if alloc > 1<<20 {
			t.Errorf("%s: decoding allocated %d bytes; a declared length must not be allocated before the data is there", name, alloc)
		}
	}

	// Just over the element limit with the data present is refused too.
	big := make([]byte, 0, MaxArrayElements+16)
	big = append(big, 0x9a)
	big = binary.BigEndian.AppendUint32(big, MaxArrayElements+1)
	big = append(big, bytes.Repeat([]byte{0x00}, MaxArrayElements+1)...)
	var s []uint8
	if err := Unmarshal(big, &s); err == nil {
		t.Errorf("array of %d elements accepted; limit is %d", MaxArrayElements+1, MaxArrayElements)
	}
}

func TestDecodeRejectsDuplicatesAndIndefinite(t *testing.T) {
	var v any
	// {"a": 1, "a": 2}
	if err := Unmarshal([]byte{0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02}, &v); err == nil {
		t.Error("map with a duplicate key accepted")
	}
	// [_ 1, 2]
	if err := Unmarshal([]byte{0x9f, 0x01, 0x02, 0xff}, &v); err == nil {
		t.Error("indefinite-length array accepted")
	}
	// Trailing bytes after one item.
	if err := Unmarshal([]byte{0x01, 0x02}, &v); err == nil {
		t.Error("trailing data accepted")
	}
	if err := Unmarshal(nil, &v); err == nil {
		t.Error("empty input accepted")
	}
}

type encFuncField struct {
	Name string
	F    func()
}

type encHidden struct {
	Name string
	f    func()         //nolint:unused // unexported: not encoded
	C    chan int       `cbor:"-"`
	X    complex128     `cbor:"-"`
	P    unsafe.Pointer `cbor:"-"`
}

type encList struct {
	Next *encList
	V    int
}

type encTree struct {
	Kids []encTree
	M    map[string]*encTree
}

type encBadTree struct {
	Kids []encBadTree
	F    func()
}

type encIface struct {
	V any
}

func TestEncodable(t *testing.T) {
	bad := map[string]reflect.Type{
		"func":                   reflect.TypeFor[func()](),
		"chan":                   reflect.TypeFor[chan int](),
		"complex64":              reflect.TypeFor[complex64](),
		"complex128":             reflect.TypeFor[complex128](),
		"uintptr":                reflect.TypeFor[uintptr](),
		"unsafe.Pointer":         reflect.TypeFor[unsafe.Pointer](),
		"[]func":                 reflect.TypeFor[[]func()](),
		"[2]chan":                reflect.TypeFor[[2]chan int](),
		"*complex":               reflect.TypeFor[*complex128](),
		"map key func-free, val": reflect.TypeFor[map[string]func()](),
		"map key chan":           reflect.TypeFor[map[chan int]int](),
		"struct with func field": reflect.TypeFor[encFuncField](),
		"*struct with func":      reflect.TypeFor[*encFuncField](),
		"recursive with func":    reflect.TypeFor[encBadTree](),
	}
	for name, ty := range bad {
		for range 2 { // second time from the verdict cache
			if err := Encodable(ty); err == nil {
				t.Errorf("%s (%v): Encodable = nil, want an error", name, ty)
			}
		}
	}
	if err := Encodable(reflect.TypeFor[encFuncField]()); err == nil || !strings.Contains(err.Error(), "F") {
		t.Errorf("Encodable(struct with func) = %v; want an error naming field F", err)
	}
	good := map[string]reflect.Type{
		"nil":                      nil,
		"int":                      reflect.TypeFor[int](),
		"string":                   reflect.TypeFor[string](),
		"[]byte":                   reflect.TypeFor[[]byte](),
		"map":                      reflect.TypeFor[map[string][]float64](),
		"any":                      reflect.TypeFor[any](),
		"error":                    reflect.TypeFor[error](),
		"hidden unencodable parts": reflect.TypeFor[encHidden](),
		"linked list":              reflect.TypeFor[encList](),
		"tree":                     reflect.TypeFor[encTree](),
		"time.Time":                reflect.TypeFor[time.Time](),
		"struct with interface":    reflect.TypeFor[encIface](),
	}
	for name, ty := range good {
		for range 2 {
			if err := Encodable(ty); err != nil {
				t.Errorf("%s (%v): Encodable = %v, want nil", name, ty, err)
			}
		}
	}
	// Encodable verdicts must agree with Marshal for the types above.
	if _, err := Marshal(encHidden{Name: "x", f: func() {}, C: make(chan int)}); err != nil {
		t.Errorf("Marshal(encHidden) = %v, but Encodable says it encodes", err)
	}
	if _, err := Marshal(encFuncField{F: func() {}}); err == nil {
		t.Error("Marshal(encFuncField) succeeded, but Encodable says it cannot")
	}
	if _, err := Marshal(encList{V: 1, Next: &encList{V: 2}}); err != nil {
		t.Errorf("Marshal(encList) = %v", err)
	}
}

func TestEncodableValue(t *testing.T) {
	bad := map[string]any{
		"func":                        func() {},
		"chan":                        make(chan int),
		"complex":                     complex(1, 2),
		"[]any with func":             []any{1, func() {}},
		"map[string]any with complex": map[string]any{"a": 1, "b": complex64(1)},
		"struct iface holding chan":   encIface{V: make(chan int)},
		"*struct iface holding func":  &encIface{V: []any{map[string]any{"f": func() {}}}},
		"struct with func":            encFuncField{},
	}
	for name, v := range bad {
		if err := EncodableValue(v); err == nil {
			t.Errorf("%s: EncodableValue = nil, want an error", name)
		}
	}
	good := map[string]any{
		"nil":                        nil,
		"int":                        3,
		"string":                     "s",
		"[]any":                      []any{1, "a", nil, []any{2.5}},
		"map[string]any":             map[string]any{"a": map[string]any{"b": []int{1}}},
		"struct iface holding slice": encIface{V: []string{"x"}},
		"nil pointer":                (*encIface)(nil),
		"hidden func":                encHidden{f: func() {}},
		"NaN":                        math.NaN(),
	}
	for name, v := range good {
		if err := EncodableValue(v); err != nil {
			t.Errorf("%s: EncodableValue = %v, want nil", name, err)
		}
	}
}

// FuzzUnmarshal feeds arbitrary bytes to Unmarshal into an interface, as
// happens with checkpoint files and wire messages: errors are fine, panics
// and runaway allocation are not. What decodes must encode again.
func FuzzUnmarshal(f *testing.F) {
	for _, v := range []any{
		nil, 1, -1, 1.5, "s", []byte{1}, []any{1, "x"}, map[string]any{"a": []any{true, nil}},
		detOuter{Inner: detInner{M: map[string]int{"k": 1}}}, time.Unix(0, 5).UTC(), math.Inf(1),
	} {
		b, err := Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(nested(MaxNesting + 1))
	f.Add([]byte{0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xc1, 0xfb, 0x41, 0xd0, 0, 0, 0, 0, 0, 0}) // tag 1 (epoch time)
	f.Add([]byte{0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0})    // tag 2 (bignum)
	f.Add([]byte{0xd8, 0x64, 0x01})                         // unknown tag 100
	f.Add([]byte{0xa1, 0x01, 0x02})                         // map with an int key
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if err := Unmarshal(data, &v); err != nil {
			return
		}
		b, err := Marshal(v)
		if err != nil {
			if strings.Contains(err.Error(), "year outside of range") {
				// Known limit: tag 1 (epoch seconds) decodes to any
				// time.Time, but times encode as RFC 3339, which only
				// has years 0 to 9999.
				return
			}
			t.Fatalf("decoded %#v from %x but cannot encode it again: %v", v, data, err)
		}
		var w any
		if err := Unmarshal(b, &w); err != nil {
			t.Fatalf("re-encoding %x of %#v does not decode: %v", b, v, err)
		}
	})
}
