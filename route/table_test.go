package route

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/config"
)

// rt builds a route; match holds "host", "path", "prefix", "methods"
// (comma-separated) and "strip" ("1").
func rt(name string, match map[string]string) config.Route {
	r := config.Route{Name: name}
	r.Match.Host = match["host"]
	r.Match.Path = match["path"]
	r.Match.PathPrefix = match["prefix"]
	if m := match["methods"]; m != "" {
		r.Match.Methods = strings.Split(m, ",")
	}
	r.Upstream.StripPrefix = match["strip"] == "1"
	return r
}

func pfx(p string) map[string]string { return map[string]string{"prefix": p} }

// specRoutes mirrors the SPEC §2 examples and the conformance scenarios;
// file order is deliberately unhelpful (less specific routes first).
func specRoutes() []config.Route {
	return []config.Route{
		rt("exactp", pfx("/exact")),
		rt("exactlong", pfx("/exact/one")),
		rt("exact", map[string]string{"path": "/exact/one"}),
		rt("lp", pfx("/lp")),
		rt("lpdeep", pfx("/lp/deep")),
		rt("h-any", pfx("/h")),
		rt("h-any-long", pfx("/h/long")),
		rt("h-host", map[string]string{"host": "api.test", "prefix": "/h"}),
		rt("w-any-long", pfx("/w/long")),
		rt("w", map[string]string{"host": "*.wild.test", "prefix": "/w"}),
		rt("w-deep", map[string]string{"host": "*.wild.test", "prefix": "/w/deep"}),
		rt("w-exact", map[string]string{"host": "x.wild.test", "prefix": "/w"}),
		rt("tie1", pfx("/tie")),
		rt("tie2", pfx("/tie")),
		rt("m", map[string]string{"prefix": "/m", "methods": "GET"}),
		rt("m-post", map[string]string{"prefix": "/m/post", "methods": "POST"}),
		rt("orders", pfx("/orders")),
		rt("svc", map[string]string{"prefix": "/svc/", "strip": "1"}),
		rt("exact-strip", map[string]string{"path": "/exactstrip", "strip": "1"}),
		rt("d-short", map[string]string{"host": "*.deep.test", "prefix": "/d/longer"}),
		rt("d-long", map[string]string{"host": "*.b.deep.test", "prefix": "/d"}),
		rt("root", map[string]string{"host": "root.test", "prefix": "/", "strip": "1"}),
		rt("v6", map[string]string{"host": "[::1]", "prefix": "/v6"}),
		rt("trail-exact", map[string]string{"path": "/te/"}),
		rt("uni", pfx("/caf%C3%A9")),
		rt("head-only", map[string]string{"path": "/ho", "methods": "HEAD"}),
	}
}

func mustNew(t testing.TB, routes []config.Route) *Table {
	t.Helper()
	tb, err := New(routes)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	return tb
}

func mustClean(t testing.TB, raw string, o Options) Path {
	t.Helper()
	p, err := CleanPath(raw, o)
	if err != nil {
		t.Fatalf("CleanPath(%q) error = %v", raw, err)
	}
	return p
}

type matchCase struct {
	name    string
	host    string
	method  string
	path    string
	want    string   // route name; "" for none
	status  int      // 0, 404, 405
	allow   []string // for 405
	forward string   // checked when set
}

func runMatch(t *testing.T, routes []config.Route, cases []matchCase) {
	t.Helper()
	tb := mustNew(t, routes)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			p := mustClean(t, tc.path, strict)
			res := tb.Match(tc.host, method, p)
			got := ""
			if res.Index >= 0 {
				got = routes[res.Index].Name
			}
			if got != tc.want || res.Status != tc.status {
				t.Fatalf("Match(%q, %s, %q) = route %q status %d, want %q status %d", tc.host, method, tc.path, got, res.Status, tc.want, tc.status)
			}
			if !slices.Equal(res.Allow, tc.allow) {
				t.Fatalf("Match(%q, %s, %q).Allow = %v, want %v", tc.host, method, tc.path, res.Allow, tc.allow)
			}
			if tc.forward != "" && res.Forward != tc.forward {
				t.Fatalf("Match(%q, %s, %q).Forward = %q, want %q", tc.host, method, tc.path, res.Forward, tc.forward)
			}
			if res.Index < 0 && res.Forward != "" {
				t.Fatalf("Match(%q, %s, %q).Forward = %q without a route", tc.host, method, tc.path, res.Forward)
			}
			assertExplainAgrees(t, tb, tc.host, method, p, res)
		})
	}
}

