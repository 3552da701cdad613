package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/jwtgate/jwtgate/config"
)

// lifecycleEnv is a JWKS server, a backend and a config file on disk.
type lifecycleEnv struct {
	key      *ecdsa.PrivateKey
	jwks     *httptest.Server
	backend  *httptest.Server
	dir      string
	cfgPath  string
	audit    string
	backendN int
	mu       sync.Mutex
}

func newLifecycleEnv(t *testing.T) *lifecycleEnv {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := &lifecycleEnv{key: k, dir: t.TempDir()}
	ecdh, _ := k.PublicKey.ECDH()
	raw := ecdh.Bytes()
	jwk := map[string]any{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(raw[1:33]), "y": base64.RawURLEncoding.EncodeToString(raw[33:])}
	e.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{jwk}})
	}))
	t.Cleanup(e.jwks.Close)
	e.backend = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.backendN++
		e.mu.Unlock()
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	}))
	t.Cleanup(e.backend.Close)
	e.cfgPath = filepath.Join(e.dir, "gateway.yaml")
	e.audit = filepath.Join(e.dir, "audit.log")
	return e
}

// writeConfig writes the config with the routes given as YAML lines.
func (e *lifecycleEnv) writeConfig(t *testing.T, extraRoutes string) {
	t.Helper()
	cfg := fmt.Sprintf(`
server: {address: "127.0.0.1:0", shutdown_grace: 5s}
admin: {address: "127.0.0.1:0"}
providers:
  - {name: main, issuer: "https://idp.test/", audiences: [api], jwks_url: %q, algorithms: [ES256]}
routes:
  - {name: life, match: {path_prefix: /life}, upstream: {url: %q}, auth: {providers: [main]}}
%s
audit: {output: file, file: %q}
`, e.jwks.URL, e.backend.URL, extraRoutes, e.audit)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *lifecycleEnv) token(t *testing.T) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://idp.test/", "aud": "api", "sub": "bob", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(e.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func readRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// TestServeReloadAndShutdown pins SPEC §8: a valid reload swaps the config
// (new route live, config_version changes) while an in-flight request
// finishes on the old one; an invalid reload is rejected and the old
// config keeps serving; shutdown lets in-flight requests finish and leaves
// startup, config_reload, request and shutdown records, all complete lines.
func TestServeReloadAndShutdown(t *testing.T) {
	e := newLifecycleEnv(t)
	e.writeConfig(t, "")
	cfg, err := config.Load(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := net.Listen("tcp", "127.0.0.1:0")
	adm, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	s, err := startServer(ctx, cfg, serverOptions{Logger: zerolog.Nop(), Stdout: io.Discard, Public: pub, Admin: adm, NoSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int)
	go func() { done <- s.run(ctx) }()
	base := "http://" + pub.Addr().String()
	admin := "http://" + adm.Addr().String()
	tok := e.token(t)

	if st, _ := httpGet(t, admin+"/readyz", ""); st != 200 {
		t.Fatalf("/readyz = %d", st)
	}
	if st, _ := httpGet(t, base+"/life/a", tok); st != 200 {
		t.Fatalf("allowed request = %d", st)
	}
	slow := make(chan int)
	go func() { st, _ := httpGet(t, base+"/life/slow?sleep=600ms", tok); slow <- st }()
	time.Sleep(100 * time.Millisecond)

	e.writeConfig(t, `  - {name: newroute, match: {path_prefix: /new}, upstream: {url: "`+e.backend.URL+`"}, auth: {mode: "off"}}`)
	s.reload("test")
	if st, _ := httpGet(t, base+"/new/x", ""); st != 200 {
		t.Errorf("route from the reloaded config = %d, want 200", st)
	}
	if st := <-slow; st != 200 {
		t.Errorf("in-flight request during reload = %d, want 200", st)
	}
	if err := os.WriteFile(e.cfgPath, []byte("routes: [{name: x, match: {path_prefix: /x}, bogus: 1}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.reload("test")
	if st, _ := httpGet(t, base+"/new/y", ""); st != 200 {
		t.Errorf("after a rejected reload the old config should keep serving, got %d", st)
	}
	if _, body := httpGet(t, admin+"/metrics", ""); !strings.Contains(body, `jwtgate_config_reloads_total{result="error"} 1`) || !strings.Contains(body, `jwtgate_config_reloads_total{result="ok"} 1`) {
		t.Errorf("reloads not counted by result")
	}

	inflight := make(chan int)
	go func() { st, _ := httpGet(t, base+"/life/drain?sleep=500ms", tok); inflight <- st }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	if st := <-inflight; st != 200 {
		t.Errorf("in-flight request at shutdown = %d, want 200", st)
	}
	if code := <-done; code != 0 {
		t.Errorf("run exit code %d", code)
	}

	recs := readRecords(t, e.audit)
	events := map[string]int{}
	versions := map[string]bool{}
	for _, r := range recs {
		events[r["event"].(string)]++
		if r["event"] == "request" {
			versions[r["config_version"].(string)] = true
		}
	}
	if recs[0]["event"] != "startup" {
		t.Errorf("first record is %v, want startup", recs[0]["event"])
	}
	if recs[len(recs)-1]["event"] != "shutdown" {
		t.Errorf("last record is %v, want shutdown", recs[len(recs)-1]["event"])
	}
	if events["config_reload"] != 2 || events["request"] != 5 || events["jwks_refresh"] < 1 {
		t.Errorf("events = %v, want 2 config_reload, 5 request, ≥1 jwks_refresh", events)
	}
	if len(versions) != 2 {
		t.Errorf("request records carry %d config versions, want 2 (before and after reload)", len(versions))
	}
}

// TestCLIExitCodes pins SPEC §1's exit codes for usage errors and help.
func TestCLIExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"unknown-command", []string{"frobnicate"}, 2},
		{"version", []string{"version"}, 0},
		{"help", []string{"-h"}, 0},
		{"serve-help", []string{"serve", "-h"}, 0},
		{"validate-missing-file", []string{"validate", "-c", "/nonexistent/gw.yaml"}, 1},
		{"token-no-subcommand", []string{"token"}, 2},
		{"audit-unknown", []string{"audit", "nope"}, 2},
		{"explain-no-url", []string{"explain", "-c", "x.yaml"}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if got := run(tc.args, &out, &errb); got != tc.code {
				t.Errorf("run(%q) = %d, want %d; stderr %s", tc.args, got, tc.code, errb.String())
			}
		})
	}
}

// TestValidatePrintsEveryProblemWithItsPath: validate reports all problems
// of a broken config together, each as "path: message", and exits 1.
func TestValidatePrintsEveryProblemWithItsPath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.yaml")
	bad := `
providers:
  - {name: a, issuer: "https://a/", audiences: [x], jwks_url: "http://idp.example.com/jwks", algorithms: [none]}
routes:
  - {name: r0, match: {path_prefix: /a}, upstream: {url: "http://127.0.0.1:1"}, auth: {providers: [ghost]}}
  - {name: r1, match: {path_prefix: /b}, upstream: {url: "http://127.0.0.1:1"}, auth: {mode: sometimes}}
`
	if err := os.WriteFile(p, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"validate", "-c", p}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"providers[0].jwks_url:", "providers[0].algorithms[0]:", "routes[0].auth.providers[0]:", "routes[1].auth.mode:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
