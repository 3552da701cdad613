package proxy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/jwtgate/jwtgate/audit"
	"github.com/jwtgate/jwtgate/config"
)

// attackCfg is a one-provider gateway whose allow-list holds every
// asymmetric algorithm, so that the key's own rules (JWK alg, use, size,
// salt length) are what refuses a token, not the provider's list.
// Arguments: JWKS URL, backend URL, issuer.
const attackCfg = `
server: {address: "127.0.0.1:0"}
admin: {address: "127.0.0.1:0"}
providers:
  - name: main
    issuer: %[3]q
    audiences: [api]
    jwks_url: %[1]q
    algorithms: [RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA]
    unknown_kid_min_interval: 1h
    required_claims: [exp, sub]
routes:
  - name: api
    match: {path_prefix: /api}
    upstream: {url: %[2]q}
    auth: {providers: [main], forward: {claims_to_headers: {sub: X-User-Id}}}
audit:
  output: stdout
  claims: [sub]
`

// newAttackEnv runs attackCfg in front of a JWKS server serving keys.
func newAttackEnv(t *testing.T, keys ...map[string]any) *env {
	t.Helper()
	testKeys(t)
	e := &env{t: t, out: &syncBuffer{}, logs: &syncBuffer{}, now: time.Now}
	e.jwks = newJWKSServer(t, keys...)
	e.backend = newBackend(t)
	e.cfgText = fmt.Appendf(nil, attackCfg, e.jwks.URL+"/jwks.json", e.backend.URL, testIssuer)
	cfg, err := config.Parse(e.cfgText, t.TempDir())
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	if e.writer, err = audit.New(cfg.Audit, audit.Options{Stdout: e.out, ConfigVersion: cfg.Version}); err != nil {
		t.Fatalf("audit.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.ctx = ctx
	e.deps = Deps{Logger: zerolog.New(e.logs), Audit: e.writer, Now: func() time.Time { return e.now().Add(time.Duration(e.offset.Load())) }}
	g, err := Build(ctx, cfg, e.deps, nil)
	if err != nil {
		cancel()
		t.Fatalf("Build: %v", err)
	}
	e.handler = NewHandler(g)
	e.gw = httptest.NewServer(e.handler)
	e.client = e.gw.Client()
	t.Cleanup(func() {
		e.gw.Close()
		e.handler.Current().Retire(nil)
		cancel()
		_ = e.writer.Close()
	})
	return e
}

// suspiciousReason lists the SPEC §5 reasons whose records carry
// "suspicious": true.
var suspiciousReason = map[string]bool{
	"algorithm_not_allowed": true, "signature_invalid": true, "key_not_found": true,
	"token_malformed": true, "token_too_large": true, "path_rejected": true,
}

// wantToken sends tok to path and checks status, the backend reach, the
// audit decision and reason, and the suspicious flag as SPEC §5 sets it.
func (e *env) wantToken(t *testing.T, path, tok string, status int, reason string) map[string]any {
	t.Helper()
	before := e.backend.count()
	decision := "deny"
	if status == 200 {
		decision = "allow"
	}
	rec := e.wantDecision(t, e.do("GET", path, tok, nil), before, status, decision, reason)
	if got := rec["suspicious"] == true; got != suspiciousReason[reason] {
		t.Errorf("suspicious = %v, want %v (reason %q)", got, suspiciousReason[reason], reason)
	}
	return rec
}

// signRaw signs the header and payload bytes exactly as given, so tests
// can build JSON that encoding/json would never produce (duplicate
// members, odd numbers, invalid UTF-8).
func signRaw(t testing.TB, alg string, key any, header, payload []byte) string {
	t.Helper()
	in := b64(header) + "." + b64(payload)
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		t.Fatalf("no signing method %q", alg)
	}
	sig, err := m.Sign(in, key)
	if err != nil {
		t.Fatalf("sign %s: %v", alg, err)
	}
	return in + "." + b64(sig)
}

// rawPayload is the JSON of claims(over) with members appended verbatim
// (raw JSON text such as `"exp":1e300`).
func rawPayload(t testing.TB, over map[string]any, members ...string) []byte {
	t.Helper()
	b := mustJSON(t, claims(over))
	s := string(b[:len(b)-1])
	for _, m := range members {
		s += "," + m
	}
	return []byte(s + "}")
}

const rs256Header = `{"alg":"RS256","kid":"rsa1","typ":"JWT"}`

// TestAlgNoneSpellingsAndSignaturesRejected extends TestAlgNoneRejected:
// every spelling of "none", an empty or absent alg, and a non-string alg,
// each with no signature, a junk one, a genuine RS256 signature lifted from
// a valid token and an HMAC made with an empty key, are refused before a
// key is looked up; none reaches the backend.
func TestAlgNoneSpellingsAndSignaturesRejected(t *testing.T) {
	e := newEnv(t)
	body := b64(mustJSON(t, claims(nil)))
	good := e.rs256(nil)
	lifted := good[strings.LastIndexByte(good, '.')+1:]
	headers := []struct {
		name, json, reason string
	}{
		{"none", `{"alg":"none","kid":"rsa1"}`, "algorithm_not_allowed"},
		{"None", `{"alg":"None","kid":"rsa1"}`, "algorithm_not_allowed"},
		{"NONE", `{"alg":"NONE","kid":"rsa1"}`, "algorithm_not_allowed"},
		{"nOnE", `{"alg":"nOnE","kid":"rsa1"}`, "algorithm_not_allowed"},
		{"none-trailing-space", `{"alg":"none ","kid":"rsa1"}`, "algorithm_not_allowed"},
		{"none-nul", `{"alg":"none\u0000","kid":"rsa1"}`, "algorithm_not_allowed"},
		{"empty-alg", `{"alg":"","kid":"rsa1"}`, "algorithm_not_allowed"},
		{"absent-alg", `{"kid":"rsa1"}`, "algorithm_not_allowed"},
		{"null-alg", `{"alg":null,"kid":"rsa1"}`, "token_malformed"},
		{"array-alg", `{"alg":["none"],"kid":"rsa1"}`, "token_malformed"},
		{"object-alg", `{"alg":{"none":true},"kid":"rsa1"}`, "token_malformed"},
	}
	for _, h := range headers {
		head := b64([]byte(h.json))
		mac := hmac.New(sha256.New, nil) // HMAC with an empty key
		mac.Write([]byte(head + "." + body))
		emptyKeyMAC := mac.Sum(nil)
		sigs := map[string]string{"no-signature": "", "junk": b64([]byte("sig")), "lifted-rs256": lifted, "hmac-empty-key": b64(emptyKeyMAC)}
		for sname, sig := range sigs {
			t.Run(h.name+"/"+sname, func(t *testing.T) {
				e.wantToken(t, "/api/x", head+"."+body+"."+sig, 401, h.reason)
			})
		}
	}
}

// TestHMACWithPublicKeyAsSecretRejected: the key-confusion attack — an
// HS256 or HS384 token MACed with the provider's own public key, as PEM
// or as JWK JSON bytes, for RSA and EC keys — is refused: HMAC is not in
// a JWKS provider's allow-list (algorithm_not_allowed), and on the route
// of the static-secret provider a public key is never a secret (the kid
// is unknown there, and its real secret does not match).
func TestHMACWithPublicKeyAsSecretRejected(t *testing.T) {
	e := newEnv(t)
	pemOf := func(pub crypto.PublicKey) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	secrets := map[string]struct {
		kid string
		key []byte
	}{
		"rsa-pem": {"rsa1", pemOf(&rsaKey.PublicKey)},
		"rsa-jwk": {"rsa1", mustJSON(t, jwkOf("rsa1", &rsaKey.PublicKey, "RS256"))},
		"ec-pem":  {"ec1", pemOf(&ecKey.PublicKey)},
		"ec-jwk":  {"ec1", mustJSON(t, jwkOf("ec1", &ecKey.PublicKey, "ES256"))},
	}
	for name, s := range secrets {
		for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384} {
			t.Run(name+"/"+m.Alg(), func(t *testing.T) {
				e.wantToken(t, "/api/x", sign(t, m, s.key, s.kid, claims(nil)), 401, "algorithm_not_allowed")
			})
		}
		t.Run(name+"/static-secret-route", func(t *testing.T) {
			hc := claims(map[string]any{"iss": "https://hmac.test/"})
			e.wantToken(t, "/hmac/x", sign(t, jwt.SigningMethodHS256, s.key, s.kid, hc), 401, "key_not_found")
			e.wantToken(t, "/hmac/x", sign(t, jwt.SigningMethodHS256, s.key, "h1", hc), 401, "signature_invalid")
		})
	}
}

