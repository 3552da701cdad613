package jwks

import (
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestInitialLoad pins that New loads a remote set before returning, keeps
// every usable key with its facts and RFC 7638 thumbprint, reports an
// "initial" event listing them, and resolves each key for its own alg.
func TestInitialLoad(t *testing.T) {
	srv := newJWKSServer(t, false)
	ec := ecKey(t, elliptic.P384())
	ed := edKey(t)
	srv.serve(set(t,
		jwk(t, &rsaKey(0).PublicKey, "rsa", "RS256", "sig"),
		jwk(t, &ec.PublicKey, "ec", "", ""),
		jwk(t, ed.Public(), "ed", "EdDSA", "sig"),
	))
	p, rec := newTestProvider(t, remoteConfig(srv.URLJWKS()), Options{})

	if ok, why := p.Ready(); !ok {
		t.Fatalf("Ready() = false (%s), want true", why)
	}
	if !p.HasKeys() || p.KeyCount() != 3 {
		t.Fatalf("HasKeys() = %v, KeyCount() = %d, want true, 3", p.HasKeys(), p.KeyCount())
	}
	if p.LastGoodFetch().IsZero() {
		t.Errorf("LastGoodFetch() is zero after a successful load")
	}
	evs := rec.all()
	if len(evs) != 1 || evs[0].Trigger != TriggerInitial || evs[0].Result != ResultOK || evs[0].Keys != 3 || len(evs[0].Added) != 3 {
		t.Fatalf("events = %+v, want one initial ok event adding 3 keys", evs)
	}
	if evs[0].Source != srv.URLJWKS() || evs[0].Provider != "test" {
		t.Errorf("event source/provider = %q/%q", evs[0].Source, evs[0].Provider)
	}
	for _, k := range evs[0].Added {
		if len(k.Thumbprint) != 43 {
			t.Errorf("added %s thumbprint %q, want 43 base64url chars", k.KID, k.Thumbprint)
		}
	}
	tests := []struct {
		name, alg, kid string
		wantKty        string
		wantBits       int
		wantType       string
	}{
		{name: "rsa", alg: "RS256", kid: "rsa", wantKty: "RSA", wantBits: 2048, wantType: "*rsa.PublicKey"},
		{name: "ec-p384", alg: "ES384", kid: "ec", wantKty: "EC", wantBits: 384, wantType: "*ecdsa.PublicKey"},
		{name: "ed25519", alg: "EdDSA", kid: "ed", wantKty: "OKP", wantBits: 256, wantType: "ed25519.PublicKey"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, info, err := p.Resolve(context.Background(), tc.alg, tc.kid)
			if err != nil {
				t.Fatalf("Resolve(%q, %q) error = %v", tc.alg, tc.kid, err)
			}
			if info.Kty != tc.wantKty || info.Bits != tc.wantBits || info.KID != tc.kid {
				t.Errorf("Resolve(%q) info = %+v, want kty %s bits %d", tc.kid, info, tc.wantKty, tc.wantBits)
			}
			if got := fmt.Sprintf("%T", key); got != tc.wantType {
				t.Errorf("Resolve(%q) key type %s, want %s", tc.kid, got, tc.wantType)
			}
		})
	}
}

// TestStartsDegradedWhenJWKSDownThenRecovers pins SPEC's "start degraded":
// New succeeds while the JWKS is down, the provider reports
// ErrKeysUnavailable and not ready, the failure is an "initial" error
// event, and the background retry loads the keys once the endpoint is up.
func TestStartsDegradedWhenJWKSDownThenRecovers(t *testing.T) {
	srv := newJWKSServer(t, false)
	srv.status(http.StatusServiceUnavailable)
	cp := remoteConfig(srv.URLJWKS())
	cp.RefreshInterval = 30 * time.Millisecond // retry cap while keyless
	p, rec := newTestProvider(t, cp, Options{})

	if p.HasKeys() || !p.LastGoodFetch().IsZero() {
		t.Fatalf("HasKeys() = %v, LastGoodFetch() = %v with the JWKS down", p.HasKeys(), p.LastGoodFetch())
	}
	if ok, why := p.Ready(); ok || !strings.Contains(why, "never loaded") {
		t.Errorf("Ready() = %v, %q, want false, never loaded", ok, why)
	}
	_, _, err := p.Resolve(context.Background(), "RS256", "k1")
	if !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("Resolve() error = %v, want ErrKeysUnavailable", err)
	}
	first := rec.all()[0]
	if first.Trigger != TriggerInitial || first.Result != ResultError || !errors.Is(first.Err, ErrUnexpectedStatus) {
		t.Errorf("first event = %+v, want initial error wrapping ErrUnexpectedStatus", first)
	}

	srv.serve(set(t, jwk(t, &rsaKey(0).PublicKey, "k1", "RS256", "sig")))
	ev := rec.waitFor(t, 0, 3*time.Second, "recovery", isOK)
	if ev.Trigger != TriggerInitial || ev.Keys != 1 {
		t.Errorf("recovery event = %+v, want initial ok with 1 key", ev)
	}
	if _, _, err := p.Resolve(context.Background(), "RS256", "k1"); err != nil {
		t.Errorf("Resolve() after recovery error = %v", err)
	}
}

