package route

import (
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/config"
)

// TestExplainReasons pins what `jwtgate explain` shows for each route: the
// three tests, the rank among full matches, and why a route lost.
func TestExplainReasons(t *testing.T) {
	routes := []config.Route{
		rt("any", pfx("/h")), // 0: less specific host
		rt("host", map[string]string{"host": "api.test", "prefix": "/h"}),    // 1: loses on path to 3
		rt("other", map[string]string{"host": "other.test", "prefix": "/h"}), // 2: host does not match
		rt("deep", map[string]string{"host": "api.test", "prefix": "/h/x"}),  // 3: selected
		rt("twin", map[string]string{"host": "api.test", "prefix": "/h/x/"}), // 4: tie, earlier wins
		rt("post", map[string]string{"prefix": "/h/x/y", "methods": "POST"}), // 5: method
		rt("miss", pfx("/z")), // 6: path
	}
	tb := mustNew(t, routes)
	got := tb.Explain("API.test:443", "GET", mustClean(t, "/h/x/y", strict))
	want := []struct {
		host, path, method bool
		rank               int
		reason             string
	}{
		{true, true, true, 4, "host less specific than routes[3]"},
		{true, true, true, 3, "path less specific than routes[3]"},
		{false, true, true, 0, `host does not match "other.test"`},
		{true, true, true, 1, "selected"},
		{true, true, true, 2, "as specific as routes[3], which comes first"},
		{true, true, false, 0, "method GET not allowed (allows POST)"},
		{true, false, true, 0, `path does not match path_prefix "/z"`},
	}
	if len(got) != len(want) {
		t.Fatalf("Explain() returned %d candidates, want %d", len(got), len(want))
	}
	for i, w := range want {
		c := got[i]
		if c.Index != i || c.Name != routes[i].Name || c.HostMatch != w.host || c.PathMatch != w.path ||
			c.MethodMatch != w.method || c.Rank != w.rank || c.Reason != w.reason || c.Selected != (w.rank == 1) {
			t.Errorf("Explain()[%d] = %+v, want %+v", i, c, w)
		}
	}
}

// TestExplain405ShowsAllowedMethods pins that when no route allows the
// method, every path-matching route names the methods it allows.
func TestExplain405ShowsAllowedMethods(t *testing.T) {
	tb := mustNew(t, []config.Route{rt("m", map[string]string{"prefix": "/m", "methods": "GET,POST"})})
	p := mustClean(t, "/m/1", strict)
	if res := tb.Match("", "DELETE", p); res.Status != 405 {
		t.Fatalf("Match() = %+v, want 405", res)
	}
	c := tb.Explain("", "DELETE", p)[0]
	if c.Selected || c.MethodMatch || !strings.Contains(c.Reason, "GET, HEAD, POST") {
		t.Fatalf("Explain()[0] = %+v, want method mismatch naming GET, HEAD, POST", c)
	}
}
