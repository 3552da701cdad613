package route

import "strings"

// NormalizeHost returns the host name of a Host header or URL authority as
// routes compare it: the port removed, the brackets of an IPv6 literal
// removed ("[::1]:8443" → "::1"), one trailing dot removed
// ("api.example.com." names the same host) and lower-cased. It allocates
// only when the host has upper-case letters.
func NormalizeHost(host string) string {
	if host == "" {
		return ""
	}
	if host[0] == '[' {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	return strings.ToLower(host)
}

// hostKind is how a route's host pattern matches.
type hostKind uint8

const (
	hostAny      hostKind = iota // no host: matches every host
	hostWildcard                 // "*.example.com": any subdomain, at any depth
	hostExact                    // one host
)

// hostSpecificity ranks how a route's host matched; larger wins. An exact
// host beats every wildcard, a longer wildcard suffix beats a shorter one,
// and every wildcard beats a route without a host.
func hostSpecificity(kind hostKind, key string) int {
	switch kind {
	case hostExact:
		return 1 << 30
	case hostWildcard:
		return len(key)
	}
	return 0
}

// hostMatches reports whether a route's host pattern (kind, key) matches
// the normalized host h. key is the host for hostExact and the suffix with
// its leading dot (".example.com") for hostWildcard.
func hostMatches(kind hostKind, key, h string) bool {
	switch kind {
	case hostExact:
		return h == key
	case hostWildcard:
		return len(h) > len(key) && strings.HasSuffix(h, key)
	}
	return true
}
