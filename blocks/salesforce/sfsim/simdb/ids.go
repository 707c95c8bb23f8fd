package simdb

import "strings"

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// makeID builds the n-th 18-character ID for a key prefix: the prefix, a
// fixed pod-like "Hs000" part, n in base 62 over 7 characters, then the
// 3-character case-safe suffix Salesforce appends to 15-character IDs.
func makeID(prefix string, n int) string {
	var digits [7]byte
	for i := len(digits) - 1; i >= 0; i-- {
		digits[i] = base62[n%62]
		n /= 62
	}
	return withSuffix(prefix + "Hs000" + string(digits[:]))
}

// withSuffix appends the case-safe checksum to a 15-character ID: for each
// 5-character chunk, a bit per upper-case letter indexes
// "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345".
func withSuffix(id15 string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	var b strings.Builder
	b.WriteString(id15)
	for chunk := 0; chunk < 3; chunk++ {
		flags := 0
		for j := 0; j < 5; j++ {
			c := id15[chunk*5+j]
			if c >= 'A' && c <= 'Z' {
				flags |= 1 << j
			}
		}
		b.WriteByte(alphabet[flags])
	}
	return b.String()
}

// normalizeID returns the canonical 18-character form of a 15- or
// 18-character ID, or false if s is not shaped like an ID. An 18-character
// ID is re-derived from its first 15 characters, as Salesforce accepts the
// suffix in any case.
func normalizeID(s string) (string, bool) {
	if len(s) != 15 && len(s) != 18 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "", false
		}
	}
	return withSuffix(s[:15]), true
}

// idCounter extracts n from an ID made by makeID, or -1.
func idCounter(id string) int {
	if len(id) != 18 || id[3:8] != "Hs000" {
		return -1
	}
	n := 0
	for i := 8; i < 15; i++ {
		k := strings.IndexByte(base62, id[i])
		if k < 0 {
			return -1
		}
		n = n*62 + k
	}
	return n
}
