package proxy

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// gwAddr is the gateway's listen address.
func (e *env) gwAddr() string { return e.gw.Listener.Addr().String() }

// statusLines returns the status codes of every response in raw, in order.
func statusLines(t *testing.T, raw string) []int {
	t.Helper()
	var codes []int
	br := bufio.NewReader(strings.NewReader(raw))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return codes
		}
		codes = append(codes, resp.StatusCode)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// pathsWithPrefix returns the backend requests whose path starts with prefix.
func (b *backend) pathsWithPrefix(prefix string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, r := range b.reqs {
		if strings.HasPrefix(r.Path, prefix) {
			out = append(out, r.Method+" "+r.RequestURI)
		}
	}
	return out
}

// TestRequestSmugglingFramingRefused pins issue 5 item 3: request framings
// that let two parsers disagree — two different Content-Lengths,
// Content-Length with Transfer-Encoding, unknown or doubled
// Transfer-Encodings, a negative length — are either refused outright
// (4xx/501, nothing forwarded) or resolved by the gateway itself, which
// re-frames what it forwards: a request hidden in the body is then parsed
// by the gateway as a request of its own and meets the same checks, so the
// smuggled, unauthenticated GET /admin never reaches the backend.
func TestRequestSmugglingFramingRefused(t *testing.T) {
	e := newEnv(t)
	const smuggled = "GET /admin/secret HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n"
	cases := []struct {
		name    string
		payload string
		refused bool // the whole connection is refused with no request forwarded
	}{
		{"duplicate-content-length", "POST /public/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nContent-Length: 53\r\n\r\nhello" + smuggled, true},
		{"content-length-list", "POST /public/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5, 53\r\n\r\nhello" + smuggled, true},
		{"negative-content-length", "POST /public/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: -1\r\n\r\n" + smuggled, true},
		{"te-chunked-then-identity", "POST /public/x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + smuggled, true},
		{"te-unknown-coding", "POST /public/x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled, true},
		{"duplicate-host", "GET /public/x HTTP/1.1\r\nHost: gw.test\r\nHost: other.test\r\nConnection: close\r\n\r\n", true},
		{"cl-and-te-chunked", "POST /public/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, false},
		{"te-chunked-cl-covers-smuggled", "POST /public/x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 58\r\n\r\n0\r\n\r\n" + smuggled, false},
		{"te-obs-folded", "POST /public/x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 58\r\n\r\n0\r\n\r\n" + smuggled, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.backend.count()
			recsBefore := len(e.requestRecords())
			out := e.sendRaw(e.gwAddr(), tc.payload)
			codes := statusLines(t, out)
			if len(codes) == 0 {
				t.Fatalf("no response: %q", out)
			}
			if got := e.backend.pathsWithPrefix("/admin"); len(got) > 0 {
				t.Fatalf("smuggled request reached the backend: %v", got)
			}
			if tc.refused {
				if codes[0] < 400 || codes[0] >= 600 {
					t.Errorf("status %d, want a refusal", codes[0])
				}
				if n := e.backend.count() - before; n != 0 {
					t.Errorf("backend received %d requests", n)
				}
				if n := len(e.requestRecords()) - recsBefore; n != 0 {
					t.Errorf("%d records for a request the server refused before the handler", n)
				}
				return
			}
			// Resolved by the gateway: at most the one public request was
			// forwarded, and any second request was the gateway's own 401.
			if n := e.backend.count() - before; n > 1 {
				t.Errorf("backend received %d requests for one", n)
			}
			// Either refused too, or the hidden request was parsed by the
			// gateway as a second request and refused with its own 401.
			if codes[0] < 400 && (len(codes) != 2 || codes[1] != http.StatusUnauthorized) {
				t.Errorf("responses %v, want [200 401]: the hidden request was not decided by the gateway", codes)
			}
			for _, r := range e.requestRecords()[recsBefore:] {
				if r["route"] == "admin" && (r["status"] != float64(401) || r["reason"] != "token_missing") {
					t.Errorf("smuggled admin request decided %v/%v", r["status"], r["reason"])
				}
			}
		})
	}
}

// TestObsFoldContinuationCannotInjectHeader: an obs-fold continuation line
// (" X-User-Id: root" after another header) is folded into that header's
// value by the gateway's parser and forwarded as one field, so it can never
// become a header of its own — in particular not an identity header.
func TestObsFoldContinuationCannotInjectHeader(t *testing.T) {
	e := newEnv(t)
	out := e.sendRaw(e.gwAddr(), "GET /public/x HTTP/1.1\r\nHost: gw.test\r\nX-Note: a\r\n X-User-Id: root\r\nConnection: close\r\n\r\n")
	codes := statusLines(t, out)
	if len(codes) != 1 {
		t.Fatalf("responses %v: %q", codes, out)
	}
	if codes[0] >= 400 {
		if e.backend.count() != 0 {
			t.Error("refused request reached the backend")
		}
		return // refusing obs-fold outright is fine too
	}
	got := e.backend.last(t)
	if v, ok := got.Header["X-User-Id"]; ok {
		t.Errorf("folded line became an X-User-Id header: %q", v)
	}
	for k, vs := range got.Header {
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n") {
				t.Errorf("header %s forwarded with a line break: %q", k, v)
			}
		}
	}
}