// TestOctKeyInRemoteJWKSNeverVerifiesThroughGateway: an oct JWK published
// in the remote JWKS (kid "hmac") is never loaded, so an HS256 token MACed
// with its published secret is refused on the JWKS provider's route and on
// the static-secret provider's route; and a config that would allow HS256
// for a JWKS provider does not load at all.
func TestOctKeyInRemoteJWKSNeverVerifiesThroughGateway(t *testing.T) {
	testKeys(t)
	secret := []byte("published-secret-published-secret-0123")
	oct := map[string]any{"kty": "oct", "kid": "hmac", "alg": "HS256", "use": "sig", "k": b64(secret)}
	e := newEnv(t)
	e.jwks.setKeys(oct, jwkOf("rsa1", &rsaKey.PublicKey, "RS256"))
	// Force a refresh so the set with the oct key is the one loaded.
	e.wantToken(t, "/api/x", sign(t, jwt.SigningMethodRS256, rsaKey, "refresh-now", claims(nil)), 401, "key_not_found")
	e.wantToken(t, "/api/x", sign(t, jwt.SigningMethodHS256, secret, "hmac", claims(nil)), 401, "algorithm_not_allowed")
	e.wantToken(t, "/hmac/x", sign(t, jwt.SigningMethodHS256, secret, "hmac", claims(map[string]any{"iss": "https://hmac.test/"})), 401, "key_not_found")
	e.wantToken(t, "/api/x", e.rs256(nil), 200, "")

	bad := strings.Replace(attackCfg, "algorithms: [RS256,", "algorithms: [HS256, RS256,", 1)
	if _, err := config.Parse(fmt.Appendf(nil, bad, e.jwks.URL+"/jwks.json", e.backend.URL, testIssuer), t.TempDir()); err == nil {
		t.Error("config with HS256 for a jwks_url provider loaded; want a validation error")
	}
}

// TestAlgorithmSubstitutionWithinKeyTypeRejected: a token naming the kid
// of a JWK that declares alg RS256 (or ES256) but using another algorithm
// of the same key type — RS384, RS512, PS256, PS384 with the same RSA key,
// ES384 with the P-256 key — is refused although the provider allows those
// algorithms. A JWK without alg may serve any algorithm of its family.
func TestAlgorithmSubstitutionWithinKeyTypeRejected(t *testing.T) {
	e := newAttackEnv(t, jwkOf("rsa1", &rsaKey.PublicKey, "RS256"), jwkOf("ec1", &ecKey.PublicKey, "ES256"), withoutAlg(jwkOf("rsa-any", &rsaKey2.PublicKey, "")))
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodRS384, jwt.SigningMethodRS512, jwt.SigningMethodPS256, jwt.SigningMethodPS384} {
		t.Run("rsa1-"+m.Alg(), func(t *testing.T) {
			e.wantToken(t, "/api/x", sign(t, m, rsaKey, "rsa1", claims(nil)), 401, "algorithm_not_allowed")
		})
		t.Run("rsa-any-"+m.Alg(), func(t *testing.T) {
			e.wantToken(t, "/api/x", sign(t, m, rsaKey2, "rsa-any", claims(nil)), 200, "")
		})
	}
	t.Run("ec1-ES384", func(t *testing.T) {
		k384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e.wantToken(t, "/api/x", sign(t, jwt.SigningMethodES384, k384, "ec1", claims(nil)), 401, "algorithm_not_allowed")
	})
	t.Run("rsa1-RS256", func(t *testing.T) {
		e.wantToken(t, "/api/x", sign(t, jwt.SigningMethodRS256, rsaKey, "rsa1", claims(nil)), 200, "")
	})
}

