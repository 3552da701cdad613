package main

import (
	"bufio"
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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/jwtgate/jwtgate/config"
)

// issuerEnv is one signing key served as a JWKS by a real HTTP server
// that counts its fetches and can be switched off.
type issuerEnv struct {
	key  *ecdsa.PrivateKey
	kid  string
	srv  *httptest.Server
	hits atomic.Int64
	down atomic.Bool
}

func newIssuer(t *testing.T, kid string) *issuerEnv {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuerEnv{key: k, kid: kid}
	ecdh, err := k.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := ecdh.Bytes()
	jwk := map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(raw[1:33]), "y": base64.RawURLEncoding.EncodeToString(raw[33:])}
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.hits.Add(1)
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{jwk}})
	}))
	t.Cleanup(is.srv.Close)
	return is
}

// mint signs a token for iss "https://idp.test/" and aud "api", valid for
// an hour, with the extra claims given.
func (is *issuerEnv) mint(t *testing.T, extra jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"iss": "https://idp.test/", "aud": "api", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	for k, v := range extra {
		c[k] = v
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = is.kid
	s, err := tok.SignedString(is.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// countingBackend is an upstream that answers 200 "ok <path>", counts
// requests, body bytes and accepted connections, and records the Upgrade
// headers it saw.
type countingBackend struct {
	srv      *httptest.Server
	requests atomic.Int64
	conns    atomic.Int64
	mu       sync.Mutex
	upgrades []string
	bodies   map[string]int64 // body bytes read, by request path
}

func newBackend(t *testing.T) *countingBackend {
	t.Helper()
	b := &countingBackend{bodies: map[string]int64{}}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		if u := r.Header.Get("Upgrade"); u != "" {
			b.mu.Lock()
			b.upgrades = append(b.upgrades, u)
			b.mu.Unlock()
			if strings.EqualFold(u, "h2c") {
				// A backend that accepts the h2c upgrade: were the offer
				// forwarded, the gateway would tunnel the connection here.
				conn, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					return
				}
				_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
				_ = brw.Flush()
				conn.Close()
				return
			}
		}
		n, _ := io.Copy(io.Discard, r.Body)
		b.mu.Lock()
		b.bodies[r.URL.Path] += n
		b.mu.Unlock()
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	}))
	b.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			b.conns.Add(1)
		}
	}
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	return b
}

// bodyBytesFor is how many body bytes requests for path delivered.
func (b *countingBackend) bodyBytesFor(path string) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bodies[path]
}

func (b *countingBackend) seenUpgrades() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.upgrades...)
}

// writeGatewayConfig writes body to dir/name after replacing {{JWKS}},
// {{JWKS2}}, {{BACKEND}}, {{AUDIT}} and {{DIR}}, and returns its path.
func writeGatewayConfig(t *testing.T, dir, name, body string, vars map[string]string) string {
	t.Helper()
	pairs := []string{"{{DIR}}", dir, "{{AUDIT}}", filepath.Join(dir, "audit.log")}
	for k, v := range vars {
		pairs = append(pairs, "{{"+k+"}}", v)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.NewReplacer(pairs...).Replace(body)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testGateway is a gateway running in-process on loopback listeners.
type testGateway struct {
	s     *server
	base  string // public URL, http:// or https://
	addr  string // public host:port
	admin string // admin URL
}

// startGateway loads path and runs the gateway until the test ends.
// signals turns SIGHUP handling on.
func startGateway(t *testing.T, path string, watch, signals bool) *testGateway {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := startServer(ctx, cfg, serverOptions{Logger: zerolog.Nop(), Stdout: io.Discard, Public: pub, Admin: adm, NoSignals: !signals, Watch: watch})
	if err != nil {
		cancel()
		pub.Close()
		adm.Close()
		t.Fatalf("startServer: %v", err)
	}
	done := make(chan int, 1)
	go func() { done <- s.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("gateway did not stop within 10s")
		}
	})
	scheme := "http://"
	if cfg.Server.TLS != nil {
		scheme = "https://"
	}
	return &testGateway{s: s, base: scheme + pub.Addr().String(), addr: pub.Addr().String(), admin: "http://" + adm.Addr().String()}
}

