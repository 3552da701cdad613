// Package route canonicalises request paths and selects the route that
// handles a request (SPEC §2 "route selection", SPEC §3.1).
//
// # Paths
//
// CleanPath takes the path as received on the wire (escaped form, without
// the query) and returns the one canonical form that is both matched and
// forwarded, so the backend never receives a path other than the one that
// was authorised. It percent-decodes every escape except %2F and %5C,
// resolves dot segments (also percent-encoded ones such as %2e%2e), merges
// runs of "/", and refuses everything a backend could read differently from
// the gateway: encoded slashes and backslashes (unless
// Options.AllowEncodedSlashes), raw backslashes, ';' path parameters
// (unless Options.AllowPathParams), control characters, invalid UTF-8
// (which includes over-long encodings such as %c0%ae for "."), double
// encoding (%252e) and a ".." that would climb above the root. The last is
// rejected rather than clamped: no legitimate client sends it, and
// clamping would silently route a traversal attempt.
//
// # Route selection
//
// A Table indexes routes by host (exact map, wildcard suffix map, host-less
// routes) and by path (exact map, and a prefix map probed once per segment
// boundary of the request path), so the cost of Match grows with the path depth,
// not with the number of routes. The order of precedence is:
//
//  1. the request method: only routes whose methods include it (HEAD counts
//     as GET) or that list no methods are candidates, so a route for the
//     request's method wins even over a more specific route for others;
//  2. the host: exact host, then "*.example.com" wildcards, longest suffix
//     first (a wildcard never matches the bare domain), then routes without
//     a host;
//  3. the path: exact path, then the longest path_prefix; prefixes are
//     segment-aware ("/orders" matches "/orders", "/orders/" and
//     "/orders/1", never "/ordersx"). A prefix written with a trailing
//     slash ("/orders/") is the same prefix as "/orders" and also matches
//     "/orders": backends commonly serve both alike, so protecting one
//     and not the other would leave a gap;
//  4. ties go to the route that comes first in the file.
//
// Paths are case-sensitive; hosts are not. When routes match the host and
// path but none allows the method, Match answers 405 with the allowed
// methods; when none matches the path, 404.
package route