// TestOversizedHeadersRefused431: headers over the server's
// max_header_bytes are refused by http.Server with 431 before the handler
// runs, so nothing is forwarded.
func TestOversizedHeadersRefused431(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewUnstartedServer(e.handler)
	srv.Config.MaxHeaderBytes = 4096
	srv.Start()
	t.Cleanup(srv.Close)
	big := strings.Repeat("a", 16<<10) // past MaxHeaderBytes plus http.Server's 4 KiB slack
	cases := map[string]string{
		"one-huge-header":   "GET /public/x HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\nX-Big: " + big + "\r\n\r\n",
		"many-headers":      "GET /public/x HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n" + strings.Repeat("X-H: "+strings.Repeat("b", 100)+"\r\n", 200) + "\r\n",
		"huge-bearer-token": "GET /api/x HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\nAuthorization: Bearer " + big + "\r\n\r\n",
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			before := e.backend.count()
			codes := statusLines(t, e.sendRaw(srv.Listener.Addr().String(), payload))
			if len(codes) == 0 || codes[0] != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("statuses %v, want 431", codes)
			}
			if e.backend.count() != before {
				t.Error("oversized request reached the backend")
			}
		})
	}
	// A normal request through the same server still works.
	if codes := statusLines(t, e.sendRaw(srv.Listener.Addr().String(), "GET /public/x HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n")); len(codes) != 1 || codes[0] != 200 {
		t.Errorf("normal request: %v", codes)
	}
}

// TestMethodOverrideHeadersDoNotChangeRouting: X-HTTP-Method-Override and
// its variants never change which route is chosen or which method is
// checked: the route is the one for the real method, a method-restricted
// route still answers 405 for the real method, and the backend receives
// the real method.
func TestMethodOverrideHeadersDoNotChangeRouting(t *testing.T) {
	e := newEnv(t)
	overrides := []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}
	for _, h := range overrides {
		t.Run(h, func(t *testing.T) {
			// GET with override DELETE on a GET-only route: routed as GET.
			before := e.backend.count()
			rec := e.wantDecision(t, e.do("GET", "/ro/x", "", map[string]string{h: "DELETE"}), before, 200, "public", "")
			if rec["method"] != "GET" || rec["route"] != "readonly" {
				t.Errorf("record method=%v route=%v", rec["method"], rec["route"])
			}
			if m := e.backend.last(t).Method; m != "GET" {
				t.Errorf("backend method %s", m)
			}
			// DELETE with override GET on the same route: still 405.
			before = e.backend.count()
			resp := e.do("DELETE", "/ro/x", "", map[string]string{h: "GET"})
			e.wantDecision(t, resp, before, 405, "deny", "method_not_allowed")
		})
	}
}

// TestPathOverrideHeadersDoNotChangeRouting: X-Original-URL, X-Rewrite-URL
// and X-Forwarded-Prefix/-Uri naming a protected path never change the
// route: a public request stays public and reaches the backend at its own
// path; a protected path named in the header is not reached through it.
func TestPathOverrideHeadersDoNotChangeRouting(t *testing.T) {
	e := newEnv(t)
	for _, h := range []string{"X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Forwarded-Uri"} {
		t.Run(h, func(t *testing.T) {
			before := e.backend.count()
			rec := e.wantDecision(t, e.do("GET", "/public/x", "", map[string]string{h: "/admin/secret"}), before, 200, "public", "")
			if rec["route"] != "public" || rec["path"] != "/public/x" {
				t.Errorf("record route=%v path=%v", rec["route"], rec["path"])
			}
			if got := e.backend.last(t); got.RequestURI != "/public/x" {
				t.Errorf("backend RequestURI %q", got.RequestURI)
			}
			// The reverse: a protected path with a public override header
			// is still protected.
			before = e.backend.count()
			e.wantDecision(t, e.do("GET", "/admin/secret", "", map[string]string{h: "/public/x"}), before, 401, "deny", "token_missing")
		})
	}
}

