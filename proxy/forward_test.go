package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestStripTokenRemovesTokenFromEverySource pins SPEC §2 forward.strip_token:
// the token is removed from wherever it was found — the Authorization
// header, the cookie (other cookies kept) or the query (other parameters
// kept) — and no trace of it reaches the backend.
func TestStripTokenRemovesTokenFromEverySource(t *testing.T) {
	e := newEnv(t)
	tok := e.rs256(nil)
	cases := []struct {
		name      string
		path      string
		hdr       map[string]string
		wantQuery url.Values
		wantCook  map[string]string
		// Exact forms, when set: the rest is passed unchanged.
		wantRawQuery, wantCookieHdr string
	}{
		{name: "authorization-header", path: "/strip/x?page=2", hdr: map[string]string{"Authorization": "Bearer " + tok},
			wantQuery: url.Values{"page": {"2"}}},
		{name: "cookie-others-kept", path: "/strip/x", hdr: map[string]string{"Cookie": "theme=dark; access_token=" + tok + "; lang=en"},
			wantCook: map[string]string{"theme": "dark", "lang": "en"}},
		{name: "query-others-kept", path: "/strip/x?page=2&access_token=" + tok + "&sort=asc",
			wantQuery: url.Values{"page": {"2"}, "sort": {"asc"}}},
		{name: "query-others-byte-for-byte", path: "/strip/x?z=1&access_token=" + tok + "&a=b%20c+d&flag&access_token=" + tok,
			wantRawQuery: "z=1&a=b%20c+d&flag", wantQuery: url.Values{"z": {"1"}, "a": {"b c d"}, "flag": {""}}},
		{name: "cookie-others-byte-for-byte", path: "/strip/x", hdr: map[string]string{"Cookie": `b="q v"; access_token=` + tok + `;a=1; w=x\y; @n=1`},
			wantCookieHdr: `b="q v"; a=1; w=x\y; @n=1`, wantCook: map[string]string{"b": "q v", "a": "1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.backend.count()
			resp := e.do("GET", tc.path, "", tc.hdr)
			e.wantDecision(t, resp, before, 200, "allow", "")
			got := e.backend.last(t)
			if strings.Contains(got.RequestURI, tok) {
				t.Errorf("token reached backend in request URI %q", got.RequestURI)
			}
			for k, vs := range got.Header {
				for _, v := range vs {
					if strings.Contains(v, tok) {
						t.Errorf("token reached backend in header %s", k)
					}
				}
			}
			if _, ok := got.Header["Authorization"]; ok {
				t.Errorf("backend received Authorization %q", got.Header.Get("Authorization"))
			}
			u, err := url.ParseRequestURI(got.RequestURI)
			if err != nil {
				t.Fatalf("backend RequestURI %q: %v", got.RequestURI, err)
			}
			if u.Path != "/strip/x" {
				t.Errorf("backend path = %q, want /strip/x", u.Path)
			}
			if q := u.Query(); len(q) != len(tc.wantQuery) {
				t.Errorf("backend query = %v, want %v", q, tc.wantQuery)
			} else {
				for k, v := range tc.wantQuery {
					if q.Get(k) != v[0] {
						t.Errorf("backend query %s = %q, want %q", k, q.Get(k), v[0])
					}
				}
			}
			if tc.wantRawQuery != "" && u.RawQuery != tc.wantRawQuery {
				t.Errorf("backend raw query = %q, want %q", u.RawQuery, tc.wantRawQuery)
			}
			if tc.wantCookieHdr != "" && got.Header.Get("Cookie") != tc.wantCookieHdr {
				t.Errorf("backend Cookie = %q, want %q", got.Header.Get("Cookie"), tc.wantCookieHdr)
			}
			r := &http.Request{Header: got.Header}
			cookies := r.Cookies()
			if len(cookies) != len(tc.wantCook) {
				t.Errorf("backend cookies = %v, want %v", cookies, tc.wantCook)
			}
			for _, c := range cookies {
				if tc.wantCook[c.Name] != c.Value {
					t.Errorf("backend cookie %s=%q unexpected", c.Name, c.Value)
				}
			}
		})
	}
}