// TestConnectionRefusedAtStartIsNotFatal pins that an unreachable JWKS
// host (nothing listening) does not make New fail.
func TestConnectionRefusedAtStartIsNotFatal(t *testing.T) {
	srv := newJWKSServer(t, false)
	url := srv.URLJWKS()
	srv.Close() // nothing listens there any more
	p, rec := newTestProvider(t, remoteConfig(url), Options{})
	if p.HasKeys() {
		t.Fatal("HasKeys() = true with nothing listening")
	}
	if evs := rec.all(); len(evs) != 1 || evs[0].Result != ResultError || evs[0].Err == nil {
		t.Errorf("events = %+v, want one error event", evs)
	}
}

// TestLastGoodKeysKeptWhenRefreshFails pins SPEC §8: after keys are
// loaded, a failing endpoint (5xx, garbage, oversized body, insecure or
// too many redirects, a server that hangs past fetch_timeout) produces an
// error event and leaves the last good keys in use.
func TestLastGoodKeysKeptWhenRefreshFails(t *testing.T) {
	huge := func(withLength bool) func(s *jwksServer) {
		return func(s *jwksServer) {
			s.handle(func(w http.ResponseWriter, r *http.Request) {
				if withLength {
					w.Header().Set("Content-Length", "52428800")
				}
				_, _ = w.Write([]byte(`{"keys":[`))
				chunk := []byte(strings.Repeat(" ", 64<<10))
				for n := 0; n < 50<<20; n += len(chunk) {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			})
		}
	}
	tests := []struct {
		name    string
		tls     bool
		timeout time.Duration
		fail    func(s *jwksServer)
		wantErr error // nil: any error
	}{
		{name: "status-500", fail: func(s *jwksServer) { s.status(http.StatusInternalServerError) }, wantErr: ErrUnexpectedStatus},
		{name: "status-404", fail: func(s *jwksServer) { s.status(http.StatusNotFound) }, wantErr: ErrUnexpectedStatus},
		{name: "garbage-body", fail: func(s *jwksServer) { s.serve([]byte("<html>oops</html>")) }, wantErr: ErrInvalidJWKS},
		{name: "json-array-not-set", fail: func(s *jwksServer) { s.serve([]byte(`[{"kty":"RSA"}]`)) }, wantErr: ErrInvalidJWKS},
		{name: "keys-member-missing", fail: func(s *jwksServer) { s.serve([]byte(`{"key":[]}`)) }, wantErr: ErrInvalidJWKS},
		{name: "keys-null", fail: func(s *jwksServer) { s.serve([]byte(`{"keys":null}`)) }, wantErr: ErrInvalidJWKS},
		{name: "50mib-body-chunked", fail: huge(false), wantErr: ErrResponseTooLarge},
		{name: "50mib-content-length", fail: huge(true), wantErr: ErrResponseTooLarge},
		{name: "connection-refused", fail: func(s *jwksServer) { s.Close() }},
		{name: "hanging-server", timeout: 150 * time.Millisecond, fail: func(s *jwksServer) { s.hang() }},
		{name: "redirect-to-http-from-https", tls: true, fail: func(s *jwksServer) {
			plain := newJWKSServer(t, false)
			plain.serve(set(t, jwk(t, &rsaKey(3).PublicKey, "evil", "RS256", "sig")))
			s.handle(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, plain.URLJWKS(), http.StatusFound)
			})
		}, wantErr: ErrRedirectRefused},
		{name: "redirect-to-http-off-loopback", fail: func(s *jwksServer) {
			s.handle(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://jwks.example.invalid/jwks", http.StatusFound)
			})
		}, wantErr: ErrRedirectRefused},
		{name: "redirect-loop", fail: func(s *jwksServer) {
			s.handle(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/jwks?again", http.StatusFound)
			})
		}, wantErr: ErrRedirectRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, tc.tls)
			srv.serve(set(t, jwk(t, &rsaKey(0).PublicKey, "k1", "RS256", "sig")))
			cp := remoteConfig(srv.URLJWKS())
			cp.RefreshInterval = 30 * time.Millisecond
			if tc.timeout > 0 {
				cp.FetchTimeout = tc.timeout
			}
			opts := Options{}
			if tc.tls {
				opts.Client = srv.Client()
			}
			p, rec := newTestProvider(t, cp, opts)
			if p.KeyCount() != 1 {
				t.Fatalf("KeyCount() = %d after initial load, want 1", p.KeyCount())
			}
			last := p.LastGoodFetch()

			tc.fail(srv)
			start := time.Now()
			ev := rec.waitFor(t, 1, 5*time.Second, "refresh error", isError)
			if tc.wantErr != nil && !errors.Is(ev.Err, tc.wantErr) {
				t.Errorf("event error = %v, want %v", ev.Err, tc.wantErr)
			}
			if tc.timeout > 0 && time.Since(start) > 2*time.Second {
				t.Errorf("hanging server: error after %s, want about fetch_timeout %s", time.Since(start), tc.timeout)
			}
			if ev.Keys != 1 {
				t.Errorf("event Keys = %d, want 1 (last good kept)", ev.Keys)
			}
			if _, _, err := p.Resolve(context.Background(), "RS256", "k1"); err != nil {
				t.Errorf("Resolve() after failed refresh error = %v, want the last good key", err)
			}
			if _, _, err := p.Resolve(context.Background(), "RS256", "evil"); err == nil {
				t.Errorf("Resolve(evil) succeeded: a refused redirect target supplied a key")
			}
			if ok, why := p.Ready(); !ok {
				t.Errorf("Ready() = false (%s) while last good keys are fresh", why)
			}
			if !p.LastGoodFetch().Equal(last) {
				t.Errorf("LastGoodFetch() moved from %v to %v on a failed refresh", last, p.LastGoodFetch())
			}
		})
	}
}

