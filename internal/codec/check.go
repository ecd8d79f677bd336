package codec

import (
	"encoding"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/fxamacker/cbor/v2"
)

// The encoder recurses once per level of the value and has no cycle
// detection: a pointer cycle or a value nested a million deep overflows
// the goroutine stack, which kills the process without a chance to
// recover. So every value that leaves the process is walked first, with
// bounded recursion, and refused with a *LimitError.

// Rules a value can break, as in LimitError.Rule.
const (
	RuleCycle     = "cycle"     // the value refers back to itself
	RuleNesting   = "nesting"   // arrays/maps nested deeper than the decoder accepts
	RuleArray     = "array"     // an array with more than MaxArrayElements elements
	RuleMap       = "map"       // a map with more than MaxMapPairs pairs
	RuleSize      = "size"      // too many values to encode at all
	RuleInterface = "interface" // an interface holds a value that would not come back as itself
)

// WalkDepth bounds the nesting of values that are encoded but never
// decoded by a peer (memo keys): deep enough for any real data, shallow
// enough that neither the walk nor the encoder can exhaust the stack.
const WalkDepth = 10000

// maxNodes (a variable for tests) bounds the number of values one walk visits, so that a graph
// sharing sub-values (which the encoder would write out again at every
// reference, exponentially) fails instead of exhausting memory.
var maxNodes = 1 << 26

// Limits says what a value must satisfy to be accepted where it goes.
type Limits struct {
	// Nesting is the deepest nesting of arrays and maps (structs count as
	// maps) the value itself may have, where it sits in its frame; 0
	// means WalkDepth with no decode limits (arrays, maps) checked.
	Nesting int
	// Plain requires every interface value inside to hold plain data
	// (see CheckPlain), so that it comes back from a worker as itself.
	Plain bool
}

// LimitError is a value refused before encoding: it would crash the
// encoder (a cycle, extreme depth), be refused by the decoder on the other
// side (a decode limit), or not come back as itself (an interface value).
type LimitError struct {
	// Rule is the rule broken: RuleCycle, RuleNesting, RuleArray, RuleMap,
	// RuleSize or RuleInterface.
	Rule string
	// Path locates the offending value inside the argument or result, in
	// Go syntax (".Next.Items[3]"); empty for the value itself.
	Path string
	// Msg says what is wrong and what to change.
	Msg string
}

func (e *LimitError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return "at " + e.Path + ": " + e.Msg
}

// walkErr is the error of a walk while it unwinds: each level adds its
// path segment and, for references, its identity (to tell a cycle from
// mere depth).
type walkErr struct {
	rule string
	msg  string
	segs []string // innermost first
	refs []ref    // references on the path, innermost first
}

func (e *walkErr) Error() string { return e.msg }

type ref struct {
	p   unsafe.Pointer
	n   int // slice length: two slices of one array differ by length
	typ reflect.Type
	seg int // len(walkErr.segs) when added: the segments above it locate it
}

// typeInfo is what the walk needs to know about a type, computed once.
type typeInfo struct {
	// static: values of the type hold no pointer, slice, map or interface,
	// so they cannot be cyclic, their depth is fixed, and only the static
	// verdict (depth) matters.
	static bool
	// depth is the CBOR nesting of a static type.
	depth int
	// opaque: the type encodes itself (a marshaler, or a type the encoder
	// knows, like time.Time); the walk does not look inside.
	opaque bool
	// bytes: a []byte or [N]byte, encoded as one byte string.
	bytes bool
}

var infos sync.Map // reflect.Type → *typeInfo

var (
	tMarshaler       = reflect.TypeFor[cbor.Marshaler]()
	tBinaryMarshaler = reflect.TypeFor[encoding.BinaryMarshaler]()
	tUnmarshaler     = reflect.TypeFor[cbor.Unmarshaler]()
	tBinaryUnmarsh   = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	tTime            = reflect.TypeFor[time.Time]()
	tBigInt          = reflect.TypeFor[big.Int]()
	tAny             = reflect.TypeFor[any]()
	tAnySlice        = reflect.TypeFor[[]any]()
	tAnyMap          = reflect.TypeFor[map[string]any]()
	tBytes           = reflect.TypeFor[[]byte]()
)

