package codec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type chkCyc struct {
	N int
	P *chkCyc
}

type chkDeep struct{ Next *chkDeep }

func chkDeepList(n int) *chkDeep {
	var d *chkDeep
	for i := 0; i < n; i++ {
		d = &chkDeep{Next: d}
	}
	return d
}

func chkNested(n int) any {
	var v any = 1
	for i := 0; i < n; i++ {
		v = []any{v}
	}
	return v
}

type chkInner struct{ Deep *chkDeep }

type chkEmbeds struct {
	chkInner
	X int
}

func rule(t *testing.T, err error) string {
	t.Helper()
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v (%T), want a *LimitError", err, err)
	}
	return le.Rule
}

func TestCheckRefusesCycles(t *testing.T) {
	c := &chkCyc{N: 1}
	c.P = c
	s := []any{nil}
	s[0] = s
	m := map[string]any{}
	m["me"] = m
	p := new(any)
	*p = p
	for name, v := range map[string]any{"pointer": c, "slice": s, "map": m, "pointer to interface": p} {
		for _, lim := range []Limits{{Nesting: 60}} {
			err := Check(v, nil, lim)
			if got := rule(t, err); got != RuleCycle {
				t.Errorf("%s %+v: rule %q (%v), want cycle", name, lim, got, err)
			}
		}
	}
	err := Check(c, nil, Limits{})
	if !strings.Contains(err.Error(), "at .P:") || !strings.Contains(err.Error(), "the top of the value") {
		t.Errorf("cycle error %q does not locate the cycle", err)
	}
	// Sharing without a cycle is fine.
	shared := &chkCyc{N: 2}
	if err := Check([]*chkCyc{shared, shared, {P: shared}}, nil, Limits{Nesting: 60}); err != nil {
		t.Errorf("shared pointers: %v", err)
	}
}

func TestCheckDepth(t *testing.T) {
	if got := rule(t, Check(chkNested(2_000_000), nil, Limits{})); got != RuleNesting {
		t.Errorf("2M-deep []any: rule %q", got)
	}
	if err := Check(chkNested(WalkDepth-1), nil, Limits{}); err != nil {
		t.Errorf("just under WalkDepth: %v", err)
	}
	// The walk's count is exact for these shapes: the limit passes, one
	// more fails, both before encoding and in the encoding.
	for _, n := range []int{59, 60} {
		if _, err := MarshalChecked(chkDeepList(n), nil, Limits{Nesting: 60}); err != nil {
			t.Errorf("%d-deep list, limit 60: %v", n, err)
		}
		if _, err := MarshalChecked(chkNested(n), nil, Limits{Nesting: 60}); err != nil {
			t.Errorf("%d-deep []any, limit 60: %v", n, err)
		}
	}
	if _, err := MarshalChecked(chkDeepList(61), nil, Limits{Nesting: 60}); rule(t, err) != RuleNesting {
		t.Errorf("61-deep list: %v", err)
	}
	// An embedded struct adds no level (its fields are promoted).
	if _, err := MarshalChecked(chkEmbeds{chkInner: chkInner{Deep: chkDeepList(59)}}, nil, Limits{Nesting: 60}); err != nil {
		t.Errorf("embedded struct counted as a level: %v", err)
	}
	// A static type deeper than the limit is caught in its encoding.
	type l1 struct{ A [1][1][1][1][1]int }
	if _, err := MarshalChecked(l1{}, nil, Limits{Nesting: 6}); err != nil {
		t.Errorf("6 levels, limit 6: %v", err)
	}
	if _, err := MarshalChecked(l1{}, nil, Limits{Nesting: 5}); err == nil || rule(t, err) != RuleNesting {
		t.Errorf("6 levels, limit 5: %v", err)
	}
}

func TestCheckSizes(t *testing.T) {
	if got := rule(t, Check(make([]int, MaxArrayElements+1), nil, Limits{Nesting: 60})); got != RuleArray {
		t.Errorf("long []int: %q", got)
	}
	if err := Check(make([]int, MaxArrayElements+1), nil, Limits{}); err != nil {
		t.Errorf("long []int with no decode limits: %v", err)
	}
	if err := Check(make([]byte, MaxArrayElements+1), nil, Limits{Nesting: 60}); err != nil {
		t.Errorf("long []byte is a byte string, not an array: %v", err)
	}
	// A graph that shares sub-values at every level: 2^40 paths. (A
	// smaller budget keeps the test fast.)
	defer func(n int) { maxNodes = n }(maxNodes)
	maxNodes = 1 << 20
	var v any = 1
	for i := 0; i < 40; i++ {
		v = []any{v, v}
	}
	if got := rule(t, Check(v, nil, Limits{Nesting: 60})); got != RuleSize {
		t.Errorf("exponential sharing: %q", got)
	}
}

type chkPoint struct{ X, Y int }