// TestRedirectsWithinPolicyAreFollowed pins that a JWKS behind up to 3
// redirects (https to https, or loopback http to loopback http) loads.
func TestRedirectsWithinPolicyAreFollowed(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "loopback-http"
		if useTLS {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			srv := newJWKSServer(t, useTLS)
			body := set(t, jwk(t, &rsaKey(0).PublicKey, "k1", "RS256", "sig"))
			srv.handle(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/jwks":
					http.Redirect(w, r, "/r1", http.StatusFound)
				case "/r1":
					http.Redirect(w, r, "/r2", http.StatusMovedPermanently)
				case "/r2":
					http.Redirect(w, r, "/final", http.StatusTemporaryRedirect)
				default:
					_, _ = w.Write(body)
				}
			})
			opts := Options{}
			if useTLS {
				opts.Client = srv.Client()
			}
			p, _ := newTestProvider(t, remoteConfig(srv.URLJWKS()), opts)
			if p.KeyCount() != 1 {
				t.Errorf("KeyCount() = %d through 3 redirects, want 1", p.KeyCount())
			}
		})
	}
}

// TestEmptySetReplacesKeys pins that a 200 answer with an empty set is a
// successful refresh that removes every key (revocation), and is reported.
func TestEmptySetReplacesKeys(t *testing.T) {
	srv := newJWKSServer(t, false)
	srv.serve(set(t,
		jwk(t, &rsaKey(0).PublicKey, "k1", "RS256", "sig"),
		jwk(t, &rsaKey(1).PublicKey, "k2", "RS256", "sig"),
	))
	cp := remoteConfig(srv.URLJWKS())
	cp.RefreshInterval = 30 * time.Millisecond
	p, rec := newTestProvider(t, cp, Options{})
	if p.KeyCount() != 2 {
		t.Fatalf("KeyCount() = %d, want 2", p.KeyCount())
	}
	srv.serve(set(t))
	ev := rec.waitFor(t, 1, 3*time.Second, "empty set", func(ev RefreshEvent) bool { return isOK(ev) && ev.Keys == 0 })
	if got := kidsOf(ev.Removed); len(got) != 2 {
		t.Errorf("Removed = %v, want k1 and k2", got)
	}
	if p.HasKeys() || p.KeyCount() != 0 {
		t.Errorf("HasKeys() = %v, KeyCount() = %d after an empty set", p.HasKeys(), p.KeyCount())
	}
	if ok, why := p.Ready(); ok || !strings.Contains(why, "no usable keys") {
		t.Errorf("Ready() = %v, %q, want false, no usable keys", ok, why)
	}
	if _, _, err := p.Resolve(context.Background(), "RS256", "k1"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Resolve(k1) after empty set error = %v, want ErrKeyNotFound", err)
	}
}

// TestOneBadKeyAmongGoodOnesIsSkipped pins SPEC §5: a weak or unusable key
// in a set is skipped and reported, never fatal to the rest of the set.
func TestOneBadKeyAmongGoodOnesIsSkipped(t *testing.T) {
	ec := ecKey(t, elliptic.P256())
	offCurve := jwk(t, &ec.PublicKey, "bad", "", "")
	y := []byte(offCurve["y"].(string))
	if y[0] == 'A' {
		y[0] = 'B'
	} else {
		y[0] = 'A'
	}
	offCurve["y"] = string(y)
	withKID := func(m map[string]any) map[string]any { m["kid"] = "bad"; return m }
	weak := weakRSA(t)

	tests := []struct {
		name       string
		bad        map[string]any
		wantReason string
	}{
		{name: "rsa-1024", bad: jwk(t, &weak.PublicKey, "bad", "RS256", "sig"), wantReason: "1024 bits"},
		{name: "oct", bad: map[string]any{"kty": "oct", "kid": "bad", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}, wantReason: "oct"},
		{name: "use-enc", bad: jwk(t, &rsaKey(1).PublicKey, "bad", "", "enc"), wantReason: `use "enc"`},
		{name: "key-ops-without-verify", bad: withKID(map[string]any{"kty": "RSA", "n": jwk(t, &rsaKey(1).PublicKey, "", "", "")["n"], "e": "AQAB", "key_ops": []string{"encrypt"}}), wantReason: "key_ops"},
		{name: "unsupported-kty", bad: map[string]any{"kty": "XYZ", "kid": "bad"}, wantReason: "unsupported kty"},
		{name: "unsupported-crv-x25519", bad: map[string]any{"kty": "OKP", "kid": "bad", "crv": "X25519", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}, wantReason: "unsupported crv"},
		{name: "unsupported-crv-secp256k1", bad: map[string]any{"kty": "EC", "kid": "bad", "crv": "secp256k1", "x": "AA", "y": "AA"}, wantReason: "unsupported crv"},
		{name: "ec-point-off-curve", bad: offCurve, wantReason: "invalid key"},
		{name: "rsa-with-alg-es256", bad: jwk(t, &rsaKey(1).PublicKey, "bad", "ES256", ""), wantReason: `alg "ES256" does not fit kty RSA`},
		{name: "p256-with-alg-es384", bad: jwk(t, &ecKey(t, elliptic.P256()).PublicKey, "bad", "ES384", ""), wantReason: `alg "ES384" does not fit kty EC crv P-256`},
		{name: "rsa-with-alg-hs256", bad: jwk(t, &rsaKey(1).PublicKey, "bad", "HS256", ""), wantReason: "does not fit"},
		{name: "rsa-missing-n", bad: map[string]any{"kty": "RSA", "kid": "bad", "e": "AQAB"}, wantReason: "invalid key"},
		{name: "bad-base64", bad: map[string]any{"kty": "RSA", "kid": "bad", "n": "!!!", "e": "AQAB"}, wantReason: "invalid key"},
		{name: "kid-not-a-string", bad: map[string]any{"kty": "RSA", "kid": 42, "n": "AQAB", "e": "AQAB"}, wantReason: "invalid jwk json"},
		{name: "duplicate-kid", bad: jwk(t, &rsaKey(1).PublicKey, "good", "RS256", "sig"), wantReason: "duplicate kid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, false)
			srv.serve(set(t,
				jwk(t, &rsaKey(0).PublicKey, "good", "RS256", "sig"),
				tc.bad,
				jwk(t, edKey(t).Public(), "good-ed", "", ""),
			))
			p, rec := newTestProvider(t, remoteConfig(srv.URLJWKS()), Options{})
			ev := rec.all()[0]
			if ev.Result != ResultOK || ev.Keys != 2 || p.KeyCount() != 2 {
				t.Fatalf("event = %+v, KeyCount() = %d, want ok with 2 keys", ev, p.KeyCount())
			}
			if len(ev.Skipped) != 1 || !strings.Contains(ev.Skipped[0].Reason, tc.wantReason) {
				t.Fatalf("Skipped = %s, want one reason containing %q", fmtSkipped(ev.Skipped), tc.wantReason)
			}
			key, _, err := p.Resolve(context.Background(), "RS256", "good")
			if err != nil {
				t.Fatalf("Resolve(good) error = %v", err)
			}
			if !key.(*rsa.PublicKey).Equal(&rsaKey(0).PublicKey) {
				t.Errorf("Resolve(good) returned a key other than the first with that kid")
			}
			if tc.name != "duplicate-kid" {
				for _, alg := range []string{"RS256", "ES256", "ES384", "HS256", "EdDSA"} {
					if _, _, err := p.Resolve(context.Background(), alg, "bad"); !errors.Is(err, ErrKeyNotFound) {
						t.Errorf("Resolve(%s, bad) error = %v, want ErrKeyNotFound", alg, err)
					}
				}
			}
		})
	}
}

