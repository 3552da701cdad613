package tokentool

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
)

// keyKind is the family of key an algorithm signs with.
type keyKind int

const (
	kindRSA keyKind = iota + 1
	kindEC
	kindEd25519
	kindHMAC
)

// String names the kind for messages.
func (k keyKind) String() string {
	switch k {
	case kindRSA:
		return "RSA"
	case kindEC:
		return "EC"
	case kindEd25519:
		return "Ed25519"
	case kindHMAC:
		return "HMAC secret"
	}
	return "unknown"
}

// algInfo describes one JWS algorithm jwtgate's tools can use.
type algInfo struct {
	name  string         // canonical JWA name: "ES256", "EdDSA"
	kind  keyKind        // key family
	curve elliptic.Curve // kindEC only
}

// algorithms are the JWS algorithms the token tools support, in SPEC order.
// "none" is deliberately absent: jwtgate never accepts unsigned tokens.
var algorithms = []algInfo{
	{name: "RS256", kind: kindRSA},
	{name: "RS384", kind: kindRSA},
	{name: "RS512", kind: kindRSA},
	{name: "PS256", kind: kindRSA},
	{name: "PS384", kind: kindRSA},
	{name: "PS512", kind: kindRSA},
	{name: "ES256", kind: kindEC, curve: elliptic.P256()},
	{name: "ES384", kind: kindEC, curve: elliptic.P384()},
	{name: "ES512", kind: kindEC, curve: elliptic.P521()},
	{name: "EdDSA", kind: kindEd25519},
	{name: "HS256", kind: kindHMAC},
	{name: "HS384", kind: kindHMAC},
	{name: "HS512", kind: kindHMAC},
}

// lookupAlg finds an algorithm by name, case-insensitively ("es256" is
// ES256). ok is false for unknown names and for "none".
func lookupAlg(name string) (algInfo, bool) {
	for _, a := range algorithms {
		if strings.EqualFold(a.name, name) {
			return a, true
		}
	}
	return algInfo{}, false
}

// algNames lists the algorithms whose kind passes keep, for messages.
func algNames(keep func(algInfo) bool) string {
	var names []string
	for _, a := range algorithms {
		if keep(a) {
			names = append(names, a.name)
		}
	}
	return strings.Join(names, " ")
}

// asymmetric reports whether a signs with a public/private key pair.
func asymmetric(a algInfo) bool { return a.kind != kindHMAC }

// defaultAlg is the algorithm inferred from a key when none is given:
// RSA → RS256, P-256 → ES256, P-384 → ES384, P-521 → ES512,
// Ed25519 → EdDSA, HMAC → HS256.
func defaultAlg(k *signingKey) (algInfo, error) {
	switch k.kind {
	case kindRSA:
		a, _ := lookupAlg("RS256")
		return a, nil
	case kindEC:
		for _, a := range algorithms {
			if a.kind == kindEC && a.curve == k.curve {
				return a, nil
			}
		}
		return algInfo{}, fmt.Errorf("EC curve %s has no JWS algorithm (want P-256, P-384 or P-521)", k.curve.Params().Name)
	case kindEd25519:
		a, _ := lookupAlg("EdDSA")
		return a, nil
	case kindHMAC:
		a, _ := lookupAlg("HS256")
		return a, nil
	}
	return algInfo{}, fmt.Errorf("unsupported key type")
}

// checkAlgFitsKey reports why a cannot sign with k, or nil when it can.
func checkAlgFitsKey(a algInfo, k *signingKey) error {
	if a.kind == k.kind && (a.kind != kindEC || a.curve == k.curve) {
		return nil
	}
	return fmt.Errorf("alg %s needs %s, but the key is %s (algorithms for it: %s)",
		a.name, a.needs(), k.describe(), algNames(func(b algInfo) bool { return b.kind == k.kind && (b.kind != kindEC || b.curve == k.curve) }))
}

// needs says what key a signs with, for messages.
func (a algInfo) needs() string {
	switch a.kind {
	case kindEC:
		return "an EC " + a.curve.Params().Name + " key"
	case kindHMAC:
		return "an HMAC secret (--secret-env or --secret-file)"
	}
	return "an " + a.kind.String() + " key"
}

// describe says what k is, for messages: "an RSA-2048 key", "an EC P-256 key".
func (k *signingKey) describe() string {
	switch key := k.key.(type) {
	case *rsa.PrivateKey:
		return fmt.Sprintf("an RSA-%d key", key.N.BitLen())
	case *ecdsa.PrivateKey:
		return "an EC " + key.Curve.Params().Name + " key"
	case ed25519.PrivateKey:
		return "an Ed25519 key"
	case []byte:
		return "an HMAC secret"
	}
	return fmt.Sprintf("a %T", k.key)
}

// kindOf classifies a parsed private key; ok is false for key types no JWS
// algorithm here signs with (X25519, DSA, ...).
func kindOf(key any) (kind keyKind, curve elliptic.Curve, ok bool) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return kindRSA, nil, true
	case *ecdsa.PrivateKey:
		if !slices.ContainsFunc(algorithms, func(a algInfo) bool { return a.curve == k.Curve }) {
			return 0, nil, false
		}
		return kindEC, k.Curve, true
	case ed25519.PrivateKey:
		return kindEd25519, nil, true
	case []byte:
		return kindHMAC, nil, true
	}
	return 0, nil, false
}
