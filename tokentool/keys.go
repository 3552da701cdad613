package tokentool

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/MicahParks/jwkset"
)

// minHMACSecretBytes is the shortest HMAC secret accepted, as for the
// gateway's static keys (SPEC §2), so mint never makes a token the gateway
// could not be configured to verify.
const minHMACSecretBytes = 32

// maxKeyFileBytes bounds what is read from a key, secret or claims file.
const maxKeyFileBytes = 1 << 20

// base64Prefix marks a secret given as base64 text (SPEC §2).
const base64Prefix = "base64:"

// Sentinel errors wrapped by key loading (matched with errors.Is).
var (
	// errNoPrivateKey means a key file holds no private key to sign with.
	errNoPrivateKey = errors.New("no private key")
	// errUnsupportedKey means a key's type has no JWS algorithm here.
	errUnsupportedKey = errors.New("unsupported key type")
	// errSecretTooShort means an HMAC secret is shorter than 32 bytes.
	errSecretTooShort = errors.New("hmac secret too short")
)

// signingKey is a private key or HMAC secret ready for golang-jwt, with
// what the key file said about it.
type signingKey struct {
	key   any            // *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey or []byte
	kind  keyKind        // family, from kindOf
	curve elliptic.Curve // kindEC only
	kid   string         // the JWK's kid, if the key came from a JWK
	alg   string         // the JWK's alg, if the key came from a JWK and had one
}

// newSigningKey classifies key, failing for types no algorithm signs with.
func newSigningKey(key any) (*signingKey, error) {
	kind, curve, ok := kindOf(key)
	if !ok {
		return nil, fmt.Errorf("%w %T (want RSA, EC P-256/P-384/P-521 or Ed25519)", errUnsupportedKey, key)
	}
	return &signingKey{key: key, kind: kind, curve: curve}, nil
}

// readLimited reads at most maxKeyFileBytes from path.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxKeyFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxKeyFileBytes)
	}
	return b, nil
}

// loadKeyFile reads a private key from a PEM file (PKCS#8, PKCS#1 or SEC1)
// or from a JWK / JWK Set JSON file with private members. kid, when not
// empty, selects the key of a JWK Set that holds several.
func loadKeyFile(path, kid string) (*signingKey, error) {
	b, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if trimmed := bytes.TrimSpace(b); len(trimmed) > 0 && trimmed[0] == '{' {
		k, err := parseJWKFile(trimmed, kid)
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		return k, nil
	}
	k, err := parsePEMKey(b)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// parsePEMKey returns the first private key among the PEM blocks in b.
// Parameter blocks (openssl's "EC PARAMETERS") are skipped; public keys and
// certificates are reported as such, since signing needs the private half.
func parsePEMKey(b []byte) (*signingKey, error) {
	var sawBlock, sawPublic bool
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawBlock = true
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			if _, encrypted := block.Headers["Proc-Type"]; encrypted {
				return nil, errors.New("encrypted PEM keys are not supported; decrypt it first (openssl pkey -in KEY -out PLAIN)")
			}
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			if _, encrypted := block.Headers["Proc-Type"]; encrypted {
				return nil, errors.New("encrypted PEM keys are not supported; decrypt it first (openssl pkey -in KEY -out PLAIN)")
			}
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted PKCS#8 keys are not supported; decrypt it first (openssl pkey -in KEY -out PLAIN)")
		case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
			sawPublic = true
			continue
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %q PEM block: %w", block.Type, err)
		}
		return newSigningKey(key)
	}
	switch {
	case sawPublic:
		return nil, fmt.Errorf("%w: the PEM file holds a public key or certificate; signing needs the private key", errNoPrivateKey)
	case sawBlock:
		return nil, fmt.Errorf("%w: no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block in the PEM file", errNoPrivateKey)
	}
	return nil, fmt.Errorf("%w: neither PEM nor JSON (want a PEM private key, a JWK or a JWK Set)", errNoPrivateKey)
}