// weakRSA returns a fresh 1024-bit RSA key (only ever as a key to refuse).
func weakRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestOctKeyInRemoteJWKSNeverVerifies pins the attack where an issuer's (or
// attacker-influenced) JWKS publishes a symmetric key: a token HMAC-signed
// with that published secret must never verify, even if HS256 were in the
// provider's allow-list.
func TestOctKeyInRemoteJWKSNeverVerifies(t *testing.T) {
	secret := []byte("published-secret-published-secret!")
	srv := newJWKSServer(t, false)
	srv.serve(set(t,
		jwk(t, &rsaKey(0).PublicKey, "rsa", "RS256", "sig"),
		map[string]any{"kty": "oct", "kid": "hmac", "alg": "HS256", "use": "sig", "k": b64url(secret)},
	))
	p, rec := newTestProvider(t, remoteConfig(srv.URLJWKS()), Options{})
	if sk := rec.all()[0].Skipped; len(sk) != 1 || sk[0].KID != "hmac" {
		t.Errorf("Skipped = %s, want the oct key reported", fmtSkipped(sk))
	}
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
		tok := sign(t, m, secret, "hmac")
		_, err := parse(p, tok, "RS256", "HS256", "HS384", "HS512")
		if err == nil {
			t.Fatalf("%s token signed with the JWKS oct key verified", m.Alg())
		}
		if !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("%s parse error = %v, want ErrKeyNotFound", m.Alg(), err)
		}
	}
	for _, k := range p.Keys() {
		if k.Kty == "oct" {
			t.Errorf("Keys() holds an oct key: %+v", k)
		}
	}
}

// TestHS256WithRSAPublicKeyRejected pins the alg-confusion attack: an HS256
// token "signed" with an RSA public key's bytes as the HMAC secret, naming
// that RSA key's kid, is refused with ErrKeyMismatch.
func TestHS256WithRSAPublicKeyRejected(t *testing.T) {
	srv := newJWKSServer(t, false)
	srv.serve(set(t, jwk(t, &rsaKey(0).PublicKey, "rsa", "", "")))
	p, _ := newTestProvider(t, remoteConfig(srv.URLJWKS()), Options{})
	for _, secret := range [][]byte{rsaKey(0).N.Bytes(), pemPublic(t, &rsaKey(0).PublicKey)} {
		tok := sign(t, jwt.SigningMethodHS256, secret, "rsa")
		_, err := parse(p, tok, "RS256", "HS256")
		if !errors.Is(err, ErrKeyMismatch) {
			t.Errorf("HS256 token keyed with the RSA public key: error = %v, want ErrKeyMismatch", err)
		}
	}
}

