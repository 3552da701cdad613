package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidPath is wrapped by every error ParsePath returns.
var ErrInvalidPath = errors.New("invalid claim path")

// Path is a parsed claim path. The zero Path finds nothing.
//
// Two forms exist. A path starting with "/" is a JSON Pointer (RFC 6901):
// segments are separated by "/", "~1" stands for "/" and "~0" for "~", and a
// segment applied to an array is a decimal index ("0", "12"; no sign and no
// leading zeros). Any other path is dotted: segments are separated by ".",
// and when the whole path is itself a top-level claim name (for example
// "https://example.com/groups" or "a.b" as a key) that claim wins. Dotted
// paths never index into arrays. A segment applied to a string, number,
// boolean or null finds nothing.
type Path struct {
	raw     string
	segs    []string
	pointer bool
}

// ParsePath parses s as a JSON Pointer when it starts with "/" and as a
// dotted path otherwise. Empty paths, empty segments ("a..b", ".a", "/a//b"
// — often an unescaped "/" inside a claim name) and "~" escapes other than
// "~0" and "~1" in pointers are errors wrapping ErrInvalidPath.
func ParsePath(s string) (Path, error) {
	if s == "" {
		return Path{}, fmt.Errorf("%w: empty", ErrInvalidPath)
	}
	if s[0] == '/' {
		parts := strings.Split(s[1:], "/")
		segs := make([]string, len(parts))
		for i, part := range parts {
			if part == "" {
				return Path{}, fmt.Errorf("%w %q: empty segment %d (escape a \"/\" inside a claim name as \"~1\")", ErrInvalidPath, s, i+1)
			}
			seg, err := unescapePointer(part)
			if err != nil {
				return Path{}, fmt.Errorf("%w %q: segment %d: %w", ErrInvalidPath, s, i+1, err)
			}
			segs[i] = seg
		}
		return Path{raw: s, segs: segs, pointer: true}, nil
	}
	segs := strings.Split(s, ".")
	for i, seg := range segs {
		if seg == "" {
			return Path{}, fmt.Errorf("%w %q: empty segment %d", ErrInvalidPath, s, i+1)
		}
	}
	return Path{raw: s, segs: segs}, nil
}

// unescapePointer decodes one RFC 6901 reference token.
func unescapePointer(s string) (string, error) {
	if !strings.Contains(s, "~") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '~' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return "", errors.New(`"~" at the end; write "~0" for "~" and "~1" for "/"`)
		}
		switch s[i+1] {
		case '0':
			b.WriteByte('~')
		case '1':
			b.WriteByte('/')
		default:
			return "", fmt.Errorf(`"~%c" is not an escape; write "~0" for "~" and "~1" for "/"`, s[i+1])
		}
		i++
	}
	return b.String(), nil
}

// String returns the path exactly as it was parsed, so that
// ParsePath(p.String()) yields the same path.
func (p Path) String() string { return p.raw }

// IsPointer reports whether p was written as a JSON Pointer.
func (p Path) IsPointer() bool { return p.pointer }

// Lookup returns the value p names in claims and whether it is present. A
// JSON null is present (the value is nil). Lookup does not allocate.
func (p Path) Lookup(claims map[string]any) (any, bool) {
	if len(p.segs) == 0 || claims == nil {
		return nil, false
	}
	if !p.pointer && len(p.segs) > 1 {
		// The whole dotted string as a top-level claim name wins.
		if v, ok := claims[p.raw]; ok {
			return v, true
		}
	}
	cur, ok := claims[p.segs[0]]
	if !ok {
		return nil, false
	}
	for _, seg := range p.segs[1:] {
		switch c := cur.(type) {
		case map[string]any:
			cur, ok = c[seg]
			if !ok {
				return nil, false
			}
		case []any:
			if !p.pointer {
				return nil, false
			}
			i, ok := arrayIndex(seg)
			if !ok || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// arrayIndex parses an RFC 6901 array index: "0" or a decimal without a
// leading zero. "-" (one past the end) and anything else are not indexes.
func arrayIndex(s string) (int, bool) {
	if s == "" || len(s) > 9 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