func withoutAlg(m map[string]any) map[string]any { delete(m, "alg"); return m }

// signPSS mints a PS* token with an explicit salt length.
func signPSS(t testing.TB, alg string, h crypto.Hash, key *rsa.PrivateKey, kid string, salt int) string {
	t.Helper()
	header := mustJSON(t, map[string]any{"alg": alg, "kid": kid, "typ": "JWT"})
	in := b64(header) + "." + b64(mustJSON(t, claims(nil)))
	d := h.New()
	d.Write([]byte(in))
	sig, err := rsa.SignPSS(rand.Reader, key, h, d.Sum(nil), &rsa.PSSOptions{SaltLength: salt})
	if err != nil {
		t.Fatalf("SignPSS(salt %d): %v", salt, err)
	}
	return in + "." + b64(sig)
}

// TestPSSSaltLengthMustEqualHash pins RFC 7518 §3.5 ("the size of the salt
// value is the same size as the hash function output"): golang-jwt
// verifies PS* with rsa.PSSSaltLengthAuto and would accept any salt;
// jwtgate accepts only hash-length salts, so PS256 with salt 0, 20 or the
// maximum, and PS384 with a 32-byte salt, are signature_invalid.
func TestPSSSaltLengthMustEqualHash(t *testing.T) {
	e := newAttackEnv(t, jwkOf("ps", &rsaKey.PublicKey, "PS256"), withoutAlg(jwkOf("rsa-any", &rsaKey2.PublicKey, "")))
	cases := []struct {
		name   string
		tok    string
		status int
		reason string
	}{
		{"ps256-salt-32", signPSS(t, "PS256", crypto.SHA256, rsaKey, "ps", 32), 200, ""},
		{"ps256-salt-equals-hash-const", signPSS(t, "PS256", crypto.SHA256, rsaKey, "ps", rsa.PSSSaltLengthEqualsHash), 200, ""},
		{"ps256-salt-0", signPSS(t, "PS256", crypto.SHA256, rsaKey, "ps", 0), 401, "signature_invalid"},
		{"ps256-salt-20", signPSS(t, "PS256", crypto.SHA256, rsaKey, "ps", 20), 401, "signature_invalid"},
		{"ps256-salt-max", signPSS(t, "PS256", crypto.SHA256, rsaKey, "ps", rsa.PSSSaltLengthAuto), 401, "signature_invalid"},
		{"ps384-salt-48", signPSS(t, "PS384", crypto.SHA384, rsaKey2, "rsa-any", 48), 200, ""},
		{"ps384-salt-32", signPSS(t, "PS384", crypto.SHA384, rsaKey2, "rsa-any", 32), 401, "signature_invalid"},
		{"ps512-salt-64", signPSS(t, "PS512", crypto.SHA512, rsaKey2, "rsa-any", 64), 200, ""},
		{"ps512-salt-0", signPSS(t, "PS512", crypto.SHA512, rsaKey2, "rsa-any", 0), 401, "signature_invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { e.wantToken(t, "/api/x", tc.tok, tc.status, tc.reason) })
	}
	// The lax golang-jwt method alone would have accepted the bad salts:
	// the test above fails if jwtgate's own check is removed.
	tok := signPSS(t, "PS256", crypto.SHA256, rsaKey, "ps", 0)
	i := strings.LastIndexByte(tok, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err := jwt.SigningMethodPS256.Verify(tok[:i], sig, &rsaKey.PublicKey); err != nil {
		t.Logf("note: golang-jwt's PS256 now refuses salt 0 itself (%v)", err)
	}
}

// esParts splits a valid ES256 token into signing input, r and s.
func esParts(t testing.TB, tok string) (in string, r, s *big.Int) {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("ES256 signature: %v (%d bytes)", err, len(sig))
	}
	return tok[:i], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
}

// rs32 encodes r||s as two 32-byte big-endian fields (values that do not
// fit are truncated to their low 32 bytes by the caller's choice).
func rs32(r, s *big.Int) []byte {
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out
}

// TestECDSAOutOfRangeSignatureRejected: besides r = s = 0 (CVE-2022-21449,
// TestECDSAZeroSignatureRejected), signatures with r or s equal to the
// curve order n, or all-0xff fields (≥ n), or r = 0 with a valid s, never
// verify.
func TestECDSAOutOfRangeSignatureRejected(t *testing.T) {
	e := newEnv(t)
	in, r, s := esParts(t, sign(t, jwt.SigningMethodES256, ecKey, "ec1", claims(nil)))
	n := elliptic.P256().Params().N
	ff := new(big.Int).SetBytes([]byte(strings.Repeat("\xff", 32)))
	cases := map[string][]byte{
		"r-zero-s-zero": rs32(big.NewInt(0), big.NewInt(0)),
		"r-zero":        rs32(big.NewInt(0), s),
		"s-zero":        rs32(r, big.NewInt(0)),
		"r-equals-n":    rs32(n, s),
		"s-equals-n":    rs32(r, n),
		"r-plus-n":      rs32(new(big.Int).Add(r, n).Mod(new(big.Int).Add(r, n), new(big.Int).Lsh(big.NewInt(1), 256)), s),
		"all-ff":        rs32(ff, ff),
		"r-ff":          rs32(ff, s),
		"s-ff":          rs32(r, ff),
		"r-one-s-one":   rs32(big.NewInt(1), big.NewInt(1)),
	}
	for name, sig := range cases {
		t.Run(name, func(t *testing.T) { e.wantToken(t, "/api/x", in+"."+b64(sig), 401, "signature_invalid") })
	}
}

// TestECDSADERSignatureRejected: JWS ECDSA signatures are the raw r||s
// concatenation (RFC 7518 §3.4). The same valid signature DER-encoded (as
// X.509 and most crypto APIs produce it) must not verify, nor may r||s
// with a leading zero byte or padding.
func TestECDSADERSignatureRejected(t *testing.T) {
	e := newEnv(t)
	in, r, s := esParts(t, sign(t, jwt.SigningMethodES256, ecKey, "ec1", claims(nil)))
	der, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		t.Fatal(err)
	}
	raw := rs32(r, s)
	for name, sig := range map[string][]byte{
		"der":             der,
		"leading-zero":    append([]byte{0}, raw...),
		"trailing-zero":   append(append([]byte{}, raw...), 0),
		"r-only":          raw[:32],
		"doubled":         append(append([]byte{}, raw...), raw...),
		"p1363-66-bytes":  append([]byte{0}, append(append([]byte{0}, raw[:32]...), raw[32:]...)...),
		"der-then-padded": append(der, make([]byte, 64-len(der)%64)...),
	} {
		t.Run(name, func(t *testing.T) { e.wantToken(t, "/api/x", in+"."+b64(sig), 401, "signature_invalid") })
	}
	e.wantToken(t, "/api/x", in+"."+b64(raw), 200, "")
}

