package jwks

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Key size limits for RSA. Keys under minRSABits are never used (SPEC §3.5);
// keys over maxRSABits are refused by crypto/rsa anyway.
const (
	minRSABits = 2048
	maxRSABits = 16384
)

// algSet is a bit set of the signature algorithms jwtgate can verify.
type algSet uint16

const (
	algRS256 algSet = 1 << iota
	algRS384
	algRS512
	algPS256
	algPS384
	algPS512
	algES256
	algES384
	algES512
	algEdDSA
	algHS256
	algHS384
	algHS512

	algsRSA  = algRS256 | algRS384 | algRS512 | algPS256 | algPS384 | algPS512
	algsHMAC = algHS256 | algHS384 | algHS512
)

// algBit returns the bit for a JWS alg name, or 0 for an alg jwtgate never
// verifies (including "none").
func algBit(alg string) algSet {
	switch alg {
	case "RS256":
		return algRS256
	case "RS384":
		return algRS384
	case "RS512":
		return algRS512
	case "PS256":
		return algPS256
	case "PS384":
		return algPS384
	case "PS512":
		return algPS512
	case "ES256":
		return algES256
	case "ES384":
		return algES384
	case "ES512":
		return algES512
	case "EdDSA":
		return algEdDSA
	case "HS256":
		return algHS256
	case "HS384":
		return algHS384
	case "HS512":
		return algHS512
	}
	return 0
}

// entry is one usable key. Entries are immutable once built.
type entry struct {
	key     any    // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey, or []byte (static secrets only)
	allowed algSet // algs this key may verify: its type's family, narrowed by the JWK's alg
	info    KeyInfo
}

// keyFacts describes a public key (or static secret) for KeyInfo and the
// alg-family check. It fails for key types and curves jwtgate cannot use.
// secret must be true only for keys from static config: it is the only way
// a []byte key is accepted.
func keyFacts(key any, secret bool) (family algSet, kty, crv string, bits int, err error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return 0, "", "", 0, errors.New("rsa key has no modulus")
		}
		bits = k.N.BitLen()
		if bits < minRSABits {
			return 0, "", "", bits, fmt.Errorf("rsa key is %d bits, minimum %d", bits, minRSABits)
		}
		if bits > maxRSABits {
			return 0, "", "", bits, fmt.Errorf("rsa key is %d bits, maximum %d", bits, maxRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return 0, "", "", bits, fmt.Errorf("rsa exponent %d is invalid", k.E)
		}
		if rocaFingerprint(k.N) {
			return 0, "", "", bits, errors.New("rsa key has the ROCA fingerprint (CVE-2017-15361): its private key can be computed; replace it")
		}
		return algsRSA, "RSA", "", bits, nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return 0, "", "", 0, errors.New("ec key has no curve")
		}
		switch k.Curve {
		case elliptic.P256():
			family, crv, bits = algES256, "P-256", 256
		case elliptic.P384():
			family, crv, bits = algES384, "P-384", 384
		case elliptic.P521():
			family, crv, bits = algES512, "P-521", 521
		default:
			return 0, "", "", 0, fmt.Errorf("unsupported ec curve %q", k.Curve.Params().Name)
		}
		if _, err := k.Bytes(); err != nil { // fails for points off the curve
			return 0, "", "", 0, fmt.Errorf("invalid ec public key: %w", err)
		}
		return family, "EC", crv, bits, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return 0, "", "", 0, fmt.Errorf("ed25519 key is %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return algEdDSA, "OKP", "Ed25519", 256, nil
	case []byte:
		if !secret {
			return 0, "", "", 0, errors.New("symmetric key outside static secrets")
		}
		return algsHMAC, "oct", "", len(k) * 8, nil
	}
	return 0, "", "", 0, fmt.Errorf("unsupported key type %T", key)
}

