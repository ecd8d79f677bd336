package memo

import (
	"crypto/sha256"
	"math"
	"strings"
	"testing"

	"github.com/parsl-go/parsl/internal/codec"
)

func slowKey(t *testing.T, app, version string, args, extra []any) [32]byte {
	if args == nil {
		args = []any{}
	}
	if extra == nil {
		extra = []any{}
	}
	b, err := codec.Marshal([4]any{app, version, args, extra})
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestFastKeyMatchesCBOR(t *testing.T) {
	vals := []any{nil, true, false, 0, 1, 23, 24, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
		-1, -24, -25, -256, -257, -65536, -65537, math.MinInt64, int8(-5), int16(300), int32(-70000), uint8(200), uint16(9), uint32(1 << 31), uint64(math.MaxUint64), uint(7),
		"", "a", strings.Repeat("x", 23), strings.Repeat("y", 24), strings.Repeat("z", 128), "héllo"}
	for _, v := range vals {
		for _, extra := range [][]any{nil, {nil}, {"x", 3}} {
			args := []any{v, 1, "s"}
			k, ok := fastKey("app", "v1", args, extra)
			if !ok {
				t.Fatalf("fastKey(%#v) not ok", v)
			}
			if ks := slowKey(t, "app", "v1", args, extra); k != ks {
				t.Errorf("%#v %#v: fast key differs", v, extra)
			}
		}
	}
	if _, ok := fastKey(strings.Repeat("a", 300), "", []any{3.5}, nil); ok {
		t.Error("float should take the general path")
	}
	long := strings.Repeat("n", 300)
	k, ok := fastKey(long, strings.Repeat("v", 70000), nil, nil)
	if !ok || k != slowKey(t, long, strings.Repeat("v", 70000), nil, nil) {
		t.Error("long app name")
	}
}