// assertExplainAgrees checks that Explain's rank-1 route is Match's choice.
func assertExplainAgrees(t *testing.T, tb *Table, host, method string, p Path, res Result) {
	t.Helper()
	winner := -1
	for _, c := range tb.Explain(host, method, p) {
		if c.Selected {
			if winner >= 0 {
				t.Fatalf("Explain selects routes[%d] and routes[%d]", winner, c.Index)
			}
			winner = c.Index
		}
	}
	if winner != res.Index {
		t.Fatalf("Explain selects routes[%d], Match routes[%d]", winner, res.Index)
	}
}

// TestRouteSelection pins SPEC §2 route selection: host first (exact >
// wildcard > none), then path (exact > longer prefix > shorter), ties to
// the earlier route; segment-aware, case-sensitive prefixes; 404 and 405.
func TestRouteSelection(t *testing.T) {
	runMatch(t, specRoutes(), []matchCase{
		// exact path > longer prefix > shorter, whatever the file order
		{name: "exact-beats-prefixes", path: "/exact/one", want: "exact"},
		{name: "longer-prefix-below-exact", path: "/exact/one/x", want: "exactlong"},
		{name: "shorter-prefix", path: "/exact/two", want: "exactp"},
		{name: "segment-aware-not-onex", path: "/exact/onex", want: "exactp"},
		{name: "longer-prefix-wins", path: "/lp/deep/x", want: "lpdeep"},
		{name: "longer-prefix-exactly", path: "/lp/deep", want: "lpdeep"},
		{name: "longer-prefix-trailing-slash", path: "/lp/deep/", want: "lpdeep"},
		{name: "segment-aware-deeper", path: "/lp/deeper", want: "lp"},
		// host first, then path
		{name: "host-route-beats-longer-hostless", host: "api.test", path: "/h/long/x", want: "h-host"},
		{name: "host-route", host: "api.test", path: "/h/x", want: "h-host"},
		{name: "hostless-fallback", host: "other.test", path: "/h/x", want: "h-any"},
		{name: "hostless-longer", host: "other.test", path: "/h/long/x", want: "h-any-long"},
		{name: "host-falls-back-when-path-misses", host: "api.test", path: "/lp/x", want: "lp"},
		{name: "host-case-and-port", host: "API.Test:8443", path: "/h/long/x", want: "h-host"},
		{name: "host-trailing-dot", host: "api.test.", path: "/h/long/x", want: "h-host"},
		{name: "ipv6-literal", host: "[::1]:8080", path: "/v6/x", want: "v6"},
		{name: "no-host", host: "", path: "/h/x", want: "h-any"},
		// wildcards
		{name: "wildcard", host: "a.wild.test", path: "/w/x", want: "w"},
		{name: "wildcard-longer-prefix", host: "a.wild.test", path: "/w/deep/x", want: "w-deep"},
		{name: "exact-host-beats-wildcard-longer-prefix", host: "x.wild.test", path: "/w/deep/x", want: "w-exact"},
		{name: "wildcard-beats-hostless-longer", host: "a.wild.test", path: "/w/long/x", want: "w"},
		{name: "wildcard-deeper-subdomain", host: "a.b.wild.test", path: "/w/x", want: "w"},
		{name: "wildcard-not-bare-domain", host: "wild.test", path: "/w/x", status: 404},
		{name: "wildcard-bare-domain-hostless", host: "wild.test", path: "/w/long/x", want: "w-any-long"},
		{name: "wildcard-not-suffix-without-dot", host: "awild.test", path: "/w/x", status: 404},
		{name: "longer-wildcard-beats-longer-path", host: "a.b.deep.test", path: "/d/longer/x", want: "d-long"},
		{name: "shorter-wildcard", host: "a.c.deep.test", path: "/d/longer/x", want: "d-short"},
		// ties
		{name: "tie-to-earlier", path: "/tie/x", want: "tie1"},
		{name: "tie-to-earlier-exact", path: "/tie", want: "tie1"},
		// segment-aware, case-sensitive
		{name: "prefix-itself", path: "/orders", want: "orders"},
		{name: "prefix-trailing-slash", path: "/orders/", want: "orders"},
		{name: "prefix-child", path: "/orders/1", want: "orders"},
		{name: "not-ordersx", path: "/ordersx", status: 404},
		{name: "case-sensitive", path: "/Orders/1", status: 404},
		{name: "case-sensitive-upper", path: "/ORDERS", status: 404},
		{name: "no-route", path: "/nothing/here", status: 404},
		{name: "unicode-prefix", path: "/café/x", want: "uni"},
		{name: "exact-trailing-slash-only", path: "/te/", want: "trail-exact"},
		{name: "exact-without-trailing-slash", path: "/te", status: 404},
		// methods
		{name: "get-route", path: "/m/a", want: "m"},
		{name: "head-matches-get-route", method: "HEAD", path: "/m/a", want: "m"},
		{name: "method-route-beats-more-specific", path: "/m/post/x", want: "m"},
		{name: "post-route", method: "POST", path: "/m/post/x", want: "m-post"},
		{name: "405-union", method: "DELETE", path: "/m/post/x", status: 405, allow: []string{"GET", "HEAD", "POST"}},
		{name: "405-get-only", method: "POST", path: "/m/x", status: 405, allow: []string{"GET", "HEAD"}},
		{name: "head-only-route", method: "HEAD", path: "/ho", want: "head-only"},
		{name: "get-not-head-only-route", method: "GET", path: "/ho", status: 405, allow: []string{"HEAD"}},
		{name: "method-case-sensitive", method: "get", path: "/m/x", status: 405, allow: []string{"GET", "HEAD"}},
		// forwarding
		{name: "forward-unchanged", path: "/orders/a%20b", want: "orders", forward: "/orders/a%20b"},
		{name: "strip-prefix", path: "/svc/a/b", want: "svc", forward: "/a/b"},
		{name: "strip-prefix-keeps-trailing-slash", path: "/svc/a/", want: "svc", forward: "/a/"},
		{name: "strip-prefix-whole", path: "/svc", want: "svc", forward: "/"},
		{name: "strip-prefix-whole-slash", path: "/svc/", want: "svc", forward: "/"},
		{name: "strip-prefix-keeps-escapes", path: "/svc/caf%c3%a9/%3F", want: "svc", forward: "/caf%C3%A9/%3F"},
		{name: "strip-root-prefix", host: "root.test", path: "/a/b", want: "root", forward: "/a/b"},
		{name: "strip-on-exact-path-ignored", path: "/exactstrip", want: "exact-strip", forward: "/exactstrip"},
	})
}

