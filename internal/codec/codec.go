// Package codec holds the CBOR modes used everywhere bytes leave the process:
// the wire between driver, interchange and pools, memo keys, and checkpoints.
//
// Encoding is RFC 8949 core deterministic, so that equal values give equal
// bytes (memo keys depend on it). Decoding is bounded, because the bytes may
// come from the network or from a damaged file.
package codec

import (
	"fmt"
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

// EncodableValue reports whether v can be encoded, looking at its dynamic type.
func EncodableValue(v any) error {
	if v == nil {
		return nil
	}
	t := reflect.TypeOf(v)
	if err := Encodable(t); err != nil {
		return err
	}
	if ContainsInterface(t) {
		// The static check passed but an interface inside may hold anything.
		if _, err := encMode.Marshal(v); err != nil {
			return err
		}
	}
	return nil
}

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
			if !f.IsExported() || f.Tag.Get("cbor") == "-" {
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
	return hasInterface(t, map[reflect.Type]bool{})
}

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
			if f := t.Field(i); f.IsExported() && hasInterface(f.Type, seen) {
				return true
			}
		}
	}
	return false
}