// TestECDSAHighSAcceptedDeterministically documents a decision: JWS does
// not forbid high-S ECDSA signatures (s' = n - s), and Go signers produce
// them half the time, so jwtgate accepts both forms. The two tokens differ
// as strings (so token_id differs; correlate replays by jti), and each is
// decided the same way every time, also when served from the cache.
func TestECDSAHighSAcceptedDeterministically(t *testing.T) {
	e := newEnv(t)
	in, r, s := esParts(t, sign(t, jwt.SigningMethodES256, ecKey, "ec1", claims(nil)))
	n := elliptic.P256().Params().N
	low, high := s, new(big.Int).Sub(n, s)
	if low.Cmp(high) > 0 {
		low, high = high, low
	}
	ids := map[string]bool{}
	for _, sv := range []*big.Int{low, high, low, high} {
		rec := e.wantToken(t, "/api/x", in+"."+b64(rs32(r, sv)), 200, "")
		ids[rec["token_id"].(string)] = true
	}
	if len(ids) != 2 {
		t.Errorf("%d distinct token_ids for the low-S and high-S forms, want 2", len(ids))
	}
}

// TestSignatureTamperingRejectedDeterministically extends
// TestStrippedSignatureRejected with a fixed reason per tampering: a
// stripped, emptied, truncated, extended, bit-flipped or swapped signature
// never verifies; what cannot be decoded as strict base64url is
// token_malformed, everything else signature_invalid.
func TestSignatureTamperingRejectedDeterministically(t *testing.T) {
	e := newEnv(t)
	good := e.rs256(nil)
	other := sign(t, jwt.SigningMethodRS256, rsaKey, "rsa1", claims(map[string]any{"sub": "root"}))
	i := strings.LastIndexByte(good, '.')
	in, sig := good[:i], good[i+1:]
	flip := func(s string, at int) string {
		b := []byte(s)
		const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		b[at] = alpha[(strings.IndexByte(alpha, b[at])+1)%64]
		return string(b)
	}
	cases := []struct {
		name, tok, reason string
	}{
		{"stripped", in + ".", "signature_invalid"},
		{"signature-segment-removed", in, "token_malformed"},
		{"truncated-to-whole-quantum", in + "." + sig[:len(sig)/4*4], "signature_invalid"},
		{"truncated-by-1", in + "." + sig[:len(sig)-1], "token_malformed"},
		{"half-whole-quanta", in + "." + sig[:len(sig)/8*4], "signature_invalid"},
		{"extended-aaaa", in + "." + sig + "AAAA", "signature_invalid"},
		{"flipped-first", in + "." + flip(sig, 0), "signature_invalid"},
		{"flipped-middle", in + "." + flip(sig, len(sig)/2), "signature_invalid"},
		{"swapped-from-other-token", in + "." + other[strings.LastIndexByte(other, '.')+1:], "signature_invalid"},
		{"payload-swapped", strings.Split(good, ".")[0] + "." + strings.Split(other, ".")[1] + "." + sig, "signature_invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // the same answer twice
				e.wantToken(t, "/api/x", tc.tok, 401, tc.reason)
			}
		})
	}
}

// trailingBits returns seg with the unused low bits of its last character
// set, so that a lax decoder yields the same bytes; ok is false when seg
// has no unused bits (its length is a multiple of 4).
func trailingBits(seg string) (string, bool) {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var unused int
	switch len(seg) % 4 {
	case 2:
		unused = 4
	case 3:
		unused = 2
	default:
		return seg, false
	}
	v := strings.IndexByte(alpha, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alpha[v|(1<<unused-1)]), true
}

// TestNonCanonicalBase64Rejected pins strict base64url (RFC 7515 §2, RFC
// 4648 §3.5): non-zero trailing bits in any segment, "=" padding, the
// standard alphabet's "+" and "/", and whitespace or line breaks (which
// Go's decoder silently skips; they arrive through a query parameter) are
// all token_malformed, so no two strings verify as the same token.
func TestNonCanonicalBase64Rejected(t *testing.T) {
	e := newEnv(t)
	// Find a valid token whose payload and signature have unused bits
	// and whose signature holds both '-' and '_' (the header is fixed;
	// its trailing bits are tested when it has some).
	var tok string
	for n := 0; n < 500 && tok == ""; n++ {
		c := e.rs256(map[string]any{"pad": strings.Repeat("x", n%3), "n": n})
		p := strings.Split(c, ".")
		if len(p[1])%4 != 0 && len(p[2])%4 != 0 && strings.Contains(p[2], "-") && strings.Contains(p[2], "_") {
			tok = c
		}
	}
	if tok == "" {
		t.Fatal("no suitable token found")
	}
	e.wantToken(t, "/api/x", tok, 200, "")
	p := strings.Split(tok, ".")
	join := func(a, b, c string) string { return a + "." + b + "." + c }
	cases := map[string]string{
		"padding-on-signature": join(p[0], p[1], p[2]+strings.Repeat("=", (4-len(p[2])%4)%4)),
		"padding-on-payload":   join(p[0], p[1]+strings.Repeat("=", (4-len(p[1])%4)%4), p[2]),
		"plus-for-dash":        join(p[0], p[1], strings.ReplaceAll(p[2], "-", "+")),
		"slash-for-underscore": join(p[0], p[1], strings.ReplaceAll(p[2], "_", "/")),
		"space-in-signature":   join(p[0], p[1], p[2][:10]+" "+p[2][10:]),
	}
	for i, seg := range p {
		if tb, ok := trailingBits(seg); ok {
			q := append([]string{}, p...)
			q[i] = tb
			cases[fmt.Sprintf("trailing-bits-segment-%d", i)] = strings.Join(q, ".")
		}
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) { e.wantToken(t, "/api/x", bad, 401, "token_malformed") })
	}
	// Line breaks can only arrive URL-encoded, in the query.
	for name, nl := range map[string]string{"lf": "\n", "crlf": "\r\n", "cr": "\r"} {
		t.Run("line-break-"+name+"-via-query", func(t *testing.T) {
			bad := join(p[0], p[1], p[2][:20]+nl+p[2][20:])
			before := e.backend.count()
			resp := e.do("GET", "/api/x?access_token="+url.QueryEscape(bad), "", nil)
			e.wantDecision(t, resp, before, 401, "deny", "token_malformed")
		})
	}
}

