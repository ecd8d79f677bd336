package store

import (
	"reflect"
	"testing"
)

// FuzzParseTries: the tries column decoder never panics on any text, and
// what encodeTries writes decodes to the same tries.
func FuzzParseTries(f *testing.F) {
	f.Add(`[0,1,null,null,120,null,450],`)
	f.Add(`[0,1,"3",2,120,130,450,"ValueError: x","j"],[1,1],`)
	f.Add(`[`)
	f.Add(`[0,"x"],`)
	f.Fuzz(func(t *testing.T, text string) {
		tries, err := parseTries(text)
		if err != nil {
			return
		}
		again, err := parseTries(encodeTries(append([]tryRow(nil), tries...)))
		if err != nil {
			t.Fatalf("re-encoded %q: %v", text, err)
		}
		want := append([]tryRow(nil), tries...)
		encodeTries(want) // sorts by try id
		if len(want) != len(again) || (len(want) > 0 && !reflect.DeepEqual(want, again)) {
			t.Fatalf("%q: %+v, re-encoded %+v", text, want, again)
		}
	})
}

// FuzzParseStatuses: the status history decoder never panics.
func FuzzParseStatuses(f *testing.F) {
	f.Add(`[0,0,0],[7,120,0],[3,450,0],`)
	f.Add(`["a_new_state",5,1],`)
	f.Add(`[3,,0]`)
	f.Fuzz(func(t *testing.T, text string) {
		sts, err := parseStatuses(run, 1, text, 0)
		if err == nil && len(sts) > 0 && sts[0].RunID != run {
			t.Fatalf("%q: %+v", text, sts)
		}
	})
}
