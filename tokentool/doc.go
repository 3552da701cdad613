// Package tokentool implements the `jwtgate token` subcommands (SPEC §1):
// keygen writes a signing key pair and a public JWK Set for services that
// sign their own tokens, mint signs a test token from a private key (PEM or
// JWK) or an HMAC secret, and inspect decodes a token's header and claims
// without trusting it.
//
// Each command is a function with the shape
//
//	func(args []string, stdout, stderr io.Writer) int
//
// that parses its own flags and returns the process exit code: 0 on success,
// 1 for a failure it reports, 2 for bad usage (SPEC §1). cmd/jwtgate
// dispatches `jwtgate token keygen|mint|inspect ARGS...` to them.
//
// All cryptography comes from the standard library, golang-jwt/jwt/v5 and
// MicahParks/jwkset; this package only encodes, decodes and wires them up.
// No command prints a raw token it was given, a private key or a secret,
// except mint, whose whole purpose is to print the token it signed.
package tokentool