// TestOtherJOSEFormsRejected: only the compact JWS serialization is a
// token. JWE (five segments), the JWS JSON serializations (general and
// flattened, carrying a genuinely signed token's parts), and nested JWTs
// (cty JWT, whether the payload is a JWT or JSON) are token_malformed.
func TestOtherJOSEFormsRejected(t *testing.T) {
	e := newEnv(t)
	good := e.rs256(nil)
	p := strings.Split(good, ".")
	jwe := b64([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM","kid":"rsa1"}`)) + "." + b64(make([]byte, 256)) + "." + b64(make([]byte, 12)) + "." + p[1] + "." + b64(make([]byte, 16))
	general := string(mustJSON(t, map[string]any{"payload": p[1], "signatures": []any{map[string]any{"protected": p[0], "signature": p[2]}}}))
	flattened := string(mustJSON(t, map[string]any{"payload": p[1], "protected": p[0], "signature": p[2]}))
	nestedHeader := []byte(`{"alg":"RS256","kid":"rsa1","cty":"JWT"}`)
	cases := map[string]string{
		"jwe-five-segments":       jwe,
		"jws-json-general":        general,
		"jws-json-flattened":      flattened,
		"nested-jwt-payload":      signRaw(t, "RS256", rsaKey, nestedHeader, []byte(good)),
		"nested-cty-json-payload": signRaw(t, "RS256", rsaKey, nestedHeader, mustJSON(t, claims(nil))),
		"nested-cty-lowercase":    signRaw(t, "RS256", rsaKey, []byte(`{"alg":"RS256","kid":"rsa1","cty":"application/jwt"}`), mustJSON(t, claims(nil))),
		"four-segments":           good + "." + p[2],
		"two-segments":            p[0] + "." + p[1],
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) { e.wantToken(t, "/api/x", tok, 401, "token_malformed") })
	}
}

// TestCritAndB64HeadersRejected: jwtgate implements no JWS extension, so a
// crit header (any value, even empty or naming registered names) and the
// b64 header (RFC 7797 unencoded payloads, with or without crit) make a
// validly signed token token_malformed.
func TestCritAndB64HeadersRejected(t *testing.T) {
	e := newEnv(t)
	body := mustJSON(t, claims(nil))
	for name, h := range map[string]string{
		"crit-exp":          `{"alg":"RS256","kid":"rsa1","crit":["exp"],"exp":1}`,
		"crit-empty":        `{"alg":"RS256","kid":"rsa1","crit":[]}`,
		"crit-string":       `{"alg":"RS256","kid":"rsa1","crit":"b64"}`,
		"crit-null":         `{"alg":"RS256","kid":"rsa1","crit":null}`,
		"crit-b64-false":    `{"alg":"RS256","kid":"rsa1","crit":["b64"],"b64":false}`,
		"b64-false-no-crit": `{"alg":"RS256","kid":"rsa1","b64":false}`,
		"b64-true":          `{"alg":"RS256","kid":"rsa1","b64":true}`,
	} {
		t.Run(name, func(t *testing.T) {
			e.wantToken(t, "/api/x", signRaw(t, "RS256", rsaKey, []byte(h), body), 401, "token_malformed")
		})
	}
}

// TestKeyInjectionHeadersNeverFetched extends TestJKUX5UJWKHeadersIgnored:
// jku, x5u, jwk and x5c naming or embedding an attacker's key are never
// fetched or used — with an unknown kid the answer is key_not_found, with
// the real kid the attacker's signature is signature_invalid — and kid
// values built for injection (path traversal, SQL, URLs, a 4000-byte kid)
// are only ever looked up, never used in a fetch: the JWKS server sees
// its own path only, and at most one unknown-kid refresh happens.
func TestKeyInjectionHeadersNeverFetched(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var paths []string
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.String())
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{jwkOf("evil", &rsaKey2.PublicKey, "RS256")}})
	}))
	t.Cleanup(attacker.Close)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evil"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rsaKey2.PublicKey, rsaKey2)
	if err != nil {
		t.Fatal(err)
	}
	inject := map[string]any{
		"jku": attacker.URL + "/jwks.json", "x5u": attacker.URL + "/cert.pem",
		"jwk": jwkOf("evil", &rsaKey2.PublicKey, "RS256"), "x5c": []string{base64.StdEncoding.EncodeToString(cert)},
	}
	mint := func(kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(nil))
		tok.Header["kid"] = kid
		for k, v := range inject {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(rsaKey2)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := e.jwks.fetches.Load()
	kids := map[string]string{
		"evil":           "key_not_found",
		"rsa1":           "signature_invalid",
		"path-traversal": "key_not_found",
		"sql":            "key_not_found",
		"url":            "key_not_found",
		"very-long":      "key_not_found",
	}
	values := map[string]string{
		"evil": "evil", "rsa1": "rsa1", "path-traversal": "../../../../etc/passwd", "sql": "' OR '1'='1'; DROP TABLE keys;--",
		"url": attacker.URL + "/jwks.json", "very-long": strings.Repeat("k", 4000),
	}
	for name, reason := range kids {
		t.Run(name, func(t *testing.T) { e.wantToken(t, "/api/x", mint(values[name]), 401, reason) })
	}
	// A kid with a line break is refused before any lookup.
	t.Run("kid-with-newline", func(t *testing.T) { e.wantToken(t, "/api/x", mint("rsa1\n{\"x\":1}"), 401, "token_malformed") })
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 0 {
		t.Errorf("attacker's server was fetched: %v", paths)
	}
	if n := e.jwks.fetches.Load() - base; n > 1 {
		t.Errorf("%d JWKS fetches for injected kids, want at most one unknown-kid refresh", n)
	}
}

