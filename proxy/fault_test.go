package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/jwtgate/jwtgate/audit"
	"github.com/jwtgate/jwtgate/config"
	"github.com/jwtgate/jwtgate/jwks"
	"github.com/jwtgate/jwtgate/metrics"
)

// This file injects faults into everything the gateway depends on — the
// JWKS endpoint, the upstream, the audit sink — and pins, for each, that
// the gateway does not crash, leaks no goroutine, writes a clear audit
// record and answers with the right status (issue 5, item 5).

// faultJWKS is a JWKS endpoint whose behaviour a test switches at will.
type faultJWKS struct {
	*httptest.Server
	mu      sync.Mutex
	h       http.HandlerFunc
	fetches atomic.Int64
	// release is closed at cleanup so that hanging handlers return before
	// the server's Close waits for them.
	release chan struct{}
}

func newFaultJWKS(t testing.TB, h http.HandlerFunc) *faultJWKS {
	t.Helper()
	j := &faultJWKS{h: h, release: make(chan struct{})}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		h := j.h
		j.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(j.Close)
	t.Cleanup(func() { close(j.release) }) // runs before Close
	return j
}

// set switches the endpoint's behaviour.
func (j *faultJWKS) set(h http.HandlerFunc) {
	j.mu.Lock()
	j.h = h
	j.mu.Unlock()
}

func (j *faultJWKS) url() string { return j.URL + "/jwks.json" }

// serveKeys answers 200 with a JWK Set of keys.
func serveKeys(keys ...map[string]any) http.HandlerFunc {
	if keys == nil {
		keys = []map[string]any{} // an empty set, not null
	}
	body, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return serveBody(body)
}

func serveBody(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}

func serveStatus(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
}

// hangUp accepts the request and closes the connection without answering.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// hang never answers; it returns when the client gives up.
func (j *faultJWKS) hang(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-j.release:
	}
}

// slow delays h by d.
func (j *faultJWKS) slow(d time.Duration, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
			h(w, r)
		case <-r.Context().Done():
		case <-j.release:
		}
	}
}

