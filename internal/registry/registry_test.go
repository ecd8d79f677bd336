package registry

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/parsl-go/parsl/internal/codec"
)

// The registry is process-global: every app registered here has a name
// starting with "test.registry." and unique within this file, and nothing
// here calls Freeze in this process (TestFreeze does it in a child).

type regPoint struct {
	X, Y int
	Name string
}

type regNested struct {
	Rows   [][]int
	Labels []string
	Points []regPoint
	Meta   map[string][]float64
	Inner  *regNested
}

// regNode and regTree are recursive through a pointer and a slice, the shapes
// of linked lists and trees.
type regNode struct {
	Next *regNode
	V    int
}

type regTree struct {
	Kids []regTree
	Tag  string
}

// regA and regB are mutually recursive.
type regA struct{ B *regB }
type regB struct {
	A *regA
	X any
}

type regWithFunc struct {
	Name string
	F    func() int
}

type regWithHiddenFunc struct {
	Name string
	f    func() int //lint:ignore U1000 unexported fields are not encoded: the point of the test
	G    func()     `cbor:"-"`
}

type regWithIface struct {
	N int
	V any
}

func regApp(name, version string, kind Kind, result Param, params ...Param) *App {
	return &App{
		Name: name, Version: version, Kind: kind, Result: result, Params: params,
		Invoke: func(context.Context, []any) (any, error) { return nil, nil },
	}
}

func TestDigestStableAndSensitive(t *testing.T) {
	d1 := Digest()
	if len(d1) != 64 {
		t.Fatalf("Digest() = %q, want 64 hex digits", d1)
	}
	if _, err := hex.DecodeString(d1); err != nil {
		t.Fatalf("Digest() = %q is not hex: %v", d1, err)
	}
	for i := 0; i < 10; i++ {
		if d := Digest(); d != d1 {
			t.Fatalf("Digest changed between calls with no registration: %s then %s", d1, d)
		}
	}

	a := Register(regApp("test.registry.digest.a", "1", Go, ParamOf[int](), ParamOf[int]()))
	d2 := Digest()
	if d2 == d1 {
		t.Fatal("Digest did not change when an app was registered")
	}
	if got, ok := Lookup("test.registry.digest.a"); !ok || got != a {
		t.Fatalf("Lookup = %v, %v; want the registered app", got, ok)
	}
	names := Names()
	found := false
	for i, n := range names {
		if i > 0 && names[i-1] >= n {
			t.Errorf("Names() not sorted: %q before %q", names[i-1], n)
		}
		found = found || n == "test.registry.digest.a"
	}
	if !found {
		t.Errorf("Names() = %v lacks the registered app", names)
	}

	// Every part of the signature is in the digest: version, kind, types.
	changes := []struct {
		what   string
		mutate func()
	}{
		{"version", func() { a.Version = "2" }},
		{"kind", func() { a.Kind = Join }},
		{"param type", func() { a.Params = []Param{ParamOf[string]()} }},
		{"param count", func() { a.Params = []Param{ParamOf[int](), ParamOf[int]()} }},
		{"result type", func() { a.Result = ParamOf[float64]() }},
	}
	for _, c := range changes {
		saved := *a
		mu.Lock() // Digest reads apps under the lock; mutate under it too
		c.mutate()
		mu.Unlock()
		if d := Digest(); d == d2 {
			t.Errorf("Digest did not change when the app's %s changed", c.what)
		}
		mu.Lock()
		*a = saved
		mu.Unlock()
		if d := Digest(); d != d2 {
			t.Errorf("Digest did not come back after restoring the app's %s", c.what)
		}
	}
}

func TestRegisterPanics(t *testing.T) {
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", what)
			}
		}()
		f()
	}
	Register(regApp("test.registry.dup", "", Go, ParamOf[int]()))
	mustPanic("duplicate name", func() { Register(regApp("test.registry.dup", "", Go, ParamOf[int]())) })
	mustPanic("empty name", func() { Register(regApp("", "", Go, ParamOf[int]())) })
}

