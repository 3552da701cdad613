package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// wantDecision checks status, backend reach and the audit record.
func (e *env) wantDecision(t *testing.T, resp *http.Response, before int, status int, decision, reason string) map[string]any {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d", resp.StatusCode, status)
	}
	reached := e.backend.count() > before
	if wantReach := status < 400 || status >= 500 && reason != "" && strings.HasPrefix(reason, "upstream"); reached != wantReach && status != 502 && status != 504 {
		t.Errorf("backend reached = %v, want %v", reached, wantReach)
	}
	rec := e.lastRecord()
	if rec["decision"] != decision {
		t.Errorf("audit decision = %v, want %s", rec["decision"], decision)
	}
	if got, _ := rec["reason"].(string); got != reason {
		t.Errorf("audit reason = %q, want %q", got, reason)
	}
	if int(rec["status"].(float64)) != status {
		t.Errorf("audit status = %v, want %d", rec["status"], status)
	}
	return rec
}

// TestTokenChecks pins SPEC §3 order and §5 reasons for the common token
// failures: each case is refused with its reason and never reaches the
// backend; a valid token is forwarded with its identity.
func TestTokenChecks(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	cases := []struct {
		name     string
		token    func() string
		path     string
		status   int
		decision string
		reason   string
	}{
		{"valid-rs256", func() string { return e.rs256(nil) }, "/api/x", 200, "allow", ""},
		{"valid-es256", func() string { return sign(t, jwt.SigningMethodES256, ecKey, "ec1", claims(nil)) }, "/api/x", 200, "allow", ""},
		{"valid-eddsa", func() string { return sign(t, jwt.SigningMethodEdDSA, edKey, "ed1", claims(nil)) }, "/api/x", 200, "allow", ""},
		{"missing-token", func() string { return "" }, "/api/x", 401, "deny", "token_missing"},
		{"garbage", func() string { return "not-a-jwt" }, "/api/x", 401, "deny", "token_malformed"},
		{"expired-beyond-skew", func() string { return e.rs256(map[string]any{"exp": now.Add(-time.Minute).Unix()}) }, "/api/x", 401, "deny", "token_expired"},
		{"expired-within-skew", func() string { return e.rs256(map[string]any{"exp": now.Add(-10 * time.Second).Unix()}) }, "/api/x", 200, "allow", ""},
		{"nbf-future-beyond-skew", func() string { return e.rs256(map[string]any{"nbf": now.Add(time.Minute).Unix()}) }, "/api/x", 401, "deny", "token_not_yet_valid"},
		{"nbf-future-within-skew", func() string { return e.rs256(map[string]any{"nbf": now.Add(10 * time.Second).Unix()}) }, "/api/x", 200, "allow", ""},
		{"iat-future-beyond-skew", func() string { return e.rs256(map[string]any{"iat": now.Add(time.Minute).Unix()}) }, "/api/x", 401, "deny", "token_issued_in_future"},
		{"iat-future-within-skew", func() string { return e.rs256(map[string]any{"iat": now.Add(10 * time.Second).Unix()}) }, "/api/x", 200, "allow", ""},
		{"exp-missing", func() string { return e.rs256(map[string]any{"exp": nil}) }, "/api/x", 401, "deny", "claim_missing"},
		{"sub-missing", func() string { return e.rs256(map[string]any{"sub": nil}) }, "/api/x", 401, "deny", "claim_missing"},
		{"lifetime-exceeded", func() string { return e.rs256(map[string]any{"exp": now.Add(3 * time.Hour).Unix()}) }, "/api/x", 401, "deny", "lifetime_exceeded"},
		{"wrong-issuer", func() string { return e.rs256(map[string]any{"iss": "https://evil.test/"}) }, "/api/x", 401, "deny", "unknown_issuer"},
		{"issuer-not-allowed-on-route", func() string {
			return sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), "h1", claims(map[string]any{"iss": "https://hmac.test/"}))
		}, "/api/x", 401, "deny", "issuer_not_allowed"},
		{"wrong-audience", func() string { return e.rs256(map[string]any{"aud": "other"}) }, "/api/x", 401, "deny", "audience_mismatch"},
		{"audience-any-of-array", func() string { return e.rs256(map[string]any{"aud": []any{"x", "api"}}) }, "/api/x", 200, "allow", ""},
		{"unknown-kid", func() string { return sign(t, jwt.SigningMethodRS256, rsaKey, "nope", claims(nil)) }, "/api/x", 401, "deny", "key_not_found"},
		{"bad-signature", func() string { return sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa1", claims(nil)) }, "/api/x", 401, "deny", "signature_invalid"},
		{"scope-missing", func() string { return e.rs256(map[string]any{"scope": "other"}) }, "/api/x", 403, "deny", "scope_missing"},
		{"claim-requirement-failed", func() string { return e.rs256(map[string]any{"realm_access": map[string]any{"roles": []any{"user"}}}) }, "/admin/x", 403, "deny", "requirement_failed"},
		{"hmac-static-secret", func() string {
			return sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), "h1", claims(map[string]any{"iss": "https://hmac.test/"}))
		}, "/hmac/x", 200, "allow", ""},
		{"public-route-no-token", func() string { return "" }, "/public/x", 200, "public", ""},
		{"optional-no-token", func() string { return "" }, "/opt/x", 200, "anonymous", ""},
		{"optional-bad-token", func() string { return e.rs256(map[string]any{"aud": "other"}) }, "/opt/x", 401, "deny", "audience_mismatch"},
		{"no-route", func() string { return "" }, "/nowhere", 404, "deny", "no_route"},
		{"path-rejected", func() string { return "" }, "/public/a%2fb", 400, "deny", "path_rejected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.backend.count()
			resp := e.do("GET", tc.path, tc.token(), nil)
			e.wantDecision(t, resp, before, tc.status, tc.decision, tc.reason)
		})
	}
}

