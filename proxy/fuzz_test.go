package proxy

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
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
	"github.com/jwtgate/jwtgate/route"
)

// Fuzz targets over the whole request path (issue 5, item 4). Run them
// longer with scripts/fuzz.sh 10m, or one at a time:
//
//	go test -run='^$' -fuzz='^FuzzTokenCheck$' -fuzztime=10m ./proxy
//	go test -run='^$' -fuzz='^FuzzRequestPath$' -fuzztime=10m ./proxy

// captureRecorder keeps a copy of every request record it is given and
// passes the record on to next, when set.
type captureRecorder struct {
	mu   sync.Mutex
	recs []audit.Record
	next Recorder
}

func (c *captureRecorder) Request(r *audit.Record) {
	c.mu.Lock()
	c.recs = append(c.recs, *r)
	c.mu.Unlock()
	if c.next != nil {
		c.next.Request(r)
	}
}

// take returns the records kept since the last call and forgets them.
func (c *captureRecorder) take() []audit.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.recs
	c.recs = nil
	return out
}

// swapRecorder puts a Gateway in service that records through c (and on
// to the env's audit writer), reusing the current key sources.
func (e *env) swapRecorder(c *captureRecorder) {
	e.t.Helper()
	cfg, err := config.Parse(e.cfgText, e.t.TempDir())
	if err != nil {
		e.t.Fatalf("config.Parse: %v", err)
	}
	deps := e.deps
	c.next = deps.Audit
	deps.Audit = c
	old := e.handler.Current()
	g, err := Build(e.ctx, cfg, deps, old)
	if err != nil {
		e.t.Fatalf("Build: %v", err)
	}
	e.handler.Swap(g)
	old.Retire(g)
}

// readRequest parses raw as the server would, or reports false when the
// server would refuse it before the handler runs.
func readRequest(raw string) (*http.Request, bool) {
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		return nil, false
	}
	req.RemoteAddr = "192.0.2.10:40000"
	return req, true
}

// take resets the buffer and returns what it held.
func (s *syncBuffer) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.b.String()
	s.b.Reset()
	return out
}

// independentKeys verifies a token with the env's configured keys through
// golang-jwt alone (no jwtgate code): the oracle for "signed by a
// configured key".
func independentKeys(t *jwt.Token) (any, error) {
	switch t.Method.Alg() {
	case "RS256":
		return &rsaKey.PublicKey, nil
	case "ES256":
		return &ecKey.PublicKey, nil
	case "EdDSA":
		return edKey.Public(), nil
	case "HS256":
		return []byte(hmacSecret), nil
	}
	return nil, fmt.Errorf("alg %q has no configured key", t.Method.Alg())
}

var independentParser = jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithValidMethods([]string{"RS256", "ES256", "EdDSA", "HS256"}))

// fuzzTokenPaths are the routes FuzzTokenCheck sends to: required with a
// scope, required with a claim rule, optional, dry_run, HMAC-only and
// strip_token.
var fuzzTokenPaths = []string{"/api/x", "/admin/x", "/opt/x", "/dry/x", "/hmac/x", "/strip/x"}

// tokenCandidates returns every value a client put where a token may be
// taken from: the Authorization header after a "Bearer " prefix, the
// access_token cookie and the access_token query parameter.
func tokenCandidates(req *http.Request) []string {
	var out []string
	for _, v := range req.Header.Values("Authorization") {
		out = append(out, v)
		if len(v) >= 7 && strings.EqualFold(v[:7], "bearer ") {
			out = append(out, strings.TrimSpace(v[7:]))
		}
	}
	for _, c := range req.CookiesNamed("access_token") {
		out = append(out, c.Value)
	}
	out = append(out, req.URL.Query()["access_token"]...)
	return out
}

