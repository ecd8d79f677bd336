// Package codec holds the CBOR modes used everywhere bytes leave the process:
// the wire between driver, interchange and pools, memo keys, and checkpoints.
//
// Encoding is RFC 8949 core deterministic, so that equal values give equal
// bytes (memo keys depend on it). Decoding is bounded, because the bytes may
// come from the network or from a damaged file.
package codec

import (
	"fmt"
	"math"
	"reflect"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Decode limits. They bound the work a hostile or corrupt input can cause.
const (
	// MaxNesting is the deepest array/map nesting accepted.
	MaxNesting = 64
	// MaxArrayElements is the largest array accepted.
	MaxArrayElements = 16 << 20
	// MaxMapPairs is the largest map accepted.
	MaxMapPairs = 4 << 20
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	eo := cbor.CoreDetEncOptions()
	eo.Time = cbor.TimeRFC3339Nano
	encMode, err = eo.EncMode()
	if err != nil {
		panic(err) // static options: cannot fail at run time
	}
	decMode, err = cbor.DecOptions{
		MaxNestedLevels:  MaxNesting,
		MaxArrayElements: MaxArrayElements,
		MaxMapPairs:      MaxMapPairs,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		DefaultMapType:   reflect.TypeOf(map[string]any(nil)),
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v deterministically.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes data into v within the decode limits.
func Unmarshal(data []byte, v any) error { return decMode.Unmarshal(data, v) }

// RawMessage is an encoded CBOR value carried without decoding.
type RawMessage = cbor.RawMessage

// Encodable reports whether values of type t can be encoded, and if not,
// why. It looks at the static type only: an interface type is encodable
// here, and its dynamic value must be checked with EncodableValue.
func Encodable(t reflect.Type) error {
	if t == nil {
		return nil
	}
	if v, ok := verdicts.Load(t); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	err := encodable(t, map[reflect.Type]bool{})
	if err == nil {
		verdicts.Store(t, nil)
	} else {
		verdicts.Store(t, err)
	}
	return err
}

// EncodableValue reports whether v can be encoded, looking at its dynamic
// type and, where interfaces inside may hold anything, at its contents
// (with Check, so that a cycle is an error rather than a stack overflow).
func EncodableValue(v any) error { return Check(v, nil, Limits{}) }

var verdicts sync.Map // reflect.Type → error or nil

func encodable(t reflect.Type, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128, reflect.Uintptr:
		return fmt.Errorf("type %s (a %s) cannot be encoded as CBOR", t, t.Kind())
	case reflect.Pointer, reflect.Slice, reflect.Array:
		if err := encodable(t.Elem(), seen); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	case reflect.Map:
		if err := encodable(t.Key(), seen); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		if err := encodable(t.Elem(), seen); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !isEncodedField(f) {
				continue
			}
			if err := encodable(f.Type, seen); err != nil {
				return fmt.Errorf("field %s.%s: %w", t, f.Name, err)
			}
		}
	}
	return nil
}

// ContainsInterface reports whether a value of type t can hold an interface
// value (t is one, or has one inside), so that only the dynamic value tells
// whether it encodes.
func ContainsInterface(t reflect.Type) bool {
	if v, ok := ifaces.Load(t); ok {
		return v.(bool)
	}
	has := hasInterface(t, map[reflect.Type]bool{})
	ifaces.Store(t, has)
	return has
}

var ifaces sync.Map // reflect.Type → bool

func hasInterface(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return hasInterface(t.Elem(), seen)
	case reflect.Map:
		return hasInterface(t.Key(), seen) || hasInterface(t.Elem(), seen)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if f := t.Field(i); isEncodedField(f) && hasInterface(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

// UnmarshalPlain is Unmarshal for values of types with interfaces inside:
// a decoded integer in an interface slot is an int (the decoder gives
// uint64 or int64), so that plain data (see Check's Plain) comes back as
// the type it was sent as.
func UnmarshalPlain(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return err
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		fixInts(rv.Elem())
	}
	return nil
}

func fixInts(v reflect.Value) {
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() || !v.CanSet() {
			return
		}
		if x, changed := plainInts(v.Elem().Interface()); changed {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.Pointer:
		if !v.IsNil() && ContainsInterface(v.Type().Elem()) {
			fixInts(v.Elem())
		}
	case reflect.Slice, reflect.Array:
		if ContainsInterface(v.Type().Elem()) {
			for i := 0; i < v.Len(); i++ {
				fixInts(v.Index(i))
			}
		}
	case reflect.Map:
		if v.IsNil() || !ContainsInterface(v.Type().Elem()) {
			return
		}
		// Map values are not addressable: fix a copy and store it back.
		// (Interface keys keep their decoded type.)
		it := v.MapRange()
		type kv struct{ k, v reflect.Value }
		var fixed []kv
		for it.Next() {
			nv := reflect.New(v.Type().Elem()).Elem()
			nv.Set(it.Value())
			fixInts(nv)
			fixed = append(fixed, kv{it.Key(), nv})
		}
		for _, e := range fixed {
			v.SetMapIndex(e.k, e.v)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() && ContainsInterface(f.Type()) {
				fixInts(f)
			}
		}
	}
}

// plainInts rewrites the integers in a decoded interface value as ints.
func plainInts(x any) (any, bool) {
	switch y := x.(type) {
	case uint64:
		if y <= math.MaxInt {
			return int(y), true
		}
	case int64:
		if y >= math.MinInt && y <= math.MaxInt {
			return int(y), true
		}
	case []any:
		for i, e := range y {
			if z, ok := plainInts(e); ok {
				y[i] = z
			}
		}
	case map[string]any:
		for k, e := range y {
			if z, ok := plainInts(e); ok {
				y[k] = z
			}
		}
	}
	return x, false
}
