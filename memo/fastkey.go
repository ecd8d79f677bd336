package memo

import (
	"crypto/sha256"
	"unicode/utf8"
)

// fastKey computes Key without reflection or boxing for the common case of
// scalar arguments (ints, uints, bools, nil, strings). It produces exactly
// the bytes of the core deterministic CBOR encoding, so keys are unchanged.
// ok is false when some value needs the general encoder.
func fastKey(app, version string, args, extra []any) (key [32]byte, ok bool) {
	var stack [256]byte
	b := stack[:0]
	b = append(b, 0x84) // array of 4
	if b, ok = appendText(b, app); !ok {
		return key, false
	}
	if b, ok = appendText(b, version); !ok {
		return key, false
	}
	for _, list := range [2][]any{args, extra} {
		if len(list) >= 24 {
			return key, false
		}
		b = append(b, 0x80|byte(len(list)))
		for _, v := range list {
			if b, ok = appendScalar(b, v); !ok {
				return key, false
			}
		}
	}
	return sha256.Sum256(b), true
}

func appendHead(b []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(b, major<<5|byte(n))
	case n <= 0xff:
		return append(b, major<<5|24, byte(n))
	case n <= 0xffff:
		return append(b, major<<5|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, major<<5|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, major<<5|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendText(b []byte, s string) ([]byte, bool) {
	if !utf8.ValidString(s) {
		return b, false
	}
	b = appendHead(b, 3, uint64(len(s)))
	return append(b, s...), true
}

func appendInt(b []byte, n int64) []byte {
	if n >= 0 {
		return appendHead(b, 0, uint64(n))
	}
	return appendHead(b, 1, uint64(-1-n))
}

func appendScalar(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(b, 0xf6), true
	case bool:
		if x {
			return append(b, 0xf5), true
		}
		return append(b, 0xf4), true
	case int:
		return appendInt(b, int64(x)), true
	case int8:
		return appendInt(b, int64(x)), true
	case int16:
		return appendInt(b, int64(x)), true
	case int32:
		return appendInt(b, int64(x)), true
	case int64:
		return appendInt(b, x), true
	case uint:
		return appendHead(b, 0, uint64(x)), true
	case uint8:
		return appendHead(b, 0, uint64(x)), true
	case uint16:
		return appendHead(b, 0, uint64(x)), true
	case uint32:
		return appendHead(b, 0, uint64(x)), true
	case uint64:
		return appendHead(b, 0, x), true
	case string:
		if len(x) > 128 {
			return b, false // long strings: the general path
		}
		return appendText(b, x)
	}
	return b, false
}
