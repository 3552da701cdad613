package route

import (
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/config"
)

// attackPieces are path segments and fragments used in traversal and
// confusion attacks; the property test combines them.
var attackPieces = []string{
	"public", "admin", "Admin", "%61dmin", "adm%69n", "..", ".", "%2e%2e", "%2E.", ".%2e", "%2e",
	"", "%2fadmin", "..%2f", "%5c..", "..;", ";x", "admin;x", "%3badmin", "%252e%252e", "%c0%ae%c0%ae",
	"%00", `\..`, "..%00", "x", "%25", "%2541dmin",
}

// underAdmin reports whether a path is /admin or below it, segment-wise,
// reading each segment up to any ';' as parameter-aware backends do.
func underAdmin(p string) bool {
	p = matchKey(p)
	return p == "/admin" || strings.HasPrefix(p, "/admin/")
}

// naiveBackendViews returns how backends that decode differently could read
// forward: decoded once and cleaned, decoded twice and cleaned. Views that
// fail to decode are omitted (such a backend answers 400).
func naiveBackendViews(forward string) []string {
	var views []string
	once, err := url.PathUnescape(forward)
	if err != nil {
		return views
	}
	once = strings.ReplaceAll(once, `\`, "/")
	views = append(views, path.Clean(once))
	if twice, err := url.PathUnescape(once); err == nil {
		views = append(views, path.Clean(strings.ReplaceAll(twice, `\`, "/")))
	}
	return views
}

// TestPublicRouteNeverForwardsAdmin is the path-confusion property: with a
// protected /admin prefix and a public /public prefix on the same backend,
// no input path that routes to the public route has a Forward under /admin
// — not as the gateway reads it, nor as a backend that decodes once or
// twice, turns '\' into '/' and resolves dot segments reads it — and
// Forward is canonical (cleaning it again changes nothing). strip_prefix is
// off: with it the public backend legitimately receives "/admin" for
// "/public/admin".
func TestPublicRouteNeverForwardsAdmin(t *testing.T) {
	routes := []config.Route{
		rt("public", pfx("/public")),
		rt("admin", pfx("/admin")),
	}
	tb := mustNew(t, routes)
	checked := 0
	for _, opts := range allOptCombo {
		var walk func(prefix string, depth int)
		walk = func(prefix string, depth int) {
			if depth == 0 {
				return
			}
			for _, piece := range attackPieces {
				raw := prefix + "/" + piece
				walk(raw, depth-1)
				p, err := CleanPath(raw, opts)
				if err != nil {
					continue
				}
				res := tb.Match("", "GET", p)
				if res.Index != 0 {
					continue
				}
				checked++
				if underAdmin(p.Decoded) || underAdmin(res.Forward) {
					t.Fatalf("%s: %q routes to public but forwards %q", optName(opts), raw, res.Forward)
				}
				for _, v := range naiveBackendViews(res.Forward) {
					if underAdmin(v) {
						t.Fatalf("%s: %q routes to public; a backend reads forward %q as %q", optName(opts), raw, res.Forward, v)
					}
				}
				again, err := CleanPath(res.Forward, opts)
				if err != nil || again.Escaped != res.Forward {
					t.Fatalf("%s: forward %q of %q is not canonical: %+v, %v", optName(opts), res.Forward, raw, again, err)
				}
			}
		}
		walk("/public", 3)
		walk("", 3)
	}
	if checked == 0 {
		t.Fatal("no input routed to public; the property was not exercised")
	}
}
