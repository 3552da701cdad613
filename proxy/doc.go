// Package proxy is jwtgate's request path: it matches a request to a route,
// extracts and checks the token in the order SPEC §3 gives, evaluates the
// route's requirements, forwards allowed requests through
// httputil.ReverseProxy, answers refused ones as SPEC §4 says, and emits
// exactly one audit record per request.
//
// A Gateway is the immutable runtime form of one loaded config. A Handler
// serves the current Gateway and swaps in a new one atomically on reload;
// a request in flight keeps the Gateway it started with.
package proxy
