package route

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/jwtgate/jwtgate/config"
)

// Candidate is one route as `jwtgate explain` shows it: whether it matched
// the request's host, path and method, and why it won or lost.
type Candidate struct {
	// Index is the route's index in the slice given to New.
	Index int
	// Name is the route's name.
	Name string
	// HostMatch, PathMatch and MethodMatch report each test on its own.
	HostMatch, PathMatch, MethodMatch bool
	// Rank orders the routes that pass all three tests, from 1 (selected);
	// 0 for the others.
	Rank int
	// Selected marks the route Match chooses.
	Selected bool
	// Reason says, in a few words, why the route was selected or lost, e.g.
	// "host does not match", "path less specific than routes[3]",
	// "method POST not allowed".
	Reason string
}

// Explain evaluates every route against a request, in file order, for
// `jwtgate explain`. It applies the same rules as Match (its Rank 1 route is
// the one Match selects) but scans every route, so it is meant for the
// command line, not for serving.
func (t *Table) Explain(host, method string, p Path) []Candidate {
	h := NormalizeHost(host)
	key := matchKey(p.Decoded)
	out := make([]Candidate, len(t.entries))
	type score struct{ idx, host, path int }
	var ranked []score
	for i := range t.entries {
		e := &t.entries[i]
		c := Candidate{
			Index:       i,
			Name:        t.routes[i].Name,
			HostMatch:   hostMatches(e.hostKind, e.hostKey, h),
			PathMatch:   e.pathMatches(key),
			MethodMatch: allows(e.methods, method),
		}
		switch {
		case !c.HostMatch:
			c.Reason = fmt.Sprintf("host does not match %q", t.routes[i].Match.Host)
		case !c.PathMatch:
			c.Reason = "path does not match " + pathPattern(&t.routes[i].Match)
		case !c.MethodMatch:
			c.Reason = fmt.Sprintf("method %s not allowed (allows %s)", method, strings.Join(allowHeader(slices.Clone(e.methods)), ", "))
		default:
			ranked = append(ranked, score{i, hostSpecificity(e.hostKind, e.hostKey), e.pathSpecificity()})
		}
		out[i] = c
	}
	slices.SortStableFunc(ranked, func(a, b score) int {
		if c := cmp.Compare(b.host, a.host); c != 0 {
			return c
		}
		if c := cmp.Compare(b.path, a.path); c != 0 {
			return c
		}
		return cmp.Compare(a.idx, b.idx)
	})
	for r, s := range ranked {
		c := &out[s.idx]
		c.Rank = r + 1
		if r == 0 {
			c.Selected = true
			c.Reason = "selected"
			continue
		}
		w := ranked[0]
		switch {
		case s.host < w.host:
			c.Reason = fmt.Sprintf("host less specific than routes[%d]", w.idx)
		case s.path < w.path:
			c.Reason = fmt.Sprintf("path less specific than routes[%d]", w.idx)
		default:
			c.Reason = fmt.Sprintf("as specific as routes[%d], which comes first", w.idx)
		}
	}
	return out
}

// pathPattern renders a route's path rule as written in config.
func pathPattern(m *config.Match) string {
	if m.Path != "" {
		return fmt.Sprintf("path %q", m.Path)
	}
	return fmt.Sprintf("path_prefix %q", m.PathPrefix)
}
