package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtgate/jwtgate/config"
	"github.com/jwtgate/jwtgate/jwks"
	"github.com/jwtgate/jwtgate/metrics"
)

// check sends one request and checks it with wantDecision.
func (e *env) check(t *testing.T, method, path, token string, hdr map[string]string, status int, decision, reason string) map[string]any {
	t.Helper()
	before := e.backend.count()
	return e.wantDecision(t, e.do(method, path, token, hdr), before, status, decision, reason)
}

// cacheCounts returns the cache hit and miss counters.
func (e *env) cacheCounts() (hits, misses float64) {
	e.t.Helper()
	return counter(e.t, e.metrics, "jwtgate_token_cache_hits_total"), counter(e.t, e.metrics, "jwtgate_token_cache_misses_total")
}

func (e *env) wantCache(t *testing.T, hits, misses float64) {
	t.Helper()
	if h, m := e.cacheCounts(); h != hits || m != misses {
		t.Errorf("cache hits=%v misses=%v, want %v %v", h, m, hits, misses)
	}
}

// TestRepeatedTokenHitsCache: the second request with the same token is
// answered from the verified-token cache (no second signature check) and
// is decided and recorded exactly like the first.
func TestRepeatedTokenHitsCache(t *testing.T) {
	e := newEnvWith(t, envOptions{metrics: metrics.New()})
	tok := e.rs256(nil)
	e.check(t, "GET", "/api/x", tok, nil, 200, "allow", "")
	e.wantCache(t, 0, 1)
	first := e.lastRecord()
	e.check(t, "GET", "/api/y", tok, nil, 200, "allow", "")
	e.wantCache(t, 1, 1)
	second := e.lastRecord()
	for _, f := range []string{"sub", "iss", "kid", "alg", "jti", "token_id", "key_thumbprint", "provider", "email"} {
		if first[f] != second[f] {
			t.Errorf("record %s: first %v, cached %v", f, first[f], second[f])
		}
	}
	if got := e.backend.last(t).Header.Get("X-User-Id"); got != "alice" {
		t.Errorf("cached identity header X-User-Id = %q", got)
	}
	// A different token is a miss.
	e.do("GET", "/api/x", e.rs256(map[string]any{"jti": "other"}), nil)
	e.wantCache(t, 1, 2)
}

// TestCachedTokenExpires: a cached token is refused as soon as the clock
// passes exp + clock_skew, like an uncached one, and the entry is dropped.
func TestCachedTokenExpires(t *testing.T) {
	e := newEnvWith(t, envOptions{metrics: metrics.New()})
	exp := time.Now().Add(time.Minute)
	tok := e.rs256(map[string]any{"exp": exp.Unix()})
	e.check(t, "GET", "/api/x", tok, nil, 200, "allow", "")
	if n := e.handler.Current().cache.len(); n != 1 {
		t.Fatalf("cache holds %d entries, want 1", n)
	}
	// Past exp but within the 30s skew: still allowed, from the cache.
	e.advance(time.Until(exp) + 10*time.Second)
	e.check(t, "GET", "/api/x", tok, nil, 200, "allow", "")
	e.wantCache(t, 1, 1)
	// Past exp + skew: refused and evicted.
	e.advance(30 * time.Second)
	e.check(t, "GET", "/api/x", tok, nil, 401, "deny", "token_expired")
	if n := e.handler.Current().cache.len(); n != 0 {
		t.Errorf("expired token still cached (%d entries)", n)
	}
	e.check(t, "GET", "/api/x", tok, nil, 401, "deny", "token_expired")
}

// TestKeyRemovalEvictsCachedToken: when a JWKS refresh removes the key that
// verified a cached token, the entry is evicted and the token is refused —
// both for a refresh event passed to Handler.KeysChanged and for a real
// rotation picked up by an unknown-kid refresh.
func TestKeyRemovalEvictsCachedToken(t *testing.T) {
	t.Run("keys-changed-event", func(t *testing.T) {
		e := newEnvWith(t, envOptions{metrics: metrics.New()})
		tok := e.rs256(nil)
		other := sign(t, jwt.SigningMethodES256, ecKey, "ec1", claims(nil))
		e.do("GET", "/api/x", tok, nil)
		e.do("GET", "/api/x", other, nil)
		g := e.handler.Current()
		if n := g.cache.len(); n != 2 {
			t.Fatalf("cache holds %d entries, want 2", n)
		}
		var rsaInfo jwks.KeyInfo
		for _, k := range g.providers["main"].keys.Keys() {
			if k.KID == "rsa1" {
				rsaInfo = k
			}
		}
		if rsaInfo.Thumbprint == "" {
			t.Fatal("no thumbprint for rsa1")
		}
		// An event for another provider with the same thumbprint evicts nothing.
		e.handler.KeysChanged(jwks.RefreshEvent{Provider: "hmac", Result: jwks.ResultOK, Removed: []jwks.KeyInfo{rsaInfo}})
		if n := g.cache.len(); n != 2 {
			t.Fatalf("event for another provider evicted: %d entries left", n)
		}
		e.handler.KeysChanged(jwks.RefreshEvent{Provider: "main", Result: jwks.ResultOK, Removed: []jwks.KeyInfo{rsaInfo}})
		if n := g.cache.len(); n != 1 {
			t.Errorf("cache holds %d entries after removing rsa1, want 1 (the ec1 token)", n)
		}
		_, m0 := e.cacheCounts()
		e.do("GET", "/api/x", tok, nil)
		if _, m1 := e.cacheCounts(); m1 != m0+1 {
			t.Error("token of the removed key was still answered from the cache")
		}
	})
	t.Run("real-rotation", func(t *testing.T) {
		e := newEnvWith(t, envOptions{metrics: metrics.New(), keysChanged: true})
		tok := e.rs256(nil)
		e.check(t, "GET", "/api/x", tok, nil, 200, "allow", "")
		e.check(t, "GET", "/api/x", tok, nil, 200, "allow", "")
		e.wantCache(t, 1, 1)
		// The IdP drops rsa1 and publishes rsa2; a token signed with the
		// new key triggers the unknown-kid refresh.
		e.jwks.setKeys(jwkOf("rsa2", &rsaKey2.PublicKey, "RS256"), jwkOf("ec1", &ecKey.PublicKey, "ES256"))
		fresh := sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa2", claims(nil))
		e.check(t, "GET", "/api/x", fresh, nil, 200, "allow", "")
		e.check(t, "GET", "/api/x", tok, nil, 401, "deny", "key_not_found")
	})
}

