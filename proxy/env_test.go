package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/jwtgate/jwtgate/audit"
	"github.com/jwtgate/jwtgate/config"
	"github.com/jwtgate/jwtgate/jwks"
	"github.com/jwtgate/jwtgate/metrics"
)

// Test keys are generated once per test binary: RSA generation is slow.
var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

const (
	testIssuer = "https://idp.test/"
	testAud    = "api"
	hmacSecret = "0123456789abcdef0123456789abcdef-test-only"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf returns the public JWK of a test key.
func jwkOf(kid string, pub crypto.PublicKey, alg string) map[string]any {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": kid, "alg": alg, "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		ecdh, _ := k.ECDH()
		raw := ecdh.Bytes() // 0x04 || X || Y
		n := (len(raw) - 1) / 2
		return map[string]any{"kty": "EC", "kid": kid, "alg": alg, "use": "sig", "crv": "P-256", "x": b64(raw[1 : 1+n]), "y": b64(raw[1+n:])}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "kid": kid, "alg": alg, "use": "sig", "crv": "Ed25519", "x": b64(k)}
	}
	panic("unknown key type")
}

// jwksServer serves a switchable JWK Set and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	set     []map[string]any
	status  int
	fetches atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...map[string]any) *jwksServer {
	j := &jwksServer{set: keys, status: 200}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		defer j.mu.Unlock()
		if j.status != 200 {
			w.WriteHeader(j.status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": j.set})
	}))
	t.Cleanup(j.Close)
	return j
}

func (j *jwksServer) setKeys(keys ...map[string]any) {
	j.mu.Lock()
	j.set = keys
	j.mu.Unlock()
}

// received is what the echo backend saw.
type received struct {
	Method     string
	RequestURI string
	Path       string
	Host       string
	Header     http.Header
}

// backend is an echo server that records every request it receives.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newBackend(t testing.TB) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.reqs = append(b.reqs, received{r.Method, r.RequestURI, r.URL.Path, r.Host, r.Header.Clone()})
		b.mu.Unlock()
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "backend ok")
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) last(t testing.TB) received {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.reqs) == 0 {
		t.Fatalf("backend received no request")
	}
	return b.reqs[len(b.reqs)-1]
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.reqs)
}

// syncBuffer is an io.Writer safe for the audit writer's goroutine.
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

// env is a running gateway in front of a real backend and JWKS server,
// with the real audit writer writing to a buffer.
type env struct {
	t       testing.TB
	jwks    *jwksServer
	backend *backend
	gw      *httptest.Server
	handler *Handler
	writer  *audit.Writer
	out     *syncBuffer
	logs    *syncBuffer
	client  *http.Client
	now     func() time.Time
	// offset moves the gateway's clock forward (nanoseconds); atomic
	// because the JWKS refresher reads the clock on its own goroutine.
	offset  atomic.Int64
	stream  *streamBackend
	metrics *metrics.Metrics
	cfgText []byte
	deps    Deps
	ctx     context.Context
}

// envOptions vary newEnvWith's gateway.
type envOptions struct {
	// metrics, when set, is passed in Deps.
	metrics *metrics.Metrics
	// keysChanged wires the providers' refresh events to the handler's
	// cache eviction, as cmd/jwtgate does.
	keysChanged bool
}

