package store

import (
	"testing"

	"github.com/parsl-go/parsl/internal/dataflow"
)

// TestStateCodesMatchDataflow keeps the store's name→number table in step
// with the DFK's states (Parsl's names and numbers).
func TestStateCodesMatchDataflow(t *testing.T) {
	if len(stateCodes) != len(dataflow.States) {
		t.Errorf("store knows %d states, dataflow has %d", len(stateCodes), len(dataflow.States))
	}
	for _, st := range dataflow.States {
		code, ok := stateCodes[st.String()]
		if !ok || code != int(st) {
			t.Errorf("state %s = %d in dataflow, %d (%v) in store", st, int(st), code, ok)
		}
		if isFinal(int64(st)) != st.Final() {
			t.Errorf("state %s: final %v in store, %v in dataflow", st, isFinal(int64(st)), st.Final())
		}
	}
}
