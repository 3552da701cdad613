// Package policy evaluates a route's claim requirements (SPEC §2 `require`,
// §3.7) against a verified token's claims, and turns claim values into
// request header values (SPEC §5 claims_to_headers).
//
// Claims are the map[string]any that encoding/json produces with UseNumber:
// numbers are json.Number, arrays []any, objects map[string]any. Claim paths
// are either dotted ("realm_access.roles") or JSON Pointers (RFC 6901,
// "/https:~1~1example.com~1groups"); see ParsePath.
//
// A Requirement is compiled once, when the configuration is loaded, and is
// then safe for concurrent use by any number of requests. Evaluation never
// panics on unexpected claim types: a claim of the wrong type simply does not
// satisfy the rule. Matching is exact and case-sensitive throughout, so
// look-alikes ("orders:read2", "Orders:read", "acme ") never satisfy a rule.
//
// The package imports only the standard library and config; it does no I/O
// and keeps no global state.
package policy