// TestJWKAlgMustFitTokenAlg pins SPEC §3.5: the JWK's own alg, when
// present, must equal the token's alg, and the key type, curve and size
// must fit the alg family; "none" and unknown algs never resolve.
func TestJWKAlgMustFitTokenAlg(t *testing.T) {
	srv := newJWKSServer(t, false)
	srv.serve(set(t,
		jwk(t, &rsaKey(0).PublicKey, "rsa-rs256", "RS256", "sig"),
		jwk(t, &rsaKey(1).PublicKey, "rsa-any", "", ""),
		jwk(t, &ecKey(t, elliptic.P256()).PublicKey, "p256", "", ""),
		jwk(t, &ecKey(t, elliptic.P521()).PublicKey, "p521", "ES512", ""),
		jwk(t, edKey(t).Public(), "ed", "", ""),
	))
	p, _ := newTestProvider(t, remoteConfig(srv.URLJWKS()), Options{})
	tests := []struct {
		name, alg, kid string
		ok             bool
	}{
		{name: "rs256-key-rs256", alg: "RS256", kid: "rsa-rs256", ok: true},
		{name: "rs256-key-ps256", alg: "PS256", kid: "rsa-rs256"},
		{name: "rs256-key-rs512", alg: "RS512", kid: "rsa-rs256"},
		{name: "rsa-any-ps384", alg: "PS384", kid: "rsa-any", ok: true},
		{name: "rsa-any-rs512", alg: "RS512", kid: "rsa-any", ok: true},
		{name: "rsa-any-es256", alg: "ES256", kid: "rsa-any"},
		{name: "rsa-any-hs256", alg: "HS256", kid: "rsa-any"},
		{name: "rsa-any-none", alg: "none", kid: "rsa-any"},
		{name: "rsa-any-empty-alg", alg: "", kid: "rsa-any"},
		{name: "p256-es256", alg: "ES256", kid: "p256", ok: true},
		{name: "p256-es384", alg: "ES384", kid: "p256"},
		{name: "p256-es512", alg: "ES512", kid: "p256"},
		{name: "p521-es512", alg: "ES512", kid: "p521", ok: true},
		{name: "p521-es256", alg: "ES256", kid: "p521"},
		{name: "ed-eddsa", alg: "EdDSA", kid: "ed", ok: true},
		{name: "ed-es256", alg: "ES256", kid: "ed"},
		{name: "ed-rs256", alg: "RS256", kid: "ed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := p.Resolve(context.Background(), tc.alg, tc.kid)
			if tc.ok && err != nil {
				t.Errorf("Resolve(%q, %q) error = %v, want a key", tc.alg, tc.kid, err)
			}
			if !tc.ok && !errors.Is(err, ErrKeyMismatch) {
				t.Errorf("Resolve(%q, %q) error = %v, want ErrKeyMismatch", tc.alg, tc.kid, err)
			}
		})
	}
}

// TestNoKIDRule pins SPEC §3.5: a token without kid is accepted only when
// the provider has exactly one key, and then that key must still fit.
func TestNoKIDRule(t *testing.T) {
	tests := []struct {
		name    string
		keys    func(t *testing.T) []byte
		alg     string
		wantErr error
	}{
		{name: "single-key", keys: func(t *testing.T) []byte { return set(t, jwk(t, &rsaKey(0).PublicKey, "only", "RS256", "")) }, alg: "RS256"},
		{name: "single-key-without-kid", keys: func(t *testing.T) []byte { return set(t, jwk(t, &rsaKey(0).PublicKey, "", "", "")) }, alg: "PS256"},
		{name: "single-key-wrong-alg", keys: func(t *testing.T) []byte { return set(t, jwk(t, &rsaKey(0).PublicKey, "only", "RS256", "")) }, alg: "ES256", wantErr: ErrKeyMismatch},
		{name: "two-keys", keys: func(t *testing.T) []byte {
			return set(t, jwk(t, &rsaKey(0).PublicKey, "a", "RS256", ""), jwk(t, &rsaKey(1).PublicKey, "b", "RS256", ""))
		}, alg: "RS256", wantErr: ErrNoKID},
		{name: "two-keys-one-skipped", keys: func(t *testing.T) []byte {
			return set(t, jwk(t, &rsaKey(0).PublicKey, "a", "RS256", ""), jwk(t, &weakRSA(t).PublicKey, "weak", "RS256", ""))
		}, alg: "RS256"},
		{name: "empty-set", keys: func(t *testing.T) []byte { return set(t) }, alg: "RS256", wantErr: ErrNoKID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, false)
			srv.serve(tc.keys(t))
			p, _ := newTestProvider(t, remoteConfig(srv.URLJWKS()), Options{})
			before := srv.count()
			_, _, err := p.Resolve(context.Background(), tc.alg, "")
			if tc.wantErr == nil && err != nil {
				t.Errorf("Resolve(%q, no kid) error = %v", tc.alg, err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Resolve(%q, no kid) error = %v, want %v", tc.alg, err, tc.wantErr)
			}
			if srv.count() != before {
				t.Errorf("a token without kid triggered a JWKS fetch")
			}
		})
	}
}