// cfgTemplate is the base config of the tests; the arguments are the
// JWKS URL, the echo backend URL, the issuer and the streaming backend URL. Routes cover every mode and requirement kind.
const cfgTemplate = `
server: {address: "127.0.0.1:0", trusted_proxies: [10.9.0.0/16]}
admin: {address: "127.0.0.1:0"}
providers:
  - name: main
    issuer: %[3]q
    audiences: [api]
    jwks_url: %[1]q
    algorithms: [RS256, ES256, EdDSA]
    unknown_kid_min_interval: 1h
    clock_skew: 30s
    max_lifetime: 2h
    required_claims: [exp, sub]
    token_sources:
      - {header: Authorization, prefix: "Bearer "}
      - {cookie: access_token}
      - {query: access_token}
  - name: hmac
    issuer: https://hmac.test/
    audiences: [api]
    algorithms: [HS256]
    keys: [{kid: h1, alg: HS256, secret_env: JWTGATE_TEST_HMAC}]
routes:
  - name: public
    match: {path_prefix: /public}
    upstream: {url: %[2]q}
    auth: {mode: "off"}
  - name: api
    match: {path_prefix: /api}
    upstream: {url: %[2]q, timeout: 300ms}
    auth:
      providers: [main]
      require: {scopes: [api:read]}
      forward: {claims_to_headers: {sub: X-User-Id, "realm_access.roles": X-Roles, email: X-User-Email}}
  - name: admin
    match: {path_prefix: /admin}
    upstream: {url: %[2]q}
    auth:
      providers: [main]
      require: {claims: [{claim: realm_access.roles, contains_any: [admin]}]}
      forward: {claims_to_headers: {sub: X-User-Id}}
  - name: strip
    match: {path_prefix: /strip}
    upstream: {url: %[2]q}
    auth: {providers: [main], forward: {strip_token: true}}
  - name: opt
    match: {path_prefix: /opt}
    upstream: {url: %[2]q}
    auth: {mode: optional, providers: [main], forward: {claims_to_headers: {sub: X-User-Id}}}
  - name: dry
    match: {path_prefix: /dry}
    upstream: {url: %[2]q}
    auth: {mode: dry_run, providers: [main], require: {scopes: [dry:run]}}
  - name: hmac
    match: {path_prefix: /hmac}
    upstream: {url: %[2]q}
    auth: {providers: [hmac]}
  - name: dead
    match: {path_prefix: /dead}
    upstream: {url: "http://127.0.0.1:1"}
    auth: {mode: "off"}
  - name: svc
    match: {path_prefix: /svc}
    upstream: {url: %[2]q, strip_prefix: true}
    auth: {providers: [main]}
  - name: based
    match: {path_prefix: /based}
    upstream: {url: "%[2]s/base", strip_prefix: true}
    auth: {mode: "off"}
  - name: readonly
    match: {path_prefix: /ro, methods: [GET, HEAD]}
    upstream: {url: %[2]q}
    auth: {mode: "off"}
  - name: slowpub
    match: {path_prefix: /slowpub}
    upstream: {url: %[2]q, timeout: 300ms}
    auth: {mode: "off"}
  - name: stream
    match: {path_prefix: /stream}
    upstream: {url: %[4]q}
    auth: {providers: [main]}
  - name: cors
    match: {path_prefix: /cors}
    upstream: {url: %[2]q}
    auth: {providers: [main], cors_preflight: pass, forward: {claims_to_headers: {sub: X-User-Id}}}
audit:
  output: stdout
  claims: [sub, jti, email]
`

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, envOptions{})
}

