package jwks

import (
	"context"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c2sp/wycheproof"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/jwtgate/jwtgate/config"
)

const fixtures = "../testdata/jwks"

// TestThumbprintMatchesRFC7638Example pins the RFC 7638 §3.1 example: the
// thumbprint of its RSA key is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
func TestThumbprintMatchesRFC7638Example(t *testing.T) {
	p, rec := newTestProvider(t, fileConfig(filepath.Join(fixtures, "rfc7638.json")), Options{})
	const want = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	keys := p.Keys()
	if len(keys) != 1 || keys[0].KID != "2011-04-29" || keys[0].Thumbprint != want {
		t.Fatalf("Keys() = %+v, want kid 2011-04-29 with thumbprint %s", keys, want)
	}
	if ev := rec.all()[0]; ev.Trigger != TriggerStatic || ev.Added[0].Thumbprint != want {
		t.Errorf("event = %+v, want static with the thumbprint", ev)
	}
}

// TestThumbprintIgnoresEncodingNoise pins that thumbprints come from the
// parsed key, so the same key published with padding or a leading zero
// octet keeps its identity (audit key_thumbprint must be stable).
func TestThumbprintIgnoresEncodingNoise(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(fixtures, "rfc7638.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Keys []map[string]any }
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	k := doc.Keys[0]
	k["n"] = b64url(append([]byte{0}, mustB64(t, k["n"].(string))...)) // a leading zero octet
	k["e"] = "AQAB=="
	got, err := parseSet(set(t, k))
	if err != nil || len(got.entries) != 1 {
		t.Fatalf("parseSet() = %+v, %v", got, err)
	}
	if tp := got.entries[0].info.Thumbprint; tp != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Errorf("thumbprint with encoding noise = %s", tp)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJWKSFileSkipsBadKeys pins jwks_file loading with the same per-key
// rules as a remote set, using the mixed fixture: three usable keys, eight
// skipped with reasons, and its oct key never resolving.
func TestJWKSFileSkipsBadKeys(t *testing.T) {
	path := filepath.Join(fixtures, "mixed.json")
	p, rec := newTestProvider(t, fileConfig(path), Options{})
	if got := kidsOf(p.Keys()); !slices.Equal(got, []string{"good-rsa", "good-ec", "good-ed"}) {
		t.Errorf("Keys() = %v, want good-rsa good-ec good-ed", got)
	}
	ev := rec.all()[0]
	if ev.Source != path || ev.Trigger != TriggerStatic || ev.Result != ResultOK {
		t.Errorf("event = %+v", ev)
	}
	wantSkipped := map[string]string{
		"weak-rsa":       "1024 bits",
		"hmac":           "oct",
		"enc-rsa":        `use "enc"`,
		"x25519":         "unsupported crv",
		"off-curve":      "invalid key",
		"rsa-says-es256": "does not fit",
		"good-rsa":       "duplicate kid",
		"unknown-kty":    "unsupported kty",
	}
	if len(ev.Skipped) != len(wantSkipped) {
		t.Errorf("Skipped = %s, want %d entries", fmtSkipped(ev.Skipped), len(wantSkipped))
	}
	for _, s := range ev.Skipped {
		if want, ok := wantSkipped[s.KID]; !ok || !strings.Contains(s.Reason, want) {
			t.Errorf("skipped %q reason %q, want it to contain %q", s.KID, s.Reason, want)
		}
	}
	if _, _, err := p.Resolve(context.Background(), "HS256", "hmac"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Resolve(HS256, hmac) error = %v, want ErrKeyNotFound", err)
	}
	if ok, why := p.Ready(); !ok {
		t.Errorf("Ready() = false (%s)", why)
	}
	if p.LastGoodFetch().IsZero() {
		t.Error("LastGoodFetch() is zero for a loaded file")
	}
}

// TestEmptyJWKSFileLoadsNoKeys pins that an empty set is valid but leaves
// the provider unready.
func TestEmptyJWKSFileLoadsNoKeys(t *testing.T) {
	p, _ := newTestProvider(t, fileConfig(filepath.Join(fixtures, "empty.json")), Options{})
	if ok, why := p.Ready(); ok || p.HasKeys() || !strings.Contains(why, "no usable keys") {
		t.Errorf("Ready() = %v, %q, HasKeys() = %v, want unready without keys", ok, why, p.HasKeys())
	}
}

// TestNewFailsOnlyForBadConfig pins that New rejects configuration it can
// never serve (no or several sources, insecure URLs, a bad jwks_file,
// unresolved static keys) and nothing else.
func TestNewFailsOnlyForBadConfig(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(big, []byte(`{"keys":[`+strings.Repeat(" ", config.MaxJWKSBytes)+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cp      *config.Provider
		wantErr error // nil: any error
	}{
		{name: "no-source", cp: &config.Provider{Name: "x"}},
		{name: "two-sources", cp: &config.Provider{Name: "x", JWKSURL: "https://idp.example/jwks", JWKSFile: "a.json"}},
		{name: "plain-http-off-loopback", cp: &config.Provider{Name: "x", JWKSURL: "http://idp.example/jwks"}, wantErr: ErrInsecureURL},
		{name: "ftp-scheme", cp: &config.Provider{Name: "x", JWKSURL: "ftp://idp.example/jwks"}, wantErr: ErrInsecureURL},
		{name: "no-host", cp: &config.Provider{Name: "x", JWKSURL: "https:///jwks"}},
		{name: "discovery-plain-http-issuer", cp: &config.Provider{Name: "x", Issuer: "http://idp.example/", Discovery: true}, wantErr: ErrInsecureURL},
		{name: "missing-file", cp: fileConfig(filepath.Join(t.TempDir(), "nope.json")), wantErr: fs.ErrNotExist},
		{name: "malformed-file", cp: fileConfig(filepath.Join(fixtures, "malformed.json")), wantErr: ErrInvalidJWKS},
		{name: "oversized-file", cp: fileConfig(big), wantErr: ErrResponseTooLarge},
		{name: "unresolved-static-key", cp: &config.Provider{Name: "x", Keys: []config.StaticKey{{KID: "k", Alg: "HS256", SecretEnv: "X"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(context.Background(), tc.cp, Options{Logger: zerolog.Nop()})
			if err == nil {
				p.Close()
				t.Fatalf("New() error = nil, want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("New() error = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestURLRules pins SPEC §8: plain http is accepted on loopback hosts
// (127.0.0.0/8, ::1, localhost) and elsewhere only with
// allow_insecure_http; such providers start (degraded) instead of failing.
func TestURLRules(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		insecure bool
	}{
		{name: "loopback-127-8", url: "http://127.8.9.10:9/jwks.json"},
		{name: "loopback-ipv6", url: "http://[::1]:9/jwks.json"},
		{name: "localhost", url: "http://localhost:9/jwks.json"},
		{name: "insecure-allowed", url: "http://192.0.2.1:9/jwks.json", insecure: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cp := remoteConfig(tc.url)
			cp.AllowInsecureHTTP = tc.insecure
			cp.FetchTimeout = 100 * time.Millisecond
			p, rec := newTestProvider(t, cp, Options{})
			if p.HasKeys() {
				t.Fatal("HasKeys() = true with nothing listening")
			}
			if ev := rec.all()[0]; ev.Result != ResultError || errors.Is(ev.Err, ErrInsecureURL) {
				t.Errorf("event = %+v, want a fetch error, not a URL refusal", ev)
			}
		})
	}
}

// TestDiscovery pins OpenID Connect discovery: the JWKS comes from the
// document's jwks_uri; a document naming another issuer, an insecure
// jwks_uri, or a failing document leaves the provider without keys and
// reports the error.
func TestDiscovery(t *testing.T) {
	tests := []struct {
		name    string
		doc     func(s *jwksServer) string // the discovery document
		status  int
		wantErr error // nil: keys load
	}{
		{name: "happy-path", doc: func(s *jwksServer) string {
			return `{"issuer":"` + s.URL + `","jwks_uri":"` + s.URL + `/keys"}`
		}},
		{name: "issuer-mismatch", doc: func(s *jwksServer) string {
			return `{"issuer":"https://evil.example/","jwks_uri":"` + s.URL + `/keys"}`
		}, wantErr: ErrIssuerMismatch},
		{name: "issuer-trailing-slash-differs", doc: func(s *jwksServer) string {
			return `{"issuer":"` + s.URL + `/","jwks_uri":"` + s.URL + `/keys"}`
		}, wantErr: ErrIssuerMismatch},
		{name: "insecure-jwks-uri", doc: func(s *jwksServer) string {
			return `{"issuer":"` + s.URL + `","jwks_uri":"http://idp.example/keys"}`
		}, wantErr: ErrInsecureURL},
		{name: "no-jwks-uri", doc: func(s *jwksServer) string { return `{"issuer":"` + s.URL + `"}` }, wantErr: ErrDiscovery},
		{name: "not-json", doc: func(s *jwksServer) string { return `<html>` }, wantErr: ErrDiscovery},
		{name: "status-404", doc: func(s *jwksServer) string { return `{}` }, status: http.StatusNotFound, wantErr: ErrUnexpectedStatus},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, false)
			srv.serve(set(t, jwk(t, &rsaKey(0).PublicKey, "k1", "RS256", "sig")))
			doc := tc.doc(srv)
			srv.handleDiscovery(func(w http.ResponseWriter, r *http.Request) {
				if tc.status != 0 {
					w.WriteHeader(tc.status)
				}
				_, _ = w.Write([]byte(doc))
			})
			cp := &config.Provider{Name: "disc", Issuer: srv.URL, Discovery: true, FetchTimeout: 2 * time.Second,
				RefreshInterval: time.Hour, UnknownKIDMinInterval: time.Hour, MaxStale: time.Hour}
			p, rec := newTestProvider(t, cp, Options{})
			ev := rec.all()[0]
			if tc.wantErr == nil {
				if ev.Result != ResultOK || p.KeyCount() != 1 || ev.Source != srv.URL+"/keys" {
					t.Fatalf("event = %+v, KeyCount() = %d, want ok from %s/keys", ev, p.KeyCount(), srv.URL)
				}
				if _, _, err := p.Resolve(context.Background(), "RS256", "k1"); err != nil {
					t.Errorf("Resolve() error = %v", err)
				}
				return
			}
			if ev.Result != ResultError || !errors.Is(ev.Err, tc.wantErr) {
				t.Errorf("event = %+v, want error %v", ev, tc.wantErr)
			}
			if ev.Source != srv.URL+discoveryPath {
				t.Errorf("event source = %q, want the discovery URL", ev.Source)
			}
			if p.HasKeys() || srv.count() != 0 {
				t.Errorf("HasKeys() = %v, JWKS fetches = %d after a refused discovery", p.HasKeys(), srv.count())
			}
		})
	}
}

// TestStaticKeys pins static keys: HMAC secrets (the only source of
// []byte keys) and PEM public keys verify tokens through the Keyfunc; a
// public key is never used as an HMAC secret, and an HMAC secret only for
// its own alg.
func TestStaticKeys(t *testing.T) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	ec := ecKey(t, elliptic.P384())
	ed := edKey(t)
	rsaPub := parsePEMPublic(t, pemPublic(t, &rsaKey(0).PublicKey))
	keys := []staticKey{
		{kid: "h1", alg: "HS256", secret: secret},
		{kid: "r1", pub: rsaPub},
		{kid: "e1", alg: "ES384", pub: parsePEMPublic(t, pemPublic(t, &ec.PublicKey))},
		{kid: "d1", pub: parsePEMPublic(t, pemPublic(t, ed.Public()))},
	}
	rec := &recorder{}
	p, err := newProvider(t.Context(), &config.Provider{Name: "static"}, keys, Options{OnRefresh: rec.record, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("newProvider() error = %v", err)
	}
	t.Cleanup(p.Close)
	orig := append([]byte(nil), secret...)
	secret[0] ^= 0xff // the provider keeps its own copy

	if ev := rec.all(); len(ev) != 1 || ev[0].Trigger != TriggerStatic || ev[0].Source != "keys" || len(ev[0].Added) != 4 {
		t.Errorf("events = %+v, want one static event adding 4 keys", ev)
	}
	all := []string{"HS256", "HS384", "RS256", "PS256", "ES384", "EdDSA"}
	tests := []struct {
		name    string
		m       jwt.SigningMethod
		key     any
		kid     string
		wantErr error
	}{
		{name: "hs256-secret", m: jwt.SigningMethodHS256, key: orig, kid: "h1"},
		{name: "hs384-with-hs256-secret", m: jwt.SigningMethodHS384, key: orig, kid: "h1", wantErr: ErrKeyMismatch},
		{name: "rs256-pem", m: jwt.SigningMethodRS256, key: rsaKey(0), kid: "r1"},
		{name: "ps256-pem", m: jwt.SigningMethodPS256, key: rsaKey(0), kid: "r1"},
		{name: "es384-pem", m: jwt.SigningMethodES384, key: ec, kid: "e1"},
		{name: "eddsa-pem", m: jwt.SigningMethodEdDSA, key: ed, kid: "d1"},
		{name: "hs256-keyed-with-rsa-pem", m: jwt.SigningMethodHS256, key: pemPublic(t, &rsaKey(0).PublicKey), kid: "r1", wantErr: ErrKeyMismatch},
		{name: "hs256-keyed-with-ed25519", m: jwt.SigningMethodHS256, key: []byte(ed.Public().(ed25519.PublicKey)), kid: "d1", wantErr: ErrKeyMismatch},
		{name: "no-kid-four-keys", m: jwt.SigningMethodRS256, key: rsaKey(0), wantErr: ErrNoKID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			used, err := parse(p, sign(t, tc.m, tc.key, tc.kid), all...)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("parse() error = %v", err)
				}
				if used.KID != tc.kid || used.Thumbprint == "" {
					t.Errorf("used key = %+v", used)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("parse() error = %v, want %v", err, tc.wantErr)
			}
		})
	}
	if ok, _ := p.Ready(); !ok {
		t.Error("static provider not ready")
	}
}

// TestBadStaticKeysFailNew pins that static keys are configuration: a weak,
// mis-typed or duplicate key fails New instead of being skipped. An HMAC
// secret shorter than its hash (RFC 7518 §3.2) is weak.
func TestBadStaticKeysFailNew(t *testing.T) {
	good := make([]byte, 32)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		keys []staticKey
	}{
		{name: "short-secret", keys: []staticKey{{kid: "h", alg: "HS256", secret: make([]byte, 31)}}},
		// RFC 7518 §3.2: the secret must be at least the hash size
		// (Wycheproof json_web_key key_too_short vectors).
		{name: "hs384-secret-under-48-bytes", keys: []staticKey{{kid: "h", alg: "HS384", secret: make([]byte, 47)}}},
		{name: "hs512-secret-under-64-bytes", keys: []staticKey{{kid: "h", alg: "HS512", secret: make([]byte, 63)}}},
		{name: "secret-without-alg", keys: []staticKey{{kid: "h", secret: good}}},
		{name: "secret-with-rs256", keys: []staticKey{{kid: "h", alg: "RS256", secret: good}}},
		{name: "rsa-1024", keys: []staticKey{{kid: "r", pub: &weak.PublicKey}}},
		{name: "rsa-with-es256", keys: []staticKey{{kid: "r", alg: "ES256", pub: &rsaKey(0).PublicKey}}},
		{name: "rsa-with-hs256", keys: []staticKey{{kid: "r", alg: "HS256", pub: &rsaKey(0).PublicKey}}},
		{name: "duplicate-kid", keys: []staticKey{{kid: "r", pub: &rsaKey(0).PublicKey}, {kid: "r", pub: &rsaKey(1).PublicKey}}},
		{name: "unresolved", keys: []staticKey{{kid: "r"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newProvider(context.Background(), &config.Provider{Name: "static"}, tc.keys, Options{Logger: zerolog.Nop()})
			if err == nil {
				p.Close()
				t.Fatal("newProvider() error = nil, want an error")
			}
		})
	}
}

func fileConfig(path string) *config.Provider {
	return &config.Provider{Name: "file", Issuer: "https://issuer.test/", JWKSFile: path}
}

// TestAlgorithmsAllowListIsABackstop pins that Resolve refuses an alg the
// provider's algorithms list leaves out, even when the key would fit it.
func TestAlgorithmsAllowListIsABackstop(t *testing.T) {
	srv := newJWKSServer(t, false)
	srv.serve(set(t, jwk(t, &rsaKey(0).PublicKey, "k1", "", "")))
	cp := remoteConfig(srv.URLJWKS())
	cp.Algorithms = []string{"RS256"}
	p, _ := newTestProvider(t, cp, Options{})
	if _, _, err := p.Resolve(context.Background(), "RS256", "k1"); err != nil {
		t.Errorf("Resolve(RS256) error = %v", err)
	}
	if _, _, err := p.Resolve(context.Background(), "PS256", "k1"); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("Resolve(PS256) error = %v, want ErrKeyMismatch", err)
	}
}

// TestStaticKeysFromLoadedConfig pins the wiring from config.Parse to New:
// a secret_file HMAC secret and a public_key_file PEM key, resolved by the
// config package, verify real tokens.
func TestStaticKeysFromLoadedConfig(t *testing.T) {
	dir := t.TempDir()
	secret := make([]byte, 48)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hmac.key"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rsa.pem"), pemPublic(t, &rsaKey(0).PublicKey), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`
providers:
  - name: static
    issuer: https://issuer.test/
    audiences: [api]
    algorithms: [HS256, RS256]
    keys:
      - {kid: h1, alg: HS256, secret_file: hmac.key}
      - {kid: r1, public_key_file: rsa.pem}
routes:
  - name: all
    match: {path_prefix: /}
    upstream: {url: "http://127.0.0.1:9"}
`), dir)
	if err != nil {
		t.Fatalf("config.Parse() error = %v", err)
	}
	p, _ := newTestProvider(t, &cfg.Providers[0], Options{})
	if _, err := parse(p, sign(t, jwt.SigningMethodHS256, secret, "h1"), "HS256", "RS256"); err != nil {
		t.Errorf("HS256 token with the secret_file secret: %v", err)
	}
	if _, err := parse(p, sign(t, jwt.SigningMethodRS256, rsaKey(0), "r1"), "HS256", "RS256"); err != nil {
		t.Errorf("RS256 token with the public_key_file key: %v", err)
	}
	if _, err := parse(p, sign(t, jwt.SigningMethodHS256, pemPublic(t, &rsaKey(0).PublicKey), "r1"), "HS256", "RS256"); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("HS256 token keyed with the PEM public key: error = %v, want ErrKeyMismatch", err)
	}
}