// TestUnknownKIDFloodBoundedFetches pins SPEC §3.5 against a kid-spraying
// client: 200 concurrent unknown-kid lookups cause one JWKS fetch, all
// return promptly with ErrKeyNotFound, a second wave inside
// unknown_kid_min_interval fetches nothing and fails at once, and only
// after the interval may another fetch happen.
func TestUnknownKIDFloodBoundedFetches(t *testing.T) {
	srv := newJWKSServer(t, false)
	const fetchDelay = 100 * time.Millisecond
	srv.serveSlow(set(t, jwk(t, &rsaKey(0).PublicKey, "k1", "RS256", "sig")), fetchDelay)
	cp := remoteConfig(srv.URLJWKS())
	cp.UnknownKIDMinInterval = time.Minute
	clk := &clock{}
	p, _ := newTestProvider(t, cp, Options{Now: clk.Now})

	flood := func(n int) (maxDur time.Duration) {
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			start = make(chan struct{})
		)
		for i := range n {
			wg.Go(func() {
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				t0 := time.Now()
				_, _, err := p.Resolve(ctx, "RS256", fmt.Sprintf("unknown-%d", i))
				d := time.Since(t0)
				if !errors.Is(err, ErrKeyNotFound) {
					t.Errorf("Resolve(unknown) error = %v, want ErrKeyNotFound", err)
				}
				mu.Lock()
				maxDur = max(maxDur, d)
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		return maxDur
	}

	before := srv.count()
	if d := flood(200); d > cp.FetchTimeout {
		t.Errorf("slowest unknown-kid lookup took %s, want under fetch_timeout %s", d, cp.FetchTimeout)
	}
	if got := srv.count() - before; got != 1 {
		t.Fatalf("200 concurrent unknown kids caused %d fetches, want 1", got)
	}
	if d := flood(200); d > fetchDelay/2 {
		t.Errorf("rate-limited unknown-kid lookup took %s, want an immediate failure", d)
	}
	if got := srv.count() - before; got != 1 {
		t.Fatalf("second wave inside unknown_kid_min_interval fetched: %d fetches in total, want 1", got)
	}
	clk.advance(cp.UnknownKIDMinInterval + time.Second)
	flood(50)
	if got := srv.count() - before; got != 2 {
		t.Errorf("after unknown_kid_min_interval: %d fetches in total, want 2", got)
	}
	if _, _, err := p.Resolve(context.Background(), "RS256", "k1"); err != nil {
		t.Errorf("Resolve(known) after the flood error = %v", err)
	}
}

// TestUnknownKIDWaitIsBounded pins that a request never waits minutes for
// an unknown-kid refresh: it stops at its own deadline, and without one at
// fetch_timeout, and the error is ErrKeyNotFound, never a context error
// (which the proxy would map to an upstream timeout).
func TestUnknownKIDWaitIsBounded(t *testing.T) {
	tests := []struct {
		name     string
		fetchTO  time.Duration
		deadline time.Duration // 0: no request deadline
		maxWait  time.Duration
	}{
		{name: "request-deadline-first", fetchTO: 5 * time.Second, deadline: 80 * time.Millisecond, maxWait: time.Second},
		{name: "fetch-timeout-first", fetchTO: 150 * time.Millisecond, maxWait: 1500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, false)
			srv.serve(set(t, jwk(t, &rsaKey(0).PublicKey, "k1", "RS256", "sig")))
			cp := remoteConfig(srv.URLJWKS())
			cp.FetchTimeout = tc.fetchTO
			p, _ := newTestProvider(t, cp, Options{})
			srv.hang()
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			t0 := time.Now()
			_, _, err := p.Resolve(ctx, "RS256", "rotated")
			if d := time.Since(t0); d > tc.maxWait {
				t.Errorf("Resolve waited %s, want under %s", d, tc.maxWait)
			}
			if !errors.Is(err, ErrKeyNotFound) {
				t.Errorf("Resolve error = %v, want ErrKeyNotFound", err)
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				t.Errorf("Resolve error %v wraps a context error", err)
			}
			if _, _, err := p.Resolve(context.Background(), "RS256", "k1"); err != nil {
				t.Errorf("Resolve(known) while a refresh hangs: %v", err)
			}
		})
	}
}

// TestKnownKIDFastDuringFlood pins that verified traffic is not slowed by an
// unknown-kid flood against a slow JWKS: known-kid lookups take no lock
// that a refresh holds.
func TestKnownKIDFastDuringFlood(t *testing.T) {
	srv := newJWKSServer(t, false)
	body := set(t, jwk(t, &rsaKey(0).PublicKey, "k1", "RS256", "sig"))
	srv.serve(body)
	cp := remoteConfig(srv.URLJWKS())
	cp.UnknownKIDMinInterval = time.Millisecond
	p, _ := newTestProvider(t, cp, Options{})
	const slow = 500 * time.Millisecond
	srv.serveSlow(body, slow)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for ctx.Err() == nil {
				_, _, _ = p.Resolve(ctx, "RS256", "unknown")
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	eventually(t, 2*time.Second, "an unknown-kid refresh in flight", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.cur != nil
	})

	var worst time.Duration
	for range 2000 {
		t0 := time.Now()
		if _, _, err := p.Resolve(context.Background(), "RS256", "k1"); err != nil {
			t.Fatalf("Resolve(k1) during flood error = %v", err)
		}
		worst = max(worst, time.Since(t0))
	}
	if worst >= slow/2 {
		t.Errorf("slowest known-kid lookup during flood took %s: it waited for the refresh", worst)
	}
}

// TestKnownKIDLookupDoesNotAllocate pins the hot path: resolving a known
// kid allocates nothing.
func TestKnownKIDLookupDoesNotAllocate(t *testing.T) {
	srv := newJWKSServer(t, false)
	srv.serve(set(t, jwk(t, &rsaKey(0).PublicKey, "k1", "RS256", "sig"), jwk(t, &rsaKey(1).PublicKey, "k2", "", "")))
	p, _ := newTestProvider(t, remoteConfig(srv.URLJWKS()), Options{})
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if _, _, err := p.Resolve(ctx, "RS256", "k2"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Resolve(known kid) allocates %.1f times per call, want 0", allocs)
	}
}

