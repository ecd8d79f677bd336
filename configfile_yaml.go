package parsl

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// This file holds the YAML plumbing behind LoadConfigFile: decoding one
// mapping at a time with goccy/go-yaml's strict mode, value types that
// check what the generic decoder lets through (3.5 for an int, "1 hour"
// for a duration), and the translation of every error into a
// ConfigFileError that names the file, the line and the key.

// decoder decodes the mappings of one configuration file.
type decoder struct {
	file string
}

// decode decodes mapping node (nil or null decodes nothing) into dst, a
// pointer to a struct with yaml tags, rejecting keys dst does not have.
func (d *decoder) decode(node ast.Node, path string, dst any) error {
	if isNull(node) {
		return nil
	}
	m, ok := node.(*ast.MappingNode)
	if !ok {
		return d.errorf(node.GetToken(), path, nil, "want a mapping of keys to values, got %s", describe(node))
	}
	err := yaml.NodeToValue(m, dst, yaml.Strict())
	if err == nil {
		return nil
	}
	var (
		ve  *valueError
		uf  *yaml.UnknownFieldError
		te  *yaml.TypeError
		un  *yaml.UnexpectedNodeTypeError
		of  *yaml.OverflowError
		yer yaml.Error
	)
	switch {
	case errors.As(err, &ve):
		return d.errorf(ve.tok, joinKey(path, keyAt(m, ve.tok)), nil, "%s", ve.msg)
	case errors.As(err, &uf):
		return d.errorf(uf.Token, joinKey(path, uf.Token.Value), err,
			"unknown key %q; accepted: %s", uf.Token.Value, strings.Join(yamlKeys(dst), ", "))
	case errors.As(err, &te):
		return d.errorf(te.Token, joinKey(path, keyAt(m, te.Token)), err,
			"want %s, got %s", describeType(te.DstType), quoteToken(te.Token))
	case errors.As(err, &un):
		return d.errorf(un.Token, joinKey(path, keyAt(m, un.Token)), err,
			"want %s, got %s", describeNodeType(un.Expected), describeNodeType(un.Actual))
	case errors.As(err, &of):
		return d.errorf(of.Token, joinKey(path, keyAt(m, of.Token)), err,
			"%s is out of range for %s", of.SrcNum, describeType(of.DstType))
	case errors.As(err, &yer):
		return d.errorf(yer.GetToken(), joinKey(path, keyAt(m, yer.GetToken())), err, "%s", yer.GetMessage())
	}
	return d.errorf(m.GetToken(), path, err, "%v", err)
}

// errorf makes a ConfigFileError at tok (nil: no line).
func (d *decoder) errorf(tok *token.Token, key string, cause error, format string, args ...any) *ConfigFileError {
	e := &ConfigFileError{File: d.file, Key: key, Msg: fmt.Sprintf(format, args...), Err: cause}
	if tok != nil && tok.Position != nil {
		e.Line = tok.Position.Line
	}
	return e
}

// keyError reports a bad value of key in mapping m at the key's line (the
// mapping's when the key is absent, for a missing key).
func (d *decoder) keyError(m *ast.MappingNode, path, key, format string, args ...any) *ConfigFileError {
	tok := m.GetToken()
	if mv := lookup(m, key); mv != nil {
		tok = mv.Key.GetToken()
	}
	return d.errorf(tok, joinKey(path, key), nil, format, args...)
}

// oneOf checks that key, when present in m, has one of the accepted values.
func (d *decoder) oneOf(m *ast.MappingNode, path, key, value string, accepted ...string) error {
	if m == nil || lookup(m, key) == nil || slices.Contains(accepted, value) {
		return nil
	}
	return d.keyError(m, path, key, "%q is not accepted; use one of: %s", value, strings.Join(accepted, ", "))
}

// kind finds the kind: key of node, a mapping that is one item of a
// registry (an executor, a provider), and checks it is one of known.
func (d *decoder) kind(node ast.Node, path string, known []string) (*ast.MappingNode, string, error) {
	m, ok := node.(*ast.MappingNode)
	if !ok {
		var tok *token.Token
		if node != nil {
			tok = node.GetToken()
		}
		return nil, "", d.errorf(tok, path, nil, "want a mapping with a kind: key (%s), got %s", strings.Join(known, ", "), describe(node))
	}
	mv := lookup(m, "kind")
	if mv == nil {
		return nil, "", d.errorf(m.GetToken(), joinKey(path, "kind"), nil, "missing; known: %s", strings.Join(known, ", "))
	}
	s, ok := mv.Value.(*ast.StringNode)
	if !ok {
		return nil, "", d.errorf(mv.Value.GetToken(), joinKey(path, "kind"), nil, "want a kind name, got %s; known: %s", describe(mv.Value), strings.Join(known, ", "))
	}
	if !slices.Contains(known, s.Value) {
		if how, ok := optionalKinds[s.Value]; ok {
			return nil, "", d.errorf(s.GetToken(), joinKey(path, "kind"), nil, "kind %q is not in this build: %s", s.Value, how)
		}
		return nil, "", d.errorf(s.GetToken(), joinKey(path, "kind"), nil, "unknown kind %q; known: %s", s.Value, strings.Join(known, ", "))
	}
	return m, s.Value, nil
}

