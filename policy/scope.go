package policy

import "strings"

// Scopes returns the token's scopes.
//
// With scopeClaim empty, the "scope" claim is read (a space-separated string
// as in RFC 8693 §4.2 / RFC 9068, or an array of strings); when it is absent
// or neither a string nor an array, "scp" is read (an array of strings, or a
// space-separated string). With scopeClaim set, only that claim is read,
// with the same string and array rules; it names a top-level claim, or, when
// no top-level claim has that name, a claim path (see ParsePath).
//
// Strings are split on the space character only (RFC 6749 §3.3); empty
// tokens and non-string array entries are ignored, and array entries are
// taken whole. No normalisation is done: scopes compare exactly and
// case-sensitively, so "orders:read2" or "Orders:read" never stands in for
// "orders:read". Scopes returns nil when the token has no scopes.
func Scopes(claims map[string]any, scopeClaim string) []string {
	if scopeClaim != "" {
		v, ok := claims[scopeClaim]
		if !ok {
			p, err := ParsePath(scopeClaim)
			if err != nil {
				return nil
			}
			if v, ok = p.Lookup(claims); !ok {
				return nil
			}
		}
		s, _ := scopeList(v)
		return s
	}
	if v, ok := claims["scope"]; ok {
		if s, ok := scopeList(v); ok {
			return s
		}
	}
	s, _ := scopeList(claims["scp"])
	return s
}

// scopeList reads a space-separated string or an array of strings; ok is
// false when v is neither.
func scopeList(v any) (scopes []string, ok bool) {
	switch v := v.(type) {
	case string:
		for tok := range strings.SplitSeq(v, " ") {
			if tok != "" {
				scopes = append(scopes, tok)
			}
		}
		return scopes, true
	case []any:
		for _, e := range v {
			if s, isStr := e.(string); isStr && s != "" {
				scopes = append(scopes, s)
			}
		}
		return scopes, true
	case []string: // claims built in Go rather than decoded from JSON
		for _, s := range v {
			if s != "" {
				scopes = append(scopes, s)
			}
		}
		return scopes, true
	}
	return nil, false
}

// hasScope reports whether want is exactly one of have.
func hasScope(have []string, want string) bool {
	for _, s := range have {
		if s == want {
			return true
		}
	}
	return false
}

// hasAllScopes reports whether every scope in want is in have.
func hasAllScopes(have, want []string) bool {
	for _, w := range want {
		if !hasScope(have, w) {
			return false
		}
	}
	return true
}

// missingScopes returns the scopes of want that are not in have, in order.
func missingScopes(have, want []string) []string {
	var out []string
	for _, w := range want {
		if !hasScope(have, w) {
			out = append(out, w)
		}
	}
	return out
}