// parseJWKFile parses one JWK or a JWK Set with jwkset and picks the key to
// sign with: the one whose kid is kid, or else the only private key.
func parseJWKFile(b []byte, kid string) (*signingKey, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	raws := []json.RawMessage{b}
	if keysRaw, isSet := probe["keys"]; isSet {
		if err := json.Unmarshal(keysRaw, &raws); err != nil {
			return nil, fmt.Errorf(`decode JWK Set: "keys" is not an array of JWKs: %w`, err)
		}
		if len(raws) == 0 {
			return nil, fmt.Errorf("%w: the JWK Set is empty", errNoPrivateKey)
		}
	}
	jwks := make([]jwkset.JWK, 0, len(raws))
	for i, raw := range raws {
		// Private: true is the only way jwkset decodes private members.
		j, err := jwkset.NewJWKFromRawJSON(raw, jwkset.JWKMarshalOptions{Private: true}, jwkset.JWKValidateOptions{})
		if err != nil {
			return nil, fmt.Errorf("JWK %d: %w", i, err)
		}
		jwks = append(jwks, j)
	}
	chosen, err := chooseJWK(jwks, kid)
	if err != nil {
		return nil, err
	}
	m := chosen.Marshal()
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fmt.Errorf("JWK %q has use %q; signing needs use \"sig\" or none", m.KID, m.USE)
	}
	k, err := newSigningKey(chosen.Key())
	if err != nil {
		if !isPrivate(chosen) {
			return nil, fmt.Errorf("%w: JWK %q has only public members; signing needs the private ones (d)", errNoPrivateKey, m.KID)
		}
		return nil, fmt.Errorf("JWK %q: %w", m.KID, err)
	}
	if secret, ok := k.key.([]byte); ok && len(secret) < minHMACSecretBytes {
		return nil, fmt.Errorf("JWK %q: %w: %d bytes, at least %d are required", m.KID, errSecretTooShort, len(secret), minHMACSecretBytes)
	}
	if rk, ok := k.key.(*rsa.PrivateKey); ok {
		// jwkset fills CRT values from dp/dq/qi but not the rest of
		// the precomputation; let crypto/rsa do it once.
		rk.Precompute()
	}
	k.kid, k.alg = m.KID, string(m.ALG)
	return k, nil
}

// chooseJWK selects the key with the given kid, the only key of a set with
// one key, or else the only key with private members.
func chooseJWK(jwks []jwkset.JWK, kid string) (jwkset.JWK, error) {
	if len(jwks) == 1 {
		return jwks[0], nil
	}
	var kids []string
	for _, j := range jwks {
		kids = append(kids, fmt.Sprintf("%q", j.Marshal().KID))
	}
	if kid != "" {
		for _, j := range jwks {
			if j.Marshal().KID == kid {
				return j, nil
			}
		}
		return jwkset.JWK{}, fmt.Errorf("no key with kid %q in the JWK Set (kids: %s)", kid, strings.Join(kids, ", "))
	}
	var private []jwkset.JWK
	for _, j := range jwks {
		if isPrivate(j) {
			private = append(private, j)
		}
	}
	switch len(private) {
	case 1:
		return private[0], nil
	case 0:
		return jwkset.JWK{}, fmt.Errorf("%w: the JWK Set has only public keys; signing needs private members (d)", errNoPrivateKey)
	}
	return jwkset.JWK{}, fmt.Errorf("the JWK Set holds %d private keys; choose one with --kid (kids: %s)", len(private), strings.Join(kids, ", "))
}

// isPrivate reports whether jwkset decoded private key material for j.
func isPrivate(j jwkset.JWK) bool {
	_, _, ok := kindOf(j.Key())
	return ok
}

// loadSecret reads an HMAC secret from an environment variable or a file:
// the bytes as they are, or base64 when they start with "base64:" (SPEC §2).
func loadSecret(envName, file string, lookupEnv func(string) (string, bool)) (*signingKey, error) {
	var (
		raw    []byte
		source string
	)
	if envName != "" {
		v, ok := lookupEnv(envName)
		if !ok {
			return nil, fmt.Errorf("secret: environment variable %s is not set", envName)
		}
		raw, source = []byte(v), "environment variable "+envName
	} else {
		b, err := readLimited(file)
		if err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
		raw, source = b, "file "+file
	}
	secret, err := decodeSecret(raw)
	if err != nil {
		return nil, fmt.Errorf("secret from %s: %w", source, err)
	}
	return &signingKey{key: secret, kind: kindHMAC}, nil
}

// decodeSecret applies the SPEC §2 rule: bytes as they are, or standard
// base64 after a "base64:" prefix; at least 32 bytes either way. Errors
// never include the secret.
func decodeSecret(raw []byte) ([]byte, error) {
	secret := raw
	if text, ok := bytes.CutPrefix(raw, []byte(base64Prefix)); ok {
		text = bytes.TrimSpace(text)
		secret = make([]byte, base64.StdEncoding.DecodedLen(len(text)))
		n, err := base64.StdEncoding.Decode(secret, text)
		if err != nil {
			return nil, fmt.Errorf("decode base64 after %q: %w", base64Prefix, err)
		}
		secret = secret[:n]
	}
	if len(secret) < minHMACSecretBytes {
		return nil, fmt.Errorf("%w: %d bytes, at least %d are required", errSecretTooShort, len(secret), minHMACSecretBytes)
	}
	return secret, nil
}
