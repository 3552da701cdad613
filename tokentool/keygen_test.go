package tokentool

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// privateMembers are the JWK members that carry private key material (RFC
// 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// readJWKS decodes dir/jwks.json into its raw keys.
func readJWKS(t *testing.T, dir string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, jwksFileName))
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("jwks.json: %v", err)
	}
	return set.Keys
}

// publicKeyFromJWKS parses the key with kid from dir/jwks.json with jwkset,
// as a provider's jwks_file would be read.
func publicKeyFromJWKS(t *testing.T, dir, kid string) (any, jwkset.JWKMarshal) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, jwksFileName))
	if err != nil {
		t.Fatal(err)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	for _, m := range set.Keys {
		if m.KID != kid {
			continue
		}
		// Private: false: only public members are ever read from it.
		j, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			t.Fatalf("jwkset cannot parse the written JWK: %v", err)
		}
		return j.Key(), j.Marshal()
	}
	t.Fatalf("jwks.json has no key with kid %q", kid)
	return nil, jwkset.JWKMarshal{}
}

// TestKeygenWritesPrivatePEMAndPublicJWKS pins SPEC §1 keygen for every
// algorithm family: a 0600 PKCS#8 private key, a PKIX public key, and a JWK
// Set without private members whose key verifies a token minted from the
// written private key (real crypto, JWKS parsed with jwkset).
func TestKeygenWritesPrivatePEMAndPublicJWKS(t *testing.T) {
	tests := []struct {
		name, alg string
		extra     []string
		wantKTY   string
	}{
		{name: "rs256", alg: "RS256", extra: []string{"--bits", "2048"}, wantKTY: "RSA"},
		{name: "ps384", alg: "PS384", extra: []string{"--bits", "2048"}, wantKTY: "RSA"},
		{name: "es256", alg: "ES256", wantKTY: "EC"},
		{name: "es384", alg: "ES384", wantKTY: "EC"},
		{name: "es512", alg: "ES512", wantKTY: "EC"},
		{name: "eddsa", alg: "EdDSA", wantKTY: "OKP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "new", "keys")
			kid := "kid-" + tc.name
			args := append([]string{"--alg", tc.alg, "--kid", kid, "--out", dir}, tc.extra...)
			r := run(Keygen, args...)
			if r.code != 0 {
				t.Fatalf("Keygen(%v) = %d, stderr: %s", args, r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, "jwks_file: ") {
				t.Errorf("stdout lacks the jwks_file hint: %s", r.stdout)
			}

			if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
				t.Errorf("created dir mode = %v (err %v), want 0700", st.Mode().Perm(), err)
			}
			keyPath := filepath.Join(dir, kid+".key.pem")
			st, err := os.Stat(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("private key mode = %o, want 0600", st.Mode().Perm())
			}
			keyPEM, _ := os.ReadFile(keyPath)
			block, _ := pem.Decode(keyPEM)
			if block == nil || block.Type != "PRIVATE KEY" {
				t.Fatalf("private key file is not a PRIVATE KEY PEM block")
			}
			if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
				t.Fatalf("private key is not PKCS#8: %v", err)
			}
			pubPEM, _ := os.ReadFile(filepath.Join(dir, kid+".pub.pem"))
			pubBlock, _ := pem.Decode(pubPEM)
			if pubBlock == nil || pubBlock.Type != "PUBLIC KEY" {
				t.Fatalf("public key file is not a PUBLIC KEY PEM block")
			}
			pemPub, err := x509.ParsePKIXPublicKey(pubBlock.Bytes)
			if err != nil {
				t.Fatal(err)
			}

			keys := readJWKS(t, dir)
			if len(keys) != 1 {
				t.Fatalf("jwks.json has %d keys, want 1", len(keys))
			}
			for _, m := range privateMembers {
				if _, ok := keys[0][m]; ok {
					t.Errorf("jwks.json key has private member %q", m)
				}
			}
			want := map[string]any{"kty": tc.wantKTY, "kid": kid, "use": "sig", "alg": tc.alg}
			for k, v := range want {
				if keys[0][k] != v {
					t.Errorf("jwks.json %s = %v, want %v", k, keys[0][k], v)
				}
			}

			jwksPub, _ := publicKeyFromJWKS(t, dir, kid)
			if eq, ok := jwksPub.(interface{ Equal(x crypto.PublicKey) bool }); !ok || !eq.Equal(pemPub) {
				t.Errorf("the JWKS key and the .pub.pem key differ")
			}
			tok := tokenFrom(t, run(Mint, "--key", keyPath, "--kid", kid, "--alg", tc.alg, "--claims", `{"sub":"kg"}`))
			parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return jwksPub, nil }, jwt.WithValidMethods([]string{tc.alg}))
			if err != nil {
				t.Fatalf("token minted with the generated key does not verify against jwks.json: %v", err)
			}
			if parsed.Header["kid"] != kid {
				t.Errorf("kid header = %v, want %s", parsed.Header["kid"], kid)
			}
		})
	}
}