// FuzzTokenCheck runs arbitrary Authorization header values, cookies and
// query tokens through extraction and the whole check pipeline of a real
// gateway (real JWKS server, real audit writer) on every kind of route.
// Properties: the handler never panics and writes exactly one record; a
// request is allowed only with a token that golang-jwt alone verifies with
// one of the configured keys, and whose sub the record names; the backend
// receives X-User-Id only for an allowed request, with the token's sub;
// and neither the audit trail nor the operational log ever holds a raw
// token or Authorization value the client sent.
func FuzzTokenCheck(f *testing.F) {
	e := newEnv(f)
	c := &captureRecorder{}
	e.swapRecorder(c)

	valid := map[string]string{
		"rs256": e.rs256(nil),
		"es256": sign(f, jwt.SigningMethodES256, ecKey, "ec1", claims(nil)),
		"eddsa": sign(f, jwt.SigningMethodEdDSA, edKey, "ed1", claims(nil)),
		"hmac":  sign(f, jwt.SigningMethodHS256, []byte(hmacSecret), "h1", claims(map[string]any{"iss": "https://hmac.test/"})),
		"nokid": sign(f, jwt.SigningMethodHS256, []byte(hmacSecret), "", claims(map[string]any{"iss": "https://hmac.test/"})),
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	rsaAsHMAC := sign(f, jwt.SigningMethodHS256, pubPEM, "rsa1", claims(nil))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for i, tok := range valid {
		r := uint8(len(i)) % uint8(len(fuzzTokenPaths))
		f.Add("Bearer "+tok, "", "", r)
		f.Add("bearer  "+tok+" ", "", "", r)
		f.Add("", tok, "", r)
		f.Add("", "", tok, r)
		parts := strings.Split(tok, ".")
		f.Add("Bearer "+parts[0]+"."+parts[1]+".", "", "", r)                            // stripped signature
		f.Add("Bearer "+parts[0]+"."+parts[1]+"."+parts[2][:len(parts[2])-2], "", "", r) // truncated
		f.Add("Bearer "+tok+"\r\nAuthorization: Bearer "+tok, "", "", r)                 // two headers
		f.Add("Bearer "+tok, tok+"; access_token=x", tok, r)                             // several sources
	}
	f.Add("Bearer "+rsaAsHMAC, "", "", uint8(0))
	f.Add("Bearer "+none, "", "", uint8(0))
	f.Add("Bearer "+strings.TrimSuffix(none, ".")+".c2ln", "", "", uint8(2))
	f.Add("Bearer a.b.c.d.e", "", "", uint8(0))
	f.Add("Bearer "+strings.Repeat(".", 5000), "", "", uint8(0))
	f.Add("Basic dXNlcjpwYXNz", "", "", uint8(1))
	f.Add("", "", "", uint8(2))

	f.Fuzz(func(t *testing.T, auth, cookie, query string, routeSel uint8) {
		path := fuzzTokenPaths[int(routeSel)%len(fuzzTokenPaths)]
		var b strings.Builder
		b.WriteString("GET " + path)
		if query != "" {
			b.WriteString("?access_token=" + url.QueryEscape(query))
		}
		b.WriteString(" HTTP/1.1\r\nHost: gw.test\r\nUser-Agent: fuzz\r\n")
		if auth != "" {
			b.WriteString("Authorization: " + auth + "\r\n")
		}
		if cookie != "" {
			b.WriteString("Cookie: access_token=" + cookie + "\r\n")
		}
		b.WriteString("\r\n")
		req, ok := readRequest(b.String())
		if !ok {
			return
		}
		e.backend.mu.Lock()
		e.backend.reqs = e.backend.reqs[:0]
		e.backend.mu.Unlock()

		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, req)

		recs := c.take()
		if len(recs) != 1 {
			t.Fatalf("%d records for one request, want 1", len(recs))
		}
		rec := recs[0]
		if rec.Status != w.Code {
			t.Fatalf("record status %d, answer %d", rec.Status, w.Code)
		}
		e.backend.mu.Lock()
		got := append([]received(nil), e.backend.reqs...)
		e.backend.mu.Unlock()
		if rec.Decision == audit.DecisionAllow {
			var tok string
			for _, cand := range tokenCandidates(req) {
				if audit.TokenID(cand) == rec.TokenID {
					tok = cand
				}
			}
			if tok == "" {
				t.Fatalf("allowed with token_id %q, which is no token the client sent", rec.TokenID)
			}
			mc := jwt.MapClaims{}
			if _, err := independentParser.ParseWithClaims(tok, mc, independentKeys); err != nil {
				t.Fatalf("allowed a token that no configured key verifies: %v", err)
			}
			if sub, _ := mc["sub"].(string); sub != rec.Sub {
				t.Fatalf("record sub %q, token sub %q", rec.Sub, sub)
			}
		}
		for _, r := range got {
			if v := r.Header.Values("X-User-Id"); len(v) > 0 && (rec.Decision != audit.DecisionAllow || len(v) != 1 || v[0] != rec.Sub) {
				t.Fatalf("backend received X-User-Id %q for decision %s sub %q", v, rec.Decision, rec.Sub)
			}
		}
		if len(got) > 0 && rec.Decision == audit.DecisionDeny {
			t.Fatalf("denied request (%s) reached the backend", rec.Reason)
		}

		if err := e.writer.Flush(); err != nil {
			t.Fatal(err)
		}
		trail, logs := e.out.take(), e.logs.take()
		for _, cand := range append(tokenCandidates(req), req.Header.Values("Cookie")...) {
			if len(cand) < 16 {
				continue // short values occur in records by chance
			}
			if strings.Contains(trail, cand) {
				t.Fatalf("audit trail holds a raw client value %q", cand)
			}
			if strings.Contains(logs, cand) {
				t.Fatalf("operational log holds a raw client value %q", cand)
			}
		}
	})
}

