package proxy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkTokenCheckCacheHit is a repeated token: the verified-token cache
// answers, so no signature is verified (issue target: ≤ 1 µs).
func BenchmarkTokenCheckCacheHit(b *testing.B) {
	e := newEnv(b)
	g := e.handler.Current()
	rt := g.routes[1] // api
	raw := e.rs256(nil)
	d := digestOf(raw)
	if _, err := g.check(context.Background(), rt, raw, &d); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := digestOf(raw)
		if _, err := g.check(context.Background(), rt, raw, &d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenCheckMiss is a fresh token per check, per algorithm: the
// full decode, key lookup, signature and claims checks.
func BenchmarkTokenCheckMiss(b *testing.B) {
	e := newEnv(b)
	g := e.handler.Current()
	rt := g.routes[1]
	for _, a := range []struct {
		name string
		m    jwt.SigningMethod
		key  any
		kid  string
	}{
		{"RS256", jwt.SigningMethodRS256, rsaKey, "rsa1"},
		{"ES256", jwt.SigningMethodES256, ecKey, "ec1"},
		{"EdDSA", jwt.SigningMethodEdDSA, edKey, "ed1"},
	} {
		b.Run(a.name, func(b *testing.B) {
			raw := sign(b, a.m, a.key, a.kid, claims(nil))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := g.verify(context.Background(), rt, raw, g.deps.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRawVerify is the floor for a cache miss: the signature
// verification alone, per algorithm (the "raw cost").
func BenchmarkRawVerify(b *testing.B) {
	testKeys(b)
	msg := []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9")
	h := sha256.Sum256(msg)
	rsaSig, _ := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, h[:])
	ecSig, _ := ecdsa.SignASN1(rand.Reader, ecKey, h[:])
	edSig := ed25519.Sign(edKey, msg)
	b.Run("RS256", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			h := sha256.Sum256(msg)
			if rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, h[:], rsaSig) != nil {
				b.Fatal("verify")
			}
		}
	})
	b.Run("ES256", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			h := sha256.Sum256(msg)
			if !ecdsa.VerifyASN1(&ecKey.PublicKey, h[:], ecSig) {
				b.Fatal("verify")
			}
		}
	})
	b.Run("EdDSA", func(b *testing.B) {
		pub := edKey.Public().(ed25519.PublicKey)
		for i := 0; i < b.N; i++ {
			if !ed25519.Verify(pub, msg, edSig) {
				b.Fatal("verify")
			}
		}
	})
}

// BenchmarkHandler is the whole request path with a real backend: route,
// token (cache hit), requirements, forwarding, audit record.
func BenchmarkHandler(b *testing.B) {
	for _, bc := range []struct{ name, path string }{{"public", "/public/x"}, {"jwt-cache-hit", "/api/x"}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b)
			tok := e.rs256(nil)
			client := e.gw.Client()
			req, _ := http.NewRequest("GET", e.gw.URL+bc.path, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}

// BenchmarkServeHTTPInProcess measures the handler without client-side
// HTTP costs: a recorder in front and the real backend behind.
func BenchmarkServeHTTPInProcess(b *testing.B) {
	e := newEnv(b)
	tok := e.rs256(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("GET", "/api/x", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	}
}
