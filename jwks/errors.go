package jwks

import "errors"

// Lookup errors returned (wrapped) by [Provider.Resolve]. The proxy maps them
// to audit reasons with errors.Is.
var (
	// ErrKeyNotFound means no usable key has the token's kid, even after the
	// refresh an unknown kid may trigger (or the refresh was rate-limited).
	ErrKeyNotFound = errors.New("key not found")
	// ErrKeysUnavailable means the provider has never loaded keys, or its
	// last good fetch is older than max_stale.
	ErrKeysUnavailable = errors.New("keys unavailable")
	// ErrKeyMismatch means the key found for the kid cannot verify the
	// token's alg: the JWK's own alg differs, or the key's type, curve or
	// size does not fit the algorithm family.
	ErrKeyMismatch = errors.New("key does not fit token algorithm")
	// ErrNoKID means the token has no kid and the provider does not have
	// exactly one key.
	ErrNoKID = errors.New("token has no kid and the provider does not have exactly one key")
)

// Fetch errors, reported (wrapped) in [RefreshEvent.Err].
var (
	// ErrInsecureURL means a JWKS, discovery or redirect URL is not https
	// and not allowed as plain http (loopback, or allow_insecure_http).
	ErrInsecureURL = errors.New("url must be https (plain http only on loopback or with allow_insecure_http)")
	// ErrRedirectRefused means a redirect went to a refused URL, or there
	// were more than 3 redirects.
	ErrRedirectRefused = errors.New("redirect refused")
	// ErrUnexpectedStatus means the server answered with a status other
	// than 200.
	ErrUnexpectedStatus = errors.New("unexpected http status")
	// ErrResponseTooLarge means a response body exceeded config.MaxJWKSBytes.
	// The body is refused, never truncated.
	ErrResponseTooLarge = errors.New("response body too large")
	// ErrInvalidJWKS means a body is not a JSON object with a "keys" array.
	ErrInvalidJWKS = errors.New("invalid jwk set")
	// ErrDiscovery means an OpenID Connect discovery document is unusable.
	ErrDiscovery = errors.New("invalid discovery document")
	// ErrIssuerMismatch means the discovery document's issuer is not the
	// configured issuer.
	ErrIssuerMismatch = errors.New("discovery issuer does not match configured issuer")
)