// TestReloadStartsWithEmptyCache: a reload (Build of a new Gateway, then
// Swap) starts with an empty cache, so a token admitted under the old
// config is verified again under the new one.
func TestReloadStartsWithEmptyCache(t *testing.T) {
	e := newEnvWith(t, envOptions{metrics: metrics.New()})
	tok := e.rs256(nil)
	e.do("GET", "/api/x", tok, nil)
	e.do("GET", "/api/x", tok, nil)
	e.wantCache(t, 1, 1)
	cfg, err := config.Parse(e.cfgText, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	old := e.handler.Current()
	next, err := Build(e.ctx, cfg, e.deps, old)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if n := next.cache.len(); n != 0 {
		t.Fatalf("new gateway starts with %d cached entries", n)
	}
	e.handler.Swap(next)
	old.Retire(next)
	e.check(t, "GET", "/api/x", tok, nil, 200, "allow", "")
	e.wantCache(t, 1, 2)
	if old.cache.len() != 1 || next.cache.len() != 1 {
		t.Errorf("old cache %d, new cache %d entries", old.cache.len(), next.cache.len())
	}
}

// TestCachedTokenRefusedOnRouteWithoutItsIssuer: the cache is per gateway,
// not per route; a token cached on a route that accepts its issuer is
// still refused (issuer_not_allowed) on a route that does not, and a
// cached token still meets each route's own requirements.
func TestCachedTokenRefusedOnRouteWithoutItsIssuer(t *testing.T) {
	e := newEnvWith(t, envOptions{metrics: metrics.New()})
	hmacTok := sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), "h1", claims(map[string]any{"iss": "https://hmac.test/"}))
	mainNoScope := e.rs256(map[string]any{"scope": "other", "realm_access": map[string]any{"roles": []any{"user"}}})
	steps := []struct {
		name, path, token string
		status            int
		decision, reason  string
	}{
		{"hmac-cached-on-hmac-route", "/hmac/x", hmacTok, 200, "allow", ""},
		{"hmac-refused-on-main-route", "/api/x", hmacTok, 401, "deny", "issuer_not_allowed"},
		{"hmac-refused-on-strip-route", "/strip/x", hmacTok, 401, "deny", "issuer_not_allowed"},
		{"main-cached-on-strip-route", "/strip/x", mainNoScope, 200, "allow", ""},
		{"main-cached-refused-on-hmac-route", "/hmac/x", mainNoScope, 401, "deny", "issuer_not_allowed"},
		{"main-cached-lacks-scope", "/api/x", mainNoScope, 403, "deny", "scope_missing"},
		{"main-cached-lacks-role", "/admin/x", mainNoScope, 403, "deny", "requirement_failed"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			e.check(t, "GET", s.path, s.token, nil, s.status, s.decision, s.reason)
		})
	}
	// Two verifications in all: every later step was decided from the cache.
	if _, m := e.cacheCounts(); m != 2 {
		t.Errorf("%v cache misses, want 2", m)
	}
}

// shardAccounting checks every shard's byte count against its entries.
func shardAccounting(t *testing.T, c *tokenCache) {
	t.Helper()
	for i := range c.shards {
		s := &c.shards[i]
		sum := 0
		for _, v := range s.m {
			sum += v.cost()
		}
		if sum != s.bytes {
			t.Fatalf("shard %d: bytes %d, entries cost %d", i, s.bytes, sum)
		}
		if len(s.m) > c.maxEntries || s.bytes > c.maxBytes {
			t.Fatalf("shard %d: %d entries / %d bytes over the bound %d / %d", i, len(s.m), s.bytes, c.maxEntries, c.maxBytes)
		}
	}
}

