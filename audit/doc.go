// Package audit writes jwtgate's audit trail (SPEC §5 and §6): one JSON
// object per line for every request decision and for lifecycle events
// (startup, shutdown, config reload, JWKS refresh), optionally protected by
// a tamper-evident HMAC-SHA256 chain.
//
// Records are encoded with zerolog's typed fields, so every value taken from
// a request or a token is a JSON string, number, boolean or JSON produced by
// encoding/json: a value cannot break out of its line (no log injection).
// The Record type has no place for a raw token, a secret, or an
// Authorization or Cookie value.
//
// A Writer buffers complete lines and hands them to the sink (stdout or a
// size-rotated file) from one background goroutine, at least every 100 ms
// and on Flush and Close. A line is never split between two Write calls,
// so a rotation always falls between records. With on_write_error "block"
// (the default) a caller waits while the sink is slow or failing and no
// record is lost; with "drop" records are dropped when the sink fails or
// the buffer is full, every drop is counted, and an "audit_dropped" record
// is written once writing resumes.
//
// The chain, its line format and the exact MAC computation are documented
// on ChainMAC, which the read-side verifier reuses.
package audit
