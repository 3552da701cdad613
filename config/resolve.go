package config

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// maxKeyFileBytes caps every secret, key and chain key file read at load.
const maxKeyFileBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted (SPEC §3.5).
const minRSABits = 2048

// secret resolves an HMAC secret from secret_env or secret_file and checks
// its length. Messages give the secret's length, never its bytes.
func (v *validator) secret(kb string, k *StaticKey) {
	min := minSecretBytes(k.Alg)
	if !v.apply {
		if k.secret != nil && len(k.secret) < min {
			v.errorf(kb, "the secret is %d bytes; %s secrets must be at least %d bytes", len(k.secret), algOrHMAC(k.Alg), min)
		}
		return
	}
	var raw []byte
	var path string
	if k.SecretEnv != "" {
		path = kb + ".secret_env"
		val, ok := v.lookupEnv(k.SecretEnv)
		if !ok {
			v.errorf(path, "environment variable %s is not set; export it with the HMAC secret (at least %d bytes, or base64: followed by their base64)", k.SecretEnv, MinHMACSecretBytes)
			return
		}
		raw = []byte(val)
	} else {
		path = kb + ".secret_file"
		b, err := readKeyFile(k.SecretFile)
		if err != nil {
			v.errorf(path, "%s", fileProblem(k.SecretFile, err))
			return
		}
		raw = b
	}
	secret, err := decodeSecret(raw)
	if err != nil {
		v.errorf(path, "the value starts with \"base64:\" but the rest is not valid base64; write base64: followed by the standard or URL-safe base64 of the secret")
		return
	}
	if len(secret) < min {
		v.errorf(path, "the secret is %d bytes; %s secrets must be at least %d bytes, generate one with: openssl rand -base64 %d (and prefix it with base64:)", len(secret), algOrHMAC(k.Alg), min, min)
		return
	}
	k.secret = secret
}

// minSecretBytes is the shortest secret for an HMAC alg: 32 bytes (SPEC
// §2), and at least the hash size (RFC 7518 §3.2: 48 for HS384, 64 for
// HS512).
func minSecretBytes(alg string) int {
	switch alg {
	case "HS384":
		return 48
	case "HS512":
		return 64
	}
	return MinHMACSecretBytes
}

func algOrHMAC(alg string) string {
	if alg == "HS384" || alg == "HS512" {
		return alg
	}
	return "HMAC"
}

// decodeSecret returns a secret's bytes: as they are, or, after a
// "base64:" prefix, decoded from standard base64 (URL-safe and unpadded
// forms are accepted too).
func decodeSecret(raw []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(raw, []byte("base64:"))
	if !ok {
		return raw, nil
	}
	s := strings.TrimSpace(string(rest))
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("invalid base64")
}

// publicKey resolves public_key_file and returns the key, or nil after
// reporting a problem. Without apply it returns the key already resolved.
func (v *validator) publicKey(path string, k *StaticKey) crypto.PublicKey {
	if !v.apply {
		if rk, ok := k.publicKey.(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
			v.errorf(path, "the RSA key is %d bits; RSA keys must be at least %d bits", rk.N.BitLen(), minRSABits)
		}
		return k.publicKey
	}
	data, err := readKeyFile(k.PublicKeyFile)
	if err != nil {
		v.errorf(path, "%s", fileProblem(k.PublicKeyFile, err))
		return nil
	}
	pub, err := parsePublicKeyPEM(data)
	if err != nil {
		v.errorf(path, "%s", err)
		return nil
	}
	if rk, ok := pub.(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
		v.errorf(path, "the RSA key is %d bits; RSA keys must be at least %d bits", rk.N.BitLen(), minRSABits)
		return nil
	}
	k.publicKey = pub
	return pub
}

// parsePublicKeyPEM parses the first PEM block of data: a PKIX "PUBLIC
// KEY", a PKCS #1 "RSA PUBLIC KEY" or a "CERTIFICATE" (its key is used;
// the certificate itself is not verified). RSA, ECDSA (P-256, P-384,
// P-521) and Ed25519 keys are supported.
func parsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found; the file must hold a PEM public key (-----BEGIN PUBLIC KEY-----) or certificate")
	}
	var pub crypto.PublicKey
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("the file holds a private key (%s); give the public key only, e.g. openssl pkey -in key.pem -pubout", block.Type)
		}
		return nil, fmt.Errorf("unsupported PEM block %q; use PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot parse the %s block: %w", block.Type, err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey, ed25519.PublicKey:
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return nil, fmt.Errorf("unsupported EC curve %s; use P-256, P-384 or P-521", k.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("unsupported key type %T; use an RSA, EC or Ed25519 key", pub)
	}
	return pub, nil
}

// algFitsKey reports whether JWS algorithm alg can verify with pub.
func algFitsKey(alg string, pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// describePublicKey names a key's type and size, never its value.
func describePublicKey(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d-bit", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// chainKey reads audit.chain.key_file and checks its length.
func (v *validator) chainKey(ch *Chain) {
	const path = "audit.chain.key_file"
	if !v.apply {
		if ch.key != nil && len(ch.key) < MinHMACSecretBytes {
			v.errorf(path, "the key is %d bytes; the chain key must be at least %d bytes", len(ch.key), MinHMACSecretBytes)
		}
		return
	}
	b, err := readKeyFile(ch.KeyFile)
	if err != nil {
		v.errorf(path, "%s", fileProblem(ch.KeyFile, err))
		return
	}
	if len(b) < MinHMACSecretBytes {
		v.errorf(path, "the key is %d bytes; the chain key must be at least %d bytes, e.g. openssl rand 32 > audit-chain.key", len(b), MinHMACSecretBytes)
		return
	}
	ch.key = b
}

var errNotRegular = errors.New("not a regular file")
var errTooLarge = errors.New("file too large")

// readKeyFile reads a small regular file. Devices, FIFOs and directories
// are refused so a typo cannot make loading block or read without end.
func readKeyFile(name string) ([]byte, error) {
	// Stat before opening: opening a FIFO for reading would block.
	if st, err := os.Stat(name); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, errNotRegular
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errNotRegular
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFileBytes {
		return nil, errTooLarge
	}
	return b, nil
}

// fileProblem describes a failed key file read without repeating the
// file's content.
func fileProblem(name string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("file %s does not exist; create it or fix the path (relative paths are resolved against the config file's directory)", name)
	case errors.Is(err, errNotRegular):
		return fmt.Sprintf("%s is not a regular file; point it at a file", name)
	case errors.Is(err, errTooLarge):
		return fmt.Sprintf("%s is larger than %d bytes; it should hold one key", name, maxKeyFileBytes)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Sprintf("cannot read %s: %v", name, err)
}