// TestAllowForwardsIdentityAndExactPath: the backend receives the
// authorised path, the claim headers, X-Request-Id and X-Forwarded-*, and
// the record names the identity, key and token id.
func TestAllowForwardsIdentityAndExactPath(t *testing.T) {
	e := newEnv(t)
	resp := e.do("GET", "/api/orders/1?x=1", e.rs256(nil), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := e.backend.last(t)
	if got.RequestURI != "/api/orders/1?x=1" {
		t.Errorf("backend RequestURI = %q", got.RequestURI)
	}
	for h, want := range map[string]string{"X-User-Id": "alice", "X-Roles": "admin, ops", "X-User-Email": "alice@example.com", "X-Forwarded-For": "127.0.0.1"} {
		if v := got.Header.Get(h); v != want {
			t.Errorf("backend %s = %q, want %q", h, v, want)
		}
	}
	if got.Header.Get("X-Request-Id") == "" || got.Header.Get("X-Request-Id") != resp.Header.Get("X-Request-Id") && resp.Header.Get("X-Request-Id") != "" {
		t.Errorf("X-Request-Id %q", got.Header.Get("X-Request-Id"))
	}
	rec := e.lastRecord()
	for k, want := range map[string]string{"provider": "main", "iss": testIssuer, "sub": "alice", "kid": "rsa1", "alg": "RS256", "jti": "jti-1", "route": "api", "email": "alice@example.com"} {
		if rec[k] != want {
			t.Errorf("record %s = %v, want %s", k, rec[k], want)
		}
	}
	if tid, _ := rec["token_id"].(string); len(tid) != 16 {
		t.Errorf("token_id = %v", rec["token_id"])
	}
	if kt, _ := rec["key_thumbprint"].(string); len(kt) != 43 {
		t.Errorf("key_thumbprint = %v", rec["key_thumbprint"])
	}
	if rec["request_id"] != got.Header.Get("X-Request-Id") {
		t.Errorf("record request_id %v != forwarded %s", rec["request_id"], got.Header.Get("X-Request-Id"))
	}
}

// TestAlgNoneRejected: alg none in every spelling, with and without a
// signature, is refused before any key is looked up.
func TestAlgNoneRejected(t *testing.T) {
	e := newEnv(t)
	body := b64(mustJSON(t, claims(nil)))
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		for _, sig := range []string{"", b64([]byte("sig"))} {
			tok := b64([]byte(`{"alg":"`+alg+`","kid":"rsa1","typ":"JWT"}`)) + "." + body + "." + sig
			before := e.backend.count()
			resp := e.do("GET", "/api/x", tok, nil)
			rec := e.wantDecision(t, resp, before, 401, "deny", "algorithm_not_allowed")
			if rec["suspicious"] != true {
				t.Errorf("alg %s: record not suspicious", alg)
			}
		}
	}
}

