package tokentool

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// verify parses tok with golang-jwt against key, allowing only alg.
func verify(t *testing.T, tok string, key any, alg string) (*jwt.Token, jwt.MapClaims) {
	t.Helper()
	claims := jwt.MapClaims{}
	parsed, err := jwt.NewParser(jwt.WithValidMethods([]string{alg}), jwt.WithJSONNumber()).
		ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return key, nil })
	if err != nil {
		t.Fatalf("minted token does not verify as %s: %v", alg, err)
	}
	return parsed, claims
}

// TestMintFromPEMKeys pins SPEC §1 mint from PEM private keys in each
// encoding (PKCS#8, PKCS#1, SEC1 with an EC PARAMETERS block first) and the
// alg inferred from the key: the token verifies with the public key.
func TestMintFromPEMKeys(t *testing.T) {
	k := newTestKeys(t)
	sec1 := func(key crypto.Signer) []byte {
		der, err := x509.MarshalECPrivateKey(k.p256)
		if err != nil {
			t.Fatal(err)
		}
		params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
		return append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...)
	}
	tests := []struct {
		name    string
		pem     []byte
		pub     any
		args    []string
		wantAlg string
	}{
		{name: "rsa-pkcs8", pem: pkcs8PEM(t, k.rsa), pub: &k.rsa.PublicKey, wantAlg: "RS256"},
		{name: "rsa-pkcs1", pem: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.rsa)}), pub: &k.rsa.PublicKey, wantAlg: "RS256"},
		{name: "rsa-ps512-requested", pem: pkcs8PEM(t, k.rsa), pub: &k.rsa.PublicKey, args: []string{"--alg", "PS512"}, wantAlg: "PS512"},
		{name: "ec-p256-sec1", pem: sec1(k.p256), pub: &k.p256.PublicKey, wantAlg: "ES256"},
		{name: "ec-p384-pkcs8", pem: pkcs8PEM(t, k.p384), pub: &k.p384.PublicKey, wantAlg: "ES384"},
		{name: "ec-p521-pkcs8", pem: pkcs8PEM(t, k.p521), pub: &k.p521.PublicKey, wantAlg: "ES512"},
		{name: "ed25519-pkcs8", pem: pkcs8PEM(t, k.ed), pub: k.ed.Public(), wantAlg: "EdDSA"},
		{name: "alg-lowercase", pem: pkcs8PEM(t, k.ed), pub: k.ed.Public(), args: []string{"--alg", "eddsa"}, wantAlg: "EdDSA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, t.TempDir(), "key.pem", tc.pem)
			args := append([]string{"--key", path, "--kid", "k1", "--claims", `{"sub":"alice","aud":"api"}`}, tc.args...)
			tok := tokenFrom(t, run(Mint, args...))
			parsed, claims := verify(t, tok, tc.pub, tc.wantAlg)
			if parsed.Header["alg"] != tc.wantAlg || parsed.Header["kid"] != "k1" || parsed.Header["typ"] != "JWT" {
				t.Errorf("header = %v, want alg %s, kid k1, typ JWT", parsed.Header, tc.wantAlg)
			}
			if claims["sub"] != "alice" || claims["aud"] != "api" {
				t.Errorf("claims = %v, want sub alice, aud api", claims)
			}
		})
	}
}

// TestMintAlgMustFitKey pins that an alg the key cannot produce is refused
// with exit 1 instead of a token no verifier accepts.
func TestMintAlgMustFitKey(t *testing.T) {
	k := newTestKeys(t)
	dir := t.TempDir()
	ecPath := writeFile(t, dir, "ec.pem", pkcs8PEM(t, k.p256))
	pubPath := writeFile(t, dir, "pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&k.p256.PublicKey))}))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "es384-with-p256", args: []string{"--key", ecPath, "--alg", "ES384"}, want: "P-384"},
		{name: "rs256-with-ec", args: []string{"--key", ecPath, "--alg", "RS256"}, want: "RSA"},
		{name: "hs256-with-ec", args: []string{"--key", ecPath, "--alg", "HS256"}, want: "HMAC"},
		{name: "public-key-pem", args: []string{"--key", pubPath}, want: "private key"},
		{name: "missing-file", args: []string{"--key", filepath.Join(dir, "nope.pem")}, want: "nope.pem"},
		{name: "not-a-key", args: []string{"--key", writeFile(t, dir, "junk", []byte("hello"))}, want: "PEM"},
	}
	if _, err := loadKeyFile(pubPath, ""); !errors.Is(err, errNoPrivateKey) {
		t.Errorf("loadKeyFile(public key PEM) error = %v, want errNoPrivateKey", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(Mint, tc.args...)
			if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("Mint(%v) = %d, stdout %q, stderr %q; want 1, no stdout, stderr naming %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
			}
		})
	}
}