// hugeBody streams 50 MiB of a set that never ends.
func hugeBody(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"keys":[`)
	chunk := []byte(strings.Repeat(" ", 64<<10))
	for n := 0; n < 50<<20; n += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// faultBackend is an upstream that misbehaves according to the path:
// /flaky/close (hangs up before answering), /flaky/rst (TCP reset before
// answering), /flaky/partial (sends the header and part of the body, then
// resets), /flaky/hang (never answers), /flaky/slow (answers after 100ms),
// anything else answers 200.
type faultBackend struct {
	*httptest.Server
	hits    atomic.Int64
	release chan struct{}
}

func newFaultBackend(t testing.TB) *faultBackend {
	b := &faultBackend{release: make(chan struct{})}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/flaky/close":
			hangUp(w, r)
		case "/flaky/rst", "/flaky/partial":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			if r.URL.Path == "/flaky/partial" {
				_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\npartial")
				_ = brw.Flush()
				time.Sleep(20 * time.Millisecond) // let the gateway send the header on
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close with RST, not FIN
			}
			conn.Close()
		case "/flaky/hang":
			select {
			case <-r.Context().Done():
			case <-b.release:
			}
		case "/flaky/slow":
			select {
			case <-time.After(100 * time.Millisecond):
				_, _ = io.WriteString(w, "slow ok")
			case <-r.Context().Done():
			}
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(b.Close)
	t.Cleanup(func() { close(b.release) })
	return b
}

// faultOptions vary newFaultEnv's gateway.
type faultOptions struct {
	refresh, fetchTimeout, unknownKID time.Duration
	onWriteError                      string    // "" = block
	sink                              io.Writer // audit sink; nil = the env's buffer
	metrics                           *metrics.Metrics
	// initial, when set, replaces the keys handler before the gateway is
	// built (for behaviours that need the endpoint, like hanging).
	initial func(j *faultJWKS) http.HandlerFunc
}

const faultCfg = `
server: {address: "127.0.0.1:0"}
admin: {address: "127.0.0.1:0"}
providers:
  - name: main
    issuer: %[1]q
    audiences: [api]
    jwks_url: %[2]q
    algorithms: [RS256, ES256]
    refresh_interval: %[4]s
    fetch_timeout: %[5]s
    unknown_kid_min_interval: %[6]s
routes:
  - name: api
    match: {path_prefix: /api}
    upstream: {url: %[3]q, timeout: 300ms}
    auth: {providers: [main], forward: {claims_to_headers: {sub: X-User-Id}}}
  - name: refused
    match: {path_prefix: /refused}
    upstream: {url: "http://127.0.0.1:1", timeout: 300ms}
    auth: {providers: [main]}
  - name: flaky
    match: {path_prefix: /flaky}
    upstream: {url: %[3]q, timeout: 300ms}
    auth: {providers: [main]}
  - name: public
    match: {path_prefix: /public}
    upstream: {url: %[3]q}
    auth: {mode: "off"}
audit:
  output: stdout
  on_write_error: %[7]s
  claims: [sub]
`

// faultEnv is a gateway in front of a faultBackend, with keys from a
// faultJWKS, whose refresh events are kept.
type faultEnv struct {
	*env
	keys   *faultJWKS
	up     *faultBackend
	mu     sync.Mutex
	events []jwks.RefreshEvent
}

func newFaultEnv(t *testing.T, keys http.HandlerFunc, o faultOptions) *faultEnv {
	t.Helper()
	testKeys(t)
	if o.refresh == 0 {
		o.refresh = time.Hour
	}
	if o.fetchTimeout == 0 {
		o.fetchTimeout = 500 * time.Millisecond
	}
	if o.unknownKID == 0 {
		o.unknownKID = time.Hour
	}
	if o.onWriteError == "" {
		o.onWriteError = "block"
	}
	fe := &faultEnv{keys: newFaultJWKS(t, keys), up: newFaultBackend(t)}
	if o.initial != nil {
		fe.keys.set(o.initial(fe.keys))
	}
	e := &env{t: t, out: &syncBuffer{}, logs: &syncBuffer{}, now: time.Now}
	fe.env = e
	e.cfgText = []byte(fmt.Sprintf(faultCfg, testIssuer, fe.keys.url(), fe.up.URL, o.refresh, o.fetchTimeout, o.unknownKID, o.onWriteError))
	cfg, err := config.Parse(e.cfgText, t.TempDir())
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	sink := o.sink
	if sink == nil {
		sink = e.out
	}
	e.writer, err = audit.New(cfg.Audit, audit.Options{Stdout: sink, ConfigVersion: cfg.Version})
	if err != nil {
		t.Fatalf("audit.New: %v", err)
	}
	if o.metrics != nil {
		w := e.writer
		o.metrics.SetAuditSource(func() (uint64, uint64) { return w.Written(), w.Dropped() })
	}
	e.metrics = o.metrics
	ctx, cancel := context.WithCancel(context.Background())
	e.ctx = ctx
	e.deps = Deps{Logger: zerolog.New(e.logs), Audit: e.writer, Metrics: o.metrics, OnRefresh: func(ev jwks.RefreshEvent) {
		fe.mu.Lock()
		fe.events = append(fe.events, ev)
		fe.mu.Unlock()
	}}
	g, err := Build(ctx, cfg, e.deps, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	e.handler = NewHandler(g)
	e.gw = httptest.NewServer(e.handler)
	e.client = e.gw.Client()
	t.Cleanup(func() {
		e.gw.Close()
		e.handler.Current().Retire(nil)
		cancel()
		_ = e.writer.Close()
	})
	return fe
}

// provider is the main provider's key source.
func (fe *faultEnv) provider() *jwks.Provider { return fe.handler.Current().Providers()["main"] }

// waitEvent waits for a refresh event after the first skip ones that
// satisfies ok.
func (fe *faultEnv) waitEvent(t *testing.T, skip int, what string, ok func(jwks.RefreshEvent) bool) jwks.RefreshEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fe.mu.Lock()
		evs := slices.Clone(fe.events)
		fe.mu.Unlock()
		for i := skip; i < len(evs); i++ {
			if ok(evs[i]) {
				return evs[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s refresh event after %d (last events: %+v)", what, skip, evs[max(0, len(evs)-3):])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (fe *faultEnv) eventCount() int {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	return len(fe.events)
}

// want sends one request and checks the status and the request record.
func (fe *faultEnv) want(t *testing.T, path, token string, status int, decision, reason string) map[string]any {
	t.Helper()
	resp, body := fe.doBody("GET", path, token, nil)
	if resp.StatusCode != status {
		t.Errorf("GET %s: status %d, want %d (body %s)", path, resp.StatusCode, status, body)
	}
	rec := fe.lastRecord()
	if rec["status"] != float64(status) || rec["decision"] != decision || str(rec["reason"]) != reason {
		t.Errorf("GET %s: record status=%v decision=%v reason=%v, want %d %s %q", path, rec["status"], rec["decision"], rec["reason"], status, decision, reason)
	}
	return rec
}

func str(v any) string { s, _ := v.(string); return s }

// checkGoroutines registers, first, a cleanup that runs after every other
// one and fails the test when the goroutine count does not settle back to
// where it was when the test began (give or take slack): every server,
// refresher, writer and connection the test started must be gone.
func checkGoroutines(t *testing.T) {
	t.Helper()
	const slack = 0
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before+slack {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d at start, %d after cleanup; stacks:\n%s", before, n, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// es256 mints a token for the main provider with the EC test key.
func es256(t testing.TB, kid string, over map[string]any) string {
	return sign(t, jwt.SigningMethodES256, ecKey, kid, claims(over))
}

// TestJWKSDownAtStartAnswers503 pins SPEC §4 and §8 for a JWKS endpoint
// that fails from the start (connection refused, hang-up, 500): the
// gateway starts degraded instead of crashing, the provider is not Ready
// (what /readyz reports), protected requests are refused with 503
// temporarily_unavailable and reason keys_unavailable — not 401, which
// would blame the client — and the gateway recovers by itself once the
// endpoint answers.
func TestJWKSDownAtStartAnswers503(t *testing.T) {
	testKeys(t)
	cases := []struct {
		name string
		down func(j *faultJWKS) http.HandlerFunc
	}{
		{"status-500", func(*faultJWKS) http.HandlerFunc { return serveStatus(500) }},
		{"hang-up", func(*faultJWKS) http.HandlerFunc { return hangUp }},
		{"hanging", func(j *faultJWKS) http.HandlerFunc { return j.hang }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			fe := newFaultEnv(t, nil, faultOptions{refresh: 50 * time.Millisecond, fetchTimeout: 100 * time.Millisecond, initial: tc.down})
			if ok, why := fe.provider().Ready(); ok || why != "keys never loaded" {
				t.Errorf("Ready() = %v, %q, want false, keys never loaded", ok, why)
			}
			resp, body := fe.doBody("GET", "/api/x", es256(t, "ec1", nil), nil)
			if resp.StatusCode != http.StatusServiceUnavailable || readErrorBody(t, resp, body).Error != "temporarily_unavailable" {
				t.Errorf("status %d body %s, want 503 temporarily_unavailable", resp.StatusCode, body)
			}
			if resp.Header.Get("WWW-Authenticate") != "" {
				t.Errorf("503 carries WWW-Authenticate %q: the client is not at fault", resp.Header.Get("WWW-Authenticate"))
			}
			rec := fe.lastRecord()
			if rec["reason"] != "keys_unavailable" || rec["decision"] != "deny" || rec["provider"] != "main" || rec["suspicious"] != nil {
				t.Errorf("record reason=%v decision=%v provider=%v suspicious=%v, want keys_unavailable deny main, not suspicious", rec["reason"], rec["decision"], rec["provider"], rec["suspicious"])
			}
			fe.want(t, "/public/x", "", 200, "public", "") // unauthenticated routes are unaffected

			fe.keys.set(serveKeys(jwkOf("ec1", &ecKey.PublicKey, "ES256")))
			deadline := time.Now().Add(3 * time.Second)
			for ok, _ := fe.provider().Ready(); !ok; ok, _ = fe.provider().Ready() {
				if time.Now().After(deadline) {
					t.Fatal("provider not Ready 3s after the JWKS came up")
				}
				time.Sleep(10 * time.Millisecond)
			}
			fe.want(t, "/api/x", es256(t, "ec1", nil), 200, "allow", "")
		})
	}
}

// TestJWKSFailureAfterLoadKeepsLastGoodKeys pins SPEC §8 through the
// gateway: once keys are loaded, every kind of failing refresh — refused
// or reset connections, a hang past fetch_timeout, a slow answer past it,
// 500, garbage, a 50 MiB body (capped at 1 MiB), a redirect to plain http
// — is reported as a failed jwks_refresh with its cause and leaves the
// last good keys in use: tokens keep verifying, the provider stays Ready,
// and a kid the failed answer would have added is never trusted.
func TestJWKSFailureAfterLoadKeepsLastGoodKeys(t *testing.T) {
	testKeys(t)
	good := serveKeys(jwkOf("ec1", &ecKey.PublicKey, "ES256"))
	cases := []struct {
		name    string
		fail    func(j *faultJWKS) http.HandlerFunc
		wantErr error // nil: any error
	}{
		{"status-500", func(*faultJWKS) http.HandlerFunc { return serveStatus(500) }, jwks.ErrUnexpectedStatus},
		{"hang-up", func(*faultJWKS) http.HandlerFunc { return hangUp }, nil},
		{"hanging", func(j *faultJWKS) http.HandlerFunc { return j.hang }, nil},
		{"slow-past-fetch-timeout", func(j *faultJWKS) http.HandlerFunc {
			return j.slow(time.Second, serveKeys(jwkOf("ec1", &ecKey.PublicKey, "ES256"), jwkOf("rsa1", &rsaKey.PublicKey, "RS256")))
		}, nil},
		{"garbage", func(*faultJWKS) http.HandlerFunc { return serveBody([]byte("<html>oops</html>")) }, jwks.ErrInvalidJWKS},
		{"50mib-body", func(*faultJWKS) http.HandlerFunc { return hugeBody }, jwks.ErrResponseTooLarge},
		{"redirect-to-http-off-loopback", func(*faultJWKS) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://203.0.113.7/jwks.json", http.StatusFound)
			}
		}, jwks.ErrRedirectRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			fe := newFaultEnv(t, good, faultOptions{refresh: 30 * time.Millisecond, fetchTimeout: 150 * time.Millisecond})
			fe.want(t, "/api/x", es256(t, "ec1", nil), 200, "allow", "")
			last := fe.provider().LastGoodFetch()

			n := fe.eventCount()
			fe.keys.set(tc.fail(fe.keys))
			ev := fe.waitEvent(t, n, "failed", func(ev jwks.RefreshEvent) bool { return ev.Result == jwks.ResultError })
			if tc.wantErr != nil && !errors.Is(ev.Err, tc.wantErr) {
				t.Errorf("refresh error = %v, want %v", ev.Err, tc.wantErr)
			}
			if ev.Keys != 1 {
				t.Errorf("failed refresh reports %d keys, want 1 (last good kept)", ev.Keys)
			}
			// A fresh token (no cache hit) still verifies with the last good key.
			rec := fe.want(t, "/api/x", es256(t, "ec1", map[string]any{"jti": "after-failure"}), 200, "allow", "")
			if rec["kid"] != "ec1" || rec["sub"] != "alice" {
				t.Errorf("record kid=%v sub=%v, want ec1 alice", rec["kid"], rec["sub"])
			}
			if ok, why := fe.provider().Ready(); !ok {
				t.Errorf("Ready() = false (%s) with fresh last good keys", why)
			}
			if !fe.provider().LastGoodFetch().Equal(last) {
				t.Errorf("LastGoodFetch moved on a failed refresh")
			}
			// The key the slow answer carries is never used: it came too late.
			fe.want(t, "/api/x", sign(t, jwt.SigningMethodRS256, rsaKey, "rsa1", claims(nil)), 401, "deny", "key_not_found")
		})
	}
}

// TestJWKSHangingBoundsUnknownKIDWait pins SPEC §3.5 "bounded by the
// request's own deadline (never minutes)": with the JWKS endpoint hanging,
// a token with an unknown kid waits at most about fetch_timeout for the
// refresh it triggers and is then refused with 401 key_not_found, while a
// known-kid token is answered at once.
func TestJWKSHangingBoundsUnknownKIDWait(t *testing.T) {
	testKeys(t)
	checkGoroutines(t)
	fe := newFaultEnv(t, serveKeys(jwkOf("ec1", &ecKey.PublicKey, "ES256")), faultOptions{fetchTimeout: 300 * time.Millisecond, unknownKID: time.Millisecond})
	fe.keys.set(fe.keys.hang)
	for i := 0; i < 3; i++ {
		start := time.Now()
		rec := fe.want(t, "/api/x", es256(t, fmt.Sprintf("new-%d", i), nil), 401, "deny", "key_not_found")
		if el := time.Since(start); el > 1200*time.Millisecond {
			t.Errorf("unknown kid answered after %v with the JWKS hanging; fetch_timeout is 300ms", el)
		}
		if rec["suspicious"] != true {
			t.Error("key_not_found record not suspicious")
		}
		start = time.Now()
		fe.want(t, "/api/x", es256(t, "ec1", map[string]any{"jti": fmt.Sprint(i)}), 200, "allow", "")
		if el := time.Since(start); el > 200*time.Millisecond {
			t.Errorf("known kid took %v while the JWKS hangs; it must not wait for the refresh", el)
		}
	}
}

// TestJWKSSlowAnswerWithinTimeoutServesRotatedKey pins the rotation path
// with a slow JWKS (100ms, fetch_timeout 1s): a token signed by a key
// published after start triggers one refresh, waits for it and is
// allowed; the jwks_refresh event names the added kid.
func TestJWKSSlowAnswerWithinTimeoutServesRotatedKey(t *testing.T) {
	testKeys(t)
	checkGoroutines(t)
	fe := newFaultEnv(t, serveKeys(jwkOf("ec1", &ecKey.PublicKey, "ES256")), faultOptions{fetchTimeout: time.Second, unknownKID: time.Millisecond})
	n := fe.eventCount()
	fe.keys.set(fe.keys.slow(100*time.Millisecond, serveKeys(jwkOf("ec1", &ecKey.PublicKey, "ES256"), jwkOf("rsa1", &rsaKey.PublicKey, "RS256"))))
	start := time.Now()
	rec := fe.want(t, "/api/x", sign(t, jwt.SigningMethodRS256, rsaKey, "rsa1", claims(nil)), 200, "allow", "")
	if el := time.Since(start); el < 100*time.Millisecond || el > 900*time.Millisecond {
		t.Errorf("rotated-key request took %v, want the ~100ms refresh", el)
	}
	if rec["kid"] != "rsa1" || str(rec["key_thumbprint"]) == "" {
		t.Errorf("record kid=%v key_thumbprint=%v", rec["kid"], rec["key_thumbprint"])
	}
	ev := fe.waitEvent(t, n, "unknown_kid", func(ev jwks.RefreshEvent) bool { return ev.Trigger == jwks.TriggerUnknownKID })
	if ev.Result != jwks.ResultOK || len(ev.Added) != 1 || ev.Added[0].KID != "rsa1" {
		t.Errorf("refresh event %+v, want ok with rsa1 added", ev)
	}
}

// TestJWKSEmptySetRevokesEveryKey pins that a 200 answer with an empty set
// is a revocation, not an error to paper over: the old keys are dropped
// (reported as removed), tokens they signed are no longer accepted, the
// provider is not Ready, and requests get 503 keys_unavailable.
func TestJWKSEmptySetRevokesEveryKey(t *testing.T) {
	testKeys(t)
	checkGoroutines(t)
	fe := newFaultEnv(t, serveKeys(jwkOf("ec1", &ecKey.PublicKey, "ES256")), faultOptions{refresh: 30 * time.Millisecond})
	tok := es256(t, "ec1", nil)
	fe.want(t, "/api/x", tok, 200, "allow", "")
	n := fe.eventCount()
	fe.keys.set(serveKeys())
	ev := fe.waitEvent(t, n, "empty", func(ev jwks.RefreshEvent) bool { return ev.Result == jwks.ResultOK && ev.Keys == 0 })
	if len(ev.Removed) != 1 || ev.Removed[0].KID != "ec1" {
		t.Errorf("Removed = %+v, want ec1", ev.Removed)
	}
	if ok, _ := fe.provider().Ready(); ok {
		t.Error("Ready() = true with an empty set")
	}
	// The same token (cached when it passed) is refused too.
	fe.want(t, "/api/x", tok, 503, "deny", "keys_unavailable")
	fe.want(t, "/api/x", es256(t, "ec1", map[string]any{"jti": "fresh"}), 503, "deny", "keys_unavailable")
}

// TestJWKSOneBadKeyAmongGoodOnes pins SPEC §5 "a weak or unusable key in a
// set is reported there and skipped, not fatal to the rest of the set":
// a set holding a 1024-bit RSA key, an EC point off its curve, an oct
// secret, an encryption key, a key whose alg contradicts its type and a
// duplicate kid next to good keys loads the good keys; tokens signed with
// the bad keys (the attacker's choice of kid) are refused.
func TestJWKSOneBadKeyAmongGoodOnes(t *testing.T) {
	testKeys(t)
	checkGoroutines(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fe := newFaultEnv(t, serveKeys(jwkOf("ec1", &ecKey.PublicKey, "ES256")), faultOptions{refresh: 30 * time.Millisecond})
	offCurve := jwkOf("off-curve", &other.PublicKey, "ES256")
	offCurve["y"] = offCurve["x"]
	encKey := jwkOf("enc", &other.PublicKey, "ES256")
	encKey["use"] = "enc"
	mismatch := jwkOf("mismatch", &other.PublicKey, "RS256")
	dup := jwkOf("ec1", &other.PublicKey, "ES256")
	n := fe.eventCount()
	fe.keys.set(serveKeys(
		jwkOf("ec1", &ecKey.PublicKey, "ES256"),
		jwkOf("weak", &weak.PublicKey, "RS256"),
		offCurve,
		map[string]any{"kty": "oct", "kid": "oct", "alg": "HS256", "k": b64([]byte(hmacSecret))},
		encKey,
		mismatch,
		dup,
		jwkOf("rsa1", &rsaKey.PublicKey, "RS256"),
	))
	ev := fe.waitEvent(t, n, "mixed set", func(ev jwks.RefreshEvent) bool { return ev.Result == jwks.ResultOK && len(ev.Added) > 0 })
	if len(ev.Skipped) < 5 {
		t.Errorf("Skipped = %+v, want every bad key reported", ev.Skipped)
	}
	fe.want(t, "/api/x", es256(t, "ec1", nil), 200, "allow", "")
	fe.want(t, "/api/x", sign(t, jwt.SigningMethodRS256, rsaKey, "rsa1", claims(nil)), 200, "allow", "")
	// Skipped keys are not there at all (key_not_found); of two keys with
	// one kid the first is kept, so the second one's signatures fail.
	for _, tc := range []struct{ name, tok, reason string }{
		{"weak-rsa", sign(t, jwt.SigningMethodRS256, weak, "weak", claims(nil)), "key_not_found"},
		{"off-curve", sign(t, jwt.SigningMethodES256, other, "off-curve", claims(nil)), "key_not_found"},
		{"enc-use", sign(t, jwt.SigningMethodES256, other, "enc", claims(nil)), "key_not_found"},
		{"alg-mismatch", sign(t, jwt.SigningMethodES256, other, "mismatch", claims(nil)), "key_not_found"},
		{"duplicate-kid", sign(t, jwt.SigningMethodES256, other, "ec1", claims(nil)), "signature_invalid"},
	} {
		rec := fe.want(t, "/api/x", tc.tok, 401, "deny", tc.reason)
		if rec["suspicious"] != true {
			t.Errorf("%s: record not suspicious", tc.name)
		}
	}
}

// TestUnknownKIDFloodKeepsKnownKIDFast pins SPEC §3.5 against kid
// spraying: while concurrent clients send tokens with ever-new kids, JWKS
// fetches stay bounded by unknown_kid_min_interval, every flood request is
// refused with key_not_found, and requests with a known kid (each a fresh
// token, so each is a full verification) stay fast: their p99 latency is
// under 50ms.
func TestUnknownKIDFloodKeepsKnownKIDFast(t *testing.T) {
	testKeys(t)
	checkGoroutines(t)
	const interval = 100 * time.Millisecond
	good := serveKeys(jwkOf("ec1", &ecKey.PublicKey, "ES256"))
	fe := newFaultEnv(t, good, faultOptions{fetchTimeout: time.Second, unknownKID: interval})
	fe.keys.set(fe.keys.slow(20*time.Millisecond, good)) // each refresh takes a while
	known := make([]string, 150)
	for i := range known {
		known[i] = es256(t, "ec1", map[string]any{"jti": fmt.Sprintf("known-%d", i)})
	}
	base := fe.keys.fetches.Load()
	start := time.Now()
	stop := make(chan struct{})
	var flood sync.WaitGroup
	var sent, wrong atomic.Int64
	for w := 0; w < 4; w++ {
		flood.Add(1)
		go func() {
			defer flood.Done()
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok := es256(t, fmt.Sprintf("spray-%d-%d", w, i), nil)
				req, _ := http.NewRequest("GET", fe.gw.URL+"/api/x", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					wrong.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent.Add(1)
				if resp.StatusCode != 401 {
					wrong.Add(1)
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // the flood is under way
	lat := make([]time.Duration, 0, len(known))
	for _, tok := range known {
		t0 := time.Now()
		resp := fe.do("GET", "/api/x", tok, nil)
		lat = append(lat, time.Since(t0))
		if resp.StatusCode != 200 {
			t.Errorf("known kid during flood: status %d", resp.StatusCode)
		}
	}
	close(stop)
	flood.Wait()
	elapsed := time.Since(start)

	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	t.Logf("flood: %d unknown-kid requests, %d fetches in %v; known-kid p50 %v p99 %v", sent.Load(), fe.keys.fetches.Load()-base, elapsed, lat[len(lat)/2], p99)
	if p99 > 50*time.Millisecond {
		t.Errorf("known-kid p99 = %v during the flood, want < 50ms", p99)
	}
	if wrong.Load() > 0 {
		t.Errorf("%d flood requests were not refused with 401", wrong.Load())
	}
	if sent.Load() < 20 {
		t.Fatalf("only %d flood requests: the flood did not happen", sent.Load())
	}
	if max := int64(elapsed/interval) + 2; fe.keys.fetches.Load()-base > max {
		t.Errorf("%d JWKS fetches in %v with unknown_kid_min_interval %v, want ≤ %d", fe.keys.fetches.Load()-base, elapsed, interval, max)
	}
	reasons := map[string]int{}
	for _, r := range fe.requestRecords() {
		if r["kid"] != "ec1" {
			reasons[str(r["reason"])]++
		}
	}
	if len(reasons) != 1 || reasons["key_not_found"] != int(sent.Load()) {
		t.Errorf("flood records by reason %v, want %d key_not_found", reasons, sent.Load())
	}
}

// TestUpstreamFaults pins SPEC §4/§5 for a misbehaving backend, on an
// authenticated route: refused connections and hang-ups before the answer
// are 502 upstream_unreachable; a reset after the status line breaks the
// answer (the client sees an error) and is still recorded with
// upstream_unreachable; a backend that never answers is 504
// upstream_timeout after the route's 300ms timeout; a slow answer within
// the timeout is 200. The decision stays allow with the caller's identity.
func TestUpstreamFaults(t *testing.T) {
	testKeys(t)
	cases := []struct {
		name   string
		path   string
		status int // 0: the answer breaks mid-body
		reason string
		max    time.Duration
	}{
		{"connection-refused", "/refused/x", 502, "upstream_unreachable", time.Second},
		{"hang-up-before-answer", "/flaky/close", 502, "upstream_unreachable", time.Second},
		{"reset-before-answer", "/flaky/rst", 502, "upstream_unreachable", time.Second},
		{"reset-mid-body", "/flaky/partial", 0, "upstream_unreachable", time.Second},
		{"hanging", "/flaky/hang", 504, "upstream_timeout", 900 * time.Millisecond},
		{"slow-within-timeout", "/flaky/slow", 200, "", time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			fe := newFaultEnv(t, serveKeys(jwkOf("ec1", &ecKey.PublicKey, "ES256")), faultOptions{})
			req := httptestRequest(t, "GET", fe.gw.URL+tc.path)
			req.Header.Set("Authorization", "Bearer "+es256(t, "ec1", nil))
			start := time.Now()
			resp, err := fe.client.Do(req)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			el := time.Since(start)
			switch {
			case tc.status == 0:
				if err == nil && resp.StatusCode == 200 {
					t.Errorf("broken answer read in full (%d bytes) without error", len(body))
				}
			case err != nil:
				t.Fatalf("request failed: %v", err)
			case resp.StatusCode != tc.status:
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			case tc.status >= 500:
				readErrorBody(t, resp, body)
			}
			if el > tc.max {
				t.Errorf("answered after %v, want within %v", el, tc.max)
			}
			wantStatus := tc.status
			if wantStatus == 0 {
				wantStatus = 502
			}
			recs := fe.waitRecords(t, 1)
			if len(recs) != 1 {
				t.Fatalf("%d request records, want exactly 1", len(recs))
			}
			rec := recs[0]
			if rec["status"] != float64(wantStatus) || rec["decision"] != "allow" || str(rec["reason"]) != tc.reason || rec["sub"] != "alice" {
				t.Errorf("record status=%v decision=%v reason=%v sub=%v, want %d allow %q alice", rec["status"], rec["decision"], rec["reason"], rec["sub"], wantStatus, tc.reason)
			}
			if rec["suspicious"] != nil {
				t.Error("an upstream failure is marked suspicious")
			}
		})
	}
}

// faultSink is an audit sink that can fail (disk full) or stall (a pipe
// nobody reads) until told to recover.
type faultSink struct {
	buf   *syncBuffer
	mu    sync.Mutex
	fail  bool
	stall chan struct{} // non-nil: writes wait until it is closed
}

func (s *faultSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	fail, stall := s.fail, s.stall
	s.mu.Unlock()
	if stall != nil {
		<-stall
	}
	if fail {
		return 0, fmt.Errorf("audit sink: %w", syscall.ENOSPC)
	}
	return s.buf.Write(p)
}

func (s *faultSink) break_(stall bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stall {
		s.stall = make(chan struct{})
	} else {
		s.fail = true
	}
}

func (s *faultSink) recover() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stall != nil {
		close(s.stall)
		s.stall = nil
	}
	s.fail = false
}

// TestAuditSinkFailureHonoursOnWriteError pins SPEC §2 audit.on_write_error
// with a sink that fails (ENOSPC) or stalls. With block, requests wait for
// the sink once the 1 MiB buffer is full — no answer goes out whose record
// could be lost — and after recovery every request has exactly one record
// and nothing is counted as dropped. With drop, requests never wait, the
// losses are counted in Writer.Dropped and jwtgate_audit_dropped_total,
// and audit_dropped records report them after recovery.
func TestAuditSinkFailureHonoursOnWriteError(t *testing.T) {
	testKeys(t)
	const n = 20
	ua := strings.Repeat("u", 64<<10) // 19 records of 64 KiB overflow the 1 MiB buffer
	for _, mode := range []string{"block", "drop"} {
		for _, stall := range []bool{false, true} {
			name := mode + "-failing-sink"
			if stall {
				name = mode + "-stalled-sink"
			}
			t.Run(name, func(t *testing.T) {
				checkGoroutines(t)
				sink := &faultSink{buf: &syncBuffer{}}
				m := metrics.New()
				fe := newFaultEnv(t, serveKeys(jwkOf("ec1", &ecKey.PublicKey, "ES256")), faultOptions{onWriteError: mode, sink: sink, metrics: m})
				fe.out = sink.buf
				tok := es256(t, "ec1", nil)
				fe.want(t, "/api/x", tok, 200, "allow", "") // the sink works

				sink.break_(stall)
				var done atomic.Int64
				var slowest atomic.Int64
				send := func(i int) {
					req := httptestRequest(t, "GET", fe.gw.URL+"/api/x")
					req.Header.Set("Authorization", "Bearer "+tok)
					req.Header.Set("User-Agent", fmt.Sprintf("sink-%03d-%s", i, ua))
					t0 := time.Now()
					resp, err := fe.client.Do(req)
					if err != nil {
						t.Errorf("request %d: %v", i, err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if d := int64(time.Since(t0)); d > slowest.Load() {
						slowest.Store(d)
					}
					if resp.StatusCode != 200 {
						t.Errorf("request %d: status %d", i, resp.StatusCode)
					}
					done.Add(1)
				}
				// The first record reaches the writer goroutine, which is then
				// stuck on the broken sink; the others fill the buffer.
				send(0)
				time.Sleep(2 * audit.FlushInterval)
				var wg sync.WaitGroup
				for i := 1; i < n; i++ {
					wg.Add(1)
					go func() { defer wg.Done(); send(i) }()
				}
				if mode == "block" {
					time.Sleep(300 * time.Millisecond)
					if d := done.Load(); d >= n {
						t.Errorf("all %d requests answered while the sink was broken; block must make them wait", d)
					}
				} else {
					wg.Wait()
					if d := time.Duration(slowest.Load()); d > 500*time.Millisecond {
						t.Errorf("slowest request took %v with on_write_error drop; requests must not wait", d)
					}
					if fe.writer.Dropped() == 0 {
						t.Error("Dropped() = 0 with the buffer overflowing a broken sink")
					}
				}
				sink.recover()
				wg.Wait()
				// A Flush during the writer's retry pause still answers the
				// last error; wait for one that succeeds.
				deadline := time.Now().Add(3 * time.Second)
				for err := fe.writer.Flush(); err != nil; err = fe.writer.Flush() {
					if time.Now().After(deadline) {
						t.Fatalf("Flush() = %v 3s after the sink recovered", err)
					}
					time.Sleep(5 * time.Millisecond)
				}
				fe.want(t, "/api/x", tok, 200, "allow", "") // one more after recovery

				seen := map[string]int{}
				reported := 0
				for _, r := range fe.records() {
					switch r["event"] {
					case "request":
						if u := str(r["user_agent"]); strings.HasPrefix(u, "sink-") {
							seen[u[:8]]++
						}
					case "audit_dropped":
						reported += int(r["dropped"].(float64))
					}
				}
				for id, c := range seen {
					if c != 1 {
						t.Errorf("%s has %d records, want 1", id, c)
					}
				}
				dropped := int(fe.writer.Dropped())
				if got := counter(t, m, "jwtgate_audit_dropped_total"); got != float64(dropped) {
					t.Errorf("jwtgate_audit_dropped_total = %v, want Dropped() = %d", got, dropped)
				}
				if mode == "block" {
					if len(seen) != n || dropped != 0 {
						t.Errorf("block: %d of %d records written, %d dropped; want all, none", len(seen), n, dropped)
					}
					if fe.writer.WaitNanos() == 0 {
						t.Error("WaitNanos() = 0: no request waited for the sink")
					}
					return
				}
				if len(seen)+dropped != n {
					t.Errorf("drop: %d records written + %d dropped, want %d", len(seen), dropped, n)
				}
				if reported != dropped {
					t.Errorf("audit_dropped records report %d, Dropped() = %d", reported, dropped)
				}
			})
		}
	}
}
