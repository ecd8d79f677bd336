// Package registry maps app names to type-erased invokers. Apps register at
// package initialisation in every copy of the binary, so a worker pool started
// from the same executable finds the same names; the registry digest lets the
// two sides check that they agree before any task crosses.
package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/parsl-go/parsl/internal/codec"
)

// Kind says how a task of an app is executed.
type Kind uint8

const (
	// Go apps run their function wherever the task lands.
	Go Kind = iota
	// Bash apps build a command line on the driver; a pool runs it.
	Bash
	// Join apps run on the driver and return a future of inner tasks.
	Join
)

func (k Kind) String() string {
	switch k {
	case Go:
		return "go"
	case Bash:
		return "bash"
	case Join:
		return "join"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Param describes one parameter type of an app.
type Param struct {
	Type reflect.Type
	// Unencodable is non-nil when values of Type can never be encoded.
	Unencodable error
	// HasInterface is true when only the dynamic value tells whether it encodes.
	HasInterface bool
	// Lossy is non-nil when values of Type would not survive a trip to a
	// worker and back (an unexported field, an interface with methods):
	// Register refuses such a Go app, and the kernel refuses to key or
	// checkpoint such a value.
	Lossy error
	// Decode decodes one CBOR argument into a value of Type (boxed).
	Decode func(raw []byte) (any, error)
}

// App is a registered app.
type App struct {
	Name      string
	Version   string
	Kind      Kind
	Params    []Param
	Result    Param
	Cache     bool     // caching requested by the app
	Executors []string // executor labels allowed; empty = any

	// Invoke runs a Go or join app's function, or a bash app's command
	// builder (which returns the command string), on resolved arguments.
	Invoke func(ctx context.Context, args []any) (any, error)
}

// Signature returns a readable signature, used in the digest and errors.
func (a *App) Signature() string {
	var b strings.Builder
	b.WriteString(a.Kind.String())
	b.WriteString(" ")
	b.WriteString(a.Name)
	b.WriteString("@")
	b.WriteString(a.Version)
	b.WriteString("(")
	for i, p := range a.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(typeName(p.Type))
	}
	b.WriteString(") ")
	b.WriteString(typeName(a.Result.Type))
	return b.String()
}

// typeName spells a type with full package paths, so that two packages
// with the same short name do not give the same signature.
func typeName(t reflect.Type) string {
	if t == nil {
		return "any"
	}
	if t.Name() != "" {
		if t.PkgPath() != "" {
			return t.PkgPath() + "." + t.Name()
		}
		return t.Name()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + typeName(t.Elem())
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Array:
		return fmt.Sprintf("[%d]%s", t.Len(), typeName(t.Elem()))
	case reflect.Map:
		return "map[" + typeName(t.Key()) + "]" + typeName(t.Elem())
	case reflect.Chan:
		return "chan " + typeName(t.Elem())
	}
	return t.String()
}

// ParamOf describes type T.
func ParamOf[T any]() Param {
	t := reflect.TypeFor[T]()
	p := Param{Type: t, Unencodable: codec.Encodable(t)}
	if p.Unencodable == nil {
		p.HasInterface = codec.ContainsInterface(t)
		p.Lossy = codec.Lossy(t)
	}
	p.Decode = func(raw []byte) (any, error) {
		var v T
		if err := codec.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		return v, nil
	}
	if p.HasInterface {
		// Integers in interfaces come back as int, as they were sent
		// (plain data; see codec.Check).
		p.Decode = func(raw []byte) (any, error) {
			var v T
			if err := codec.UnmarshalPlain(raw, &v); err != nil {
				return nil, err
			}
			return v, nil
		}
	}
	return p
}

var (
	mu     sync.RWMutex
	apps   = map[string]*App{}
	frozen atomic.Bool
)

// Register adds an app. It panics on a duplicate name or after Freeze,
// because both are programming errors that must show at start-up, not as a
// task failing on some remote node.
func Register(a *App) *App {
	if a.Name == "" {
		panic("parsl: an app needs a non-empty name")
	}
	if a.Kind == Go {
		// A Go app's arguments and result may cross to a worker pool; a
		// type that would arrive changed is refused now, naming what to
		// change, rather than returning zero values on some remote node.
		for i, p := range a.Params {
			if p.Lossy != nil {
				panic(fmt.Sprintf("parsl: app %q: parameter %d (%s) cannot cross to a worker intact: %v", a.Name, i+1, p.Type, p.Lossy))
			}
		}
		if a.Result.Lossy != nil {
			panic(fmt.Sprintf("parsl: app %q: result type %s cannot cross back from a worker intact: %v", a.Name, a.Result.Type, a.Result.Lossy))
		}
	}
	if frozen.Load() {
		panic(fmt.Sprintf("parsl: app %q registered after parsl.Load; register apps at package level (var X = parsl.Register…) so every copy of the binary has them", a.Name))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := apps[a.Name]; dup {
		panic(fmt.Sprintf("parsl: app %q registered twice; app names must be unique in a binary", a.Name))
	}
	apps[a.Name] = a
	return a
}

// Lookup finds an app by name.
func Lookup(name string) (*App, bool) {
	mu.RLock()
	a, ok := apps[name]
	mu.RUnlock()
	return a, ok
}

// Freeze forbids further registration. Load calls it: after that the set of
// apps, and so the digest, cannot change.
func Freeze() { frozen.Store(true) }

// Digest is a hex SHA-256 over the sorted signatures of every app. Two
// binaries with the same digest agree on names, kinds, versions and types.
func Digest() string {
	mu.RLock()
	sigs := make([]string, 0, len(apps))
	for _, a := range apps {
		sigs = append(sigs, a.Signature())
	}
	mu.RUnlock()
	sort.Strings(sigs)
	h := sha256.New()
	for _, s := range sigs {
		h.Write([]byte(s))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Names returns the registered app names, sorted.
func Names() []string {
	mu.RLock()
	names := make([]string, 0, len(apps))
	for n := range apps {
		names = append(names, n)
	}
	mu.RUnlock()
	sort.Strings(names)
	return names
}