func selfEncoding(t reflect.Type) bool {
	if t == tTime || t == tBigInt {
		return true
	}
	if t.Implements(tMarshaler) || t.Implements(tBinaryMarshaler) {
		return true
	}
	pt := reflect.PointerTo(t)
	return pt.Implements(tMarshaler) || pt.Implements(tBinaryMarshaler)
}

func infoOf(t reflect.Type) *typeInfo {
	if v, ok := infos.Load(t); ok {
		return v.(*typeInfo)
	}
	ti := computeInfo(t, map[reflect.Type]bool{})
	infos.Store(t, ti)
	return ti
}

func computeInfo(t reflect.Type, visiting map[reflect.Type]bool) *typeInfo {
	if v, ok := infos.Load(t); ok {
		return v.(*typeInfo)
	}
	if visiting[t] {
		// A recursive type can only recurse through a pointer, slice or
		// map, so it is not static.
		return &typeInfo{}
	}
	visiting[t] = true
	defer delete(visiting, t)
	if selfEncoding(t) {
		return &typeInfo{opaque: true}
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.String:
		return &typeInfo{static: true}
	case reflect.Slice:
		return &typeInfo{bytes: t.Elem().Kind() == reflect.Uint8}
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return &typeInfo{static: true, bytes: true}
		}
		e := computeInfo(t.Elem(), visiting)
		if e.static && t.Len() <= MaxArrayElements {
			return &typeInfo{static: true, depth: 1 + e.depth}
		}
		return &typeInfo{}
	case reflect.Struct:
		ti := &typeInfo{static: true}
		for _, f := range encodedFields(t) {
			e := computeInfo(f.typ, visiting)
			if !e.static {
				return &typeInfo{}
			}
			if f.embedded {
				ti.depth = max(ti.depth, e.depth-1)
			} else {
				ti.depth = max(ti.depth, e.depth)
			}
		}
		ti.depth++
		return ti
	}
	// Pointers, maps, interfaces (and kinds Encodable refuses).
	return &typeInfo{}
}

// field is one struct field the encoder writes. The fields of an
// embedded struct are promoted by the encoder (no level of their own), so
// the walk visits an embedded struct at its parent's depth.
type field struct {
	i        int
	typ      reflect.Type
	embedded bool
}

var fieldCache sync.Map // reflect.Type → []field

func encodedFields(t reflect.Type) []field {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]field)
	}
	var fs []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if skipField(f) {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		embedded := f.Anonymous && ft.Kind() == reflect.Struct && !hasTagName(f)
		if !f.IsExported() && !embedded {
			continue
		}
		fs = append(fs, field{i: i, typ: f.Type, embedded: embedded})
	}
	fieldCache.Store(t, fs)
	return fs
}

// isEncodedField reports whether the encoder writes f (or, for an
// embedded struct, its promoted fields).
func isEncodedField(f reflect.StructField) bool {
	if skipField(f) {
		return false
	}
	ft := f.Type
	for ft.Kind() == reflect.Pointer {
		ft = ft.Elem()
	}
	return f.IsExported() || f.Anonymous && ft.Kind() == reflect.Struct
}

func skipField(f reflect.StructField) bool {
	if f.Name == "_" {
		return true
	}
	tag := f.Tag.Get("cbor")
	if tag == "" {
		tag = f.Tag.Get("json")
	}
	return tag == "-"
}

func hasTagName(f reflect.StructField) bool {
	tag := f.Tag.Get("cbor")
	if tag == "" {
		tag = f.Tag.Get("json")
	}
	name, _, _ := strings.Cut(tag, ",")
	return name != ""
}

// Check walks v, whose declared type is static (nil: v's own type), and
// reports the first thing that stops it from crossing as lim says: a
// cycle, nesting, an over-long array or map, a value that cannot be
// encoded at all, or (lim.Plain) an interface holding data that would not
// come back as itself. Values of types without pointers, slices, maps and
// interfaces are not walked at all.
func Check(v any, static reflect.Type, lim Limits) error {
	_, err := check(v, static, lim)
	return err
}