// BenchmarkResolveKnownKID measures the per-request key lookup.
func BenchmarkResolveKnownKID(b *testing.B) {
	p := &Provider{name: "bench", now: time.Now}
	e, err := newEntry(&rsaKey(0).PublicKey, "k1", "RS256", "sig", false)
	if err != nil {
		b.Fatal(err)
	}
	p.snap.Store(&snapshot{loaded: true, fetched: time.Now(), list: []*entry{e}, byKID: map[string]*entry{"k1": e}})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := p.Resolve(ctx, "RS256", "k1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestRotationReportsAddedAndRemovedKeys pins SPEC §5 jwks_refresh records
// and key rotation: a token signed by a newly published key is accepted on
// its first request (its unknown kid triggers the refresh), and the event
// names the kids added and removed with their thumbprints.
func TestRotationReportsAddedAndRemovedKeys(t *testing.T) {
	srv := newJWKSServer(t, false)
	srv.serve(set(t, jwk(t, &rsaKey(0).PublicKey, "a", "RS256", "sig"), jwk(t, &rsaKey(1).PublicKey, "b", "RS256", "sig")))
	p, rec := newTestProvider(t, remoteConfig(srv.URLJWKS()), Options{})
	wantTP := map[string]string{}
	for _, k := range p.Keys() {
		wantTP[k.KID] = k.Thumbprint
	}

	srv.serve(set(t, jwk(t, &rsaKey(1).PublicKey, "b", "RS256", "sig"), jwk(t, &rsaKey(2).PublicKey, "c", "RS256", "sig")))
	tok := sign(t, jwt.SigningMethodRS256, rsaKey(2), "c")
	used, err := parse(p, tok, "RS256")
	if err != nil {
		t.Fatalf("token from the rotated-in key: %v", err)
	}
	tpC, _ := thumbprint(&rsaKey(2).PublicKey)
	if used.KID != "c" || used.Thumbprint != tpC {
		t.Errorf("used key = %+v, want kid c with thumbprint %s", used, tpC)
	}
	ev := rec.waitFor(t, 1, time.Second, "rotation", isOK)
	if ev.Trigger != TriggerUnknownKID {
		t.Errorf("rotation trigger = %q, want %q", ev.Trigger, TriggerUnknownKID)
	}
	if len(ev.Added) != 1 || ev.Added[0].KID != "c" || ev.Added[0].Thumbprint != tpC || ev.Added[0].Bits != 2048 || ev.Added[0].Alg != "RS256" {
		t.Errorf("Added = %+v, want c with thumbprint %s", ev.Added, tpC)
	}
	if len(ev.Removed) != 1 || ev.Removed[0].KID != "a" || ev.Removed[0].Thumbprint != wantTP["a"] {
		t.Errorf("Removed = %+v, want a with thumbprint %s", ev.Removed, wantTP["a"])
	}
	if _, err := parse(p, sign(t, jwt.SigningMethodRS256, rsaKey(0), "a"), "RS256"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("token from the removed key: error = %v, want ErrKeyNotFound", err)
	}
}

// TestPrivateMembersInRemoteSetAreIgnored pins that a set which (wrongly)
// publishes private key members is used only for its public parts.
func TestPrivateMembersInRemoteSetAreIgnored(t *testing.T) {
	priv := jwk(t, rsaKey(0), "k1", "RS256", "sig")
	if _, ok := priv["d"]; ok {
		t.Fatal("jwkset marshalled private members without being asked")
	}
	full := jwkPrivate(t, rsaKey(0), "k1")
	srv := newJWKSServer(t, false)
	srv.serve(set(t, full))
	p, _ := newTestProvider(t, remoteConfig(srv.URLJWKS()), Options{})
	key, _, err := p.Resolve(context.Background(), "RS256", "k1")
	if err != nil {
		t.Fatalf("Resolve() error = %v", err)
	}
	if _, ok := key.(*rsa.PublicKey); !ok {
		t.Errorf("Resolve() key type %T, want *rsa.PublicKey only", key)
	}
}

// TestStaleKeysAreUnavailable pins SPEC §8: keys whose last good fetch is
// older than max_stale make the provider unready and Resolve answer
// ErrKeysUnavailable; a later successful refresh makes them usable again.
func TestStaleKeysAreUnavailable(t *testing.T) {
	srv := newJWKSServer(t, false)
	srv.serve(set(t, jwk(t, &rsaKey(0).PublicKey, "k1", "RS256", "sig")))
	cp := remoteConfig(srv.URLJWKS())
	cp.MaxStale = time.Hour
	cp.UnknownKIDMinInterval = time.Minute
	clk := &clock{}
	p, _ := newTestProvider(t, cp, Options{Now: clk.Now})
	last := p.LastGoodFetch()

	srv.status(http.StatusBadGateway)
	clk.advance(2 * time.Hour)
	if ok, why := p.Ready(); ok || !strings.Contains(why, "stale") {
		t.Errorf("Ready() = %v, %q, want false, stale", ok, why)
	}
	if _, _, err := p.Resolve(context.Background(), "RS256", "k1"); !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("Resolve() with stale keys error = %v, want ErrKeysUnavailable", err)
	}
	if !p.HasKeys() || !p.LastGoodFetch().Equal(last) {
		t.Errorf("HasKeys() = %v, LastGoodFetch() = %v: stale keys must still be held", p.HasKeys(), p.LastGoodFetch())
	}

	srv.serve(set(t, jwk(t, &rsaKey(0).PublicKey, "k1", "RS256", "sig")))
	clk.advance(2 * time.Minute) // past unknown_kid_min_interval
	if _, _, err := p.Resolve(context.Background(), "RS256", "k1"); err != nil {
		t.Errorf("Resolve() after the JWKS came back error = %v", err)
	}
	if ok, why := p.Ready(); !ok {
		t.Errorf("Ready() = false (%s) after a good fetch", why)
	}
}

// TestRefreshGoroutineExitsOnContextCancel pins STYLE R6: the refresher's
// lifetime is the ctx given to New; after cancel it stops fetching and
// Done is closed. Close is idempotent.
func TestRefreshGoroutineExitsOnContextCancel(t *testing.T) {
	srv := newJWKSServer(t, false)
	srv.serve(set(t, jwk(t, &rsaKey(0).PublicKey, "k1", "RS256", "sig")))
	cp := remoteConfig(srv.URLJWKS())
	cp.RefreshInterval = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := New(ctx, cp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "periodic refreshes", func() bool { return srv.count() >= 3 })
	cancel()
	select {
	case <-p.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("Done() not closed 2s after ctx cancel")
	}
	n := srv.count()
	time.Sleep(50 * time.Millisecond)
	if srv.count() != n {
		t.Errorf("fetches continued after cancel: %d → %d", n, srv.count())
	}
	p.Close()
	p.Close()
	if _, _, err := p.Resolve(context.Background(), "RS256", "k1"); err != nil {
		t.Errorf("Resolve() after Close error = %v: loaded keys stay usable", err)
	}
	if _, _, err := p.Resolve(context.Background(), "RS256", "other"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Resolve(unknown) after Close error = %v, want ErrKeyNotFound", err)
	}
	if srv.count() != n {
		t.Errorf("an unknown kid after Close fetched")
	}
}

// TestRS256TokenVerifiesEndToEnd pins the whole path with real crypto: a
// token signed with a real private key verifies through jwt.Parse with the
// Keyfunc built on Resolve, reports the verifying key, and any change to
// the token breaks it.
func TestRS256TokenVerifiesEndToEnd(t *testing.T) {
	ec := ecKey(t, elliptic.P256())
	ed := edKey(t)
	srv := newJWKSServer(t, false)
	srv.serve(set(t,
		jwk(t, &rsaKey(0).PublicKey, "rsa", "RS256", "sig"),
		jwk(t, &ec.PublicKey, "ec", "ES256", "sig"),
		jwk(t, ed.Public(), "ed", "EdDSA", "sig"),
	))
	p, _ := newTestProvider(t, remoteConfig(srv.URLJWKS()), Options{})
	tests := []struct {
		name string
		m    jwt.SigningMethod
		key  any
		kid  string
	}{
		{name: "rs256", m: jwt.SigningMethodRS256, key: rsaKey(0), kid: "rsa"},
		{name: "es256", m: jwt.SigningMethodES256, key: ec, kid: "ec"},
		{name: "eddsa", m: jwt.SigningMethodEdDSA, key: ed, kid: "ed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, tc.m, tc.key, tc.kid)
			used, err := parse(p, tok, "RS256", "ES256", "EdDSA")
			if err != nil {
				t.Fatalf("parse(valid %s) error = %v", tc.name, err)
			}
			want := keyInfoOf(t, p, tc.kid)
			if used != want {
				t.Errorf("used key = %+v, want %+v", used, want)
			}
			i := strings.LastIndexByte(tok, '.')
			tampered := tok[:i-2] + flip(tok[i-2]) + tok[i-1:]
			if _, err := parse(p, tampered, "RS256", "ES256", "EdDSA"); err == nil {
				t.Errorf("tampered %s token verified", tc.name)
			}
			if _, err := parse(p, sign(t, tc.m, tc.key, "nope"), "RS256", "ES256", "EdDSA"); !errors.Is(err, ErrKeyNotFound) {
				t.Errorf("unknown kid: error = %v, want ErrKeyNotFound", err)
			}
		})
	}
	// A token signed by a different RSA key under a known kid fails the
	// signature check, not the lookup.
	if _, err := parse(p, sign(t, jwt.SigningMethodRS256, rsaKey(1), "rsa"), "RS256"); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Errorf("wrong signer: error = %v, want jwt.ErrTokenSignatureInvalid", err)
	}
}

// TestKIDHeaderMustBeAString pins that a non-string kid resolves nothing.
func TestKIDHeaderMustBeAString(t *testing.T) {
	srv := newJWKSServer(t, false)
	srv.serve(set(t, jwk(t, &rsaKey(0).PublicKey, "1", "RS256", "sig")))
	p, _ := newTestProvider(t, remoteConfig(srv.URLJWKS()), Options{})
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "x"})
	tok.Header["kid"] = 1
	raw, err := tok.SignedString(rsaKey(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parse(p, raw, "RS256"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("numeric kid: error = %v, want ErrKeyNotFound", err)
	}
}

// keyInfoOf returns the KeyInfo p.Keys() reports for kid.
func keyInfoOf(t *testing.T, p *Provider, kid string) KeyInfo {
	t.Helper()
	for _, k := range p.Keys() {
		if k.KID == kid {
			return k
		}
	}
	t.Fatalf("no key %q in Keys()", kid)
	return KeyInfo{}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}