// optionalKinds are kinds left out of default builds, with how to get
// them: a file that names one gets that advice instead of "unknown kind".
var optionalKinds = map[string]string{
	"kubernetes": "build the program with -tags parsl_kubernetes (left out by default: client-go adds about 50 MB to every binary)",
}

// lookup returns the entry of key in m, or nil.
func lookup(m *ast.MappingNode, key string) *ast.MappingValueNode {
	for _, mv := range m.Values {
		if mv.Key.GetToken() != nil && mv.Key.GetToken().Value == key {
			return mv
		}
	}
	return nil
}

// keyAt returns the key of m whose entry holds tok: the last key that
// starts before tok, since a value follows its key and precedes the next.
func keyAt(m *ast.MappingNode, tok *token.Token) string {
	if tok == nil || tok.Position == nil {
		return ""
	}
	key := ""
	for _, mv := range m.Values {
		kt := mv.Key.GetToken()
		if kt == nil || kt.Position == nil {
			continue
		}
		p, q := kt.Position, tok.Position
		if p.Line < q.Line || p.Line == q.Line && p.Column <= q.Column {
			key = kt.Value
		}
	}
	return key
}

func joinKey(path, key string) string {
	switch {
	case key == "":
		return path
	case path == "":
		return key
	}
	return path + "." + key
}

func isNull(node ast.Node) bool {
	if m, ok := node.(*ast.MappingNode); node == nil || ok && m == nil {
		// A nil *MappingNode is a launcher named by a bare string.
		return true
	}
	_, ok := node.(*ast.NullNode)
	return ok
}

// yamlKeys lists the keys a struct accepts, sorted, for "accepted:" hints.
func yamlKeys(dst any) []string {
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var keys []string
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	slices.Sort(keys)
	return keys
}

func describe(node ast.Node) string {
	if isNull(node) {
		return "nothing"
	}
	switch n := node.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	default:
		return quoteToken(n.GetToken())
	}
}

func quoteToken(tok *token.Token) string {
	if tok == nil {
		return "nothing"
	}
	switch tok.Value {
	case "{", "[":
		return "a " + map[string]string{"{": "mapping", "[": "list"}[tok.Value]
	}
	return fmt.Sprintf("%q", tok.Value)
}

func describeType(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "a duration such as \"30s\" or \"1h\""
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64:
		return "a whole number"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(describeType(t.Elem()), "a ") + "s"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Pointer:
		return describeType(t.Elem())
	}
	return t.String()
}

func describeNodeType(t ast.NodeType) string {
	switch t {
	case ast.MappingType, ast.MappingValueType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	case ast.StringType, ast.LiteralType:
		return "a string"
	case ast.IntegerType:
		return "a whole number"
	case ast.FloatType:
		return "a number"
	case ast.BoolType:
		return "true or false"
	case ast.NullType:
		return "nothing"
	}
	return t.String()
}

// valueError is a bad value found by one of the value types below; decode
// turns it into a ConfigFileError at its token.
type valueError struct {
	tok *token.Token
	msg string
}

func (e *valueError) Error() string { return e.msg }

// count is a non-negative whole number. The generic decoder would turn
// 3.5 into 3 and accept -1 where a count makes no sense.
type count int

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (c *count) UnmarshalYAML(node ast.Node) error {
	n, ok := node.(*ast.IntegerNode)
	if !ok {
		return &valueError{node.GetToken(), "want a whole number (0 or more), got " + describe(node)}
	}
	var v int
	if err := yaml.NodeToValue(n, &v); err != nil {
		return &valueError{node.GetToken(), fmt.Sprintf("%s is out of range for a whole number", n.GetToken().Value)}
	}
	if v < 0 {
		return &valueError{node.GetToken(), fmt.Sprintf("must be 0 or more, got %d", v)}
	}
	*c = count(v)
	return nil
}