// TestAbsoluteFormNeverProxiedElsewhere: an absolute-form request target
// ("GET http://evil.example/... HTTP/1.1", what a client sends to a forward
// proxy) never makes the gateway an open proxy: it is routed by its path
// like any other, checked, and forwarded only to the configured upstream;
// the host it names never receives anything. CONNECT is never tunnelled.
func TestAbsoluteFormNeverProxiedElsewhere(t *testing.T) {
	e := newEnv(t)
	evil := newBackend(t)
	evilHost := strings.TrimPrefix(evil.URL, "http://")
	cases := []struct {
		name     string
		payload  string
		status   int
		backendP string // the path the configured backend must receive; "" none
	}{
		{"public-path", "GET http://" + evilHost + "/public/x?a=1 HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n", 200, "/public/x?a=1"},
		{"protected-path-no-token", "GET http://" + evilHost + "/admin/x HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n", 401, ""},
		{"unrouted-path", "GET http://" + evilHost + "/elsewhere HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n", 404, ""},
		{"https-scheme", "GET https://" + evilHost + "/public/y HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n", 200, "/public/y"},
		{"connect", "CONNECT " + evilHost + " HTTP/1.1\r\nHost: " + evilHost + "\r\nConnection: close\r\n\r\n", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.backend.count()
			codes := statusLines(t, e.sendRaw(e.gwAddr(), tc.payload))
			if len(codes) != 1 {
				t.Fatalf("responses %v", codes)
			}
			if tc.status != 0 && codes[0] != tc.status {
				t.Errorf("status %d, want %d", codes[0], tc.status)
			}
			if tc.status == 0 && codes[0] < 400 {
				t.Errorf("CONNECT answered %d", codes[0])
			}
			if evil.count() != 0 {
				t.Fatalf("the host named in the request target received %d requests", evil.count())
			}
			if tc.backendP == "" {
				if e.backend.count() != before {
					t.Errorf("backend received %q", e.backend.last(t).RequestURI)
				}
				return
			}
			got := e.backend.last(t)
			if got.RequestURI != tc.backendP {
				t.Errorf("backend RequestURI %q, want %q", got.RequestURI, tc.backendP)
			}
			if got.Host != strings.TrimPrefix(e.backend.URL, "http://") {
				t.Errorf("backend Host %q, want its own", got.Host)
			}
		})
	}
}

// TestDuplicateTokenParameterPollution: two different tokens under the one
// name — two Authorization headers, two access_token cookies (cookie
// tossing from a parent domain) or two access_token query parameters
// (HTTP parameter pollution: some backends read the last, the gateway the
// first) — are ambiguous: refused as token_malformed, never forwarded, so
// a backend can never act on a token the gateway did not check. The same
// token repeated is not ambiguous.
func TestDuplicateTokenParameterPollution(t *testing.T) {
	e := newEnv(t)
	good := e.rs256(nil)
	forged := sign(t, jwtRS256, rsaKey2, "rsa1", claims(map[string]any{"sub": "root"}))
	cases := []struct {
		name   string
		path   string
		hdr    http.Header
		status int
		reason string
	}{
		{"two-authorization-headers", "/api/x", http.Header{"Authorization": {"Bearer " + good, "Bearer " + forged}}, 401, "token_malformed"},
		{"two-cookies", "/api/x", http.Header{"Cookie": {"access_token=" + good + "; access_token=" + forged}}, 401, "token_malformed"},
		{"two-cookie-headers", "/api/x", http.Header{"Cookie": {"access_token=" + good, "access_token=" + forged}}, 401, "token_malformed"},
		{"two-query-params", "/api/x?access_token=" + good + "&access_token=" + forged, nil, 401, "token_malformed"},
		{"two-query-params-optional-route", "/opt/x?access_token=" + good + "&access_token=" + forged, nil, 401, "token_malformed"},
		{"same-cookie-twice", "/api/x", http.Header{"Cookie": {"access_token=" + good + "; access_token=" + good}}, 200, ""},
		{"same-query-twice", "/api/x?access_token=" + good + "&access_token=" + good, nil, 200, ""},
		{"empty-cookie-then-token", "/api/x", http.Header{"Cookie": {"access_token=; access_token=" + good}}, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.backend.count()
			req := httptestRequest(t, "GET", e.gw.URL+tc.path)
			for k, vs := range tc.hdr {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			decision := "allow"
			if tc.status != 200 {
				decision = "deny"
			}
			rec := e.wantDecision(t, resp, before, tc.status, decision, tc.reason)
			if tc.status != 200 && rec["suspicious"] != true {
				t.Error("ambiguous token not suspicious")
			}
		})
	}
}