// TestDuplicateHeaderMembersRejected pins the parser-differential defence
// for the header: a member named twice — the same or different values —
// or twice in different case is token_malformed, even when the token is
// validly signed and Go's last-one-wins decoding would see a good alg.
func TestDuplicateHeaderMembersRejected(t *testing.T) {
	e := newEnv(t)
	body := mustJSON(t, claims(nil))
	for name, h := range map[string]string{
		"alg-rs256-then-none": `{"alg":"RS256","alg":"none","kid":"rsa1"}`,
		"alg-none-then-rs256": `{"alg":"none","alg":"RS256","kid":"rsa1"}`,
		"alg-same-twice":      `{"alg":"RS256","alg":"RS256","kid":"rsa1"}`,
		"kid-twice":           `{"alg":"RS256","kid":"evil","kid":"rsa1"}`,
		"kid-and-KID":         `{"alg":"RS256","kid":"rsa1","KID":"evil"}`,
		"alg-and-Alg":         `{"alg":"RS256","Alg":"none","kid":"rsa1"}`,
		"escaped-duplicate":   `{"alg":"RS256","\u0061lg":"RS256","kid":"rsa1"}`,
		"nested-duplicate":    `{"alg":"RS256","kid":"rsa1","jwk":{"kty":"RSA","kty":"oct"}}`,
		"trailing-object":     `{"alg":"RS256","kid":"rsa1"}{"alg":"none"}`,
		"header-array":        `[{"alg":"RS256","kid":"rsa1"}]`,
	} {
		t.Run(name, func(t *testing.T) {
			e.wantToken(t, "/api/x", signRaw(t, "RS256", rsaKey, []byte(h), body), 401, "token_malformed")
		})
	}
}

// TestDuplicateClaimsRejected pins the parser-differential defence for the
// claims: two "sub" members (equal or not), "sub" and "SUB", "sub" and
// "ſub" (U+017F folds to s, as Go's case-insensitive struct decoding
// matches it), two "iss", a duplicate inside a nested object, and data
// after the claims object are token_malformed, so a backend decoding the
// forwarded token differently can never see another identity.
func TestDuplicateClaimsRejected(t *testing.T) {
	e := newEnv(t)
	header := []byte(rs256Header)
	noSub := map[string]any{"sub": nil}
	noIss := map[string]any{"iss": nil}
	cases := map[string][]byte{
		"sub-twice-different": rawPayload(t, noSub, `"sub":"alice"`, `"sub":"admin"`),
		"sub-twice-same":      rawPayload(t, noSub, `"sub":"alice"`, `"sub":"alice"`),
		"sub-and-SUB":         rawPayload(t, nil, `"SUB":"admin"`),
		"sub-and-Sub":         rawPayload(t, nil, `"Sub":"admin"`),
		"sub-and-long-s":      rawPayload(t, nil, `"ſub":"admin"`),
		"iss-twice":           rawPayload(t, noIss, `"iss":"https://evil.test/"`, `"iss":"`+testIssuer+`"`),
		"nested-duplicate":    rawPayload(t, map[string]any{"realm_access": nil}, `"realm_access":{"roles":["user"],"roles":["admin"]}`),
		"trailing-object":     append(rawPayload(t, nil), []byte(`{"sub":"admin"}`)...),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			e.wantToken(t, "/api/x", signRaw(t, "RS256", rsaKey, header, body), 401, "token_malformed")
		})
	}
	// Distinct names that are not case variants are fine.
	e.wantToken(t, "/api/x", signRaw(t, "RS256", rsaKey, header, rawPayload(t, nil, `"subject":"x"`)), 200, "")
}

// TestClaimTypeConfusionDeterministic pins one reason for each wrong JSON
// type or value of a registered claim: wrong types, null, non-finite,
// negative or beyond-year-9999 numeric dates are token_malformed; exp 0
// is a valid date in 1970 (token_expired); a fractional exp is fine.
func TestClaimTypeConfusionDeterministic(t *testing.T) {
	e := newEnv(t)
	header := []byte(rs256Header)
	future := time.Now().Add(time.Hour).Unix()
	cases := []struct {
		name   string
		drop   string
		member string
		status int
		reason string
	}{
		{"exp-string", "exp", fmt.Sprintf(`"exp":"%d"`, future), 401, "token_malformed"},
		{"exp-float", "exp", fmt.Sprintf(`"exp":%d.5`, future), 200, ""},
		{"exp-exponent", "exp", fmt.Sprintf(`"exp":%de0`, future), 200, ""},
		{"exp-huge", "exp", `"exp":1e300`, 401, "token_malformed"},
		{"exp-overflow", "exp", `"exp":1e400`, 401, "token_malformed"},
		{"exp-year-10000", "exp", `"exp":253402300800`, 401, "token_malformed"},
		{"exp-zero", "exp", `"exp":0`, 401, "token_expired"},
		{"exp-null", "exp", `"exp":null`, 401, "token_malformed"},
		{"exp-negative", "exp", `"exp":-1`, 401, "token_malformed"},
		{"exp-bool", "exp", `"exp":true`, 401, "token_malformed"},
		{"exp-array", "exp", fmt.Sprintf(`"exp":[%d]`, future), 401, "token_malformed"},
		{"nbf-string", "", `"nbf":"0"`, 401, "token_malformed"},
		{"iat-object", "iat", `"iat":{}`, 401, "token_malformed"},
		{"aud-number", "aud", `"aud":42`, 401, "token_malformed"},
		{"aud-array-of-number", "aud", `"aud":[42]`, 401, "token_malformed"},
		{"aud-null", "aud", `"aud":null`, 401, "token_malformed"},
		{"aud-array-mixed", "aud", `"aud":["api",1]`, 401, "token_malformed"},
		{"scope-object", "scope", `"scope":{"api:read":true}`, 401, "token_malformed"},
		{"scope-number", "scope", `"scope":1`, 401, "token_malformed"},
		{"scope-array-of-strings", "scope", `"scope":["api:read"]`, 200, ""},
		{"scope-array-with-number", "scope", `"scope":["api:read",1]`, 401, "token_malformed"},
		{"scp-object", "", `"scp":{"a":1}`, 401, "token_malformed"},
		{"sub-number", "sub", `"sub":42`, 401, "token_malformed"},
		{"sub-null", "sub", `"sub":null`, 401, "token_malformed"},
		{"sub-array", "sub", `"sub":["alice"]`, 401, "token_malformed"},
		{"iss-number", "iss", `"iss":1`, 401, "token_malformed"},
		{"jti-object", "jti", `"jti":{"id":1}`, 401, "token_malformed"},
		{"sub-absent", "sub", ``, 401, "claim_missing"},
		{"exp-absent", "exp", ``, 401, "claim_missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			over := map[string]any{}
			if tc.drop != "" {
				over[tc.drop] = nil
			}
			var members []string
			if tc.member != "" {
				members = append(members, tc.member)
			}
			e.wantToken(t, "/api/x", signRaw(t, "RS256", rsaKey, header, rawPayload(t, over, members...)), tc.status, tc.reason)
		})
	}
}