// check is Check that also reports whether the walk proved the encoding
// within lim.Nesting and the array and map limits: it counts levels as
// the encoder writes them, except inside values that encode themselves
// (marshalers, big.Int), whose output it does not see.
func check(v any, static reflect.Type, lim Limits) (exact bool, err error) {
	if v == nil {
		return true, nil
	}
	rv := reflect.ValueOf(v)
	if static == nil {
		static = rv.Type()
	}
	iface := static.Kind() == reflect.Interface
	if !iface && static != rv.Type() {
		static = rv.Type()
	}
	if !iface {
		if err := Encodable(static); err != nil {
			return false, err
		}
		if ti := infoOf(static); ti.static {
			return ti.depth <= lim.Nesting, nil
		} else if ti.opaque {
			return static == tTime, nil
		}
	}
	w := walker{depthMax: lim.Nesting, plain: lim.Plain, decode: lim.Nesting > 0, nodes: maxNodes}
	if w.depthMax <= 0 {
		w.depthMax = WalkDepth
	}
	if iface {
		err = w.iface(rv, 0, 0)
	} else {
		err = w.value(rv, 0, 0)
	}
	if err == nil {
		return !w.opaque, nil
	}
	we, ok := err.(*walkErr)
	if !ok {
		return false, err
	}
	return false, we.finish()
}

// finish turns an unwound walk error into a LimitError; a path that
// passes the same reference twice is a cycle, whatever rule stopped it.
func (e *walkErr) finish() error {
	le := &LimitError{Rule: e.rule, Msg: e.msg}
	if e.rule == RuleNesting {
		// refs are innermost first; the repeat nearest the top is where
		// the value first comes round again.
		seen := make(map[ref]int, len(e.refs))
		for i := len(e.refs) - 1; i >= 0; i-- {
			r := e.refs[i]
			r.seg = 0
			if o, dup := seen[r]; dup {
				outer := "the top of the value"
				if p := joinPath(e.segs[e.refs[o].seg:]); p != "" {
					outer = p
				}
				le.Rule = RuleCycle
				le.Path = joinPath(e.segs[e.refs[i].seg:])
				le.Msg = fmt.Sprintf("the value refers back to itself: this %s is the one at %s (a cycle); CBOR has no references, so it cannot be encoded: break the cycle, or refer to the shared value by an index or ID", r.typ, outer)
				return le
			}
			seen[r] = i
		}
	}
	if len(e.segs) > 24 {
		// A very deep value: the first segments locate it.
		le.Path = joinPath(e.segs[len(e.segs)-24:]) + "…"
	} else {
		le.Path = joinPath(e.segs)
	}
	return le
}

func joinPath(innerFirst []string) string {
	var b strings.Builder
	for i := len(innerFirst) - 1; i >= 0; i-- {
		b.WriteString(innerFirst[i])
	}
	return b.String()
}

type walker struct {
	depthMax int
	plain    bool
	decode   bool
	nodes    int
	opaque   bool // met a value that encodes itself (its depth unseen)
}

func (w *walker) fail(rule, msg string) error { return &walkErr{rule: rule, msg: msg} }

func wrap(err error, seg string, r *ref) error {
	if we, ok := err.(*walkErr); ok {
		if seg != "" {
			we.segs = append(we.segs, seg)
		}
		if r != nil {
			x := *r
			x.seg = len(we.segs)
			we.refs = append(we.refs, x)
		}
	}
	return err
}