// TestRouteSelectionIndependentOfFileOrder pins that exact > longer prefix >
// shorter prefix and exact host > wildcard > none hold for every order of
// the routes in the file.
func TestRouteSelectionIndependentOfFileOrder(t *testing.T) {
	base := []config.Route{
		rt("p", pfx("/a")),
		rt("pp", pfx("/a/b")),
		rt("e", map[string]string{"path": "/a/b"}),
		rt("host", map[string]string{"host": "h.test", "prefix": "/x"}),
		rt("wild", map[string]string{"host": "*.test", "prefix": "/x/y"}),
		rt("none", pfx("/x/y/z")),
	}
	cases := []struct{ host, path, want string }{
		{"", "/a/b", "e"}, {"", "/a/b/c", "pp"}, {"", "/a/c", "p"},
		{"h.test", "/x/y/z", "host"}, {"o.test", "/x/y/z", "wild"}, {"other", "/x/y/z", "none"},
	}
	for _, perm := range permutations(len(base)) {
		routes := make([]config.Route, len(base))
		for i, j := range perm {
			routes[i] = base[j]
		}
		tb := mustNew(t, routes)
		for _, c := range cases {
			res := tb.Match(c.host, "GET", mustClean(t, c.path, strict))
			if res.Index < 0 || routes[res.Index].Name != c.want {
				t.Fatalf("order %v: Match(%q, GET, %q) = %+v, want route %q", perm, c.host, c.path, res, c.want)
			}
		}
	}
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

// TestPrefixWithTrailingSlash pins the documented choice: "/orders/" is the
// same prefix as "/orders" and matches "/orders" too, so the unslashed
// form cannot slip past a protected route to a catch-all.
func TestPrefixWithTrailingSlash(t *testing.T) {
	runMatch(t, []config.Route{
		rt("public", pfx("/")),
		rt("orders", pfx("/orders/")),
	}, []matchCase{
		{name: "without-slash", path: "/orders", want: "orders"},
		{name: "with-slash", path: "/orders/", want: "orders"},
		{name: "below", path: "/orders/1", want: "orders"},
		{name: "not-ordersx", path: "/ordersx", want: "public"},
	})
}

// TestPathParamsMatchedBySegmentName pins that with allow_path_params a
// segment's parameters do not hide it from a segment-aware prefix
// ("/admin;x/secret" is under /admin, as Tomcat reads it), and that
// strip_prefix counts segments in the escaped form.
func TestPathParamsMatchedBySegmentName(t *testing.T) {
	routes := []config.Route{
		rt("public", pfx("/")),
		rt("admin", pfx("/admin")),
		rt("login", map[string]string{"path": "/login"}),
		rt("svc", map[string]string{"prefix": "/svc", "strip": "1"}),
	}
	tb := mustNew(t, routes)
	cases := []struct{ name, path, want, forward string }{
		{"params-on-prefix-segment", "/admin;x=1/secret", "admin", "/admin;x=1/secret"},
		{"params-on-exact", "/login;jsessionid=A", "login", "/login;jsessionid=A"},
		{"params-below", "/public/a;b", "public", "/public/a;b"},
		{"strip-counts-segments", "/svc;v=2/a%20b;c", "svc", "/a%20b;c"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustClean(t, tc.path, paramsOK)
			res := tb.Match("", "GET", p)
			if res.Index < 0 || routes[res.Index].Name != tc.want || res.Forward != tc.forward {
				t.Fatalf("Match(%q) = %+v, want route %q forward %q", tc.path, res, tc.want, tc.forward)
			}
			assertExplainAgrees(t, tb, "", "GET", p, res)
		})
	}
}