// TestKeygenRefusesToOverwriteKey pins the O_EXCL rule: an existing private
// key is never replaced without --force, and --force leaves a 0600 file even
// when the old one had a looser mode.
func TestKeygenRefusesToOverwriteKey(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--alg", "ES256", "--kid", "k1", "--out", dir}
	if r := run(Keygen, args...); r.code != 0 {
		t.Fatalf("first keygen exit %d: %s", r.code, r.stderr)
	}
	keyPath := filepath.Join(dir, "k1.key.pem")
	before, _ := os.ReadFile(keyPath)

	r := run(Keygen, args...)
	if r.code != 1 || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("second keygen = %d, stderr %q; want 1 naming --force", r.code, r.stderr)
	}
	if after, _ := os.ReadFile(keyPath); !bytes.Equal(before, after) {
		t.Fatal("the existing private key was modified without --force")
	}
	alg, _ := lookupAlg("ES256")
	if _, err := keygen(keygenRequest{alg: alg, kid: "k1", dir: dir}, io.Discard); !errors.Is(err, errExists) {
		t.Errorf("keygen over an existing key: error = %v, want errExists", err)
	}

	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(Keygen, append(args, "--force")...); r.code != 0 {
		t.Fatalf("keygen --force exit %d: %s", r.code, r.stderr)
	}
	after, _ := os.ReadFile(keyPath)
	if bytes.Equal(before, after) {
		t.Error("--force did not write a new key")
	}
	if st, _ := os.Stat(keyPath); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode after --force = %o, want 0600", st.Mode().Perm())
	}
	if n := len(readJWKS(t, dir)); n != 1 {
		t.Errorf("jwks.json has %d keys after replacing k1, want 1", n)
	}
}

// TestKeygenAddsToExistingJWKS pins "if jwks.json already exists, add or
// replace this kid": other keys and members are kept, and a replaced kid
// appears once with the new key.
func TestKeygenAddsToExistingJWKS(t *testing.T) {
	dir := t.TempDir()
	if r := run(Keygen, "--alg", "EdDSA", "--kid", "old", "--out", dir); r.code != 0 {
		t.Fatalf("keygen old: %s", r.stderr)
	}
	if r := run(Keygen, "--alg", "ES384", "--kid", "new", "--out", dir); r.code != 0 {
		t.Fatalf("keygen new: %s", r.stderr)
	}
	keys := readJWKS(t, dir)
	if len(keys) != 2 || keys[0]["kid"] != "old" || keys[1]["kid"] != "new" {
		t.Fatalf("jwks.json keys = %v, want old then new", keys)
	}
	firstNew := keys[1]["x"]
	if r := run(Keygen, "--alg", "ES384", "--kid", "new", "--out", dir, "--force"); r.code != 0 {
		t.Fatalf("keygen new --force: %s", r.stderr)
	}
	keys = readJWKS(t, dir)
	if len(keys) != 2 || keys[1]["kid"] != "new" || keys[1]["x"] == firstNew {
		t.Fatalf("after replacing kid new: keys = %v, want old and a fresh new", keys)
	}
	if st, _ := os.Stat(filepath.Join(dir, jwksFileName)); st.Mode().Perm() != 0o644 {
		t.Errorf("jwks.json mode = %o, want 0644 (it is public)", st.Mode().Perm())
	}
}

