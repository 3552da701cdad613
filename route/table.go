package route

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/jwtgate/jwtgate/config"
)

// ErrInvalidRoute is wrapped by New for a route it cannot index: a host
// pattern or path that config validation should have refused.
var ErrInvalidRoute = errors.New("invalid route")

// Result is the outcome of Table.Match.
type Result struct {
	// Index is the chosen route's index in the slice given to New, or -1
	// when no route was chosen.
	Index int
	// Status is 0 when a route was chosen, 404 when no route matches the
	// host and path, and 405 when routes match the host and path but none
	// allows the method.
	Status int
	// Allow lists, for a 405, the methods of the routes that match the host
	// and path, sorted, with HEAD added when GET is allowed. It is the
	// value of the Allow header. Nil otherwise.
	Allow []string
	// Forward is the escaped path to send upstream: Path.Escaped, or with
	// upstream.strip_prefix on a path_prefix route, what follows the
	// matched prefix (always starting with "/"; "/" when nothing follows).
	// strip_prefix has no effect on an exact path route.
	Forward string
}

// entry is a route in the form Match needs.
type entry struct {
	hostKind hostKind
	hostKey  string // exact host, or ".example.com" for "*.example.com"
	exact    bool   // match.path rather than match.path_prefix
	// pathKey is the canonical decoded path for an exact route; for a prefix
	// it has no trailing slash, and the root prefix "/" is "".
	pathKey  string
	segments int // number of segments in a prefix's pathKey
	methods  []string
	strip    bool
}

// pathSpecificity ranks how e's path matched; larger wins. An exact path
// beats every prefix, and a longer prefix beats a shorter one.
func (e *entry) pathSpecificity() int {
	if e.exact {
		return 1 << 30
	}
	return len(e.pathKey) + 1
}

// pathMatches reports whether e's path matches the match key k (see
// matchKey), segment-aware for prefixes.
func (e *entry) pathMatches(k string) bool {
	if e.exact {
		return k == e.pathKey
	}
	return e.pathKey == "" || strings.TrimSuffix(k, "/") == e.pathKey || strings.HasPrefix(k, e.pathKey+"/")
}

// allows reports whether a route with these methods accepts method: no
// methods means any; HEAD is accepted wherever GET is.
func allows(methods []string, method string) bool {
	if len(methods) == 0 {
		return true
	}
	for _, m := range methods {
		if m == method || (method == http.MethodHead && m == http.MethodGet) {
			return true
		}
	}
	return false
}

// pathTable indexes the routes of one host pattern by path. Each slice
// holds route indexes in file order.
type pathTable struct {
	exact  map[string][]int
	prefix map[string][]int
}

// Table selects routes. It is immutable after New and safe for concurrent
// use.
type Table struct {
	routes    []config.Route
	entries   []entry
	exactHost map[string]*pathTable
	wildHost  map[string]*pathTable
	anyHost   *pathTable
}

