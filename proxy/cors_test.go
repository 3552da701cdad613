package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// preflightHeaders are the headers a browser sends on a CORS preflight.
var preflightHeaders = map[string]string{
	"Origin":                         "https://app.example",
	"Access-Control-Request-Method":  "DELETE",
	"Access-Control-Request-Headers": "authorization, content-type",
}

// withHeaders returns preflightHeaders plus extra; an extra value of "-"
// removes the header.
func withHeaders(extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range preflightHeaders {
		out[k] = v
	}
	for k, v := range extra {
		if v == "-" {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// h2Gateway serves e's handler over TLS with HTTP/2 and returns its base
// URL and a client that speaks HTTP/2 to it.
func h2Gateway(t *testing.T, e *env) (string, *http.Client) {
	t.Helper()
	srv := httptest.NewUnstartedServer(e.handler)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, srv.Client()
}

// send makes one request without a token through client to base+path.
func send(t *testing.T, client *http.Client, method, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestCORSPreflightCheckedByDefault pins issue 5 item 3 (CORS preflight on
// protected routes), default policy check: a preflight is a request like
// any other, so on a required route it needs a token; without one it gets
// 401 and never reaches the backend.
func TestCORSPreflightCheckedByDefault(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/api/x", "/admin/x", "/svc/x"} {
		t.Run(path[1:len(path)-2], func(t *testing.T) {
			before := e.backend.count()
			resp := e.do(http.MethodOptions, path, "", preflightHeaders)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("OPTIONS %s: status %d, want 401", path, resp.StatusCode)
			}
			if n := e.backend.count(); n != before {
				t.Errorf("OPTIONS %s reached the backend", path)
			}
			rec := e.lastRecord()
			if rec["decision"] != "deny" || rec["reason"] != "token_missing" || rec["method"] != http.MethodOptions {
				t.Errorf("record decision=%v reason=%v method=%v, want deny token_missing OPTIONS", rec["decision"], rec["reason"], rec["method"])
			}
		})
	}
}

// TestCORSPreflightPassForwardsWithoutToken pins cors_preflight: pass
// (Envoy's bypass_cors_preflight): a browser's preflight, which never
// carries credentials, reaches the upstream unchecked over HTTP/1.1 and
// HTTP/2, with its CORS headers and without any identity header, and is
// recorded as anonymous with no reason.
func TestCORSPreflightPassForwardsWithoutToken(t *testing.T) {
	e := newEnv(t)
	h2URL, h2Client := h2Gateway(t, e)
	tests := []struct {
		name   string
		base   string
		client *http.Client
		proto  int
	}{
		{"http1", e.gw.URL, e.client, 1},
		{"http2", h2URL, h2Client, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.backend.count()
			resp := send(t, tc.client, http.MethodOptions, tc.base+"/cors/x", preflightHeaders)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200 from the backend", resp.StatusCode)
			}
			if resp.ProtoMajor != tc.proto {
				t.Fatalf("answered over HTTP/%d, want HTTP/%d", resp.ProtoMajor, tc.proto)
			}
			if n := e.backend.count(); n != before+1 {
				t.Fatalf("backend received %d requests, want 1", n-before)
			}
			got := e.backend.last(t)
			if got.Method != http.MethodOptions || got.Path != "/cors/x" {
				t.Errorf("backend saw %s %s, want OPTIONS /cors/x", got.Method, got.Path)
			}
			for k, v := range preflightHeaders {
				if got.Header.Get(k) != v {
					t.Errorf("backend %s = %q, want %q", k, got.Header.Get(k), v)
				}
			}
			for _, h := range []string{"X-User-Id", "X-Roles", "X-User-Email", "Authorization"} {
				if v, ok := got.Header[h]; ok {
					t.Errorf("backend received %s: %q on an unchecked preflight", h, v)
				}
			}
			rec := e.lastRecord()
			if rec["decision"] != "anonymous" || rec["route"] != "cors" || rec["status"] != float64(200) {
				t.Errorf("record decision=%v route=%v status=%v, want anonymous cors 200", rec["decision"], rec["route"], rec["status"])
			}
			for _, k := range []string{"reason", "suspicious", "sub", "token_id"} {
				if v, ok := rec[k]; ok {
					t.Errorf("record %s = %v, want none", k, v)
				}
			}
		})
	}
}

// TestCORSPassDoesNotExemptOtherRequests pins that cors_preflight: pass
// exempts only a real, tokenless preflight: the exact rule is method
// OPTIONS with non-empty Origin and Access-Control-Request-Method. Every
// other request on the route, CORS headers or not, needs a valid token, and
// a preflight that does carry a token (no browser sends one) is checked.
func TestCORSPassDoesNotExemptOtherRequests(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		method   string
		token    string
		hdr      map[string]string
		status   int
		decision string
		reason   string
	}{
		{"get-without-token", http.MethodGet, "", nil, 401, "deny", "token_missing"},
		{"get-with-cors-headers", http.MethodGet, "", preflightHeaders, 401, "deny", "token_missing"},
		{"post-with-cors-headers", http.MethodPost, "", preflightHeaders, 401, "deny", "token_missing"},
		{"delete-with-cors-headers", http.MethodDelete, "", preflightHeaders, 401, "deny", "token_missing"},
		{"options-without-origin", http.MethodOptions, "", withHeaders(map[string]string{"Origin": "-"}), 401, "deny", "token_missing"},
		{"options-without-request-method", http.MethodOptions, "", withHeaders(map[string]string{"Access-Control-Request-Method": "-"}), 401, "deny", "token_missing"},
		{"options-empty-origin", http.MethodOptions, "", withHeaders(map[string]string{"Origin": ""}), 401, "deny", "token_missing"},
		{"options-empty-request-method", http.MethodOptions, "", withHeaders(map[string]string{"Access-Control-Request-Method": ""}), 401, "deny", "token_missing"},
		{"options-no-cors-headers", http.MethodOptions, "", nil, 401, "deny", "token_missing"},
		{"lowercase-options-method", "options", "", preflightHeaders, 401, "deny", "token_missing"},
		{"preflight-with-forged-token", http.MethodOptions, "not.a.jwt", preflightHeaders, 401, "deny", "token_malformed"},
		{"preflight-with-expired-token", http.MethodOptions, e.rs256(map[string]any{"iat": int64(1), "exp": int64(2)}), preflightHeaders, 401, "deny", "token_expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.backend.count()
			resp := e.do(tc.method, "/cors/x", tc.token, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s /cors/x: status %d, want %d", tc.method, resp.StatusCode, tc.status)
			}
			if n := e.backend.count(); n != before {
				t.Errorf("%s /cors/x reached the backend without a valid token", tc.method)
			}
			rec := e.lastRecord()
			if rec["decision"] != tc.decision || rec["reason"] != tc.reason {
				t.Errorf("record decision=%v reason=%v, want %s %s", rec["decision"], rec["reason"], tc.decision, tc.reason)
			}
		})
	}

	// A preflight with a valid token is checked, not passed: it is
	// allowed as the token's subject, with the identity headers set.
	resp := e.do(http.MethodOptions, "/cors/x", e.rs256(nil), preflightHeaders)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("preflight with a valid token: status %d, want 200", resp.StatusCode)
	}
	if got := e.backend.last(t).Header.Get("X-User-Id"); got != "alice" {
		t.Errorf("preflight with a valid token: backend X-User-Id = %q, want alice", got)
	}
	if rec := e.lastRecord(); rec["decision"] != "allow" || rec["sub"] != "alice" {
		t.Errorf("preflight with a valid token: record decision=%v sub=%v, want allow alice", rec["decision"], rec["sub"])
	}
}