// TestEncodedSlashKeptInSegment pins that with allow_encoded_slashes an
// encoded slash is part of its segment: "/admin%2Fx" is not under /admin/.
func TestEncodedSlashKeptInSegment(t *testing.T) {
	routes := []config.Route{rt("public", pfx("/")), rt("admin", pfx("/admin"))}
	tb := mustNew(t, routes)
	p := mustClean(t, "/admin%2fx", encOK)
	res := tb.Match("", "GET", p)
	if res.Index != 0 || res.Forward != "/admin%2Fx" {
		t.Fatalf("Match(/admin%%2fx) = %+v, want route public forward /admin%%2Fx", res)
	}
}

// TestNewRejectsInvalidRoutes pins that New refuses routes it cannot index
// and names each by its YAML path.
func TestNewRejectsInvalidRoutes(t *testing.T) {
	cases := []struct {
		name  string
		route config.Route
		field string
	}{
		{"both-paths", rt("x", map[string]string{"path": "/a", "prefix": "/a"}), "routes[1].match.path"},
		{"no-path", rt("x", map[string]string{}), "routes[1].match.path_prefix"},
		{"bare-star", rt("x", map[string]string{"host": "*", "prefix": "/a"}), "routes[1].match.host"},
		{"star-in-middle", rt("x", map[string]string{"host": "a.*.test", "prefix": "/a"}), "routes[1].match.host"},
		{"star-dot-only", rt("x", map[string]string{"host": "*.", "prefix": "/a"}), "routes[1].match.host"},
		{"dot-segment", rt("x", pfx("/a/../b")), "routes[1].match.path_prefix"},
		{"double-slash", rt("x", pfx("/a//b")), "routes[1].match.path_prefix"},
		{"invalid-escape", rt("x", map[string]string{"path": "/a%zz"}), "routes[1].match.path"},
		{"params", rt("x", pfx("/a;b")), "routes[1].match.path_prefix"},
		{"relative", rt("x", pfx("a")), "routes[1].match.path_prefix"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New([]config.Route{rt("ok", pfx("/")), tc.route})
			if !errors.Is(err, ErrInvalidRoute) {
				t.Fatalf("New() error = %v, want ErrInvalidRoute", err)
			}
			if !strings.HasPrefix(err.Error(), tc.field+": ") {
				t.Fatalf("New() error = %v, want path %q", err, tc.field)
			}
		})
	}
}

