package kubernetes

import (
	"crypto/rand"
	"strings"
)

// maxNameBlock is how much of a block ID a pod name keeps: "parsl-" (6) +
// block + "-" + 6 random characters stays within the 63 characters of an
// RFC 1123 label, so that the name can also serve as the pod's host name.
const maxNameBlock = 63 - len("parsl-") - 1 - suffixLen

const suffixLen = 6

// PodName returns the name of a pod for blockID with the random suffix
// suffix: "parsl-<block>-<suffix>", where block is blockID lower-cased,
// with every run of characters other than a-z and 0-9 made one "-", and
// cut so that the whole name is an RFC 1123 label (at most 63 characters
// of a-z, 0-9 and "-", starting and ending with a letter or digit). A
// block ID with nothing usable becomes "block".
func PodName(blockID, suffix string) string {
	b := dnsLabel(blockID, maxNameBlock)
	if b == "" {
		b = "block"
	}
	return "parsl-" + b + "-" + suffix
}

// dnsLabel lower-cases s, turns every run of other characters than a-z and
// 0-9 into one "-", trims "-" from both ends and cuts it to at most max
// characters.
func dnsLabel(s string, max int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	out := b.String()
	if len(out) > max {
		out = strings.TrimRight(out[:max], "-")
	}
	return out
}

// labelValue makes s a label value: characters other than letters,
// digits, "-", "_" and "." become "-", it is cut to 63 characters and must
// start and end with a letter or digit.
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '-'
		}
	}
	out := string(b)
	if len(out) > 63 {
		out = out[:63]
	}
	return strings.TrimFunc(out, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
}

// randomSuffix returns n random characters of a-z and 2-7.
func randomSuffix(n int) string {
	// rand.Text is base32 (A-Z, 2-7): lower-cased it is valid in names and
	// labels, and 6 characters give 2^30 names per block.
	return strings.ToLower(rand.Text()[:n])
}

// validPodName reports whether name can be a pod name.
func validPodName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	first, last := name[0], name[len(name)-1]
	return first != '-' && first != '.' && last != '-' && last != '.'
}