// value walks v at CBOR nesting depth; hops counts pointer and interface
// steps, which add no nesting but do add recursion.
func (w *walker) value(v reflect.Value, depth, hops int) error {
	w.nodes--
	if w.nodes < 0 {
		return w.fail(RuleSize, fmt.Sprintf("the value has more than %d parts (shared sub-values count at every reference, as the encoder writes them out again); pass large data in a file (parsl.File)", maxNodes))
	}
	if hops > 4*w.depthMax+64 {
		return w.nestingErr()
	}
	t := v.Type()
	ti := infoOf(t)
	if ti.opaque {
		w.opaque = w.opaque || t != tTime
		return nil
	}
	if ti.static {
		if depth+ti.depth > w.depthMax {
			return w.nestingErr()
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		if err := w.value(v.Elem(), depth, hops+1); err != nil {
			return wrap(err, "", &ref{p: v.UnsafePointer(), typ: t})
		}
	case reflect.Interface:
		return w.iface(v, depth, hops)
	case reflect.Slice:
		if v.IsNil() || ti.bytes {
			return nil
		}
		return w.list(v, depth, hops, &ref{p: v.UnsafePointer(), n: v.Len(), typ: t})
	case reflect.Array:
		return w.list(v, depth, hops, nil)
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		if depth+1 > w.depthMax {
			return w.nestingErr()
		}
		if w.decode && v.Len() > MaxMapPairs {
			return w.fail(RuleMap, fmt.Sprintf("a %s with %d pairs is above the decode limit of %d pairs per map (codec.MaxMapPairs), which every worker pool and the interchange enforce and which cannot be raised: split it over several tasks, or pass it in a file (parsl.File)", t, v.Len(), MaxMapPairs))
		}
		r := &ref{p: v.UnsafePointer(), typ: t}
		kt, et := infoOf(t.Key()), infoOf(t.Elem())
		if (kt.static || kt.opaque) && (et.static || et.opaque) {
			w.opaque = w.opaque || kt.opaque && t.Key() != tTime || et.opaque && t.Elem() != tTime
			if kt.depth+1+depth > w.depthMax || et.depth+1+depth > w.depthMax {
				return wrap(w.nestingErr(), "", r)
			}
			w.nodes -= v.Len()
			return nil
		}
		it := v.MapRange()
		for it.Next() {
			k := it.Key()
			if err := w.value(k, depth+1, hops); err != nil {
				return wrap(err, fmt.Sprintf("[key %v]", shortKey(k)), r)
			}
			if err := w.value(it.Value(), depth+1, hops); err != nil {
				return wrap(err, fmt.Sprintf("[%v]", shortKey(k)), r)
			}
		}
	case reflect.Struct:
		if depth+1 > w.depthMax {
			return w.nestingErr()
		}
		for _, f := range encodedFields(t) {
			d := depth + 1
			if f.embedded {
				d = depth
			}
			if err := w.value(v.Field(f.i), d, hops); err != nil {
				return wrap(err, "."+t.Field(f.i).Name, nil)
			}
		}
	default:
		if err := Encodable(t); err != nil {
			return w.fail("", err.Error())
		}
	}
	return nil
}

func shortKey(k reflect.Value) string {
	s := fmt.Sprint(k.Interface())
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

func (w *walker) list(v reflect.Value, depth, hops int, r *ref) error {
	t := v.Type()
	if depth+1 > w.depthMax {
		return wrapRef(w.nestingErr(), r)
	}
	n := v.Len()
	if w.decode && n > MaxArrayElements {
		return w.fail(RuleArray, fmt.Sprintf("a %s with %d elements is above the decode limit of %d elements per array (codec.MaxArrayElements), which every worker pool and the interchange enforce and which cannot be raised: split it over several tasks, or pass it in a file (parsl.File)", t, n, MaxArrayElements))
	}
	et := infoOf(t.Elem())
	if et.opaque {
		w.opaque = w.opaque || t.Elem() != tTime
		return nil
	}
	if et.static {
		if depth+1+et.depth > w.depthMax {
			return wrapRef(w.nestingErr(), r)
		}
		w.nodes -= n
		if w.nodes < 0 {
			return w.value(v, depth, hops) // reports RuleSize
		}
		return nil
	}
	for i := 0; i < n; i++ {
		if err := w.value(v.Index(i), depth+1, hops); err != nil {
			return wrap(err, fmt.Sprintf("[%d]", i), r)
		}
	}
	return nil
}

func wrapRef(err error, r *ref) error { return wrap(err, "", r) }

func (w *walker) nestingErr() error {
	if w.decode {
		return w.fail(RuleNesting, fmt.Sprintf("the value is nested more than %d levels deep (arrays, slices, maps and structs each count one); worker pools decode at most %d levels (codec.MaxNesting, less the levels of the message around the value), a limit that cannot be raised: flatten the data, or pass it in a file (parsl.File)", w.depthMax, MaxNesting))
	}
	return w.fail(RuleNesting, fmt.Sprintf("the value is nested more than %d levels deep; flatten it", w.depthMax))
}

// iface walks the value held by an interface slot.
func (w *walker) iface(v reflect.Value, depth, hops int) error {
	w.nodes--
	if w.nodes < 0 {
		return w.value(v, depth, hops) // reports RuleSize
	}
	if v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return nil
	}
	t := v.Type()
	if err := Encodable(t); err != nil {
		return w.fail("", fmt.Sprintf("an interface holds %v", err))
	}
	if !w.plain {
		return w.value(v, depth, hops+1)
	}
	switch t {
	case tBool, tInt, tFloat64, tString:
		return nil
	case tBytes:
		if v.IsNil() {
			return w.fail(RuleInterface, "an interface holds a nil []byte, which comes back from a worker as nil: store nil itself, or an empty []byte{}")
		}
		return nil
	case tAnySlice:
		if v.IsNil() {
			return w.fail(RuleInterface, "an interface holds a nil []any, which comes back from a worker as nil: store nil itself, or an empty []any{}")
		}
		if depth+1 > w.depthMax {
			return w.nestingErr()
		}
		if w.decode && v.Len() > MaxArrayElements {
			return w.list(v, depth, hops, nil)
		}
		r := &ref{p: v.UnsafePointer(), n: v.Len(), typ: t}
		for i := 0; i < v.Len(); i++ {
			if err := w.iface(v.Index(i), depth+1, hops+1); err != nil {
				return wrap(err, fmt.Sprintf("[%d]", i), r)
			}
		}
		return nil
	case tAnyMap:
		if v.IsNil() {
			return w.fail(RuleInterface, "an interface holds a nil map[string]any, which comes back from a worker as nil: store nil itself, or an empty map")
		}
		if depth+1 > w.depthMax {
			return w.nestingErr()
		}
		if w.decode && v.Len() > MaxMapPairs {
			return w.value(v, depth, hops)
		}
		r := &ref{p: v.UnsafePointer(), typ: t}
		it := v.MapRange()
		for it.Next() {
			if err := w.iface(it.Value(), depth+1, hops+1); err != nil {
				return wrap(err, fmt.Sprintf("[%q]", it.Key().String()), r)
			}
		}
		return nil
	}
	// A cycle through an interface slot would otherwise be reported as
	// a type error on the first lap only; report the type: it is the
	// thing to change.
	return w.fail(RuleInterface, fmt.Sprintf("an interface holds a %s, which comes back from a worker as %s, not as a %s; declare the parameter or result (or the field) with the concrete type %s instead of an interface, or store plain data in it: nil, bool, int, float64, string, []byte, []any or map[string]any of those", t, decodedAs(t), t, t))
}

var (
	tBool    = reflect.TypeFor[bool]()
	tInt     = reflect.TypeFor[int]()
	tFloat64 = reflect.TypeFor[float64]()
	tString  = reflect.TypeFor[string]()
)

// decodedAs names what a value of type t held in an interface becomes
// after a trip through CBOR.
func decodedAs(t reflect.Type) string {
	if t == tTime {
		return "a string"
	}
	if t == tBigInt || t == reflect.PointerTo(tBigInt) {
		return "a big.Int tag"
	}
	if selfEncoding(t) {
		return "whatever its CBOR decodes to (a byte string or generic data)"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return decodedAs(t.Elem())
	case reflect.Bool:
		return "a bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an int"
	case reflect.Float32, reflect.Float64:
		return "a float64"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a []byte"
		}
		return "a []any"
	case reflect.Map, reflect.Struct:
		return "a map[string]any"
	}
	return "something else"
}