// newEnvWith is newEnv with options.
func newEnvWith(t testing.TB, o envOptions) *env {
	t.Helper()
	testKeys(t)
	if st, ok := t.(interface{ Setenv(k, v string) }); ok {
		st.Setenv("JWTGATE_TEST_HMAC", hmacSecret)
	}
	e := &env{t: t, out: &syncBuffer{}, logs: &syncBuffer{}, now: time.Now}
	e.jwks = newJWKSServer(t, jwkOf("rsa1", &rsaKey.PublicKey, "RS256"), jwkOf("ec1", &ecKey.PublicKey, "ES256"), jwkOf("ed1", edKey.Public(), "EdDSA"))
	e.backend = newBackend(t)
	e.stream = newStreamBackend(t)
	e.metrics = o.metrics
	e.cfgText = []byte(fmt.Sprintf(cfgTemplate, e.jwks.URL+"/jwks.json", e.backend.URL, testIssuer, e.stream.URL))
	cfg, err := config.Parse(e.cfgText, t.TempDir())
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	e.writer, err = audit.New(cfg.Audit, audit.Options{Stdout: e.out, ConfigVersion: cfg.Version})
	if err != nil {
		t.Fatalf("audit.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.ctx = ctx
	e.deps = Deps{Logger: zerolog.New(e.logs), Audit: e.writer, Metrics: o.metrics,
		Now: func() time.Time { return e.now().Add(time.Duration(e.offset.Load())) }}
	var hp atomic.Pointer[Handler]
	if o.keysChanged {
		e.deps.OnRefresh = func(ev jwks.RefreshEvent) {
			if h := hp.Load(); h != nil {
				h.KeysChanged(ev)
			}
		}
	}
	g, err := Build(ctx, cfg, e.deps, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	e.handler = NewHandler(g)
	hp.Store(e.handler)
	e.gw = httptest.NewServer(e.handler)
	e.client = e.gw.Client()
	t.Cleanup(func() {
		e.gw.Close()
		e.handler.Current().Retire(nil)
		cancel()
		_ = e.writer.Close()
	})
	return e
}

// claims returns valid claims for the main provider, with overrides.
func claims(over map[string]any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": testIssuer, "aud": testAud, "sub": "alice", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"scope": "api:read", "jti": "jti-1", "email": "alice@example.com", "realm_access": map[string]any{"roles": []any{"admin", "ops"}}}
	for k, v := range over {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// sign mints a token with a real key; kid "" leaves it out.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func (e *env) rs256(over map[string]any) string {
	return sign(e.t, jwt.SigningMethodRS256, rsaKey, "rsa1", claims(over))
}

// do sends a request through the gateway; token "" sends none.
func (e *env) do(method, path, token string, hdr map[string]string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.gw.URL+path, nil)
	if err != nil {
		e.t.Fatalf("request: %v", err)
	}
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
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// records flushes the audit writer and returns every record written.
func (e *env) records() []map[string]any {
	e.t.Helper()
	if err := e.writer.Flush(); err != nil {
		e.t.Fatalf("flush: %v", err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(e.out.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			e.t.Fatalf("audit line is not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// lastRecord is the newest request record.
func (e *env) lastRecord() map[string]any {
	e.t.Helper()
	recs := e.records()
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i]["event"] == "request" {
			return recs[i]
		}
	}
	e.t.Fatalf("no request record")
	return nil
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawGet sends "GET path HTTP/1.1" over TCP exactly as written (no client
// normalisation) and returns the status code.
func (e *env) rawGet(path string) int {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.gw.Listener.Addr().String())
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatalf("read response: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// streamBackend is a second upstream for streaming answers: /stream/sse
// sends one server-sent event, flushes, waits, then sends another;
// /stream/ws accepts a WebSocket-style upgrade and echoes lines over the
// hijacked connection.
type streamBackend struct {
	*httptest.Server
	hits atomic.Int64
	// secondWritten is set just before the second event is written.
	secondWritten atomic.Bool
	// release lets the second event go early (the test read the first).
	release     chan struct{}
	releaseOnce sync.Once
}

func newStreamBackend(t testing.TB) *streamBackend {
	s := &streamBackend{release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		switch r.URL.Path {
		case "/stream/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = io.WriteString(w, "data: one\n\n")
			_ = http.NewResponseController(w).Flush()
			select {
			case <-s.release:
			case <-time.After(300 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
			s.secondWritten.Store(true)
			_, _ = io.WriteString(w, "data: two\n\n")
		case "/stream/ws":
			if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
				http.Error(w, "upgrade required", http.StatusUpgradeRequired)
				return
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello\n")
			_ = brw.Flush()
			for {
				line, err := brw.ReadString('\n')
				if err != nil {
					return
				}
				_, _ = brw.WriteString("echo:" + line)
				_ = brw.Flush()
			}
		case "/stream/truncated": // promises 1000 bytes, sends 10, hangs up
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n0123456789")
			_ = brw.Flush()
			conn.Close()
		case "/stream/endless": // writes until the client goes away (at most 5s)
			w.Header().Set("Content-Type", "text/plain")
			deadline := time.After(5 * time.Second)
			for {
				if _, err := io.WriteString(w, "chunk\n"); err != nil {
					return
				}
				_ = http.NewResponseController(w).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-deadline:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		default:
			_, _ = io.WriteString(w, "stream ok")
		}
	}))
	t.Cleanup(func() {
		s.releaseOnce.Do(func() { close(s.release) })
		s.Close()
	})
	return s
}

// advance moves the gateway's clock forward by d.
func (e *env) advance(d time.Duration) { e.offset.Add(int64(d)) }

// serveFrom runs req through the handler directly, as if it came from
// remote (an "ip:port" RemoteAddr), and returns the recorded answer. It is
// how tests play a trusted proxy without a 10.9.0.0/16 interface.
func (e *env) serveFrom(remote string, req *http.Request) *httptest.ResponseRecorder {
	e.t.Helper()
	req.RemoteAddr = remote
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, req)
	return w
}

// sendRaw writes payload to addr over one TCP connection and returns
// everything answered until the server closes it. The payload's last
// request must carry "Connection: close" (or be refused). The write side
// is not half-closed: Go's server takes that EOF for a client that went
// away and cancels the request.
func (e *env) sendRaw(addr, payload string) string {
	e.t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, payload); err != nil {
		e.t.Fatalf("write: %v", err)
	}
	out, _ := io.ReadAll(conn)
	return string(out)
}

// requestRecords returns only the request records.
func (e *env) requestRecords() []map[string]any {
	e.t.Helper()
	var out []map[string]any
	for _, r := range e.records() {
		if r["event"] == "request" {
			out = append(out, r)
		}
	}
	return out
}

// counter reads a counter's value from the metrics registry (0 when the
// series does not exist yet).
func counter(t testing.TB, m *metrics.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		sum := 0.0
		for _, mm := range mf.GetMetric() {
			sum += mm.GetCounter().GetValue()
		}
		return sum
	}
	return 0
}