func TestCheckPlain(t *testing.T) {
	ok := []any{nil, true, 1, 2.5, "s", []byte("b"), []any{1, "x", nil}, map[string]any{"a": []any{map[string]any{}}}}
	for _, v := range ok {
		if err := Check(v, tAny, Limits{Plain: true}); err != nil {
			t.Errorf("%#v: %v", v, err)
		}
	}
	bad := map[string]any{
		"struct": chkPoint{}, "pointer": &chkPoint{}, "int64": int64(1), "float32": float32(1),
		"typed slice": []int{1}, "typed map": map[string]int{}, "time": time.Now(), "nil []any": []any(nil),
		"nested struct": []any{1, map[string]any{"p": chkPoint{}}},
	}
	for name, v := range bad {
		err := Check(v, tAny, Limits{Plain: true})
		if err == nil || rule(t, err) != RuleInterface {
			t.Errorf("%s: %v, want an interface rule error", name, err)
		}
	}
	// Without Plain (memo keys), any encodable value goes.
	if err := Check(chkPoint{}, tAny, Limits{}); err != nil {
		t.Errorf("struct without Plain: %v", err)
	}
	// A field of interface type is a slot too.
	type holder struct{ V any }
	if err := Check(holder{V: chkPoint{}}, nil, Limits{Plain: true}); err == nil || !strings.Contains(err.Error(), "at .V") {
		t.Errorf("struct field: %v", err)
	}
}

func TestUnmarshalPlainGivesInts(t *testing.T) {
	in := map[string]any{"n": 7, "neg": -3, "l": []any{1, []any{2}}, "f": 1.5}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := UnmarshalPlain(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip %#v, want %#v", out, in)
	}
	type s struct {
		V any
		M map[string]any
	}
	b, _ = Marshal(s{V: 5, M: map[string]any{"x": 6}})
	var got s
	if err := UnmarshalPlain(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.V != 5 || got.M["x"] != 6 {
		t.Errorf("struct round trip %#v", got)
	}
}

type lossHidden struct {
	A int
	b int //lint:ignore U1000 the point of the test
}
type lossEmbedded struct {
	lossInner
	C int
}
type lossInner struct{ D int }
type lossSkip struct {
	A int
	b int `cbor:"-"` //lint:ignore U1000 the point of the test
	_ int
}

func TestLossy(t *testing.T) {
	bad := map[string]reflect.Type{
		"unexported":      reflect.TypeFor[lossHidden](),
		"in a slice":      reflect.TypeFor[[]*lossHidden](),
		"in a map":        reflect.TypeFor[map[string]lossHidden](),
		"error":           reflect.TypeFor[error](),
		"interface field": reflect.TypeFor[struct{ E error }](),
	}
	for name, ty := range bad {
		if Lossy(ty) == nil {
			t.Errorf("%s (%v): not lossy", name, ty)
		}
	}
	if err := Lossy(reflect.TypeFor[lossHidden]()); !strings.Contains(err.Error(), "lossHidden.b") {
		t.Errorf("message %q does not name the field", err)
	}
	good := []reflect.Type{reflect.TypeFor[int](), reflect.TypeFor[any](), reflect.TypeFor[lossEmbedded](),
		reflect.TypeFor[lossSkip](), reflect.TypeFor[time.Time](), reflect.TypeFor[map[string][]any]()}
	for _, ty := range good {
		if err := Lossy(ty); err != nil {
			t.Errorf("%v: %v", ty, err)
		}
	}
}

func BenchmarkMarshalCheckedInt(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := MarshalChecked(i, nil, Limits{Nesting: 60}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalInt(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Marshal(i); err != nil {
			b.Fatal(err)
		}
	}
}

type chkSelf struct{ depth int }

func (c chkSelf) MarshalCBOR() ([]byte, error) { return Marshal(chkNested(c.depth)) }
func (c *chkSelf) UnmarshalCBOR([]byte) error  { return nil }

// TestMarshalCheckedSeesMarshalerOutput: the walk cannot see inside a
// marshaler, so its bytes are held to the limits.
func TestMarshalCheckedSeesMarshalerOutput(t *testing.T) {
	if _, err := MarshalChecked([]chkSelf{{depth: 50}}, nil, Limits{Nesting: 60}); err != nil {
		t.Errorf("shallow marshaler output: %v", err)
	}
	if _, err := MarshalChecked([]chkSelf{{depth: 70}}, nil, Limits{Nesting: 60}); err == nil || rule(t, err) != RuleNesting {
		t.Errorf("deep marshaler output: %v", err)
	}
	if _, err := MarshalChecked(map[string]any{"m": chkSelf{depth: 70}}, tAny, Limits{Nesting: 60}); err == nil || rule(t, err) != RuleNesting {
		t.Errorf("deep marshaler output in an interface: %v", err)
	}
}