// must returns v or panics; for setup values that cannot fail.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// privateJWK encodes key as a private JWK with jwkset.
func privateJWK(t *testing.T, key any, kid, alg string) json.RawMessage {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{
		Marshal:  jwkset.JWKMarshalOptions{Private: true},
		Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.ALG(alg)},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(j.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMintFromPrivateJWK pins SPEC §1 mint from a JWK or JWK Set with
// private members: kid and alg come from the JWK, --kid picks a key of a
// set, and a set of public keys is refused.
func TestMintFromPrivateJWK(t *testing.T) {
	k := newTestKeys(t)
	dir := t.TempDir()
	rsaJWK := privateJWK(t, k.rsa, "rsa-1", "PS256")
	ecJWK := privateJWK(t, k.p384, "ec-1", "")
	edJWK := privateJWK(t, k.ed, "ed-1", "EdDSA")
	set := func(keys ...json.RawMessage) []byte {
		return must(json.Marshal(map[string]any{"keys": keys}))
	}
	pubSet := must(json.Marshal(map[string]any{"keys": []any{
		must(jwkset.NewJWKFromKey(&k.p256.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "pub"}})).Marshal(),
	}}))
	tests := []struct {
		name     string
		file     []byte
		args     []string
		wantCode int
		pub      any
		wantAlg  string
		wantKID  string
	}{
		{name: "rsa-jwk-alg-from-jwk", file: rsaJWK, wantCode: 0, pub: &k.rsa.PublicKey, wantAlg: "PS256", wantKID: "rsa-1"},
		{name: "ec-jwk-alg-from-curve", file: ecJWK, wantCode: 0, pub: &k.p384.PublicKey, wantAlg: "ES384", wantKID: "ec-1"},
		{name: "ed-jwk-in-set", file: set(edJWK), wantCode: 0, pub: k.ed.Public(), wantAlg: "EdDSA", wantKID: "ed-1"},
		{name: "set-kid-selects", file: set(rsaJWK, edJWK, ecJWK), args: []string{"--kid", "ec-1"}, wantCode: 0, pub: &k.p384.PublicKey, wantAlg: "ES384", wantKID: "ec-1"},
		{name: "kid-overrides-single-jwk", file: edJWK, args: []string{"--kid", "other"}, wantCode: 0, pub: k.ed.Public(), wantAlg: "EdDSA", wantKID: "other"},
		{name: "set-several-private-no-kid", file: set(rsaJWK, edJWK), wantCode: 1},
		{name: "set-unknown-kid", file: set(rsaJWK, edJWK), args: []string{"--kid", "nope"}, wantCode: 1},
		{name: "alg-conflicts-with-jwk", file: rsaJWK, args: []string{"--alg", "RS256"}, wantCode: 1},
		{name: "public-only-set", file: pubSet, wantCode: 1},
		{name: "empty-set", file: []byte(`{"keys":[]}`), wantCode: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, dir, tc.name+".json", tc.file)
			args := append([]string{"--key", path, "--claims", `{"sub":"jwk"}`}, tc.args...)
			r := run(Mint, args...)
			if r.code != tc.wantCode {
				t.Fatalf("Mint(%v) = %d, want %d; stderr %q", args, r.code, tc.wantCode, r.stderr)
			}
			if tc.wantCode != 0 {
				if r.stdout != "" {
					t.Errorf("failed mint printed %q on stdout", r.stdout)
				}
				return
			}
			parsed, _ := verify(t, tokenFrom(t, r), tc.pub, tc.wantAlg)
			if parsed.Header["kid"] != tc.wantKID {
				t.Errorf("kid header = %v, want %s", parsed.Header["kid"], tc.wantKID)
			}
		})
	}
}