// scrape returns the value of one series (name with labels, exactly as
// Prometheus prints it) from the admin /metrics, or 0 when absent.
func (g *testGateway) scrape(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get(g.admin + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// configVersion is the config_version /readyz reports as serving.
func (g *testGateway) configVersion(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(g.admin + "/readyz")
	if err != nil {
		t.Fatalf("readyz: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		ConfigVersion string `json:"config_version"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.ConfigVersion
}

// eventually polls cond every 20ms until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// versionOf is the config_version of a file's current bytes.
func versionOf(t *testing.T, path string) string {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return cfg.Version
}

const reloadConfigA = `
server: {address: "127.0.0.1:0", shutdown_grace: 5s}
admin: {address: "127.0.0.1:0"}
providers:
  - {name: main, issuer: "https://idp.test/", audiences: [api], jwks_url: "{{JWKS}}", algorithms: [ES256], refresh_interval: 1h}
routes:
  - {name: api, match: {path_prefix: /api}, upstream: {url: "{{BACKEND}}"}, auth: {providers: [main]}}
  - {name: open, match: {path_prefix: /open}, upstream: {url: "{{BACKEND}}"}, auth: {mode: "off"}}
  - {name: admin, match: {path_prefix: /admin}, upstream: {url: "{{BACKEND}}"}, auth: {providers: [main], require: {scopes: [admin]}}}
audit: {output: file, file: "{{AUDIT}}"}
`

// reloadConfigB keeps provider main byte for byte, adds provider alt and a
// route for it, and changes the routes' upstream timeout.
const reloadConfigB = `
server: {address: "127.0.0.1:0", shutdown_grace: 5s}
admin: {address: "127.0.0.1:0"}
providers:
  - {name: main, issuer: "https://idp.test/", audiences: [api], jwks_url: "{{JWKS}}", algorithms: [ES256], refresh_interval: 1h}
  - {name: alt, issuer: "https://alt.test/", audiences: [api], jwks_url: "{{JWKS2}}", algorithms: [ES256], refresh_interval: 1h}
routes:
  - {name: api, match: {path_prefix: /api}, upstream: {url: "{{BACKEND}}", timeout: 10s}, auth: {providers: [main]}}
  - {name: open, match: {path_prefix: /open}, upstream: {url: "{{BACKEND}}", timeout: 10s}, auth: {mode: "off"}}
  - {name: admin, match: {path_prefix: /admin}, upstream: {url: "{{BACKEND}}", timeout: 10s}, auth: {providers: [main], require: {scopes: [admin]}}}
  - {name: alt, match: {path_prefix: /alt}, upstream: {url: "{{BACKEND}}"}, auth: {providers: [alt]}}
audit: {output: file, file: "{{AUDIT}}"}
`

// TestReloadFiftyTimesUnderLoadFailsNoRequest pins issue 3 item 2: 50
// reloads (two valid configs alternating, a few invalid ones among them)
// while 8 clients send requests without pause: not one request fails or
// gets an answer other than its route's, every reload is counted in
// jwtgate_config_reloads_total{result}, and the provider that no reload
// changes keeps its keys without a single refetch (a provider that comes
// and goes is fetched each time it comes).
func TestReloadFiftyTimesUnderLoadFailsNoRequest(t *testing.T) {
	dir := t.TempDir()
	main, alt := newIssuer(t, "k1"), newIssuer(t, "k2")
	be := newBackend(t)
	vars := map[string]string{"JWKS": main.srv.URL, "JWKS2": alt.srv.URL, "BACKEND": be.srv.URL}
	path := writeGatewayConfig(t, dir, "gateway.yaml", reloadConfigA, vars)
	g := startGateway(t, path, false, false)
	tok := main.mint(t, nil)

	type target struct {
		path, token string
		want        int
	}
	targets := []target{
		{"/api/orders", tok, 200},
		{"/open/docs", "", 200},
		{"/admin/panel", tok, 403}, // token lacks scope admin
		{"/api/orders", "", 401},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	var firstFail atomic.Value
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tg := targets[i%len(targets)]
				req, _ := http.NewRequest("GET", g.base+tg.path, nil)
				if tg.token != "" {
					req.Header.Set("Authorization", "Bearer "+tg.token)
				}
				sent.Add(1)
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					firstFail.CompareAndSwap(nil, fmt.Sprintf("%s: %v", tg.path, err))
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tg.want {
					failed.Add(1)
					firstFail.CompareAndSwap(nil, fmt.Sprintf("%s: status %d, want %d", tg.path, resp.StatusCode, tg.want))
				}
			}
		}()
	}

	invalid := []string{
		"server: {address: \"127.0.0.1:0\"}\nroutes: [{name: x, match: {path_prefix: /x}, bogus: 1}]\n",
		strings.Replace(reloadConfigA, "algorithms: [ES256]", "algorithms: [none]", 1),
		"server: [not, a, map\n",
	}
	// bLoads counts the swaps from A to B: only those start provider alt
	// (B to an invalid file to B keeps the B that serves).
	var wantOK, wantErr, bLoads int
	servingB := false
	for i := range 50 {
		switch {
		case i%10 == 9:
			writeGatewayConfig(t, dir, "gateway.yaml", invalid[(i/10)%len(invalid)], vars)
			wantErr++
		case i%2 == 0:
			writeGatewayConfig(t, dir, "gateway.yaml", reloadConfigB, vars)
			wantOK++
			if !servingB {
				bLoads++
			}
			servingB = true
		default:
			writeGatewayConfig(t, dir, "gateway.yaml", reloadConfigA, vars)
			wantOK++
			servingB = false
		}
		g.s.reload("test")
		time.Sleep(2 * time.Millisecond) // let requests interleave with the swaps
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()

	t.Logf("sent %d requests; backend accepted %d connections", sent.Load(), be.conns.Load())
	if n := sent.Load(); n < 100 {
		t.Errorf("only %d requests were sent during the reloads; the load is too thin to prove anything", n)
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during reloads; first: %v", n, sent.Load(), firstFail.Load())
	}
	if got := g.scrape(t, `jwtgate_config_reloads_total{result="ok"}`); got != float64(wantOK) {
		t.Errorf(`jwtgate_config_reloads_total{result="ok"} = %v, want %d`, got, wantOK)
	}
	if got := g.scrape(t, `jwtgate_config_reloads_total{result="error"}`); got != float64(wantErr) {
		t.Errorf(`jwtgate_config_reloads_total{result="error"} = %v, want %d`, got, wantErr)
	}
	if n := main.hits.Load(); n != 1 {
		t.Errorf("the unchanged provider's JWKS was fetched %d times across %d reloads, want 1 (startup only)", n, wantOK)
	}
	if n := alt.hits.Load(); n != int64(bLoads) {
		t.Errorf("the provider present only in config B was fetched %d times, want %d (once per swap from A to B)", n, bLoads)
	}
	recs := readRecords(t, filepath.Join(dir, "audit.log"))
	reloads := map[string]int{}
	for _, r := range recs {
		if r["event"] == "config_reload" {
			res, _ := r["result"].(string)
			reloads[res]++
		}
	}
	if reloads["ok"] != wantOK || reloads["error"] != wantErr {
		t.Errorf("config_reload audit records by result = %v, want ok %d, error %d", reloads, wantOK, wantErr)
	}
}