// TestAuthorizationForwardedWithoutStripToken: without strip_token the
// Authorization header is not hop-by-hop and reaches the backend as sent.
func TestAuthorizationForwardedWithoutStripToken(t *testing.T) {
	e := newEnv(t)
	tok := e.rs256(nil)
	if resp := e.do("GET", "/api/x", tok, nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := e.backend.last(t).Header.Get("Authorization"); got != "Bearer "+tok {
		t.Errorf("backend Authorization = %q, want the client's", got)
	}
}

// TestStripPrefixForwardsRemainder pins upstream.strip_prefix: the matched
// prefix is removed (the bare prefix becomes "/"), the upstream URL's own
// base path is kept in front, the query passes unchanged, and the token
// check still runs on the stripped route.
func TestStripPrefixForwardsRemainder(t *testing.T) {
	e := newEnv(t)
	tok := e.rs256(nil)
	cases := []struct {
		name, path, token, want string
	}{
		{"nested-path-and-query", "/svc/orders/1?x=1&y=2", tok, "/orders/1?x=1&y=2"},
		{"bare-prefix", "/svc", tok, "/"},
		{"prefix-with-slash", "/svc/", tok, "/"},
		{"escaped-byte-kept", "/svc/a%20b", tok, "/a%20b"},
		{"upstream-base-path", "/based/a/b?q=1", "", "/base/a/b?q=1"},
		{"upstream-base-bare", "/based", "", "/base/"}, // as httputil.NewSingleHostReverseProxy joins
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do("GET", tc.path, tc.token, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := e.backend.last(t).RequestURI; got != tc.want {
				t.Errorf("backend RequestURI = %q, want %q", got, tc.want)
			}
		})
	}
	before := e.backend.count()
	e.wantDecision(t, e.do("GET", "/svc/orders", "", nil), before, 401, "deny", "token_missing")
}

// TestUntrustedForwardingHeadersReplaced pins SPEC §3.8/§5: from a client
// that is not a trusted proxy, X-Forwarded-For/-Host/-Proto and
// X-Request-Id are replaced with the gateway's own values, Forwarded and
// X-Real-IP never reach the backend, client_ip is the peer, and none of
// this is suspicious on its own.
func TestUntrustedForwardingHeadersReplaced(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/public/x", "/api/x"} {
		t.Run(strings.Trim(path, "/"), func(t *testing.T) {
			tok := ""
			if path == "/api/x" {
				tok = e.rs256(nil)
			}
			resp := e.do("GET", path, tok, map[string]string{
				"X-Forwarded-For":   "1.2.3.4, 10.9.0.1",
				"X-Forwarded-Host":  "evil.example",
				"X-Forwarded-Proto": "https",
				"Forwarded":         "for=1.2.3.4;proto=https",
				"X-Real-IP":         "1.2.3.4",
				"X-Request-Id":      "attacker-chosen-id",
			})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			got := e.backend.last(t)
			rec := e.lastRecord()
			want := map[string]string{
				"X-Forwarded-For":   "127.0.0.1",
				"X-Forwarded-Host":  strings.TrimPrefix(e.gw.URL, "http://"),
				"X-Forwarded-Proto": "http",
				"X-Request-Id":      rec["request_id"].(string),
			}
			for h, w := range want {
				if vs := got.Header.Values(h); len(vs) != 1 || vs[0] != w {
					t.Errorf("backend %s = %q, want [%q]", h, vs, w)
				}
			}
			for _, h := range []string{"Forwarded", "X-Real-Ip"} {
				if v, ok := got.Header[h]; ok {
					t.Errorf("backend received client %s %q", h, v)
				}
			}
			if rec["request_id"] == "attacker-chosen-id" {
				t.Error("record kept the untrusted client's request id")
			}
			if rec["client_ip"] != "127.0.0.1" {
				t.Errorf("client_ip = %v, want 127.0.0.1", rec["client_ip"])
			}
			if _, ok := rec["suspicious"]; ok {
				t.Error("forwarding headers alone marked the record suspicious")
			}
		})
	}
}

