// Package jwks turns one configured token provider into a source of
// verification keys.
//
// A [Provider] loads keys from exactly one of: a remote JWK Set (jwks_url),
// a remote JWK Set found through OpenID Connect discovery (discovery), a
// local JWK Set file (jwks_file), or static keys from the configuration
// (PEM public keys and HMAC secrets). Each JWK is parsed and validated on
// its own with jwkset, so one weak or malformed key is skipped and reported
// instead of failing the whole set.
//
// Keys live in an immutable snapshot behind an atomic pointer: looking up a
// known kid takes no lock and does not allocate. Remote sets are refreshed
// by one goroutine per provider, owned by the context given to [New], which
// exits when that context is cancelled or [Provider.Close] is called. An
// unknown kid triggers at most one refresh per unknown_kid_min_interval,
// shared by all concurrent requests, and a request waits for it no longer
// than its own deadline or fetch_timeout; a rate-limited request fails at
// once.
//
// Safety rules enforced here, beyond what jwkset and keyfunc do by default:
//   - every fetch has a timeout, a 1 MiB body cap (a larger body is an
//     error), at most 3 redirects and never a redirect to plain http off
//     loopback;
//   - https is required off loopback unless allow_insecure_http is set;
//   - a failed refresh keeps the last good keys; New never fails because a
//     JWKS endpoint is down (the provider starts without keys and retries);
//   - symmetric (oct) keys from a JWK Set are never used, so a public JWKS
//     can never supply an HMAC secret; HMAC keys come only from static
//     secrets;
//   - RSA keys under 2048 bits, keys whose use is not "sig", unsupported key
//     types or curves, EC points off their curve, keys whose alg does not
//     fit their type, and duplicate kids are skipped and reported;
//   - a token's alg must equal the JWK's alg (when the JWK declares one) and
//     fit the key's type and curve.
package jwks