// TestFreeze checks in a child process, because Freeze cannot be undone.
func TestFreeze(t *testing.T) {
	if os.Getenv("REGISTRY_TEST_FREEZE_CHILD") == "1" {
		Freeze()
		defer func() {
			r := recover()
			if r == nil {
				fmt.Println("NO PANIC")
				os.Exit(3)
			}
			if !strings.Contains(fmt.Sprint(r), "after parsl.Load") {
				fmt.Println("BAD PANIC:", r)
				os.Exit(4)
			}
			fmt.Println("FROZEN OK")
		}()
		Register(regApp("test.registry.frozen", "", Go, ParamOf[int]()))
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFreeze$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REGISTRY_TEST_FREEZE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("FROZEN OK")) {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestSignature(t *testing.T) {
	cases := []struct {
		app  *App
		want string
	}{
		{regApp("sq", "1", Go, ParamOf[int](), ParamOf[int]()), "go sq@1(int) int"},
		{regApp("none", "", Go, ParamOf[string]()), "go none@() string"},
		{regApp("cmd", "v2", Bash, ParamOf[int](), ParamOf[string](), ParamOf[[]string]()), "bash cmd@v2(string, []string) int"},
		{regApp("j", "3", Join, ParamOf[map[string]float64](), ParamOf[regPoint](), ParamOf[*regPoint]()),
			"join j@3(github.com/parsl-go/parsl/internal/registry.regPoint, *github.com/parsl-go/parsl/internal/registry.regPoint) map[string]float64"},
		{regApp("anyres", "", Go, ParamOf[any](), ParamOf[[]any]()), "go anyres@([]interface {}) interface {}"},
		{&App{Name: "nilres", Kind: Go}, "go nilres@() any"},
		{regApp("k", "", Kind(9), ParamOf[int]()), "kind(9) k@() int"},
	}
	for _, c := range cases {
		if got := c.app.Signature(); got != c.want {
			t.Errorf("Signature() = %q, want %q", got, c.want)
		}
	}
	for k, want := range map[Kind]string{Go: "go", Bash: "bash", Join: "join"} {
		if k.String() != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, k.String(), want)
		}
	}
}

// roundTrip encodes v with codec.Marshal and decodes it with ParamOf[T].
func roundTrip[T any](t *testing.T, v T) {
	t.Helper()
	p := ParamOf[T]()
	if p.Type != reflect.TypeFor[T]() {
		t.Errorf("ParamOf[%T]().Type = %v", v, p.Type)
	}
	if p.Unencodable != nil {
		t.Fatalf("ParamOf[%T]().Unencodable = %v", v, p.Unencodable)
	}
	raw, err := codec.Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%#v): %v", v, err)
	}
	got, err := p.Decode(raw)
	if err != nil {
		t.Fatalf("Decode(%x) into %T: %v", raw, v, err)
	}
	tv, ok := got.(T)
	if !ok {
		t.Fatalf("Decode returned %T, want %T", got, v)
	}
	if !reflect.DeepEqual(tv, v) {
		t.Errorf("round trip of %T: got %#v, want %#v", v, tv, v)
	}
}