// fuzzPathCfg routes FuzzRequestPath's requests: every kind of match
// (prefix, exact, methods, host), every auth mode, and strip_prefix with
// and without a base path on the upstream.
const fuzzPathCfg = `
server: {address: "127.0.0.1:0"}
admin: {address: "127.0.0.1:0"}
providers:
  - name: main
    issuer: %[1]q
    audiences: [api]
    jwks_url: %[2]q
    algorithms: [RS256]
    unknown_kid_min_interval: 1h
routes:
  - {name: root, match: {path_prefix: /}, upstream: {url: %[3]q}, auth: {mode: "off"}}
  - {name: public, match: {path_prefix: /public}, upstream: {url: %[3]q}, auth: {mode: "off"}}
  - {name: api, match: {path_prefix: /api}, upstream: {url: %[3]q}, auth: {providers: [main], require: {scopes: [api:read]}}}
  - {name: admin, match: {path_prefix: /admin}, upstream: {url: %[3]q}, auth: {providers: [main], require: {claims: [{claim: realm_access.roles, contains_any: [admin]}]}}}
  - {name: login, match: {path: /admin/login}, upstream: {url: %[3]q}, auth: {mode: "off"}}
  - {name: opt, match: {path_prefix: /opt}, upstream: {url: %[3]q}, auth: {mode: optional, providers: [main]}}
  - {name: dry, match: {path_prefix: /dry}, upstream: {url: %[3]q}, auth: {mode: dry_run, providers: [main]}}
  - {name: svc, match: {path_prefix: /svc/v1}, upstream: {url: %[3]q, strip_prefix: true}, auth: {providers: [main]}}
  - {name: based, match: {path_prefix: /based}, upstream: {url: "%[3]s/base", strip_prefix: true}, auth: {mode: "off"}}
  - {name: ro, match: {path_prefix: /ro, methods: [GET, HEAD]}, upstream: {url: %[3]q}, auth: {mode: "off"}}
  - {name: hosted, match: {host: api.test, path_prefix: /h}, upstream: {url: %[3]q}, auth: {mode: "off"}}
audit: {output: stdout}
`

// lastRequest is an upstream that remembers only what it last received.
type lastRequest struct {
	mu   sync.Mutex
	n    int
	uri  string // RequestURI as received
	path string // the path as the backend's server decoded it
}