// TestTokenCacheBounded: the cache never holds more than its entry and
// byte limits however many tokens are put (a token flood cannot grow
// memory), its byte accounting stays exact when the same token is stored
// again (two concurrent misses of one token both put it), and an entry
// bigger than a shard is not stored.
func TestTokenCacheBounded(t *testing.T) {
	p := newEnv(t).handler.Current().providers["main"] // a real provider: put checks its key generation
	entry := func(size int) *verified { return &verified{p: p, size: size, thumb: "t", gen: p.keys.Generation()} }
	digest := func() [32]byte {
		var b [32]byte
		_, _ = rand.Read(b[:])
		return sha256.Sum256(b[:])
	}
	cases := []struct {
		name        string
		entries     int
		bytes       int
		size        int
		puts        int
		wantAtMost  int
		repeatedPut bool
	}{
		{name: "entry-bound", entries: 2 * cacheShards, bytes: 1 << 30, size: 100, puts: 5000, wantAtMost: 2 * cacheShards},
		{name: "byte-bound", entries: 1 << 20, bytes: cacheShards * 2000, size: 200, puts: 5000, wantAtMost: 2 * cacheShards}, // 1,312 bytes each → 1 per shard
		{name: "repeated-put-full-shard", entries: cacheShards, bytes: 1 << 30, size: 100, puts: 200, wantAtMost: cacheShards, repeatedPut: true},
		{name: "oversized-entry-skipped", entries: 1 << 10, bytes: cacheShards * 1000, size: 1000, puts: 50, wantAtMost: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTokenCache(tc.entries, tc.bytes)
			for i := 0; i < tc.puts; i++ {
				d := digest()
				c.put(&d, entry(tc.size))
				if tc.repeatedPut {
					c.put(&d, entry(tc.size))
					c.put(&d, entry(tc.size+1))
					if c.get(&d) == nil {
						t.Fatal("the entry just put is missing")
					}
				}
				shardAccounting(t, c)
			}
			if n := c.len(); n > tc.wantAtMost {
				t.Errorf("cache holds %d entries, bound %d", n, tc.wantAtMost)
			}
			if tc.wantAtMost > 0 && c.len() == 0 {
				t.Error("cache holds nothing")
			}
			// Evicting by key empties it.
			c.evictKey("main", "t")
			if n := c.len(); n != 0 {
				t.Errorf("%d entries left after evictKey", n)
			}
			shardAccounting(t, c)
		})
	}
}

// TestConcurrentRequestsShareCacheSafely: many concurrent requests with the
// same token (several miss at once and all store it) and with distinct
// tokens are all decided correctly, one record each, and leave the
// cache's accounting exact (run under -race).
func TestConcurrentRequestsShareCacheSafely(t *testing.T) {
	e := newEnvWith(t, envOptions{metrics: metrics.New()})
	shared := e.rs256(nil)
	noScope := e.rs256(map[string]any{"scope": "x"})
	const workers, each = 12, 5
	type result struct{ status, want int }
	results := make(chan result, workers*each)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				tok, want := shared, 200
				if (w+i)%3 == 0 {
					tok, want = noScope, 403
				}
				req := httptestRequest(t, "GET", e.gw.URL+"/api/x")
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := e.client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				results <- result{resp.StatusCode, want}
			}
		}(w)
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != r.want {
			t.Errorf("status %d, want %d", r.status, r.want)
		}
	}
	if n := len(e.requestRecords()); n != workers*each {
		t.Errorf("%d records for %d requests", n, workers*each)
	}
	c := e.handler.Current().cache
	if c.len() != 2 {
		t.Errorf("cache holds %d entries, want 2", c.len())
	}
	shardAccounting(t, c)
	if h, m := e.cacheCounts(); h+m != workers*each {
		t.Errorf("hits %v + misses %v != %d requests", h, m, workers*each)
	}
}

// TestVerificationRacingKeyRemovalNotCached: a token verified just before
// a refresh removed its key must not enter the cache after the eviction
// for that removal ran (the key generation changed in between).
func TestVerificationRacingKeyRemovalNotCached(t *testing.T) {
	e := newEnv(t)
	g := e.handler.Current()
	rt := g.routes[1]
	raw := e.rs256(nil)
	v, terr := g.verify(context.Background(), rt, raw, time.Now())
	if terr != nil {
		t.Fatal(terr)
	}
	// The provider's set loses rsa1; an unknown kid triggers the refresh.
	e.jwks.setKeys(jwkOf("ec1", &ecKey.PublicKey, "ES256"))
	before := v.p.keys.Generation()
	if _, _, err := v.p.keys.Resolve(context.Background(), "RS256", "unknown-kid"); err == nil {
		t.Fatal("unknown kid resolved")
	}
	if v.p.keys.Generation() == before {
		t.Fatal("key generation did not change after the refresh removed a key")
	}
	d := digestOf(raw)
	g.cache.put(&d, v)
	if g.cache.get(&d) != nil {
		t.Error("a token verified with a key that was removed meanwhile entered the cache")
	}
}