func TestParamDecodeRoundTrip(t *testing.T) {
	roundTrip(t, 0)
	roundTrip(t, -42)
	roundTrip(t, int64(1)<<62)
	roundTrip(t, uint8(200))
	roundTrip(t, 3.25)
	roundTrip(t, true)
	roundTrip(t, "")
	roundTrip(t, "héllo, 世界")
	roundTrip(t, []byte{0, 1, 2})
	roundTrip(t, []int{1, -2, 3})
	roundTrip(t, []int(nil))
	roundTrip(t, []int{})
	roundTrip(t, []string{"a", "", "c"})
	roundTrip(t, [][]int{{1}, {}, {2, 3}})
	roundTrip(t, [3]int{7, 8, 9})
	roundTrip(t, map[string]float64{"a": 1.5, "b": -2})
	roundTrip(t, map[int]string{1: "one", -2: "minus two"})
	roundTrip(t, map[string][]int{"x": {1, 2}, "y": nil})
	roundTrip(t, regPoint{X: 1, Y: -2, Name: "p"})
	roundTrip(t, &regPoint{X: 3})
	roundTrip(t, (*regPoint)(nil))
	roundTrip(t, []regPoint{{X: 1}, {Y: 2}})
	roundTrip(t, map[string]regPoint{"o": {}})
	roundTrip(t, regNested{
		Rows:   [][]int{{1, 2}, {3}},
		Labels: []string{"l"},
		Points: []regPoint{{1, 2, "a"}},
		Meta:   map[string][]float64{"m": {0.5}},
		Inner:  &regNested{Labels: []string{"inner"}},
	})
	roundTrip(t, regNode{V: 1, Next: &regNode{V: 2}})
	roundTrip(t, regTree{Tag: "root", Kids: []regTree{{Tag: "leaf"}}})
}

func TestParamDecodeWrongType(t *testing.T) {
	raw, err := codec.Marshal("not a number")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := ParamOf[int]().Decode(raw); err == nil {
		t.Errorf("Decode of a string into int = %v, want an error", v)
	}
	if v, err := ParamOf[[]int]().Decode(raw); err == nil {
		t.Errorf("Decode of a string into []int = %v, want an error", v)
	}
	if v, err := ParamOf[int]().Decode(nil); err == nil {
		t.Errorf("Decode of no bytes = %v, want an error", v)
	}
	big, _ := codec.Marshal(uint64(1) << 40)
	if v, err := ParamOf[int8]().Decode(big); err == nil {
		t.Errorf("Decode of 2^40 into int8 = %v, want an overflow error", v)
	}
}

func TestParamUnencodable(t *testing.T) {
	cases := []struct {
		p    Param
		name string
	}{
		{ParamOf[func()](), "func"},
		{ParamOf[func(int) error](), "func with args"},
		{ParamOf[chan int](), "chan"},
		{ParamOf[<-chan string](), "receive-only chan"},
		{ParamOf[complex128](), "complex128"},
		{ParamOf[complex64](), "complex64"},
		{ParamOf[[]func()](), "slice of func"},
		{ParamOf[map[string]chan int](), "map of chan"},
		{ParamOf[*complex64](), "pointer to complex"},
		{ParamOf[regWithFunc](), "struct with a func field"},
		{ParamOf[[]regWithFunc](), "slice of struct with a func field"},
	}
	for _, c := range cases {
		if c.p.Unencodable == nil {
			t.Errorf("%s (%v): Unencodable is nil", c.name, c.p.Type)
		}
		if c.p.HasInterface {
			t.Errorf("%s: HasInterface set on an unencodable type", c.name)
		}
	}
	ok := []struct {
		p     Param
		name  string
		iface bool
	}{
		{ParamOf[int](), "int", false},
		{ParamOf[regPoint](), "struct", false},
		{ParamOf[regWithHiddenFunc](), "struct with unexported and cbor:\"-\" funcs", false},
		{ParamOf[regNode](), "recursive through a pointer", false},
		{ParamOf[regTree](), "recursive through a slice", false},
		{ParamOf[regA](), "mutually recursive, interface inside", true},
		{ParamOf[any](), "interface", true},
		{ParamOf[[]any](), "slice of interface", true},
		{ParamOf[map[string]any](), "map to interface", true},
		{ParamOf[regWithIface](), "struct with an interface field", true},
		{ParamOf[*regWithIface](), "pointer to struct with an interface field", true},
		{ParamOf[error](), "error interface", true},
	}
	for _, c := range ok {
		if c.p.Unencodable != nil {
			t.Errorf("%s: Unencodable = %v, want nil", c.name, c.p.Unencodable)
		}
		if c.p.HasInterface != c.iface {
			t.Errorf("%s: HasInterface = %v, want %v", c.name, c.p.HasInterface, c.iface)
		}
	}
	// The verdict names the offending field.
	if err := ParamOf[regWithFunc]().Unencodable; err != nil && !strings.Contains(err.Error(), "F") {
		t.Errorf("Unencodable = %q does not name field F", err)
	}
}