// TestKeygenKeepsCorruptJWKS pins that a jwks.json that is not a JWK Set is
// neither overwritten nor accompanied by a new key: keygen fails first.
func TestKeygenKeepsCorruptJWKS(t *testing.T) {
	dir := t.TempDir()
	corrupt := []byte(`{"not":"a set"}`)
	writeFile(t, dir, jwksFileName, corrupt)
	r := run(Keygen, "--alg", "ES256", "--kid", "k", "--out", dir)
	if r.code != 1 {
		t.Fatalf("keygen with a corrupt jwks.json = %d, want 1", r.code)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, jwksFileName)); !bytes.Equal(b, corrupt) {
		t.Error("the corrupt jwks.json was changed")
	}
	if _, err := os.Stat(filepath.Join(dir, "k.key.pem")); err == nil {
		t.Error("a key was written although the JWK Set could not be updated")
	}
}

// TestKeygenKidPathTraversalRejected pins that a kid cannot place a key
// outside --out: the kid is part of the file name.
func TestKeygenKidPathTraversalRejected(t *testing.T) {
	for _, kid := range []string{"../evil", "a/b", ".hidden", "x\ny"} {
		dir := t.TempDir()
		r := run(Keygen, "--alg", "ES256", "--kid", kid, "--out", filepath.Join(dir, "out"))
		if r.code != 2 {
			t.Errorf("Keygen(--kid %q) = %d, want 2", kid, r.code)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("Keygen(--kid %q) wrote files", kid)
		}
	}
}

// TestKeygenDefaultKidIsThumbprint pins the default kid (RFC 7638) against
// the RFC's own example key (§3.1).
func TestKeygenDefaultKidIsThumbprint(t *testing.T) {
	rfc := jwkset.JWKMarshal{
		KTY: jwkset.KtyRSA,
		E:   "AQAB",
		N: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs" +
			"tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbO" +
			"pbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
	}
	got, err := thumbprint(rfc)
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; err != nil || got != want {
		t.Fatalf("thumbprint(RFC 7638 example) = %q, %v; want %q", got, err, want)
	}

	dir := t.TempDir()
	if r := run(Keygen, "--alg", "EdDSA", "--out", dir); r.code != 0 {
		t.Fatalf("keygen without --kid: %s", r.stderr)
	}
	keys := readJWKS(t, dir)
	kid, _ := keys[0]["kid"].(string)
	_, m := publicKeyFromJWKS(t, dir, kid)
	if tp, _ := thumbprint(m); kid == "" || kid != tp {
		t.Errorf("default kid = %q, want the thumbprint %q", kid, tp)
	}
	if _, err := os.Stat(filepath.Join(dir, kid+".key.pem")); err != nil {
		t.Errorf("key file not named after the default kid: %v", err)
	}
}

// TestKeygenUsage pins SPEC §1 exit codes: -h/--help print usage and exit
// 0; bad usage exits 2 with a one-line reason.
func TestKeygenUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
	}{
		{name: "help-short", args: []string{"-h"}, wantCode: 0},
		{name: "help-long", args: []string{"--help"}, wantCode: 0},
		{name: "unknown-flag", args: []string{"--frobnicate", "--out", "x"}, wantCode: 2},
		{name: "missing-out", args: []string{"--alg", "ES256"}, wantCode: 2},
		{name: "hmac-alg", args: []string{"--alg", "HS256", "--out", "x"}, wantCode: 2},
		{name: "alg-none", args: []string{"--alg", "none", "--out", "x"}, wantCode: 2},
		{name: "bits-too-small", args: []string{"--alg", "RS256", "--bits", "1024", "--out", "x"}, wantCode: 2},
		{name: "bits-too-large", args: []string{"--alg", "RS256", "--bits", "8192", "--out", "x"}, wantCode: 2},
		{name: "bits-with-ec", args: []string{"--alg", "ES256", "--bits", "2048", "--out", "x"}, wantCode: 2},
		{name: "positional", args: []string{"--out", "x", "extra"}, wantCode: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			r := run(Keygen, tc.args...)
			if r.code != tc.wantCode {
				t.Fatalf("Keygen(%v) = %d, want %d; stderr %q", tc.args, r.code, tc.wantCode, r.stderr)
			}
			if tc.wantCode == 0 && !strings.Contains(r.stdout, "Usage: jwtgate token keygen") {
				t.Errorf("help output lacks usage: %q", r.stdout)
			}
			if tc.wantCode == 2 && strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("usage error is not one line: %q", r.stderr)
			}
			if ents, _ := os.ReadDir("."); len(ents) != 0 {
				t.Errorf("Keygen(%v) wrote files", tc.args)
			}
		})
	}
}
