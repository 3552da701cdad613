// Package auditlog is the read side of jwtgate's audit trail: the
// `jwtgate audit verify`, `jwtgate audit tail` and `jwtgate audit report`
// subcommands.
//
// It reads the JSON-lines audit log described in SPEC §5 and the
// tamper-evident HMAC chain of SPEC §6 directly from the files, without
// importing the writer (package audit), so that the two implementations
// cross-check each other: a chain that the writer produces and this package
// verifies was built by two independent readings of the contract.
//
// Everything here treats the log as untrusted input. A line that is not a
// JSON object is reported, never fatal; values are escaped before they reach
// a terminal (no control characters or bidi overrides from a request path
// or a claim ever reach the screen raw) and are HTML-escaped in reports.
package auditlog