// TestCORSPreflightSpoofedIdentityStillRemoved pins that a passed preflight
// is still scrubbed: a client copy of an identity header, in any spelling,
// never reaches the backend, and the record is marked suspicious.
func TestCORSPreflightSpoofedIdentityStillRemoved(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"X-User-Id", "x-user-id", "X_User_Id", "X-USER-ID", "X-Roles", "X-User-Email"} {
		t.Run(name, func(t *testing.T) {
			resp := e.do(http.MethodOptions, "/cors/x", "", withHeaders(map[string]string{name: "root"}))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200 (preflight passed)", resp.StatusCode)
			}
			got := e.backend.last(t)
			if got.Method != http.MethodOptions {
				t.Fatalf("backend last saw %s, want the OPTIONS preflight", got.Method)
			}
			for k, vs := range got.Header {
				if normalizeHeaderName(k) != normalizeHeaderName(name) {
					continue
				}
				for _, v := range vs {
					if v == "root" {
						t.Errorf("spoofed %s reached the backend as %s", name, k)
					}
				}
			}
			rec := e.lastRecord()
			if rec["suspicious"] != true || rec["decision"] != "anonymous" {
				t.Errorf("record suspicious=%v decision=%v, want true anonymous", rec["suspicious"], rec["decision"])
			}
		})
	}
}