// Lossy reports why values of type t would not survive a trip to a worker
// and back, judging from the type alone: a struct field the encoder skips
// because it is unexported, an interface type with methods (the decoder
// cannot build a value for it), or a marshaler without its unmarshaler.
// Kinds that cannot be encoded at all are Encodable's business; nil means
// nothing is lost that the type shows.
func Lossy(t reflect.Type) error {
	if t == nil {
		return nil
	}
	if v, ok := lossy.Load(t); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	err := lossyType(t, map[reflect.Type]bool{})
	if err == nil {
		lossy.Store(t, nil)
	} else {
		lossy.Store(t, err)
	}
	return err
}

var lossy sync.Map

func lossyType(t reflect.Type, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	if t == tTime || t == tBigInt {
		return nil
	}
	pt := reflect.PointerTo(t)
	switch {
	case t.Implements(tMarshaler) || pt.Implements(tMarshaler):
		if !pt.Implements(tUnmarshaler) {
			return fmt.Errorf("type %s has a MarshalCBOR method but no UnmarshalCBOR, so a worker cannot decode it: add UnmarshalCBOR on *%s", t, t.Name())
		}
		return nil
	case t.Implements(tBinaryMarshaler) || pt.Implements(tBinaryMarshaler):
		if !pt.Implements(tBinaryUnmarsh) && !pt.Implements(tUnmarshaler) {
			return fmt.Errorf("type %s has a MarshalBinary method but no UnmarshalBinary, so a worker cannot decode it: add UnmarshalBinary on *%s", t, t.Name())
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() > 0 {
			hint := "use a concrete type"
			if t == reflect.TypeFor[error]() {
				hint = "return the failure as the app's error, or carry its text in a string field"
			}
			return fmt.Errorf("type %s is an interface with methods: CBOR carries no Go types, so a worker cannot decode a value into it; %s", t, hint)
		}
	case reflect.Pointer, reflect.Slice, reflect.Array:
		if err := lossyType(t.Elem(), seen); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	case reflect.Map:
		if err := lossyType(t.Key(), seen); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		if err := lossyType(t.Elem(), seen); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if skipField(f) {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if !f.IsExported() && !(f.Anonymous && ft.Kind() == reflect.Struct) {
				return fmt.Errorf("field %s.%s is unexported: the encoder skips it, so on a worker it would silently be its zero value; export the field, give %s MarshalCBOR/UnmarshalCBOR (or MarshalBinary/UnmarshalBinary) methods, or tag the field `cbor:\"-\"` if a zero value there is fine", t, f.Name, t)
			}
			if err := lossyType(f.Type, seen); err != nil {
				return fmt.Errorf("field %s.%s: %w", t, f.Name, err)
			}
		}
	}
	return nil
}

// MarshalChecked is Marshal for a value that crosses to a peer: Check
// first (so that a cycle or extreme depth fails instead of overflowing the
// stack), then, when lim has decode limits, the encoded bytes are held to
// them exactly (a marshaler's own output is not walked).
func MarshalChecked(v any, static reflect.Type, lim Limits) ([]byte, error) {
	if !lim.Plain || static == nil || static.Kind() != reflect.Interface {
		switch v.(type) {
		case int, int64, uint64, string, bool, float64, []byte:
			// The common case pays no lookups.
			return encMode.Marshal(v)
		}
	}
	exact, err := check(v, static, lim)
	if err != nil {
		return nil, err
	}
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, err
	}
	if lim.Nesting > 0 && !exact {
		// The walk did not see everything (a marshaler's output): hold
		// the bytes to the decoder's limits.
		if err := wellformed(b, lim.Nesting); err != nil {
			return nil, err
		}
	}
	return b, nil
}