// TestMintHMACSecrets pins SPEC §1/§2 HMAC minting: a secret from an
// environment variable or a file, raw bytes or "base64:"-decoded, at least
// 32 bytes; the secret never appears in any output.
func TestMintHMACSecrets(t *testing.T) {
	secret := make([]byte, 48)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	rawSecret := "0123456789abcdefghijklmnopqrstuvwxyz"
	b64 := base64.StdEncoding.EncodeToString(secret)
	dir := t.TempDir()
	t.Setenv("TOKENTOOL_TEST_B64", "base64:"+b64)
	t.Setenv("TOKENTOOL_TEST_RAW", rawSecret)
	t.Setenv("TOKENTOOL_TEST_SHORT", "base64:"+base64.StdEncoding.EncodeToString(secret[:31]))
	t.Setenv("TOKENTOOL_TEST_BADB64", "base64:%%%notbase64%%%")
	if _, err := decodeSecret([]byte("base64:" + base64.StdEncoding.EncodeToString(secret[:31]))); !errors.Is(err, errSecretTooShort) {
		t.Errorf("decodeSecret(31 bytes) error = %v, want errSecretTooShort", err)
	}
	if got, err := decodeSecret([]byte("base64:" + b64)); err != nil || string(got) != string(secret) {
		t.Errorf("decodeSecret(base64:…) = %v, want the decoded secret", err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		key      []byte
		wantAlg  string
	}{
		{name: "env-base64", args: []string{"--secret-env", "TOKENTOOL_TEST_B64"}, key: secret, wantAlg: "HS256"},
		{name: "env-raw-hs512", args: []string{"--secret-env", "TOKENTOOL_TEST_RAW", "--alg", "HS512"}, key: []byte(rawSecret), wantAlg: "HS512"},
		{name: "file-raw-bytes", args: []string{"--secret-file", writeFile(t, dir, "raw", []byte(rawSecret+"\n"))}, key: []byte(rawSecret + "\n"), wantAlg: "HS256"},
		{name: "file-base64", args: []string{"--secret-file", writeFile(t, dir, "b64", []byte("base64:"+b64+"\n")), "--alg", "HS384"}, key: secret, wantAlg: "HS384"},
		{name: "env-short", args: []string{"--secret-env", "TOKENTOOL_TEST_SHORT"}, wantCode: 1},
		{name: "env-bad-base64", args: []string{"--secret-env", "TOKENTOOL_TEST_BADB64"}, wantCode: 1},
		{name: "env-unset", args: []string{"--secret-env", "TOKENTOOL_TEST_UNSET_VAR"}, wantCode: 1},
		{name: "hmac-with-rs256", args: []string{"--secret-env", "TOKENTOOL_TEST_RAW", "--alg", "RS256"}, wantCode: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--kid", "h1", "--claims", `{"sub":"svc"}`}, tc.args...)
			r := run(Mint, args...)
			if r.code != tc.wantCode {
				t.Fatalf("Mint(%v) = %d, want %d; stderr %q", args, r.code, tc.wantCode, r.stderr)
			}
			for _, s := range []string{b64, rawSecret, string(secret)} {
				if strings.Contains(r.stderr, s) || (tc.wantCode != 0 && strings.Contains(r.stdout, s)) {
					t.Fatalf("output contains the secret")
				}
			}
			if tc.wantCode == 0 {
				parsed, _ := verify(t, tokenFrom(t, r), tc.key, tc.wantAlg)
				if parsed.Header["kid"] != "h1" {
					t.Errorf("kid = %v, want h1", parsed.Header["kid"])
				}
			}
		})
	}
}

// TestMintTimeClaims pins SPEC §1: iat is added (now) when absent, exp =
// iat + --exp (default 1h) when absent, given values are kept, --exp 0 adds
// no exp, and numbers survive exactly (UseNumber).
func TestMintTimeClaims(t *testing.T) {
	k := newTestKeys(t)
	keyPath := writeFile(t, t.TempDir(), "ed.pem", pkcs8PEM(t, k.ed))
	now := time.Unix(1_900_000_000, 0)
	tests := []struct {
		name      string
		claims    string
		extra     []string
		wantIat   string
		wantExp   string // "" means absent
		wantInRaw string
	}{
		{name: "defaults", claims: `{}`, wantIat: "1900000000", wantExp: "1900003600"},
		{name: "exp-flag", claims: `{}`, extra: []string{"--exp", "10m"}, wantIat: "1900000000", wantExp: "1900000600"},
		{name: "negative-exp-mints-expired", claims: `{}`, extra: []string{"--exp", "-5m"}, wantIat: "1900000000", wantExp: "1899999700"},
		{name: "given-iat-drives-exp", claims: `{"iat":1000}`, wantIat: "1000", wantExp: "4600"},
		{name: "given-exp-kept", claims: `{"exp":1234}`, wantIat: "1900000000", wantExp: "1234"},
		{name: "exp-zero-adds-none", claims: `{}`, extra: []string{"--exp", "0"}, wantIat: "1900000000"},
		{name: "big-number-survives", claims: `{"uid":123456789012345678901234567890,"f":1.5e300}`, wantIat: "1900000000", wantExp: "1900003600",
			wantInRaw: `"uid":123456789012345678901234567890`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r result
			var out, errb strings.Builder
			args := append([]string{"--key", keyPath, "--claims", tc.claims}, tc.extra...)
			r.code = mint(args, mintEnv{stdout: &out, stderr: &errb, now: func() time.Time { return now }, lookupEnv: os.LookupEnv})
			r.stdout, r.stderr = out.String(), errb.String()
			tok := tokenFrom(t, r)
			parts := strings.Split(tok, ".")
			raw := must(base64.RawURLEncoding.DecodeString(parts[1]))
			// Decode without verifying: exp may be in the past.
			claims := map[string]json.Number{}
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			for _, c := range []string{"iat", "exp"} {
				if v, ok := m[c].(json.Number); ok {
					claims[c] = v
				}
			}
			if claims["iat"].String() != tc.wantIat {
				t.Errorf("iat = %q, want %q", claims["iat"], tc.wantIat)
			}
			if _, has := m["exp"]; has != (tc.wantExp != "") || claims["exp"].String() != tc.wantExp {
				t.Errorf("exp = %v, want %q", m["exp"], tc.wantExp)
			}
			if tc.wantInRaw != "" && !strings.Contains(string(raw), tc.wantInRaw) {
				t.Errorf("claims %s lack %s", raw, tc.wantInRaw)
			}
			if _, err := jwt.NewParser(jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithTimeFunc(func() time.Time { return now })).
				Parse(tok, func(*jwt.Token) (any, error) { return k.ed.Public(), nil }); err != nil && !errors.Is(err, jwt.ErrTokenExpired) {
				t.Errorf("token does not verify: %v", err)
			}
		})
	}
}