// TestUnsafeTextInIdentityClaimsRejected: claims must be UTF-8 (Go's
// decoder would silently turn broken bytes and lone surrogate escapes into
// U+FFFD), and the identity values iss, sub, jti and aud must hold no
// control character, bidi override or isolate, or invisible character —
// otherwise an audit record or a log line could show another identity
// than the one decided on. Each is token_malformed; ordinary non-ASCII
// names pass.
func TestUnsafeTextInIdentityClaimsRejected(t *testing.T) {
	e := newEnv(t)
	header := []byte(rs256Header)
	noSub := map[string]any{"sub": nil}
	cases := []struct {
		name   string
		body   []byte
		status int
		reason string
	}{
		{"sub-invalid-utf8", rawPayload(t, noSub, "\"sub\":\"ali\xffce\""), 401, "token_malformed"},
		{"email-invalid-utf8", rawPayload(t, map[string]any{"email": nil}, "\"email\":\"a\xc3@example.com\""), 401, "token_malformed"},
		{"sub-lone-surrogate", rawPayload(t, noSub, `"sub":"alice\ud800"`), 401, "token_malformed"},
		{"sub-u202e", rawPayload(t, noSub, `"sub":"alice\u202etxt.exe"`), 401, "token_malformed"},
		{"sub-u2066", rawPayload(t, noSub, `"sub":"\u2066admin\u2069"`), 401, "token_malformed"},
		{"sub-u2067", rawPayload(t, noSub, `"sub":"\u2067admin"`), 401, "token_malformed"},
		{"sub-u2068", rawPayload(t, noSub, `"sub":"\u2068admin"`), 401, "token_malformed"},
		{"sub-nul", rawPayload(t, noSub, `"sub":"admin\u0000alice"`), 401, "token_malformed"},
		{"sub-newline", rawPayload(t, noSub, `"sub":"alice\n{\"sub\":\"admin\"}"`), 401, "token_malformed"},
		{"sub-unit-separator", rawPayload(t, noSub, `"sub":"alice\u001f"`), 401, "token_malformed"},
		{"sub-c1-control", rawPayload(t, noSub, `"sub":"alice\u0085"`), 401, "token_malformed"},
		{"sub-zero-width-space", rawPayload(t, noSub, `"sub":"ad\u200bmin"`), 401, "token_malformed"},
		{"jti-tab", rawPayload(t, map[string]any{"jti": nil}, `"jti":"a\tb"`), 401, "token_malformed"},
		{"iss-u202e", rawPayload(t, map[string]any{"iss": nil}, `"iss":"https://idp.test/\u202e"`), 401, "token_malformed"},
		{"aud-rlm", rawPayload(t, map[string]any{"aud": nil}, `"aud":["api\u200f"]`), 401, "token_malformed"},
		{"sub-accented", rawPayload(t, noSub, `"sub":"José Müller 日本"`), 200, ""},
		{"email-bidi-not-identity", rawPayload(t, map[string]any{"email": nil}, `"email":"\u202eexample"`), 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.wantToken(t, "/api/x", signRaw(t, "RS256", rsaKey, header, tc.body), tc.status, tc.reason)
			if tc.status != 200 && rec["sub"] != nil {
				t.Errorf("refused token's sub recorded: %q", rec["sub"])
			}
		})
	}
}

// TestDotFloodRejected: tokens made of dots are refused before decoding —
// 10,000 dots exceed max_token_bytes (token_too_large), shorter floods
// and a bare ".." are token_malformed.
func TestDotFloodRejected(t *testing.T) {
	e := newEnv(t)
	e.wantToken(t, "/api/x", strings.Repeat("a.", 10000)+"a", 401, "token_too_large")
	e.wantToken(t, "/api/x", strings.Repeat(".", 10000), 401, "token_too_large")
	e.wantToken(t, "/api/x", strings.Repeat("a.", 1000)+"a", 401, "token_malformed")
	e.wantToken(t, "/api/x", "..", 401, "token_malformed")
	e.wantToken(t, "/api/x", e.rs256(nil)+".", 401, "token_malformed")
}

// TestNoKIDAgainstMultiKeySetRejected pins SPEC §3.5: a token without kid
// is accepted only when the provider has exactly one key; against a set
// of three keys it is key_not_found even though one of them would verify
// it, and against a one-key set it passes.
func TestNoKIDAgainstMultiKeySetRejected(t *testing.T) {
	e := newEnv(t)
	for _, m := range []struct {
		m   jwt.SigningMethod
		key any
	}{{jwt.SigningMethodRS256, rsaKey}, {jwt.SigningMethodES256, ecKey}} {
		e.wantToken(t, "/api/x", sign(t, m.m, m.key, "", claims(nil)), 401, "key_not_found")
	}
	one := newAttackEnv(t, jwkOf("only", &rsaKey.PublicKey, "RS256"))
	one.wantToken(t, "/api/x", sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(nil)), 200, "")
	one.wantToken(t, "/api/x", sign(t, jwt.SigningMethodRS256, rsaKey2, "", claims(nil)), 401, "signature_invalid")
}