var wfModes sync.Map // nesting → cbor.DecMode

func wellformed(b []byte, nesting int) error {
	var dm cbor.DecMode
	if v, ok := wfModes.Load(nesting); ok {
		dm = v.(cbor.DecMode)
	} else {
		var err error
		dm, err = cbor.DecOptions{
			MaxNestedLevels:  max(nesting, 4),
			MaxArrayElements: MaxArrayElements,
			MaxMapPairs:      MaxMapPairs,
			IndefLength:      cbor.IndefLengthForbidden,
		}.DecMode()
		if err != nil {
			return err
		}
		wfModes.Store(nesting, dm)
	}
	err := dm.Wellformed(b)
	if err == nil {
		return nil
	}
	var (
		ne *cbor.MaxNestedLevelError
		ae *cbor.MaxArrayElementsError
		me *cbor.MaxMapPairsError
	)
	w := walker{depthMax: nesting, decode: true}
	switch {
	case errors.As(err, &ne):
		return w.nestingErr().(*walkErr).finish()
	case errors.As(err, &ae):
		return &LimitError{Rule: RuleArray, Msg: fmt.Sprintf("its encoding has an array above the decode limit of %d elements (codec.MaxArrayElements), which cannot be raised: split the data over several tasks, or pass it in a file (parsl.File)", MaxArrayElements)}
	case errors.As(err, &me):
		return &LimitError{Rule: RuleMap, Msg: fmt.Sprintf("its encoding has a map above the decode limit of %d pairs (codec.MaxMapPairs), which cannot be raised: split the data over several tasks, or pass it in a file (parsl.File)", MaxMapPairs)}
	}
	return fmt.Errorf("its encoding would not be accepted by a worker: %w", err)
}

// RuleOf returns the rule a *LimitError in err's chain names, or "".
func RuleOf(err error) string {
	var le *LimitError
	if errors.As(err, &le) {
		return le.Rule
	}
	return ""
}