// newEntry builds an entry, checking that the declared alg (if any) fits
// the key. secret marks keys from static config (see keyFacts).
func newEntry(key any, kid, alg, use string, secret bool) (*entry, error) {
	family, kty, crv, bits, err := keyFacts(key, secret)
	if err != nil {
		return nil, err
	}
	allowed := family
	if alg != "" {
		b := algBit(alg)
		if b&family == 0 {
			if crv != "" {
				return nil, fmt.Errorf("alg %q does not fit kty %s crv %s", alg, kty, crv)
			}
			return nil, fmt.Errorf("alg %q does not fit kty %s", alg, kty)
		}
		allowed = b
	}
	tp, err := thumbprint(key)
	if err != nil {
		return nil, err
	}
	return &entry{
		key:     key,
		allowed: allowed,
		info: KeyInfo{
			KID:        kid,
			Kty:        kty,
			Alg:        alg,
			Use:        use,
			Crv:        crv,
			Bits:       bits,
			Thumbprint: tp,
		},
	}, nil
}

// thumbprint returns the RFC 7638 SHA-256 JWK thumbprint of key, base64url
// without padding. The required members are written in lexicographic order
// with no whitespace, from the parsed key (so padding or leading zeros in
// the source JWK do not change the result). Every member value is base64url
// or a fixed curve name, so no JSON escaping is needed.
func thumbprint(key any) (string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	var sb strings.Builder
	switch k := key.(type) {
	case *rsa.PublicKey:
		sb.WriteString(`{"e":"`)
		sb.WriteString(b64(big.NewInt(int64(k.E)).Bytes()))
		sb.WriteString(`","kty":"RSA","n":"`)
		sb.WriteString(b64(k.N.Bytes()))
		sb.WriteString(`"}`)
	case *ecdsa.PublicKey:
		pt, err := k.Bytes() // 0x04 || X || Y, each coordinate full field size
		if err != nil {
			return "", fmt.Errorf("thumbprint: %w", err)
		}
		n := (len(pt) - 1) / 2
		sb.WriteString(`{"crv":"`)
		sb.WriteString(k.Curve.Params().Name)
		sb.WriteString(`","kty":"EC","x":"`)
		sb.WriteString(b64(pt[1 : 1+n]))
		sb.WriteString(`","y":"`)
		sb.WriteString(b64(pt[1+n:]))
		sb.WriteString(`"}`)
	case ed25519.PublicKey:
		sb.WriteString(`{"crv":"Ed25519","kty":"OKP","x":"`)
		sb.WriteString(b64(k))
		sb.WriteString(`"}`)
	case []byte:
		sb.WriteString(`{"k":"`)
		sb.WriteString(b64(k))
		sb.WriteString(`","kty":"oct"}`)
	default:
		return "", fmt.Errorf("thumbprint: unsupported key type %T", key)
	}
	sum := sha256.Sum256([]byte(sb.String()))
	return b64(sum[:]), nil
}

// rocaPrimes are the odd primes of the smallest primorial used by the
// Infineon RSALib key generator behind ROCA (CVE-2017-15361); every
// modulus size it produced uses at least these.
var rocaPrimes = [...]int64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
	101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167}

// rocaFingerprint reports whether n has the structure of an RSALib
// modulus: its primes are k·M + (65537^a mod M), so n mod p lies in the
// subgroup generated by 65537 modulo every small prime p dividing M. This
// is the published detection test (Nemec et al., CCS 2017), not a
// factoring attempt. A random modulus passes all 38 residue checks with
// probability about 2^-28, the rate of the published detector that CAs
// use (e.g. Let's Encrypt's goodkey).
func rocaFingerprint(n *big.Int) bool {
	var r big.Int
	for _, p := range rocaPrimes {
		res := r.Mod(n, big.NewInt(p)).Int64()
		g := 65537 % p
		in := false
		for x, i := int64(1), int64(0); i < p; i++ { // walk the subgroup <g> mod p
			if x == res {
				in = true
				break
			}
			x = x * g % p
			if x == 1 {
				break
			}
		}
		if !in {
			return false
		}
	}
	return true
}