// TestUnusableJWKsNeverVerify: keys the jwks package skips — use enc,
// key_ops without verify, alg that does not fit the key type or curve, a
// curve that does not fit the point, kty that does not fit the members,
// an EC point off the curve, RSA under 2048 bits — never verify a token
// signed with their private key (key_not_found), while the good key in the
// same set keeps working. Of two keys with one kid, the first is used: a
// token signed by the second is signature_invalid.
func TestUnusableJWKsNeverVerify(t *testing.T) {
	testKeys(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	withUse := func(m map[string]any, use string) map[string]any { m["use"] = use; return m }
	withOps := func(m map[string]any) map[string]any { delete(m, "use"); m["key_ops"] = []string{"encrypt"}; return m }
	mis := func(m map[string]any, k, v string) map[string]any { m[k] = v; return m }
	offCurve := jwkOf("off-curve", &ecKey.PublicKey, "ES256")
	y := []byte(offCurve["y"].(string))
	y[5] ^= 0x01 // still base64url, no longer on P-256
	if y[5] == '`' || !isB64URL(y[5]) {
		y[5] = 'A'
	}
	offCurve["y"] = string(y)
	e := newAttackEnv(t,
		jwkOf("good", &rsaKey.PublicKey, "RS256"),
		withUse(jwkOf("enc", &rsaKey2.PublicKey, "RS256"), "enc"),
		withOps(jwkOf("ops", &rsaKey2.PublicKey, "RS256")),
		jwkOf("mis-alg", &rsaKey2.PublicKey, "ES256"),
		mis(jwkOf("mis-crv", &ecKey.PublicKey, "ES256"), "crv", "P-384"),
		mis(jwkOf("mis-kty", &ecKey.PublicKey, "ES256"), "kty", "RSA"),
		mis(jwkOf("p384-says-es256", &p384.PublicKey, "ES256"), "crv", "P-384"),
		offCurve,
		jwkOf("weak", &weak.PublicKey, "RS256"),
		jwkOf("dup", &rsaKey.PublicKey, "RS256"),
		jwkOf("dup", &rsaKey2.PublicKey, "RS256"),
	)
	cases := []struct {
		name, kid string
		m         jwt.SigningMethod
		key       any
		status    int
		reason    string
	}{
		{"use-enc", "enc", jwt.SigningMethodRS256, rsaKey2, 401, "key_not_found"},
		{"key-ops-encrypt", "ops", jwt.SigningMethodRS256, rsaKey2, 401, "key_not_found"},
		{"rsa-key-declares-es256", "mis-alg", jwt.SigningMethodRS256, rsaKey2, 401, "key_not_found"},
		{"p256-point-declares-p384", "mis-crv", jwt.SigningMethodES256, ecKey, 401, "key_not_found"},
		{"ec-members-declare-rsa", "mis-kty", jwt.SigningMethodES256, ecKey, 401, "key_not_found"},
		{"p384-key-declares-es256", "p384-says-es256", jwt.SigningMethodES384, p384, 401, "key_not_found"},
		{"ec-point-off-curve", "off-curve", jwt.SigningMethodES256, ecKey, 401, "key_not_found"},
		{"rsa-1024", "weak", jwt.SigningMethodRS256, weak, 401, "key_not_found"},
		{"duplicate-kid-second-key", "dup", jwt.SigningMethodRS256, rsaKey2, 401, "signature_invalid"},
		{"duplicate-kid-first-key", "dup", jwt.SigningMethodRS256, rsaKey, 200, ""},
		{"good-key-still-works", "good", jwt.SigningMethodRS256, rsaKey, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.wantToken(t, "/api/x", sign(t, tc.m, tc.key, tc.kid, claims(nil)), tc.status, tc.reason)
		})
	}
}

// TestCheckMembersAndFoldName unit-tests the duplicate-member walker and
// the case folding it relies on, including names that only Unicode
// folding equates (K/k/U+212A, s/U+017F).
func TestCheckMembersAndFoldName(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		ok         bool
	}{
		{"flat", `{"a":1,"b":[1,{"a":2}],"c":{"a":{"a":3}}}`, true},
		{"same-name-different-objects", `{"a":{"x":1},"b":{"x":1}}`, true},
		{"dup-top", `{"a":1,"a":2}`, false},
		{"dup-case", `{"kid":1,"Kid":2}`, false},
		{"dup-kelvin", "{\"kid\":1,\"\u212aid\":2}", false},
		{"dup-in-array-object", `{"a":[{"x":1,"x":2}]}`, false},
		{"dup-deep", `{"a":{"b":{"c":1,"C":2}}}`, false},
		{"empty-object", `{}`, true},
		{"not-object", `"x"`, false},
		{"array", `[]`, false},
		{"trailing", `{} {}`, false},
		{"truncated", `{"a":`, false},
		{"empty", ``, false},
		{"large-object", largeObject(40, ""), true},
		{"large-object-dup-late", largeObject(40, `"M30":0`), false},
		{"large-object-dup-early", largeObject(40, `"m3":0`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkMembers([]byte(tc.json)); (err == nil) != tc.ok {
				t.Errorf("checkMembers(%q) = %v, want ok %v", tc.json, err, tc.ok)
			}
		})
	}
	for _, pair := range [][2]string{{"sub", "SUB"}, {"k", "\u212a"}, {"s", "\u017f"}, {"straße", "STRASSE"}} {
		same := foldName(pair[0]) == foldName(pair[1])
		if same != strings.EqualFold(pair[0], pair[1]) {
			t.Errorf("foldName(%q) == foldName(%q) is %v, strings.EqualFold says %v", pair[0], pair[1], same, !same)
		}
	}
}

// largeObject is a JSON object with n members m0…m(n-1), plus extra
// (raw member text) at the end when not empty; it exercises memberSet's
// switch from pairwise comparison to a map.
func largeObject(n int, extra string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"m%d":%d`, i, i)
	}
	if extra != "" {
		b.WriteString("," + extra)
	}
	b.WriteString("}")
	return b.String()
}