// TestHS256WithRSAPublicKeyRejected: the classic key-confusion attack — an
// HS256 token whose HMAC key is the provider's RSA public key — is refused
// because HMAC is never allowed for a JWKS provider.
func TestHS256WithRSAPublicKeyRejected(t *testing.T) {
	e := newEnv(t)
	testKeys(t)
	pubPEM := []byte(jwkOf("rsa1", &rsaKey.PublicKey, "RS256")["n"].(string))
	for _, key := range [][]byte{pubPEM, rsaKey.PublicKey.N.Bytes()} {
		tok := sign(t, jwt.SigningMethodHS256, key, "rsa1", claims(nil))
		before := e.backend.count()
		e.wantDecision(t, e.do("GET", "/api/x", tok, nil), before, 401, "deny", "algorithm_not_allowed")
	}
}

// TestECDSAZeroSignatureRejected: CVE-2022-21449 ("psychic signatures"):
// an ES256 signature of r = s = 0 must never verify.
func TestECDSAZeroSignatureRejected(t *testing.T) {
	e := newEnv(t)
	good := sign(t, jwt.SigningMethodES256, ecKey, "ec1", claims(nil))
	parts := strings.Split(good, ".")
	tok := parts[0] + "." + parts[1] + "." + b64(make([]byte, 64))
	before := e.backend.count()
	e.wantDecision(t, e.do("GET", "/api/x", tok, nil), before, 401, "deny", "signature_invalid")
}

// TestStrippedSignatureRejected: a valid token with its signature removed
// (or truncated, or bit-flipped) is refused.
func TestStrippedSignatureRejected(t *testing.T) {
	e := newEnv(t)
	good := e.rs256(nil)
	i := strings.LastIndexByte(good, '.')
	flipped := []byte(good)
	flipped[len(flipped)-5] ^= 0x01
	for name, tok := range map[string]string{"stripped": good[:i+1], "truncated": good[:len(good)-10], "flipped": string(flipped)} {
		t.Run(name, func(t *testing.T) {
			before := e.backend.count()
			resp := e.do("GET", "/api/x", tok, nil)
			if resp.StatusCode != 401 || e.backend.count() != before {
				t.Fatalf("status %d, backend reached %v", resp.StatusCode, e.backend.count() != before)
			}
			if r := e.lastRecord()["reason"]; r != "signature_invalid" && r != "token_malformed" {
				t.Errorf("reason = %v", r)
			}
		})
	}
}

// TestJKUX5UJWKHeadersIgnored: key-injection headers (jku, x5u, jwk, x5c)
// naming an attacker's key never make the gateway fetch or use it.
func TestJKUX5UJWKHeadersIgnored(t *testing.T) {
	e := newEnv(t)
	attacker := newJWKSServer(t, jwkOf("evil", &rsaKey2.PublicKey, "RS256"))
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(nil))
	tok.Header["kid"] = "evil"
	tok.Header["jku"] = attacker.URL
	tok.Header["x5u"] = attacker.URL
	tok.Header["jwk"] = jwkOf("evil", &rsaKey2.PublicKey, "RS256")
	s, err := tok.SignedString(rsaKey2)
	if err != nil {
		t.Fatal(err)
	}
	before := e.backend.count()
	e.wantDecision(t, e.do("GET", "/api/x", s, nil), before, 401, "deny", "key_not_found")
	if n := attacker.fetches.Load(); n != 0 {
		t.Errorf("attacker's JWKS fetched %d times", n)
	}
}