// TestTrustedProxyChainKept pins SPEC §3.8 for a peer inside
// trusted_proxies: its X-Forwarded-For chain is kept with the peer
// appended, client_ip is the right-most address that is not itself
// trusted (a client cannot choose it by prepending), its X-Request-Id is
// kept only when it is a plain token, and X-Forwarded-Proto is believed.
func TestTrustedProxyChainKept(t *testing.T) {
	e := newEnv(t)
	const peer = "10.9.0.5"
	cases := []struct {
		name       string
		xff        []string
		reqID      string
		wantXFF    string
		wantClient string
		keepID     bool
	}{
		{"single-client", []string{"203.0.113.7"}, "abc-123_x.y:z", "203.0.113.7, " + peer, "203.0.113.7", true},
		{"inner-trusted-hop-skipped", []string{"203.0.113.7, 10.9.3.3"}, "req-1", "203.0.113.7, 10.9.3.3, " + peer, "203.0.113.7", true},
		{"client-prepended-spoof", []string{"1.1.1.1, 198.51.100.9"}, "", "1.1.1.1, 198.51.100.9, " + peer, "198.51.100.9", false},
		{"several-header-lines", []string{"198.51.100.1", "203.0.113.8"}, "", "198.51.100.1, 203.0.113.8, " + peer, "203.0.113.8", false},
		{"ipv4-mapped-ipv6", []string{"::ffff:203.0.113.9"}, "", "::ffff:203.0.113.9, " + peer, "203.0.113.9", false},
		{"garbage-right-most-falls-back-to-peer", []string{"203.0.113.7, not-an-ip"}, "", "203.0.113.7, not-an-ip, " + peer, peer, false},
		{"request-id-with-quote-replaced", []string{"203.0.113.7"}, `bad"id{`, "203.0.113.7, " + peer, "203.0.113.7", false},
		{"request-id-with-space-replaced", []string{"203.0.113.7"}, "bad id", "203.0.113.7, " + peer, "203.0.113.7", false},
		{"request-id-too-long-replaced", []string{"203.0.113.7"}, strings.Repeat("a", 129), "203.0.113.7, " + peer, "203.0.113.7", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptestRequest(t, "GET", "http://gw.test/public/x")
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if tc.reqID != "" {
				req.Header.Set("X-Request-Id", tc.reqID)
			}
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("Forwarded", "for=6.6.6.6")
			req.Header.Set("X-Real-IP", "6.6.6.6")
			w := e.serveFrom(peer+":4444", req)
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			got := e.backend.last(t)
			if vs := got.Header.Values("X-Forwarded-For"); len(vs) != 1 || vs[0] != tc.wantXFF {
				t.Errorf("backend X-Forwarded-For = %q, want %q", vs, tc.wantXFF)
			}
			if p := got.Header.Get("X-Forwarded-Proto"); p != "https" {
				t.Errorf("backend X-Forwarded-Proto = %q, want the trusted proxy's https", p)
			}
			for _, h := range []string{"Forwarded", "X-Real-Ip"} {
				if _, ok := got.Header[h]; ok {
					t.Errorf("backend received %s", h)
				}
			}
			rec := e.lastRecord()
			if rec["client_ip"] != tc.wantClient {
				t.Errorf("client_ip = %v, want %s", rec["client_ip"], tc.wantClient)
			}
			id := got.Header.Get("X-Request-Id")
			if id != rec["request_id"] {
				t.Errorf("backend X-Request-Id %q != record %v", id, rec["request_id"])
			}
			if kept := id == tc.reqID; kept != tc.keepID {
				t.Errorf("request id kept = %v, want %v (got %q)", kept, tc.keepID, id)
			}
		})
	}
}