// number is a non-negative number (integer or fraction).
type number float64

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (x *number) UnmarshalYAML(node ast.Node) error {
	switch node.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
	default:
		return &valueError{node.GetToken(), "want a number (0 or more), got " + describe(node)}
	}
	var v float64
	if err := yaml.NodeToValue(node, &v); err != nil {
		return &valueError{node.GetToken(), fmt.Sprintf("%s is not a usable number", node.GetToken().Value)}
	}
	if v < 0 {
		return &valueError{node.GetToken(), fmt.Sprintf("must be 0 or more, got %v", v)}
	}
	*x = number(v)
	return nil
}

// duration is a non-negative Go duration string ("30s", "1h30m"); a bare
// 0 is accepted as "the default".
type duration time.Duration

const durationHint = `write a Go duration such as "30s", "5m" or "1h30m"`

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (x *duration) UnmarshalYAML(node ast.Node) error {
	switch n := node.(type) {
	case *ast.IntegerNode:
		if n.GetToken().Value == "0" {
			*x = 0
			return nil
		}
		return &valueError{node.GetToken(), fmt.Sprintf("%s has no unit; %s", n.GetToken().Value, durationHint)}
	case *ast.StringNode:
		v, err := time.ParseDuration(n.Value)
		if err != nil {
			return &valueError{node.GetToken(), fmt.Sprintf("bad duration %q; %s", n.Value, durationHint)}
		}
		if v < 0 {
			return &valueError{node.GetToken(), fmt.Sprintf("must not be negative, got %q", n.Value)}
		}
		*x = duration(v)
		return nil
	}
	return &valueError{node.GetToken(), "want a duration, got " + describe(node) + "; " + durationHint}
}

// lines is a list of strings, also written as one string of several lines
// (a YAML block scalar), as Parsl's scheduler_options and worker_init are.
type lines []string

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (l *lines) UnmarshalYAML(node ast.Node) error {
	switch n := node.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		var s string
		if err := yaml.NodeToValue(n, &s); err != nil {
			return err
		}
		*l = nil
		for line := range strings.Lines(s) {
			if line = strings.TrimRight(line, "\r\n"); strings.TrimSpace(line) != "" {
				*l = append(*l, line)
			}
		}
		return nil
	case *ast.SequenceNode:
		out := make([]string, 0, len(n.Values))
		for _, v := range n.Values {
			switch v.(type) {
			case *ast.StringNode, *ast.LiteralNode:
			default:
				return &valueError{v.GetToken(), "want a string in this list, got " + describe(v)}
			}
			var s string
			if err := yaml.NodeToValue(v, &s); err != nil {
				return err
			}
			out = append(out, s)
		}
		*l = out
		return nil
	}
	return &valueError{node.GetToken(), "want a list of strings or a block of lines, got " + describe(node)}
}

// envList is environment entries, NAME=value: a list of such strings, or
// a mapping of names to values (NAME: value), kept in the file's order.
type envList []string

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (e *envList) UnmarshalYAML(node ast.Node) error {
	var out []string
	switch n := node.(type) {
	case *ast.SequenceNode:
		for _, v := range n.Values {
			s, ok := v.(*ast.StringNode)
			if !ok {
				return &valueError{v.GetToken(), "want a NAME=value string in this list, got " + describe(v)}
			}
			if name, _, ok := strings.Cut(s.Value, "="); !ok || !validEnvName(name) {
				return &valueError{v.GetToken(), fmt.Sprintf("%q is not NAME=value (NAME of letters, digits and _, not starting with a digit)", s.Value)}
			}
			out = append(out, s.Value)
		}
	case *ast.MappingNode:
		for _, mv := range n.Values {
			name := mv.Key.GetToken().Value
			if !validEnvName(name) {
				return &valueError{mv.Key.GetToken(), fmt.Sprintf("%q is not a variable name (letters, digits and _, not starting with a digit)", name)}
			}
			var value string
			switch v := mv.Value.(type) {
			case *ast.StringNode:
				value = v.Value
			case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
				// OMP_NUM_THREADS: 1 means the text written.
				value = v.GetToken().Value
			case *ast.NullNode:
			default:
				return &valueError{mv.Value.GetToken(), fmt.Sprintf("the value of %s must be a string, got %s", name, describe(mv.Value))}
			}
			out = append(out, name+"="+value)
		}
	default:
		return &valueError{node.GetToken(), "want a list of NAME=value strings or a mapping of names to values, got " + describe(node)}
	}
	*e = out
	return nil
}

// validEnvName reports whether s is a portable environment variable
// name, one every shell can export.
func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
