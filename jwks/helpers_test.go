package jwks

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/jwtgate/jwtgate/config"
)

// Test keys are generated once per test binary with crypto/rand: RSA
// generation is slow, and every test needs only a few.
var testRSAKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	keys := make([]*rsa.PrivateKey, 4)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

// rsaKey returns the i-th shared 2048-bit RSA test key (0..3).
func rsaKey(i int) *rsa.PrivateKey { return testRSAKeys()[i] }

func ecKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwk returns the public JWK of pub as a JSON object, built by jwkset.
func jwk(t *testing.T, pub crypto.PublicKey, kid, alg, use string) map[string]any {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
		KID: kid, ALG: jwkset.ALG(alg), USE: jwkset.USE(use),
	}})
	if err != nil {
		t.Fatalf("NewJWKFromKey(%s) = %v", kid, err)
	}
	b, err := json.Marshal(j.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// set encodes JWKs as a JWK Set.
func set(t *testing.T, keys ...map[string]any) []byte {
	t.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksServer is a real HTTP JWKS endpoint whose answer can be switched
// while a test runs. It counts JWKS fetches (not discovery requests).
type jwksServer struct {
	*httptest.Server
	fetches   atomic.Int64
	mu        sync.Mutex
	jwks      http.HandlerFunc
	discovery http.HandlerFunc
	stop      chan struct{} // closed at cleanup: releases hanging handlers
}

func newJWKSServer(t *testing.T, useTLS bool) *jwksServer {
	t.Helper()
	s := &jwksServer{stop: make(chan struct{})}
	s.jwks = func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no set yet", http.StatusServiceUnavailable)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		jh, dh := s.jwks, s.discovery
		s.mu.Unlock()
		if r.URL.Path == discoveryPath && dh != nil {
			dh(w, r)
			return
		}
		s.fetches.Add(1)
		jh(w, r)
	})
	if useTLS {
		s.Server = httptest.NewTLSServer(h)
	} else {
		s.Server = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		close(s.stop)
		s.Close()
	})
	return s
}

// URLJWKS is the set's URL.
func (s *jwksServer) URLJWKS() string { return s.URL + "/jwks" }

func (s *jwksServer) handle(h http.HandlerFunc) {
	s.mu.Lock()
	s.jwks = h
	s.mu.Unlock()
}

func (s *jwksServer) handleDiscovery(h http.HandlerFunc) {
	s.mu.Lock()
	s.discovery = h
	s.mu.Unlock()
}

// serve answers 200 with body.
func (s *jwksServer) serve(body []byte) { s.serveSlow(body, 0) }

// serveSlow answers 200 with body after delay (or when the test ends).
func (s *jwksServer) serveSlow(body []byte, delay time.Duration) {
	s.handle(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			case <-s.stop:
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// status answers code with a short body.
func (s *jwksServer) status(code int) {
	s.handle(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", code) })
}

// hang never answers until the client gives up or the test ends.
func (s *jwksServer) hang() {
	s.handle(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
	})
}

func (s *jwksServer) count() int64 { return s.fetches.Load() }

// recorder collects RefreshEvents.
type recorder struct {
	mu  sync.Mutex
	evs []RefreshEvent
}

func (r *recorder) record(ev RefreshEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) all() []RefreshEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RefreshEvent(nil), r.evs...)
}

// waitFor returns the first event at index ≥ from that matches, failing the
// test after timeout.
func (r *recorder) waitFor(t *testing.T, from int, timeout time.Duration, what string, match func(RefreshEvent) bool) RefreshEvent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		evs := r.all()
		for i := from; i < len(evs); i++ {
			if match(evs[i]) {
				return evs[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event within %s; events: %+v", what, timeout, evs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

func isOK(ev RefreshEvent) bool    { return ev.Result == ResultOK }
func isError(ev RefreshEvent) bool { return ev.Result == ResultError }

// clock is a test clock: real time plus an offset the test can advance.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// remoteConfig is a jwks_url provider with test-friendly timings: no
// periodic refresh or unknown-kid refresh unless a test shortens them.
func remoteConfig(url string) *config.Provider {
	return &config.Provider{
		Name:                  "test",
		Issuer:                "https://issuer.test/",
		JWKSURL:               url,
		RefreshInterval:       time.Hour,
		UnknownKIDMinInterval: time.Hour,
		FetchTimeout:          2 * time.Second,
		MaxStale:              24 * time.Hour,
	}
}

// newTestProvider builds a provider whose lifetime is the test's, with a
// recorder for its events. opts.OnRefresh is replaced.
func newTestProvider(t *testing.T, cp *config.Provider, opts Options) (*Provider, *recorder) {
	t.Helper()
	rec := &recorder{}
	opts.OnRefresh = rec.record
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	p, err := New(t.Context(), cp, opts)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	t.Cleanup(p.Close)
	return p, rec
}

// sign returns a compact JWS of claims with the given method, key and kid
// (no kid header when kid is empty).
func sign(t *testing.T, m jwt.SigningMethod, key any, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, jwt.MapClaims{
		"iss": "https://issuer.test/",
		"sub": "alice",
		"exp": time.Now().Add(time.Hour).Unix(),
	})
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// parse verifies raw with p's Keyfunc, allowing methods.
func parse(p *Provider, raw string, methods ...string) (KeyInfo, error) {
	var used KeyInfo
	_, err := jwt.Parse(raw, p.Keyfunc(context.Background(), &used), jwt.WithValidMethods(methods))
	return used, err
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func kidsOf(ks []KeyInfo) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.KID
	}
	return out
}

func fmtSkipped(s []SkippedKey) string { return fmt.Sprintf("%+v", s) }

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// pemPublic returns pub as a PKIX PEM block, as a public_key_file holds it.
func pemPublic(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// parsePEMPublic parses a PKIX PEM public key, as config.Load does.
func parsePEMPublic(t *testing.T, b []byte) crypto.PublicKey {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// jwkPrivate returns k as a JWK with its private members, as a
// misconfigured issuer might publish it.
func jwkPrivate(t *testing.T, k crypto.PrivateKey, kid string) map[string]any {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{
		Marshal:  jwkset.JWKMarshalOptions{Private: true},
		Metadata: jwkset.JWKMetadataOptions{KID: kid},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(j.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["d"] == nil {
		t.Fatal("private JWK has no d")
	}
	return m
}