type fuzzArgs struct {
	Grid  [][]float64
	Names []string
	Sub   []struct {
		K string
		V []int
	}
	M map[string][]int
}

// FuzzDecodeArgs feeds arbitrary bytes to Param.Decode, as a worker does
// with arguments off the wire: it must return an error, never panic.
func FuzzDecodeArgs(f *testing.F) {
	seeds := []any{
		0, -1, int64(1) << 62, "", "text", []int{1, 2, 3}, []int(nil),
		map[string]float64{"a": 1, "b": 2.5},
		fuzzArgs{Grid: [][]float64{{1, 2}, {}}, Names: []string{"x"}, M: map[string][]int{"k": {1}}},
		[]any{1, "a", []any{2.5}}, map[string]any{"n": nil},
	}
	for _, s := range seeds {
		b, err := codec.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // huge array length
	f.Add(bytes.Repeat([]byte{0x81}, 100))                              // deep nesting
	f.Add([]byte{0xbf, 0x61, 0x61, 0x01, 0xff})                         // indefinite map
	params := []Param{
		ParamOf[int](), ParamOf[string](), ParamOf[[]int](), ParamOf[map[string]float64](),
		ParamOf[fuzzArgs](), ParamOf[*fuzzArgs](), ParamOf[any](), ParamOf[regNested](), ParamOf[regTree](),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range params {
			v, err := p.Decode(data)
			if err != nil {
				continue
			}
			// Whatever decodes must encode again: results and arguments
			// are re-encoded for memo keys and checkpoints.
			if _, err := codec.Marshal(v); err != nil && !strings.Contains(err.Error(), "year outside of range") {
				// (Times outside years 0-9999 decode from tag 1 but do
				// not encode as RFC 3339: a known limit, see codec.)
				t.Errorf("%v: decoded %#v from %x but cannot encode it: %v", p.Type, v, data, err)
			}
		}
	})
}

type regLossy struct {
	Name string
	hits int //lint:ignore U1000 the point of the test: a field the encoder skips
}

// TestRegisterRefusesLossyGoApps: a Go app whose values would arrive
// changed on a worker is refused at registration, naming the field; a
// bash app (whose arguments stay on the driver) is not.
func TestRegisterRefusesLossyGoApps(t *testing.T) {
	panicOf := func(a *App) (msg string) {
		defer func() {
			if r := recover(); r != nil {
				msg = fmt.Sprint(r)
			}
		}()
		Register(a)
		return ""
	}
	for _, a := range []*App{
		regApp("test.reg.lossy.param", "", Go, ParamOf[int](), ParamOf[int](), ParamOf[map[string]regLossy]()),
		regApp("test.reg.lossy.result", "", Go, ParamOf[*regLossy]()),
		regApp("test.reg.lossy.error", "", Go, ParamOf[error]()),
	} {
		msg := panicOf(a)
		if !strings.Contains(msg, a.Name) || !strings.Contains(msg, "cannot cross") {
			t.Errorf("%s: panic %q, want one naming the app and saying it cannot cross", a.Name, msg)
		}
		if _, ok := Lookup(a.Name); ok {
			t.Errorf("%s registered", a.Name)
		}
	}
	if msg := panicOf(regApp("test.reg.lossy.param", "", Go, ParamOf[int](), ParamOf[int](), ParamOf[map[string]regLossy]())); !strings.Contains(msg, "parameter 2") || !strings.Contains(msg, "regLossy.hits") {
		t.Errorf("panic %q does not name parameter 2 and the field", msg)
	}
	if Lossy := ParamOf[regLossy]().Lossy; Lossy == nil {
		t.Error("ParamOf[regLossy]().Lossy is nil")
	}
}