// TestOversizedTokenRejected: a token over max_token_bytes is refused
// before it is decoded.
func TestOversizedTokenRejected(t *testing.T) {
	e := newEnv(t)
	tok := e.rs256(map[string]any{"pad": strings.Repeat("x", 9000)})
	before := e.backend.count()
	rec := e.wantDecision(t, e.do("GET", "/api/x", tok, nil), before, 401, "deny", "token_too_large")
	if rec["suspicious"] != true {
		t.Error("not suspicious")
	}
}

// TestUnknownKIDFloodBoundedFetches: many requests with unknown kids cause
// at most one JWKS refresh per unknown_kid_min_interval, and a known-kid
// request still passes.
func TestUnknownKIDFloodBoundedFetches(t *testing.T) {
	e := newEnv(t)
	base := e.jwks.fetches.Load()
	for i := 0; i < 50; i++ {
		tok := sign(t, jwt.SigningMethodRS256, rsaKey, "flood-"+string(rune('a'+i%26))+time.Now().Format("150405.000000"), claims(nil))
		if resp := e.do("GET", "/api/x", tok, nil); resp.StatusCode != 401 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := e.jwks.fetches.Load() - base; n > 1 {
		t.Errorf("unknown-kid flood caused %d JWKS fetches, want ≤ 1", n)
	}
	if resp := e.do("GET", "/api/x", e.rs256(nil), nil); resp.StatusCode != 200 {
		t.Errorf("known kid after flood: %d", resp.StatusCode)
	}
}

// TestSpoofedIdentityHeadersRemoved: a client's own X-User-Id (in any
// spelling) never reaches the backend, on protected and public routes,
// and marks the record suspicious.
func TestSpoofedIdentityHeadersRemoved(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/api/x", "/public/x", "/opt/x"} {
		for _, name := range []string{"X-User-Id", "x-user-id", "X_User_Id", "X-USER-ID", "X-Roles"} {
			tok := ""
			if path == "/api/x" {
				tok = e.rs256(nil)
			}
			resp := e.do("GET", path, tok, map[string]string{name: "root"})
			if resp.StatusCode != 200 {
				t.Fatalf("%s %s: status %d", path, name, resp.StatusCode)
			}
			got := e.backend.last(t)
			for k, vs := range got.Header {
				if normalizeHeaderName(k) == normalizeHeaderName(name) {
					for _, v := range vs {
						if v == "root" {
							t.Errorf("%s %s: spoofed value reached backend as %s", path, name, k)
						}
					}
				}
			}
			if e.lastRecord()["suspicious"] != true {
				t.Errorf("%s %s: record not suspicious", path, name)
			}
		}
	}
}

// TestConnectionHeaderCannotStripIdentityHeader: a client naming X-User-Id
// (or X-Request-Id) in Connection cannot make the gateway drop the header
// it sets.
func TestConnectionHeaderCannotStripIdentityHeader(t *testing.T) {
	e := newEnv(t)
	resp := e.do("GET", "/api/x", e.rs256(nil), map[string]string{"Connection": "X-User-Id, X-Request-Id, X-Forwarded-For"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := e.backend.last(t)
	for _, h := range []string{"X-User-Id", "X-Request-Id", "X-Forwarded-For"} {
		if got.Header.Get(h) == "" {
			t.Errorf("backend lacks %s", h)
		}
	}
}

// TestPathTraversalVariants: dot segments, encoded dots, doubled slashes and
// encoded slashes never let a request reach a backend as a path of a route
// whose checks it did not pass.
func TestPathTraversalVariants(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/public/../admin/x", "/public/%2e%2e/admin/x", "/public/%2E%2e/admin", "/public/.%2e/admin", "//admin/x", "/public/..%2fadmin", "/public/%252e%252e/admin", "/public/x/..;/admin", "/public\\..\\admin"} {
		t.Run(p, func(t *testing.T) {
			before := e.backend.count()
			resp := e.rawGet(p)
			if e.backend.count() > before {
				got := e.backend.last(t)
				if strings.HasPrefix(got.Path, "/admin") {
					t.Fatalf("backend received %q for %q without admin checks", got.Path, p)
				}
			}
			if resp != 400 && resp != 401 && resp != 404 {
				t.Errorf("status %d", resp)
			}
		})
	}
}
