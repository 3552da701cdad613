package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWWWAuthenticateChallenges pins SPEC §4's RFC 6750 challenges exactly:
// no token → a bare challenge with no error code; a bad token →
// error="invalid_token" with the fixed description; a failed scope
// requirement → 403 with error="insufficient_scope" and the missing scope.
func TestWWWAuthenticateChallenges(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name   string
		path   string
		token  string
		status int
		code   string
		exact  string   // exact WWW-Authenticate, when set
		parts  []string // substrings it must hold, when exact is unset
	}{
		{name: "missing-token", path: "/api/x", status: 401, code: "unauthorized",
			exact: `Bearer realm="jwtgate"`},
		{name: "malformed-token", path: "/api/x", token: "not-a-jwt", status: 401, code: "invalid_token",
			exact: `Bearer realm="jwtgate", error="invalid_token", error_description="the token is malformed"`},
		{name: "expired-token", path: "/api/x", token: e.rs256(map[string]any{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}), status: 401, code: "invalid_token",
			exact: `Bearer realm="jwtgate", error="invalid_token", error_description="the token has expired"`},
		{name: "scope-missing", path: "/api/x", token: e.rs256(map[string]any{"scope": "other"}), status: 403, code: "insufficient_scope",
			parts: []string{`Bearer realm="jwtgate", `, `error="insufficient_scope"`, `scope="api:read"`}},
		{name: "claim-requirement-no-scope-param", path: "/admin/x", token: e.rs256(map[string]any{"realm_access": map[string]any{"roles": []any{"user"}}}), status: 403, code: "insufficient_scope",
			parts: []string{`Bearer realm="jwtgate", `, `error="insufficient_scope"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.doBody("GET", tc.path, tc.token, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			vals := resp.Header.Values("WWW-Authenticate")
			if len(vals) != 1 {
				t.Fatalf("WWW-Authenticate = %q, want one value", vals)
			}
			got := vals[0]
			if tc.exact != "" && got != tc.exact {
				t.Errorf("WWW-Authenticate = %q\nwant              %q", got, tc.exact)
			}
			for _, p := range tc.parts {
				if !strings.Contains(got, p) {
					t.Errorf("WWW-Authenticate = %q lacks %q", got, p)
				}
			}
			if !strings.HasPrefix(got, `Bearer realm="jwtgate"`) {
				t.Errorf("WWW-Authenticate = %q does not start with the realm", got)
			}
			if tc.name == "claim-requirement-no-scope-param" && strings.Contains(got, "scope=") {
				t.Errorf("claim failure names a scope: %q", got)
			}
			if eb := readErrorBody(t, resp, body); eb.Error != tc.code {
				t.Errorf("error = %q, want %q", eb.Error, tc.code)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
		})
	}
}

// TestErrorAnswersNeverEchoInput pins SPEC §4 "descriptions never echo the
// token": a marker placed in the path, a header, the user agent and the
// token itself appears in no response header or body of any refusal.
func TestErrorAnswersNeverEchoInput(t *testing.T) {
	e := newEnv(t)
	const marker = "XSSMARKER7f3a"
	goodSig := e.rs256(nil)
	parts := strings.Split(goodSig, ".")
	markedGarbage := marker + "." + marker + "." + marker
	markedBadSig := parts[0] + "." + b64([]byte(`{"sub":"`+marker+`"}`)) + "." + parts[2]
	hdr := map[string]string{"X-Probe": marker, "User-Agent": marker, "Referer": "http://" + marker}
	cases := []struct {
		name   string
		method string
		path   string
		token  string
		status int
	}{
		{"missing-token", "GET", "/api/" + marker, "", 401},
		{"garbage-token", "GET", "/api/" + marker, markedGarbage, 401},
		{"forged-claims", "GET", "/api/" + marker, markedBadSig, 401},
		{"scope-missing", "GET", "/api/" + marker, e.rs256(map[string]any{"scope": marker}), 403},
		{"no-route", "GET", "/" + marker, "", 404},
		{"method-not-allowed", "DELETE", "/ro/" + marker, "", 405},
		{"path-rejected", "GET", "/public/" + marker + "%2f" + marker, "", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.doBody(tc.method, tc.path, tc.token, hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if strings.Contains(string(body), marker) {
				t.Errorf("body echoes input: %s", body)
			}
			if tc.token != "" && strings.Contains(string(body), tc.token) {
				t.Errorf("body echoes the token")
			}
			for k, vs := range resp.Header {
				for _, v := range vs {
					if strings.Contains(v, marker) || tc.token != "" && strings.Contains(v, tc.token) {
						t.Errorf("response header %s echoes input: %q", k, v)
					}
				}
			}
			readErrorBody(t, resp, body)
		})
	}
}

// TestUpstreamFailuresAnswer502And504 pins SPEC §4/§5: a dead upstream is
// 502 upstream_unreachable, a slow one (past upstream.timeout) 504
// upstream_timeout, answered promptly; the decision stays what the auth
// step decided (allow on an authenticated route, public on a public one).
func TestUpstreamFailuresAnswer502And504(t *testing.T) {
	e := newEnv(t)
	tok := e.rs256(nil)
	cases := []struct {
		name     string
		path     string
		token    string
		status   int
		code     string
		decision string
		reason   string
	}{
		{"dead-public", "/dead/x", "", 502, "bad_gateway", "public", "upstream_unreachable"},
		{"slow-authenticated", "/api/x?sleep=1s", tok, 504, "gateway_timeout", "allow", "upstream_timeout"},
		{"slow-public", "/slowpub/x?sleep=1s", "", 504, "gateway_timeout", "public", "upstream_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp, body := e.doBody("GET", tc.path, tc.token, nil)
			if el := time.Since(start); el > 900*time.Millisecond {
				t.Errorf("answered after %v; the 300ms timeout was not applied", el)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if eb := readErrorBody(t, resp, body); eb.Error != tc.code {
				t.Errorf("error = %q, want %q", eb.Error, tc.code)
			}
			rec := e.lastRecord()
			if rec["decision"] != tc.decision || rec["reason"] != tc.reason || rec["status"] != float64(tc.status) {
				t.Errorf("record decision=%v reason=%v status=%v, want %s %s %d", rec["decision"], rec["reason"], rec["status"], tc.decision, tc.reason, tc.status)
			}
			if tc.token != "" && rec["sub"] != "alice" {
				t.Errorf("record lost the identity: sub=%v", rec["sub"])
			}
			if _, ok := rec["suspicious"]; ok {
				t.Error("an upstream failure is marked suspicious")
			}
		})
	}
}

// TestGRPCDenialsUseGRPCStatus pins SPEC §4 for gRPC: a refused gRPC call
// gets HTTP 200 with grpc-status 16 (no token) or 7 (missing scope) and a
// grpc-message, never reaches the backend, and its record keeps the HTTP
// status (401/403) and adds grpc_status.
func TestGRPCDenialsUseGRPCStatus(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name        string
		ctype       string
		token       string
		recStatus   int
		grpcStatus  string
		reason      string
		grpcRecCode float64
	}{
		{"no-token", "application/grpc", "", 401, "16", "token_missing", 16},
		{"no-token-proto-subtype", "application/grpc+proto", "", 401, "16", "token_missing", 16},
		{"bad-token", "application/grpc", "a.b.c", 401, "16", "token_malformed", 16},
		{"scope-missing", "application/grpc", e.rs256(map[string]any{"scope": "other"}), 403, "7", "scope_missing", 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.backend.count()
			resp := e.do("POST", "/api/pkg.Service/Method", tc.token, map[string]string{"Content-Type": tc.ctype, "Te": "trailers"})
			if resp.StatusCode != 200 {
				t.Errorf("HTTP status %d, want 200", resp.StatusCode)
			}
			if gs := resp.Header.Get("Grpc-Status"); gs != tc.grpcStatus {
				t.Errorf("grpc-status = %q, want %s", gs, tc.grpcStatus)
			}
			if resp.Header.Get("Grpc-Message") == "" {
				t.Error("no grpc-message")
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/grpc") {
				t.Errorf("Content-Type = %q", ct)
			}
			if e.backend.count() != before {
				t.Error("refused gRPC call reached the backend")
			}
			rec := e.lastRecord()
			if rec["status"] != float64(tc.recStatus) || rec["grpc_status"] != tc.grpcRecCode || rec["reason"] != tc.reason {
				t.Errorf("record status=%v grpc_status=%v reason=%v, want %d %v %s", rec["status"], rec["grpc_status"], rec["reason"], tc.recStatus, tc.grpcRecCode, tc.reason)
			}
		})
	}
	// An allowed gRPC call is forwarded and its record has no grpc_status.
	resp := e.do("POST", "/api/pkg.Service/Method", e.rs256(nil), map[string]string{"Content-Type": "application/grpc"})
	if resp.StatusCode != 200 {
		t.Fatalf("allowed gRPC status %d", resp.StatusCode)
	}
	if _, ok := e.lastRecord()["grpc_status"]; ok {
		t.Error("forwarded gRPC call has a gateway grpc_status")
	}
	if resp.Header.Get("Grpc-Status") != "" {
		t.Error("gateway added grpc-status to a forwarded answer")
	}
}

// TestNonGRPCContentTypeGetsJSON: a content type that merely contains
// "grpc" (text/grpc) is not gRPC: the client gets the plain JSON answer,
// not an HTTP 200 it could mistake for success.
func TestNonGRPCContentTypeGetsJSON(t *testing.T) {
	e := newEnv(t)
	resp, body := e.doBody("POST", "/api/x", "", map[string]string{"Content-Type": "text/grpc"})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
	readErrorBody(t, resp, body)
}
