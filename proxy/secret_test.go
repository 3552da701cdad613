package proxy

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestNoRawTokenInOutput pins SPEC §5 "no raw token, secret, or
// Authorization/Cookie value is ever written to any log": after a batch of
// valid, expired, tampered, oversized, malformed and cookie/query tokens
// on every kind of route, neither the audit trail nor the operational log
// holds any raw token, any token's signature, the HMAC secret (raw or
// base64), or any Authorization or Cookie value sent.
func TestNoRawTokenInOutput(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	hmacTok := sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), "h1", claims(map[string]any{"iss": "https://hmac.test/"}))
	tokens := map[string]string{
		"valid":         e.rs256(nil),
		"valid-es256":   sign(t, jwt.SigningMethodES256, ecKey, "ec1", claims(nil)),
		"expired":       e.rs256(map[string]any{"exp": now.Add(-time.Hour).Unix(), "iat": now.Add(-2 * time.Hour).Unix()}),
		"tampered":      sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa1", claims(nil)),
		"unknown-kid":   sign(t, jwt.SigningMethodRS256, rsaKey, "kid-unknown", claims(nil)),
		"wrong-aud":     e.rs256(map[string]any{"aud": "other"}),
		"scope-missing": e.rs256(map[string]any{"scope": "none"}),
		"hmac":          hmacTok,
		"hmac-forged":   sign(t, jwt.SigningMethodHS256, []byte("not-the-secret-not-the-secret-xx"), "h1", claims(map[string]any{"iss": "https://hmac.test/"})),
		"oversized":     e.rs256(map[string]any{"pad": strings.Repeat("p", 9000)}),
		"malformed":     "eyJhbGciOiJSUzI1NiJ9.not-base64!.c2ln",
		"four-parts":    "aaaa.bbbb.cccc.dddd",
	}
	var sentAuth, sentCookies []string
	paths := []string{"/api/x", "/opt/x", "/dry/x", "/strip/x", "/hmac/x", "/admin/x"}
	for _, tok := range tokens {
		for _, p := range paths {
			auth := "Bearer " + tok
			sentAuth = append(sentAuth, auth)
			e.do("GET", p, "", map[string]string{"Authorization": auth})
			cookie := "theme=dark; access_token=" + tok
			sentCookies = append(sentCookies, cookie)
			e.do("GET", p, "", map[string]string{"Cookie": cookie})
			e.do("GET", p+"?access_token="+tok+"&x=1", "", nil)
		}
	}
	// Several Authorization headers (ambiguous) and a gRPC call.
	e.do("GET", "/api/x", "", map[string]string{"Authorization": "Bearer " + tokens["valid"], "Content-Type": "application/grpc"})
	records := e.records()
	if len(records) < len(tokens)*len(paths)*3 {
		t.Fatalf("only %d records", len(records))
	}
	if !strings.Contains(e.logs.String(), "token refused") {
		t.Fatal("operational log holds no refusals; the scan would prove nothing")
	}
	sources := map[string]string{"audit": e.out.String(), "operational log": e.logs.String()}
	secrets := map[string]string{
		"hmac secret":        hmacSecret,
		"hmac secret base64": base64.StdEncoding.EncodeToString([]byte(hmacSecret)),
	}
	for name, tok := range tokens {
		secrets["token "+name] = tok
		if i := strings.LastIndexByte(tok, '.'); i > 0 && len(tok)-i > 8 {
			secrets["signature of "+name] = tok[i+1:]
		}
		if i := strings.IndexByte(tok, '.'); i > 0 && strings.Count(tok, ".") == 2 && len(tok)-i > 8 {
			j := strings.LastIndexByte(tok, '.')
			if j > i+1 {
				secrets["payload of "+name] = tok[i+1 : j]
			}
		}
	}
	for i, a := range sentAuth {
		secrets["authorization value "+string(rune('a'+i%26))] = a
	}
	for i, c := range sentCookies {
		secrets["cookie value "+string(rune('a'+i%26))] = c
	}
	for where, text := range sources {
		for what, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains the %s", where, what)
			}
		}
	}
}

// TestClaimValueLogInjection pins SPEC §5 "values from requests and claims
// are written as JSON strings (no log injection)": a claim, a path and a
// user agent holding a newline and a forged JSON record still give exactly
// one valid JSON object per line, one per request, and no forged event.
func TestClaimValueLogInjection(t *testing.T) {
	e := newEnv(t)
	const inject = "x\n{\"event\":\"forged\",\"decision\":\"allow\"}\r\n\u2028"
	// sub and jti are identity claims: control characters in them are
	// refused (TestUnsafeTextInIdentityClaimsRejected); email is not.
	tok := e.rs256(map[string]any{"email": inject})
	requests := []struct {
		path  string
		token string
		hdr   map[string]string
	}{
		{"/api/x", tok, nil},
		{"/dry/x", tok, nil},
		{"/api/x", e.rs256(map[string]any{"sub": inject, "aud": "other"}), nil},
		{"/public/%0a%7B%22event%22:%22forged%22%7D", "", map[string]string{"User-Agent": "ua\t{\"event\":\"forged\"}"}},
		{"/api/x", sign(t, jwt.SigningMethodRS256, rsaKey, "kid\n{\"event\":\"forged\"}", claims(nil)), nil},
	}
	for _, r := range requests {
		e.do("GET", r.path, r.token, r.hdr)
	}
	if err := e.writer.Flush(); err != nil {
		t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(e.out.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("audit line is not one JSON object: %q: %v", sc.Text(), err)
		}
		if dec.More() {
			t.Errorf("audit line holds more than one JSON value: %q", sc.Text())
		}
		if m["event"] == "forged" {
			t.Errorf("forged record: %q", sc.Text())
		}
		if m["event"] == "request" {
			n++
		}
	}
	if n != len(requests) {
		t.Errorf("%d request records for %d requests", n, len(requests))
	}
	recs := e.requestRecords()
	if recs[0]["email"] != inject {
		t.Errorf("claim value not kept verbatim as a JSON string: %q", recs[0]["email"])
	}
	for _, line := range strings.Split(strings.TrimRight(e.logs.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("operational log line is not JSON: %q", line)
		}
	}
}
