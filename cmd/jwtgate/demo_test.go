package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// syncBuffer is a bytes.Buffer safe for the demo's goroutines to write
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// jwtShape matches anything that looks like a compact JWS: a base64url
// JSON header ("eyJ…") and two more segments.
var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// auditLines decodes stdout as one JSON object per line and fails on any
// other line: the demo's stdout is the audit stream and nothing else.
func auditLines(t *testing.T, stdout string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line %d is not a JSON audit record: %v\n%s", n, err, sc.Text())
		}
		recs = append(recs, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read stdout: %v", err)
	}
	return recs
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// TestDemoSmokeWritesAuditTrail pins SPEC §1 "jwtgate demo" as CI runs it:
// --smoke makes the example calls, exits 0 when every answer matched, and
// stdout carries one audit record per call with the right decisions and
// reasons (allow, deny with token_missing, token_expired, scope_missing),
// the key rotation (a demo-2 token accepted after an unknown_kid refresh),
// and, per SPEC §5, never a raw token anywhere in the output.
func TestDemoSmokeWritesAuditTrail(t *testing.T) {
	var stdout, stderr syncBuffer
	code := run([]string{"demo", "--smoke", "--listen", "127.0.0.1:0"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("demo --smoke exit = %d, want 0\nstderr:\n%s", code, stderr.String())
	}
	out, errOut := stdout.String(), stderr.String()
	if !strings.Contains(errOut, "smoke: all calls answered as expected") {
		t.Errorf("stderr lacks the smoke summary:\n%s", errOut)
	}

	recs := auditLines(t, out)
	if len(recs) < 2 || str(recs[0], "event") != "startup" || str(recs[len(recs)-1], "event") != "shutdown" {
		t.Fatalf("audit stream must start with startup and end with shutdown:\n%s", out)
	}
	decisions := map[string]bool{}
	reasons := map[string]bool{}
	var requests int
	var rotatedAllowed, unknownKIDRefresh bool
	for _, r := range recs {
		switch str(r, "event") {
		case "request":
			requests++
			decisions[str(r, "decision")] = true
			reasons[str(r, "reason")] = true
			if str(r, "kid") == demoRotatedKID && str(r, "decision") == "allow" {
				rotatedAllowed = true
			}
		case "jwks_refresh":
			if str(r, "trigger") == "unknown_kid" && str(r, "result") == "ok" {
				unknownKIDRefresh = true
			}
		}
	}
	if requests != 7 {
		t.Errorf("request records = %d, want 7 (one per smoke call)", requests)
	}
	for _, d := range []string{"allow", "deny", "public"} {
		if !decisions[d] {
			t.Errorf("no request record with decision %q; got %v", d, decisions)
		}
	}
	for _, r := range []string{"token_missing", "token_expired", "scope_missing"} {
		if !reasons[r] {
			t.Errorf("no request record with reason %q; got %v", r, reasons)
		}
	}
	if !rotatedAllowed {
		t.Errorf("no allowed request with kid %s: the rotated key was not accepted", demoRotatedKID)
	}
	if !unknownKIDRefresh {
		t.Error("no jwks_refresh record with trigger unknown_kid: the gateway did not fetch the rotated key")
	}
	if m := jwtShape.FindString(out); m != "" {
		t.Errorf("audit stream holds a raw token: %.40s…", m)
	}
	if m := jwtShape.FindString(errOut); m != "" {
		t.Errorf("smoke mode printed a raw token on stderr: %.40s…", m)
	}
	if m := regexp.MustCompile(`(?i)bearer\s+[A-Za-z0-9._~+/-]`).FindString(out); m != "" {
		t.Errorf("audit stream holds an Authorization value: %q…", m)
	}
}

// TestDemoBannerCurlLinesWork pins the interactive demo (SPEC §1, README
// quick start): the printed curl lines carry tokens that get the answers
// their comments promise, the key rotation is announced and a token from
// the new key is accepted, a cancelled context (Ctrl-C) exits 0 with a
// shutdown record, and no printed token ever reaches the audit records.
func TestDemoBannerCurlLinesWork(t *testing.T) {
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- runDemo(ctx, demoOptions{Listen: "127.0.0.1:0", RotateAfter: 300 * time.Millisecond}, &stdout, &stderr)
	}()
	waitFor(t, &stderr, "Ctrl-C to stop", done)
	banner := stderr.String()

	// Each curl line with a token, in banner order: reader, expired,
	// no scope, admin.
	lineRE := regexp.MustCompile(`(?m)^curl -si? -H 'Authorization: Bearer ([^']+)' (http://\S+)$`)
	lines := lineRE.FindAllStringSubmatch(banner, -1)
	want := []int{200, 401, 403, 200}
	if len(lines) != len(want) {
		t.Fatalf("banner has %d curl lines with a token, want %d:\n%s", len(lines), len(want), banner)
	}
	var printed []string
	for i, l := range lines {
		printed = append(printed, l[1])
		if got := get(t, l[2], l[1]); got != want[i] {
			t.Errorf("curl line %d (%s) answered %d, want %d", i+1, l[2], got, want[i])
		}
	}
	noToken := regexp.MustCompile(`(?m)^curl -si (http://\S+/api/orders)$`).FindStringSubmatch(banner)
	if noToken == nil {
		t.Fatalf("banner lacks the no-token curl line:\n%s", banner)
	}
	if got := get(t, noToken[1], ""); got != http.StatusUnauthorized {
		t.Errorf("no-token call answered %d, want 401", got)
	}
	for _, p := range []string{"/readyz", "/metrics"} {
		if !regexp.MustCompile(`(?m)^curl -s http://127\.0\.0\.1:\d+` + p).MatchString(banner) {
			t.Errorf("banner lacks the admin %s line", p)
		}
	}

	waitFor(t, &stderr, "issuer: rotated", done)
	issuer := regexp.MustCompile(`issuer +(http://\S+)`).FindStringSubmatch(banner)
	if issuer == nil {
		t.Fatalf("banner lacks the issuer URL:\n%s", banner)
	}
	fresh := fetchToken(t, issuer[1]+"/token")
	tok, _, err := jwt.NewParser().ParseUnverified(fresh, jwt.MapClaims{})
	if err != nil {
		t.Fatalf("issuer /token: ParseUnverified() error = %v", err)
	}
	if kid := tok.Header["kid"]; kid != demoRotatedKID {
		t.Errorf("token after rotation has kid %v, want %s", kid, demoRotatedKID)
	}
	if got := get(t, strings.TrimSuffix(lines[0][2], "/api/orders")+"/api/orders", fresh); got != http.StatusOK {
		t.Errorf("token from the rotated key answered %d, want 200", got)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("demo exit after cancel = %d, want 0\nstderr:\n%s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("demo did not stop within 5s of cancel")
	}
	out := stdout.String()
	recs := auditLines(t, out)
	if len(recs) == 0 || str(recs[len(recs)-1], "event") != "shutdown" {
		t.Errorf("last audit record is not shutdown:\n%s", out)
	}
	for _, p := range append(printed, fresh) {
		if strings.Contains(out, p) {
			t.Errorf("audit stream holds a minted token (%.20s…)", p)
		}
	}
}

// waitFor polls buf until it contains s, failing after 5s or when the demo
// exits first.
func waitFor(t *testing.T, buf *syncBuffer, s string, done <-chan int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), s) {
		select {
		case code := <-done:
			t.Fatalf("demo exited with %d before printing %q:\n%s", code, s, buf.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo did not print %q within 5s:\n%s", s, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get makes a GET with an optional bearer token and returns the status.
func get(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func fetchToken(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, %v", url, resp.StatusCode, err)
	}
	return strings.TrimSpace(string(b))
}

// TestDemoListenFallsBackWhenPortBusy pins the "runs on a fresh machine"
// promise: when the --listen port is taken (8080 often is), the demo uses
// a random port, says so, and still works.
func TestDemoListenFallsBackWhenPortBusy(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var stdout, stderr syncBuffer
	if code := run([]string{"demo", "--smoke", "--listen", busy.Addr().String()}, &stdout, &stderr); code != 0 {
		t.Fatalf("demo --smoke on a busy port exit = %d, want 0\nstderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), busy.Addr().String()+" is in use") {
		t.Errorf("stderr does not say the port is in use:\n%s", stderr.String())
	}
}

// TestDemoBadUsage pins SPEC §1 exit code 2 for bad demo flags.
func TestDemoBadUsage(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{name: "extra-argument", args: []string{"demo", "now"}},
		{name: "zero-rotate-after", args: []string{"demo", "--rotate-after", "0s"}},
		{name: "unknown-flag", args: []string{"demo", "--bogus"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != 2 {
				t.Errorf("run(%q) = %d, want 2", tc.args, code)
			}
		})
	}
}

// TestDemoConfigTemplateIsValid pins the embedded demo.yaml: it renders
// and passes config validation without warnings, with the three routes
// the banner describes.
func TestDemoConfigTemplateIsValid(t *testing.T) {
	cfg, err := demoConfig(demoConfigData{
		Listen: "127.0.0.1:8080", Admin: "127.0.0.1:9901",
		Issuer: "http://127.0.0.1:9000", JWKSURL: "http://127.0.0.1:9000/.well-known/jwks.json",
		Backend: "http://127.0.0.1:9001",
	})
	if err != nil {
		t.Fatalf("demoConfig() error = %v", err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("demoConfig() warnings = %v, want none", cfg.Warnings)
	}
	want := map[string]string{"public": "off", "api": "required", "admin": "required"}
	if len(cfg.Routes) != len(want) {
		t.Fatalf("routes = %d, want %d", len(cfg.Routes), len(want))
	}
	for _, r := range cfg.Routes {
		if want[r.Name] != r.Auth.Mode {
			t.Errorf("route %s mode = %q, want %q", r.Name, r.Auth.Mode, want[r.Name])
		}
	}
	if !cfg.Routes[2].Auth.Forward.StripToken {
		t.Error("admin route does not strip the token")
	}
}

// TestDemoIssuerPublishesOnlyPublicKeys pins that the demo issuer's JWKS
// never leaks private key material (no "d") and that rotation keeps the
// old key published next to the new one.
func TestDemoIssuerPublishesOnlyPublicKeys(t *testing.T) {
	iss, err := newDemoIssuer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	iss.url = "http://" + srv.Listener.Addr().String()
	srv.Config.Handler = iss.handler()
	srv.Start()
	defer srv.Close()

	kids := func() []string {
		t.Helper()
		resp, err := http.Get(iss.url + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatalf("decode jwks: %v", err)
		}
		var out []string
		for _, k := range set.Keys {
			if _, ok := k["d"]; ok {
				t.Errorf("jwks key %v holds the private member d", k["kid"])
			}
			out = append(out, str(k, "kid"))
		}
		return out
	}
	if got := kids(); len(got) != 1 || got[0] != demoFirstKID {
		t.Fatalf("jwks kids before rotation = %v, want [%s]", got, demoFirstKID)
	}
	rotated, err := iss.rotate(t.Context())
	if err != nil || !rotated {
		t.Fatalf("rotate() = %v, %v, want true, nil", rotated, err)
	}
	if again, _ := iss.rotate(t.Context()); again {
		t.Error("second rotate() rotated again, want once only")
	}
	got := strings.Join(kids(), ",")
	if !strings.Contains(got, demoFirstKID) || !strings.Contains(got, demoRotatedKID) {
		t.Errorf("jwks kids after rotation = %s, want both %s and %s", got, demoFirstKID, demoRotatedKID)
	}
}