// New indexes routes, which Load has validated (hosts lower-cased, methods
// upper-cased). Hosts go through NormalizeHost, so a port written in a
// route's host is ignored. Route paths are written like request paths, in escaped
// form; each must already be canonical (CleanPath with encoded slashes
// allowed leaves it as it is, or it is the decoded form). A route that
// cannot be indexed makes New return an error wrapping ErrInvalidRoute,
// naming every such route by its YAML path.
func New(routes []config.Route) (*Table, error) {
	t := &Table{
		routes:    routes,
		entries:   make([]entry, len(routes)),
		exactHost: map[string]*pathTable{},
		wildHost:  map[string]*pathTable{},
	}
	var errs []error
	for i := range routes {
		e, err := compile(i, &routes[i])
		if err != nil {
			errs = append(errs, err...)
			continue
		}
		t.entries[i] = e
		var pt *pathTable
		switch e.hostKind {
		case hostExact:
			pt = tableFor(t.exactHost, e.hostKey)
		case hostWildcard:
			pt = tableFor(t.wildHost, e.hostKey)
		default:
			if t.anyHost == nil {
				t.anyHost = &pathTable{exact: map[string][]int{}, prefix: map[string][]int{}}
			}
			pt = t.anyHost
		}
		if e.exact {
			pt.exact[e.pathKey] = append(pt.exact[e.pathKey], i)
		} else {
			pt.prefix[e.pathKey] = append(pt.prefix[e.pathKey], i)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func tableFor(m map[string]*pathTable, key string) *pathTable {
	pt := m[key]
	if pt == nil {
		pt = &pathTable{exact: map[string][]int{}, prefix: map[string][]int{}}
		m[key] = pt
	}
	return pt
}

// compile turns routes[i] into an entry, or returns its problems.
func compile(i int, r *config.Route) (entry, []error) {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("routes[%d].match.%s: %s: %w", i, field, fmt.Sprintf(format, args...), ErrInvalidRoute))
	}
	e := entry{methods: r.Match.Methods, strip: r.Upstream.StripPrefix}

	switch h := r.Match.Host; {
	case h == "":
		e.hostKind = hostAny
	case strings.HasPrefix(h, "*."):
		e.hostKind = hostWildcard
		e.hostKey = NormalizeHost(h[1:])
		if len(e.hostKey) < 2 || strings.ContainsAny(e.hostKey, "*:[]") || strings.HasPrefix(e.hostKey, "..") {
			fail("host", "wildcard must be \"*.\" followed by a domain name")
		}
	case strings.Contains(h, "*"):
		fail("host", "'*' is only allowed as the whole first label (\"*.example.com\")")
	default:
		e.hostKind = hostExact
		e.hostKey = NormalizeHost(h)
		if e.hostKey == "" {
			fail("host", "empty host name")
		}
	}

	field, raw := "path_prefix", r.Match.PathPrefix
	switch {
	case r.Match.Path != "" && r.Match.PathPrefix != "":
		fail("path", "set only one of path and path_prefix")
		return entry{}, errs
	case r.Match.Path != "":
		field, raw, e.exact = "path", r.Match.Path, true
	case r.Match.PathPrefix == "":
		fail("path_prefix", "one of path and path_prefix is required")
		return entry{}, errs
	}
	p, err := CleanPath(raw, Options{AllowEncodedSlashes: true})
	switch {
	case err != nil:
		fail(field, "%v", err)
	case p.Escaped != raw && p.Decoded != raw:
		fail(field, "not in canonical form; write %q", p.Escaped)
	case e.exact:
		e.pathKey = p.Decoded
	default:
		e.pathKey = strings.TrimSuffix(p.Decoded, "/")
		e.segments = strings.Count(e.pathKey, "/")
	}
	if len(errs) > 0 {
		return entry{}, errs
	}
	return e, nil
}

// Len returns the number of routes in the table.
func (t *Table) Len() int { return len(t.routes) }

// Match selects the route for a request (SPEC §2): host is the Host header
// or URL authority (NormalizeHost is applied), method the request method,
// p the cleaned path. It does not allocate when a route is found and the
// path has no ';' parameters.
func (t *Table) Match(host, method string, p Path) Result {
	h := NormalizeHost(host)
	key := matchKey(p.Decoded)
	if i := t.lookup(h, method, key); i >= 0 {
		return Result{Index: i, Forward: t.forward(i, p)}
	}
	if allow, ok := t.allowed(h, key); ok {
		return Result{Index: -1, Status: http.StatusMethodNotAllowed, Allow: allow}
	}
	return Result{Index: -1, Status: http.StatusNotFound}
}

// forward returns the path to send upstream for route i.
func (t *Table) forward(i int, p Path) string {
	e := &t.entries[i]
	if !e.strip || e.exact {
		return p.Escaped
	}
	return stripSegments(p.Escaped, e.segments)
}

// stripSegments removes the first n segments of the escaped path esc. The
// escaped form has a '/' exactly where the decoded form (and the match key)
// has one, so counting segments finds the end of the matched prefix even
// when escapes or ';' parameters change the segments' lengths.
func stripSegments(esc string, n int) string {
	i := 0
	for range n {
		j := strings.IndexByte(esc[i+1:], '/')
		if j < 0 {
			return "/"
		}
		i += 1 + j
	}
	return esc[i:]
}

// matchKey returns the form of a decoded path that routes are compared
// with: the path itself, or, when it has ';' parameters (allowed by
// Options.AllowPathParams), each segment cut at its first ';', as a
// backend that honours parameters reads it ("/admin;x/a" → "/admin/a").
func matchKey(decoded string) string {
	if strings.IndexByte(decoded, ';') < 0 {
		return decoded
	}
	var b strings.Builder
	b.Grow(len(decoded))
	for seg := range strings.SplitSeq(decoded[1:], "/") {
		b.WriteByte('/')
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		b.WriteString(seg)
	}
	return b.String()
}

// lookup returns the winning route index for the normalized host h, method
// and match key, or -1. Host tiers are tried from the most specific; the
// first tier with a candidate wins.
func (t *Table) lookup(h, method, key string) int {
	if pt := t.exactHost[h]; pt != nil {
		if i := t.best(pt, method, key); i >= 0 {
			return i
		}
	}
	if len(t.wildHost) > 0 {
		// Longest suffix first: the leftmost dot that leaves a non-empty label.
		for j := 1; j < len(h); j++ {
			if h[j] != '.' {
				continue
			}
			if pt := t.wildHost[h[j:]]; pt != nil {
				if i := t.best(pt, method, key); i >= 0 {
					return i
				}
			}
		}
	}
	if t.anyHost != nil {
		return t.best(t.anyHost, method, key)
	}
	return -1
}

// best returns the first route in file order, among those of pt allowing
// method, with the most specific path matching key; -1 if none. The prefix
// map is probed once per segment boundary of key, longest first.
func (t *Table) best(pt *pathTable, method, key string) int {
	for _, i := range pt.exact[key] {
		if allows(t.entries[i].methods, method) {
			return i
		}
	}
	if len(pt.prefix) == 0 {
		return -1
	}
	for s := strings.TrimSuffix(key, "/"); ; s = s[:strings.LastIndexByte(s, '/')] {
		for _, i := range pt.prefix[s] {
			if allows(t.entries[i].methods, method) {
				return i
			}
		}
		if s == "" {
			return -1
		}
	}
}

// allowed returns the sorted union of the methods of the routes that match
// host h and key (HEAD added with GET), and whether any route matched.
func (t *Table) allowed(h, key string) ([]string, bool) {
	var methods []string
	matched := false
	collect := func(pt *pathTable) {
		if pt == nil {
			return
		}
		add := func(ids []int) {
			for _, i := range ids {
				matched = true
				methods = append(methods, t.entries[i].methods...)
			}
		}
		add(pt.exact[key])
		for s := strings.TrimSuffix(key, "/"); ; s = s[:strings.LastIndexByte(s, '/')] {
			add(pt.prefix[s])
			if s == "" {
				break
			}
		}
	}
	collect(t.exactHost[h])
	for j := 1; j < len(h); j++ {
		if h[j] == '.' {
			collect(t.wildHost[h[j:]])
		}
	}
	collect(t.anyHost)
	return allowHeader(methods), matched
}

// allowHeader sorts and deduplicates methods, adding HEAD when GET is
// present.
func allowHeader(methods []string) []string {
	if len(methods) == 0 {
		return nil
	}
	if slices.Contains(methods, http.MethodGet) {
		methods = append(methods, http.MethodHead)
	}
	slices.Sort(methods)
	return slices.Compact(methods)
}

// A Shadow is a route that can never be selected, because for each of its
// methods an earlier route has the same host pattern and the same path
// (SPEC §2: validate warns about it).
type Shadow struct {
	// Index is the route that can never match.
	Index int
	// By are the earlier routes that take its requests.
	By []int
}

// Shadowed returns the routes that can never be selected, in file order.
// A prefix written with and without a trailing slash counts as the same
// path.
func (t *Table) Shadowed() []Shadow {
	type key struct {
		kind    hostKind
		host    string
		exact   bool
		pathKey string
	}
	groups := map[key][]int{}
	var out []Shadow
	for i := range t.entries {
		e := &t.entries[i]
		k := key{e.hostKind, e.hostKey, e.exact, e.pathKey}
		earlier := groups[k]
		groups[k] = append(earlier, i)
		if len(earlier) == 0 {
			continue
		}
		var by []int
		covered := true
		if len(e.methods) == 0 {
			covered = false
			for _, j := range earlier {
				if len(t.entries[j].methods) == 0 {
					by, covered = []int{j}, true
					break
				}
			}
		} else {
			for _, m := range e.methods {
				found := false
				for _, j := range earlier {
					if allows(t.entries[j].methods, m) {
						if !slices.Contains(by, j) {
							by = append(by, j)
						}
						found = true
						break
					}
				}
				if !found {
					covered = false
					break
				}
			}
		}
		if covered {
			slices.Sort(by)
			out = append(out, Shadow{Index: i, By: by})
		}
	}
	return out
}
