package httpstage

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"net/http"
	"strings"
)

// digest is a checksum the server declared for the whole file.
type digest struct {
	alg    string // "sha-256" or "sha-512"
	value  []byte
	header string // which header it came from, for error messages
}

func (d digest) newHash() hash.Hash {
	if d.alg == "sha-512" {
		return sha512.New()
	}
	return sha256.New()
}

// fileDigest extracts a digest of the complete file from the response
// headers, or ok=false. Only real digest fields are trusted: Repr-Digest
// (RFC 9530, always the whole representation), Content-Digest (RFC 9530,
// the message body, so only for a full 200 response) and the older Digest
// (RFC 3230, instance digest). ETags are opaque validators, never checksums,
// even when they look like hex MD5s.
func fileDigest(h http.Header, full bool) (digest, bool) {
	if d, ok := parseSF(h.Values("Repr-Digest"), "Repr-Digest"); ok {
		return d, true
	}
	if full {
		if d, ok := parseSF(h.Values("Content-Digest"), "Content-Digest"); ok {
			return d, true
		}
	}
	return parseRFC3230(h.Values("Digest"))
}

// parseSF parses an RFC 9530 dictionary such as
// `sha-256=:base64:, sha-512=:base64:`, preferring sha-512.
func parseSF(vals []string, name string) (digest, bool) {
	var best digest
	found := false
	for _, v := range vals {
		for _, item := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
			if !ok {
				continue
			}
			k = strings.ToLower(strings.TrimSpace(k))
			val = strings.TrimSpace(val)
			if k != "sha-256" && k != "sha-512" {
				continue
			}
			if len(val) < 2 || val[0] != ':' || val[len(val)-1] != ':' {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(val[1 : len(val)-1])
			if err != nil || !validLen(k, b) {
				continue
			}
			if !found || k == "sha-512" {
				best, found = digest{alg: k, value: b, header: name}, true
			}
		}
	}
	return best, found
}

// parseRFC3230 parses `SHA-256=base64` entries of the Digest header.
func parseRFC3230(vals []string) (digest, bool) {
	var best digest
	found := false
	for _, v := range vals {
		for _, item := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
			if !ok {
				continue
			}
			k = strings.ToLower(strings.TrimSpace(k))
			if k != "sha-256" && k != "sha-512" {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(val))
			if err != nil || !validLen(k, b) {
				continue
			}
			if !found || k == "sha-512" {
				best, found = digest{alg: k, value: b, header: "Digest"}, true
			}
		}
	}
	return best, found
}

func validLen(alg string, b []byte) bool {
	if alg == "sha-512" {
		return len(b) == sha512.Size
	}
	return len(b) == sha256.Size
}
