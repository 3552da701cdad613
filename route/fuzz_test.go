package route

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jwtgate/jwtgate/config"
)

// FuzzCleanPath pins CleanPath's invariants on arbitrary input: it never
// panics; a result starts with "/", is valid UTF-8 without control
// characters, "//" or dot segments; and it is idempotent (cleaning Escaped
// again yields the same Path), so what was matched is what is forwarded.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"/", "/a/b/", "//admin", "/public/../admin", "/public/%2e%2e/admin", "/%2E./x",
		"/a%2fb", "/a%5Cb", "/a;jsessionid=1", "/..;/admin", `/a\b`, "/a%00", "/%252e%252e",
		"/%c0%ae", "/caf%C3%A9", "/100%25zz", "/a%25%2Fb", "/..", "/a%zz",
	} {
		f.Add(s, false, false)
		f.Add(s, true, true)
	}
	f.Fuzz(func(t *testing.T, raw string, enc, params bool) {
		opts := Options{AllowEncodedSlashes: enc, AllowPathParams: params}
		p, err := CleanPath(raw, opts)
		if err != nil {
			if p != (Path{}) {
				t.Fatalf("CleanPath(%q) = %+v with error %v", raw, p, err)
			}
			return
		}
		for _, s := range []string{p.Decoded, p.Escaped} {
			if !strings.HasPrefix(s, "/") || strings.Contains(s, "//") || !utf8.ValidString(s) {
				t.Fatalf("CleanPath(%q) = %+v: not a clean absolute path", raw, p)
			}
			for seg := range strings.SplitSeq(s[1:], "/") {
				if seg == "." || seg == ".." {
					t.Fatalf("CleanPath(%q) = %+v: dot segment left", raw, p)
				}
			}
			if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
				t.Fatalf("CleanPath(%q) = %+v: control character or backslash", raw, p)
			}
		}
		if !params && strings.Contains(p.Decoded, ";") {
			t.Fatalf("CleanPath(%q) = %+v: ';' without AllowPathParams", raw, p)
		}
		if !enc && (strings.Contains(p.Decoded, "%2F") || strings.Contains(p.Decoded, "%5C")) {
			t.Fatalf("CleanPath(%q) = %+v: encoded slash without AllowEncodedSlashes", raw, p)
		}
		again, err := CleanPath(p.Escaped, opts)
		if err != nil || again != p {
			t.Fatalf("CleanPath(%q) = %+v, %v; want idempotent %+v", p.Escaped, again, err, p)
		}
		if fromDecoded, err := CleanPath(p.Decoded, opts); err == nil && fromDecoded.Decoded != p.Decoded && !strings.Contains(p.Decoded, "%") {
			t.Fatalf("CleanPath(%q).Decoded = %q, want %q", p.Decoded, fromDecoded.Decoded, p.Decoded)
		}
	})
}

// fuzzRoutes is the table FuzzMatch routes against: every kind of host and
// path rule, methods, and strip_prefix.
func fuzzRoutes() []config.Route {
	return []config.Route{
		rt("root", pfx("/")),
		rt("admin", pfx("/admin")),
		rt("public", pfx("/public/")),
		rt("exact", map[string]string{"path": "/admin/login"}),
		rt("get", map[string]string{"prefix": "/m", "methods": "GET"}),
		rt("post", map[string]string{"prefix": "/m/post", "methods": "POST,PUT"}),
		rt("strip", map[string]string{"prefix": "/svc/v1", "strip": "1"}),
		rt("host", map[string]string{"host": "api.test", "prefix": "/admin"}),
		rt("wild", map[string]string{"host": "*.test", "prefix": "/w"}),
		rt("wild2", map[string]string{"host": "*.b.test", "path": "/w/x", "strip": "1"}),
		rt("enc", pfx("/a%2Fb")),
		rt("uni", pfx("/caf%C3%A9")),
	}
}

// FuzzMatch pins Match's invariants: the chosen route's host, path and
// method really match; Forward lies under the matched prefix (or is the
// exact path), is canonical, and with strip_prefix is what follows the
// prefix; 405 only comes with an Allow list that excludes the method; and
// Explain selects the same route.
func FuzzMatch(f *testing.F) {
	for _, s := range [][3]string{
		{"", "GET", "/admin/x"}, {"api.test:80", "GET", "/admin/login"}, {"a.b.test", "HEAD", "/w/x"},
		{"x.test", "DELETE", "/m/post/1"}, {"", "POST", "/svc/v1/a%20b/"}, {"", "GET", "/public/../admin"},
		{"", "GET", "/caf%c3%a9/x"}, {"", "GET", "/a%2fb/c"}, {"[::1]:1", "OPTIONS", "/"},
	} {
		f.Add(s[0], s[1], s[2], true)
	}
	routes := fuzzRoutes()
	tb := mustNew(f, routes)
	f.Fuzz(func(t *testing.T, host, method, raw string, enc bool) {
		opts := Options{AllowEncodedSlashes: enc, AllowPathParams: enc}
		p, err := CleanPath(raw, opts)
		if err != nil {
			return
		}
		res := tb.Match(host, method, p)
		assertExplainAgrees(t, tb, host, method, p, res)
		switch res.Status {
		case 405:
			if res.Index != -1 || len(res.Allow) == 0 || allows(res.Allow, method) && method != "HEAD" {
				t.Fatalf("Match(%q, %q, %q) = %+v: bad 405", host, method, raw, res)
			}
			return
		case 404:
			if res.Index != -1 || res.Allow != nil {
				t.Fatalf("Match(%q, %q, %q) = %+v: bad 404", host, method, raw, res)
			}
			return
		case 0:
		default:
			t.Fatalf("Match(%q, %q, %q) = %+v: bad status", host, method, raw, res)
		}
		e := &tb.entries[res.Index]
		key := matchKey(p.Decoded)
		if !hostMatches(e.hostKind, e.hostKey, NormalizeHost(host)) || !e.pathMatches(key) || !allows(e.methods, method) {
			t.Fatalf("Match(%q, %q, %q) chose routes[%d], which does not match", host, method, raw, res.Index)
		}
		if !strings.HasPrefix(res.Forward, "/") {
			t.Fatalf("Match(%q, %q, %q).Forward = %q, not absolute", host, method, raw, res.Forward)
		}
		again, err := CleanPath(res.Forward, opts)
		if err != nil || again.Escaped != res.Forward {
			t.Fatalf("Forward %q of %q not canonical: %+v, %v", res.Forward, raw, again, err)
		}
		switch {
		case e.exact || !e.strip:
			if res.Forward != p.Escaped {
				t.Fatalf("Match(%q).Forward = %q, want %q", raw, res.Forward, p.Escaped)
			}
		default:
			// What was stripped is exactly the route's prefix, segment-wise,
			// and Forward is the rest of the escaped path.
			if res.Forward != "/" && !strings.HasSuffix(p.Escaped, res.Forward) {
				t.Fatalf("Match(%q).Forward = %q, not a suffix of %q", raw, res.Forward, p.Escaped)
			}
			head := strings.TrimSuffix(p.Escaped, res.Forward)
			if head == "" {
				head = "/"
			}
			hp, err := CleanPath(head, opts)
			if err != nil || strings.TrimSuffix(matchKey(hp.Decoded), "/") != e.pathKey {
				t.Fatalf("Match(%q) stripped %q (%+v, %v), want prefix %q", raw, head, hp, err, e.pathKey)
			}
		}
	})
}