// TestUntrustedPeerCannotUseTrustedHeaders: the same headers from a peer
// outside trusted_proxies (a public address) are replaced, not believed.
func TestUntrustedPeerCannotUseTrustedHeaders(t *testing.T) {
	e := newEnv(t)
	req := httptestRequest(t, "GET", "http://gw.test/public/x")
	req.Header.Set("X-Forwarded-For", "10.9.0.7")
	req.Header.Set("X-Request-Id", "plain-token-id")
	req.Header.Set("X-Forwarded-Proto", "https")
	if w := e.serveFrom("198.51.100.20:5555", req); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	got := e.backend.last(t)
	rec := e.lastRecord()
	if xff := got.Header.Get("X-Forwarded-For"); xff != "198.51.100.20" {
		t.Errorf("backend X-Forwarded-For = %q, want the peer only", xff)
	}
	if rec["client_ip"] != "198.51.100.20" {
		t.Errorf("client_ip = %v", rec["client_ip"])
	}
	if got.Header.Get("X-Request-Id") == "plain-token-id" || rec["request_id"] == "plain-token-id" {
		t.Error("untrusted X-Request-Id kept")
	}
	if p := got.Header.Get("X-Forwarded-Proto"); p != "http" {
		t.Errorf("backend X-Forwarded-Proto = %q, want http", p)
	}
}

// errorBody is SPEC §4's JSON error body.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	RequestID        string `json:"request_id"`
}

// readErrorBody checks the SPEC §4 body shape strictly (exactly three
// non-empty string fields, application/json) and returns it.
func readErrorBody(t *testing.T, resp *http.Response, body []byte) errorBody {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	if len(m) != 3 {
		t.Errorf("body has fields %v, want error, error_description, request_id", m)
	}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatal(err)
	}
	if eb.Error == "" || eb.ErrorDescription == "" || eb.RequestID == "" {
		t.Errorf("body %q lacks a field", body)
	}
	return eb
}

// doBody is e.do that also returns the body.
func (e *env) doBody(method, path, token string, hdr map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	req := httptestRequest(e.t, method, e.gw.URL+path)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	return resp, b
}

func httptestRequest(t testing.TB, method, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	return req
}

// TestMethodNotAllowedHasAllow pins SPEC §2/§4: a path whose only routes
// are for other methods gets 405 with Allow listing them and the JSON
// body, and is never forwarded.
func TestMethodNotAllowedHasAllow(t *testing.T) {
	e := newEnv(t)
	for _, m := range []string{"POST", "DELETE", "PUT"} {
		t.Run(m, func(t *testing.T) {
			before := e.backend.count()
			resp, body := e.doBody(m, "/ro/x", "", nil)
			e.wantDecision(t, resp, before, 405, "deny", "method_not_allowed")
			if a := resp.Header.Get("Allow"); a != "GET, HEAD" {
				t.Errorf("Allow = %q, want \"GET, HEAD\"", a)
			}
			if eb := readErrorBody(t, resp, body); eb.Error != "method_not_allowed" {
				t.Errorf("error = %q", eb.Error)
			}
		})
	}
	before := e.backend.count()
	e.wantDecision(t, e.do("GET", "/ro/x", "", nil), before, 200, "public", "")
}

// TestNotFoundJSONBody pins SPEC §4: no route → 404 with exactly
// {"error","error_description","request_id"} as application/json, whose
// request_id is the record's.
func TestNotFoundJSONBody(t *testing.T) {
	e := newEnv(t)
	before := e.backend.count()
	resp, body := e.doBody("GET", "/nowhere/at/all", "", nil)
	rec := e.wantDecision(t, resp, before, 404, "deny", "no_route")
	eb := readErrorBody(t, resp, body)
	if eb.Error != "not_found" {
		t.Errorf("error = %q, want not_found", eb.Error)
	}
	if eb.RequestID != rec["request_id"] {
		t.Errorf("body request_id %q != record %v", eb.RequestID, rec["request_id"])
	}
	if resp.Header.Get("WWW-Authenticate") != "" {
		t.Error("404 carries a bearer challenge")
	}
}