// TestNewReportsEveryInvalidRoute pins that New reports all problems, not
// only the first.
func TestNewReportsEveryInvalidRoute(t *testing.T) {
	_, err := New([]config.Route{rt("a", pfx("x")), rt("b", pfx("/ok")), rt("c", map[string]string{"host": "*", "prefix": "/"})})
	if err == nil || !strings.Contains(err.Error(), "routes[0]") || !strings.Contains(err.Error(), "routes[2]") || strings.Contains(err.Error(), "routes[1]") {
		t.Fatalf("New() error = %v, want routes[0] and routes[2] only", err)
	}
}

// TestShadowedRoutes pins the "route that can never match" detection that
// validate warns about (SPEC §2).
func TestShadowedRoutes(t *testing.T) {
	tb := mustNew(t, []config.Route{
		rt("tie1", pfx("/tie")),
		rt("tie2", pfx("/tie/")), // same prefix: shadowed by 0
		rt("get", map[string]string{"prefix": "/m", "methods": "GET"}),        // 2
		rt("post", map[string]string{"prefix": "/m", "methods": "POST"}),      // 3
		rt("head", map[string]string{"prefix": "/m", "methods": "HEAD,POST"}), // shadowed by 2, 3
		rt("any", pfx("/m")),                           // reachable: DELETE
		rt("exact", map[string]string{"path": "/tie"}), // reachable: exact beats prefix
		rt("other-host", map[string]string{"host": "h.test", "prefix": "/tie"}),
	})
	got := tb.Shadowed()
	want := []Shadow{{Index: 1, By: []int{0}}, {Index: 4, By: []int{2, 3}}}
	if len(got) != len(want) {
		t.Fatalf("Shadowed() = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Index != want[i].Index || !slices.Equal(got[i].By, want[i].By) {
			t.Fatalf("Shadowed() = %+v, want %+v", got, want)
		}
	}
}

// TestNormalizeHost pins host normalisation: port, IPv6 brackets, one
// trailing dot, case.
func TestNormalizeHost(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"plain", "api.example.com", "api.example.com"},
		{"port", "api.example.com:8443", "api.example.com"},
		{"upper", "API.Example.COM", "api.example.com"},
		{"trailing-dot", "api.example.com.", "api.example.com"},
		{"trailing-dot-port", "api.example.com.:80", "api.example.com"},
		{"ipv6-port", "[::1]:8443", "::1"},
		{"ipv6", "[2001:DB8::1]", "2001:db8::1"},
		{"bare-ipv6", "::1", "::1"},
		{"empty", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NormalizeHost(tc.in); got != tc.want {
				t.Fatalf("NormalizeHost(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestMatchDoesNotAllocate pins that selecting a route on the common path
// allocates nothing.
func TestMatchDoesNotAllocate(t *testing.T) {
	tb := mustNew(t, specRoutes())
	p := mustClean(t, "/w/deep/x/y", strict)
	allocs := testing.AllocsPerRun(100, func() {
		if res := tb.Match("a.wild.test:443", "GET", p); res.Index < 0 {
			t.Fatalf("Match() = %+v, want a route", res)
		}
	})
	if allocs != 0 {
		t.Fatalf("Match() allocs = %v, want 0", allocs)
	}
}