// TestHMACSecretAtHashSizeAccepted pins the other side of RFC 7518 §3.2:
// secrets of exactly the hash size load and verify for HS384 and HS512.
func TestHMACSecretAtHashSizeAccepted(t *testing.T) {
	for _, tc := range []struct {
		alg  string
		m    jwt.SigningMethod
		size int
	}{{"HS256", jwt.SigningMethodHS256, 32}, {"HS384", jwt.SigningMethodHS384, 48}, {"HS512", jwt.SigningMethodHS512, 64}} {
		t.Run(tc.alg, func(t *testing.T) {
			secret := make([]byte, tc.size)
			if _, err := rand.Read(secret); err != nil {
				t.Fatal(err)
			}
			p, err := newProvider(t.Context(), &config.Provider{Name: "static"}, []staticKey{{kid: "h", alg: tc.alg, secret: secret}}, Options{Logger: zerolog.Nop()})
			if err != nil {
				t.Fatalf("newProvider(%d-byte %s secret) error = %v", tc.size, tc.alg, err)
			}
			t.Cleanup(p.Close)
			if _, err := parse(p, sign(t, tc.m, secret, "h"), tc.alg); err != nil {
				t.Errorf("parse() error = %v", err)
			}
		})
	}
}

// TestROCAKeyIsSkipped pins CVE-2017-15361: an RSA key generated by the
// vulnerable Infineon library (the Wycheproof json_web_key ROCA vector's
// key) is skipped from a JWK Set with a reason, while ordinary keys are
// not flagged.
func TestROCAKeyIsSkipped(t *testing.T) {
	raw, err := fs.ReadFile(wycheproof.TestVectors, "json_web_key_test.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		TestGroups []struct {
			Comment string          `json:"comment"`
			Public  json.RawMessage `json:"public"`
		} `json:"testGroups"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	var set []byte
	for _, g := range f.TestGroups {
		if g.Comment == "jws_rsa_roca_key" {
			set = g.Public
		}
	}
	if set == nil {
		t.Fatal("no jws_rsa_roca_key group in the Wycheproof vectors")
	}
	ps, err := parseSet(set)
	if err != nil {
		t.Fatalf("parseSet() error = %v", err)
	}
	if len(ps.entries) != 0 || len(ps.skipped) != 1 || !strings.Contains(ps.skipped[0].Reason, "ROCA") {
		t.Errorf("parseSet(roca) = %d entries, skipped %s; want the key skipped for ROCA", len(ps.entries), fmtSkipped(ps.skipped))
	}
	for i := range 4 {
		if rocaFingerprint(rsaKey(i).N) {
			t.Errorf("random test key %d flagged as ROCA", i)
		}
	}
}