// FuzzRequestPath sends arbitrary request targets and methods through the
// handler and pins SPEC §3.1 "the backend never receives a path other
// than the one that was authorised". Properties: exactly one record per
// request; a denied request never reaches the backend; what the backend
// receives is canonical (CleanPath leaves it unchanged), its decoded form
// has no dot segment, and it lies under the route the record names —
// mapping it back through the route's strip_prefix and upstream base path
// and matching it again selects that same route; a protected route is
// reached only with the decision allow (or the dry_run/optional outcomes).
func FuzzRequestPath(f *testing.F) {
	testKeys(f)
	keys := newJWKSServer(f, jwkOf("rsa1", &rsaKey.PublicKey, "RS256"))
	last := &lastRequest{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last.mu.Lock()
		last.n++
		last.uri, last.path = r.RequestURI, r.URL.Path
		last.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	f.Cleanup(up.Close)
	cfg, err := config.Parse([]byte(fmt.Sprintf(fuzzPathCfg, testIssuer, keys.URL+"/jwks.json", up.URL)), f.TempDir())
	if err != nil {
		f.Fatalf("config.Parse: %v", err)
	}
	c := &captureRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	g, err := Build(ctx, cfg, Deps{Logger: zerolog.Nop(), Audit: c}, nil)
	if err != nil {
		f.Fatalf("Build: %v", err)
	}
	f.Cleanup(func() { g.Retire(nil); cancel() })
	h := NewHandler(g)
	routes := map[string]*config.Route{}
	for i := range cfg.Routes {
		routes[cfg.Routes[i].Name] = &cfg.Routes[i]
	}
	tok := sign(f, jwt.SigningMethodRS256, rsaKey, "rsa1", claims(map[string]any{"exp": time.Now().Add(time.Hour).Unix()}))
	opts := route.Options{}

	for _, s := range []string{
		"/", "/api/x", "/public/../api/x", "/public/%2e%2e/api/x", "/public/%2E%2e/admin", "/public/.%2e/admin/x",
		"//admin", "/public//..//admin", "/public/a%2fb", "/public/a%5cb", "/public/a;b=c", "/admin;/x", "/..;/admin",
		"/public/%252e%252e/admin", "/public/%c0%ae%c0%ae/admin", "/API/x", "/admin/login", "/admin/login/", "/admin/login/..",
		"/svc/v1/a%20b/c", "/svc/v1", "/svc/v1/../../admin", "/based/x/%2e%2e/y", "/based", "/ro/x", "/h/x",
		"/public/caf%C3%A9", "/public/\u00e9", "/public/a%00b", "/public/.", "/public/...", "/api./x", "/api%2fx",
		"http://api.test/h/x", "http://evil.example/admin", "*", "/dry/x?y=1#f", "/opt/%2e",
	} {
		f.Add("GET", s, true)
		f.Add("GET", s, false)
	}
	f.Add("DELETE", "/ro/x", false)
	f.Add("OPTIONS", "*", false)
	f.Add("POST", "/svc/v1/../v1/x", true)

	f.Fuzz(func(t *testing.T, method, target string, withToken bool) {
		raw := method + " " + target + " HTTP/1.1\r\nHost: gw.test\r\n"
		if withToken {
			raw += "Authorization: Bearer " + tok + "\r\n"
		}
		req, ok := readRequest(raw + "\r\n")
		if !ok || req.RequestURI != target || req.Method != method {
			return // the server would refuse it, or the fuzzer smuggled a header
		}
		last.mu.Lock()
		before := last.n
		last.mu.Unlock()

		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)

		recs := c.take()
		if len(recs) != 1 {
			t.Fatalf("%d records for one request, want 1", len(recs))
		}
		rec := recs[0]
		last.mu.Lock()
		reached, gotURI, gotPath := last.n > before, last.uri, last.path
		last.mu.Unlock()
		if !reached {
			if rec.Status < 400 {
				t.Fatalf("record status %d but the backend was not reached", rec.Status)
			}
			return
		}
		if rec.Decision == audit.DecisionDeny {
			t.Fatalf("denied request (%s) reached the backend", rec.Reason)
		}
		rc := routes[rec.Route]
		if rc == nil {
			t.Fatalf("backend reached for record route %q", rec.Route)
		}
		if mode := rc.Auth.Mode; (mode == "" || mode == config.ModeRequired) && rec.Decision != audit.DecisionAllow {
			t.Fatalf("protected route %s reached with decision %s", rc.Name, rec.Decision)
		}
		got, _, _ := strings.Cut(gotURI, "?")
		if p, err := route.CleanPath(got, opts); err != nil || p.Escaped != got {
			t.Fatalf("backend received %q, not canonical (%+v, %v); client sent %q", got, p, err, target)
		}
		for seg := range strings.SplitSeq(gotPath, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("backend decodes %q to %q, with a dot segment; client sent %q", got, gotPath, target)
			}
		}
		// Map the received path back to the path the route saw.
		base := strings.TrimSuffix(mustURL(t, rc.Upstream.URL).EscapedPath(), "/")
		if !strings.HasPrefix(got, base+"/") && got != base {
			t.Fatalf("backend received %q outside the upstream base %q of route %s", got, base, rc.Name)
		}
		seen := strings.TrimPrefix(got, base)
		if rc.Upstream.StripPrefix {
			seen = strings.TrimSuffix(rc.Match.PathPrefix, "/") + seen
		}
		if seen == "" {
			seen = "/"
		}
		p, err := route.CleanPath(seen, opts)
		if err != nil {
			t.Fatalf("route %s: path %q (received %q) does not clean: %v", rc.Name, seen, got, err)
		}
		res := g.table.Match(req.Host, req.Method, p)
		if res.Status != 0 || g.routes[res.Index].name != rec.Route {
			t.Fatalf("client sent %q; backend received %q, which routes to %+v, not %s", target, got, res, rec.Route)
		}
		if !rc.Upstream.StripPrefix && rc.Match.PathPrefix != "/" && rc.Match.Path == "" {
			pre := strings.TrimSuffix(rc.Match.PathPrefix, "/")
			under := func(s string) bool { return s == pre || strings.HasPrefix(s, pre+"/") }
			if !under(got) || !under(gotPath) {
				t.Fatalf("backend received %q (decoded %q) outside %s's prefix %q", got, gotPath, rc.Name, pre)
			}
		}
	})
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("url %q: %v", s, err)
	}
	return u
}

var _ Recorder = (*captureRecorder)(nil)