// TestMintHeaderFlags pins --typ and --header: extra members are merged,
// typ can be set or omitted, and alg cannot be forged through --header.
func TestMintHeaderFlags(t *testing.T) {
	k := newTestKeys(t)
	keyPath := writeFile(t, t.TempDir(), "ec.pem", pkcs8PEM(t, k.p256))
	tok := tokenFrom(t, run(Mint, "--key", keyPath, "--typ", "at+jwt", "--header", `{"crit":["exp"],"kid":"from-header"}`))
	parsed, _ := verify(t, tok, &k.p256.PublicKey, "ES256")
	if parsed.Header["typ"] != "at+jwt" || parsed.Header["kid"] != "from-header" || parsed.Header["crit"] == nil {
		t.Errorf("header = %v, want typ at+jwt, kid from-header, crit", parsed.Header)
	}
	tok = tokenFrom(t, run(Mint, "--key", keyPath, "--typ", ""))
	if parsed, _ = verify(t, tok, &k.p256.PublicKey, "ES256"); parsed.Header["typ"] != nil {
		t.Errorf("--typ \"\" left typ = %v", parsed.Header["typ"])
	}
	if r := run(Mint, "--key", keyPath, "--header", `{"alg":"none"}`); r.code != 2 || r.stdout != "" {
		t.Errorf("--header with alg = %d, stdout %q; want 2 and no token", r.code, r.stdout)
	}
}

// TestMintUsage pins SPEC §1 exit codes for mint: -h is 0, bad usage is 2
// with a one-line reason and nothing on stdout.
func TestMintUsage(t *testing.T) {
	keyPath := writeFile(t, t.TempDir(), "ed.pem", pkcs8PEM(t, newTestKeys(t).ed))
	tests := []struct {
		name     string
		args     []string
		wantCode int
	}{
		{name: "help", args: []string{"-h"}, wantCode: 0},
		{name: "help-long", args: []string{"--help"}, wantCode: 0},
		{name: "unknown-flag", args: []string{"--key", keyPath, "--bogus"}, wantCode: 2},
		{name: "no-key", args: []string{"--claims", `{}`}, wantCode: 2},
		{name: "two-key-sources", args: []string{"--key", keyPath, "--secret-env", "X"}, wantCode: 2},
		{name: "claims-not-json", args: []string{"--key", keyPath, "--claims", `{sub:1}`}, wantCode: 2},
		{name: "claims-array", args: []string{"--key", keyPath, "--claims", `[1]`}, wantCode: 2},
		{name: "claims-trailing", args: []string{"--key", keyPath, "--claims", `{} {}`}, wantCode: 2},
		{name: "alg-none", args: []string{"--key", keyPath, "--alg", "none"}, wantCode: 2},
		{name: "bad-duration", args: []string{"--key", keyPath, "--exp", "soon"}, wantCode: 2},
		{name: "positional", args: []string{"--key", keyPath, "eyJ.x.y"}, wantCode: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(Mint, tc.args...)
			if r.code != tc.wantCode {
				t.Fatalf("Mint(%v) = %d, want %d; stderr %q", tc.args, r.code, tc.wantCode, r.stderr)
			}
			if tc.wantCode == 0 && !strings.Contains(r.stdout, "Usage: jwtgate token mint") {
				t.Errorf("help lacks usage: %q", r.stdout)
			}
			if tc.wantCode == 2 && (r.stdout != "" || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0) {
				t.Errorf("usage error: stdout %q, stderr %q; want no stdout and one line", r.stdout, r.stderr)
			}
		})
	}
}
