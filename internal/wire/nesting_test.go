package wire

import (
	"errors"
	"testing"

	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/internal/failure"
)

func nestedList(n int) any {
	var v any = 1
	for i := 0; i < n; i++ {
		v = []any{v}
	}
	return v
}

// TestNestingLimits pins MaxArgNesting and MaxResultNesting to what a peer
// decodes: a value at the limit crosses in its frame, one level more makes
// the whole frame undecodable.
func TestNestingLimits(t *testing.T) {
	decodes := func(n int, frame func(codec.RawMessage) (Type, any, any)) bool {
		a, err := codec.Marshal(nestedList(n))
		if err != nil {
			t.Fatal(err)
		}
		typ, v, into := frame(a)
		p, err := codec.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return Decode(typ, p, into) == nil
	}
	frames := map[string]struct {
		limit int
		frame func(codec.RawMessage) (Type, any, any)
	}{
		"tasks": {MaxArgNesting, func(a codec.RawMessage) (Type, any, any) {
			return TTasks, Tasks{Tasks: []Task{{ID: 1, App: "x", Args: []codec.RawMessage{a}}}}, new(Tasks)
		}},
		"results": {MaxResultNesting, func(a codec.RawMessage) (Type, any, any) {
			return TResults, Results{Results: []Result{{ID: 1, Result: a}}}, new(Results)
		}},
		"deliver": {MaxResultNesting, func(a codec.RawMessage) (Type, any, any) {
			return TDeliver, Deliver{Results: []Result{{ID: 1, Result: a}}}, new(Deliver)
		}},
	}
	for name, f := range frames {
		if !decodes(f.limit, f.frame) {
			t.Errorf("%s: a value nested %d deep (the limit) does not decode", name, f.limit)
		}
		if decodes(f.limit+1, f.frame) {
			t.Errorf("%s: a value nested %d deep (one above the limit) decodes; the limit is too low", name, f.limit+1)
		}
	}
}

// TestSerializationRuleCrosses: the rule a pool's SerializationError
// names reaches the driver.
func TestSerializationRuleCrosses(t *testing.T) {
	in := &failure.SerializationError{TaskID: 3, App: "a", Arg: 0, Rule: codec.RuleCycle, Err: errors.New("refers back")}
	out, ok := FromError(in).ToError(3, "a", 0, "h").(*failure.SerializationError)
	if !ok || out.Rule != codec.RuleCycle || out.Arg != 0 || out.Err.Error() != "refers back" {
		t.Fatalf("got %#v", out)
	}
}
