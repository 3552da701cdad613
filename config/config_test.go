package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// hmacConfig is a config with one HMAC provider whose key is given by keyYAML.
func hmacConfig(keyYAML string) string {
	return `
providers:
  - name: svc
    issuer: svc
    audiences: [api]
    algorithms: [HS256]
    keys: [` + keyYAML + `]
routes:
  - name: r
    match: {path: /r}
    upstream: {url: "http://127.0.0.1:9001"}
`
}

// jwksConfig is a config with one provider fetching its keys from jwksURL.
func jwksConfig(jwksURL, extra string) string {
	return `
providers:
  - name: corp
    issuer: https://idp.example.com/
    audiences: [api]
    jwks_url: "` + jwksURL + `"
` + extra + `
routes:
  - name: r
    match: {path: /r}
    upstream: {url: "http://127.0.0.1:9001"}
`
}

// problemsOf returns the errors of a failed Parse, failing the test when
// err is not an *Error.
func problemsOf(t *testing.T, err error) []FieldError {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("Parse() error = %v, want *Error", err)
	}
	return ce.Problems
}

func hasPath(ps []FieldError, path string) bool {
	return slices.ContainsFunc(ps, func(p FieldError) bool { return p.Path == path })
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadMissingFileWrapsErrNotFound pins that cmd can tell an absent
// config file from an invalid one.
func TestLoadMissingFileWrapsErrNotFound(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load(missing) error = %v, want ErrNotFound", err)
	}
	var ce *Error
	if errors.As(err, &ce) {
		t.Fatalf("Load(missing) error is an *Error (%v), want a plain not-found error", err)
	}
}

// TestConfigVersionIsStableFileHash pins SPEC §5 config_version: the first
// 16 lowercase hex digits of the SHA-256 of the file, the same for the same
// bytes and different for any change (even a comment).
func TestConfigVersionIsStableFileHash(t *testing.T) {
	data := []byte(jwksConfig("https://idp.example.com/jwks", ""))
	a, err := Parse(data, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(data, "")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(a.Version) {
		t.Errorf("Version = %q, want 16 lowercase hex digits", a.Version)
	}
	if a.Version != b.Version {
		t.Errorf("Version differs for the same bytes: %q vs %q", a.Version, b.Version)
	}
	if a.Version != versionOf(data) {
		t.Errorf("Version = %q, want %q", a.Version, versionOf(data))
	}
	c, err := Parse(append([]byte("# changed\n"), data...), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Version == a.Version {
		t.Errorf("Version did not change when the file changed: %q", c.Version)
	}
	// The hash is of the file bytes, not of the decoded config.
	const known = "routes: []\n"
	if got, want := versionOf([]byte(known)), "53c772ade0170baf"; got != want {
		t.Errorf("versionOf(%q) = %q, want %q", known, got, want)
	}
}

// TestHMACSecretLengthBoundary pins SPEC §2: an HMAC secret of fewer than
// 32 bytes (after base64 decoding) is rejected; 32 is accepted. A short
// secret is brute-forceable offline from any one token.
func TestHMACSecretLengthBoundary(t *testing.T) {
	raw := func(n int) []byte {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		for i := range b { // printable, so it can sit in an env var
			b[i] = 'a' + b[i]%26
		}
		return b
	}
	tests := []struct {
		name  string
		value string
		ok    bool
		want  int // decoded length
	}{
		{name: "raw-31", value: string(raw(31))},
		{name: "raw-32", value: string(raw(32)), ok: true, want: 32},
		{name: "raw-64", value: string(raw(64)), ok: true, want: 64},
		{name: "base64-31", value: "base64:" + base64.StdEncoding.EncodeToString(raw(31))},
		{name: "base64-32", value: "base64:" + base64.StdEncoding.EncodeToString(raw(32)), ok: true, want: 32},
		{name: "base64-raw-url-32", value: "base64:" + base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff", 16))), ok: true, want: 32},
		{name: "base64-text-is-44-bytes-but-decodes-to-31", value: "base64:" + base64.StdEncoding.EncodeToString(raw(31))},
		{name: "not-base64", value: "base64:***"},
		{name: "empty", value: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, src := range []string{"env", "file"} {
				dir := t.TempDir()
				var key string
				if src == "env" {
					t.Setenv("JWTGATE_BOUNDARY", tc.value)
					key = `{alg: HS256, secret_env: JWTGATE_BOUNDARY}`
				} else {
					writeFile(t, dir, "secret", []byte(tc.value))
					key = `{alg: HS256, secret_file: secret}`
				}
				cfg, err := Parse([]byte(hmacConfig(key)), dir)
				if !tc.ok {
					ps := problemsOf(t, err)
					want := "providers[0].keys[0].secret_" + src
					if !hasPath(ps, want) {
						t.Errorf("%s: Parse() error = %v, want path %q", src, err, want)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: Parse() error = %v, want none", src, err)
				}
				if got := len(cfg.Providers[0].Keys[0].Secret()); got != tc.want {
					t.Errorf("%s: len(Secret()) = %d, want %d", src, got, tc.want)
				}
			}
		})
	}
}

// TestSecretFileKeepsRawBytes pins that a secret file's bytes are used as
// they are (a trailing newline is part of the secret), so what a signer
// reads from the same file is exactly what jwtgate verifies with.
func TestSecretFileKeepsRawBytes(t *testing.T) {
	dir := t.TempDir()
	secret := []byte(strings.Repeat("k", 32) + "\n")
	writeFile(t, dir, "s", secret)
	cfg, err := Parse([]byte(hmacConfig(`{alg: HS256, secret_file: s}`)), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Providers[0].Keys[0].Secret(); string(got) != string(secret) {
		t.Errorf("Secret() = %d bytes, want the file's %d bytes as they are", len(got), len(secret))
	}
}

// TestSecretValueNeverInMessages pins that no problem message (errors or
// warnings) ever contains a secret's value, even when the secret is
// rejected: validate output ends up in terminals, CI logs and tickets.
func TestSecretValueNeverInMessages(t *testing.T) {
	const short = "hunter2-is-my-password"
	const badB64 = "base64:hunter2-is-not@base64"
	dir := t.TempDir()
	writeFile(t, dir, "short", []byte(short))
	writeFile(t, dir, "chain", []byte(short))
	t.Setenv("JWTGATE_SHORT", short)
	t.Setenv("JWTGATE_BADB64", badB64)
	data := hmacConfig(`{kid: a, alg: HS256, secret_env: JWTGATE_SHORT}, {kid: b, alg: HS256, secret_file: short}, {kid: c, alg: HS256, secret_env: JWTGATE_BADB64}`) +
		"audit: {chain: {key_file: chain}}\n"
	_, err := Parse([]byte(data), dir)
	ps := problemsOf(t, err)
	if len(ps) != 4 {
		t.Errorf("Parse() problems = %v, want 4 (three secrets and the chain key)", ps)
	}
	for _, p := range ps {
		if strings.Contains(p.Msg, "hunter2") {
			t.Errorf("problem %q contains the secret's value", p.Error())
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Error() = %q contains the secret's value", err.Error())
	}
}

// TestPlainHTTPJWKSOnlyOnLoopback pins SPEC §8: a JWKS fetched over plain
// http can be replaced by anyone on the path, so http is accepted only for
// loopback hosts unless allow_insecure_http is set (then it is a warning).
func TestPlainHTTPJWKSOnlyOnLoopback(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		insecure bool
		ok       bool
		warn     bool
	}{
		{name: "https", url: "https://idp.example.com/jwks", ok: true},
		{name: "loopback-127-8-9-10", url: "http://127.8.9.10/jwks", ok: true},
		{name: "loopback-ipv6", url: "http://[::1]:8081/jwks", ok: true},
		{name: "localhost", url: "http://localhost:8081/jwks", ok: true},
		{name: "localhost-upper", url: "http://LocalHost/jwks", ok: true},
		{name: "remote-host", url: "http://idp.invalid/jwks"},
		{name: "loopback-lookalike-name", url: "http://127.0.0.1.nip.invalid/jwks"},
		{name: "localhost-subdomain", url: "http://localhost.idp.invalid/jwks"},
		{name: "private-address", url: "http://10.0.0.1/jwks"},
		{name: "unspecified-address", url: "http://0.0.0.0/jwks"},
		{name: "remote-host-allowed-insecure", url: "http://idp.invalid/jwks", insecure: true, ok: true, warn: true},
		{name: "ftp", url: "ftp://idp.invalid/jwks", insecure: true},
		{name: "relative", url: "/jwks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			extra := ""
			if tc.insecure {
				extra = "    allow_insecure_http: true"
			}
			cfg, err := Parse([]byte(jwksConfig(tc.url, extra)), "")
			if !tc.ok {
				if ps := problemsOf(t, err); !hasPath(ps, "providers[0].jwks_url") {
					t.Errorf("Parse(jwks_url %q) error = %v, want path providers[0].jwks_url", tc.url, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(jwks_url %q) error = %v, want none", tc.url, err)
			}
			if got := hasPath(cfg.Warnings, "providers[0].allow_insecure_http"); got != tc.warn {
				t.Errorf("Parse(jwks_url %q) warnings = %v, want warning %v", tc.url, cfg.Warnings, tc.warn)
			}
		})
	}
}

// TestDiscoveryOverPlainHTTPRejected pins that with discovery the issuer
// URL follows the same https-or-loopback rule as jwks_url.
func TestDiscoveryOverPlainHTTPRejected(t *testing.T) {
	data := strings.Replace(jwksConfig("x", ""), `    jwks_url: "x"`, "    discovery: true", 1)
	data = strings.Replace(data, "https://idp.example.com/", "http://idp.invalid/", 1)
	_, err := Parse([]byte(data), "")
	if ps := problemsOf(t, err); !hasPath(ps, "providers[0].issuer") {
		t.Errorf("Parse() error = %v, want path providers[0].issuer", err)
	}
}

// TestAlgNoneRejected pins that "none", in any case, can never be in an
// allow-list: it would accept unsigned tokens.
func TestAlgNoneRejected(t *testing.T) {
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		t.Run(alg, func(t *testing.T) {
			_, err := Parse([]byte(jwksConfig("https://idp.example.com/jwks", "    algorithms: [RS256, "+alg+"]")), "")
			if ps := problemsOf(t, err); !hasPath(ps, "providers[0].algorithms[1]") {
				t.Errorf("Parse(algorithms [RS256, %s]) error = %v, want path providers[0].algorithms[1]", alg, err)
			}
		})
	}
}

// TestHMACWithPublicKeySourcesRejected pins the guard against HS/RS key
// confusion (R7): HS* is an error for providers whose keys come from a
// JWKS (jwks_url, discovery, jwks_file) or from public key files, so a
// public key (or an "oct" key slipped into a remote set) can never be used
// as an HMAC secret.
func TestHMACWithPublicKeySourcesRejected(t *testing.T) {
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	tests := []struct {
		name   string
		source string
	}{
		{name: "jwks-url", source: `jwks_url: "https://idp.example.com/jwks"`},
		{name: "discovery", source: `discovery: true`},
		{name: "jwks-file", source: `jwks_file: jwks.json`},
		{name: "public-key-file", source: `keys: [{public_key_file: pub.pem}]`},
	}
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		for _, tc := range tests {
			t.Run(tc.name+"-"+alg, func(t *testing.T) {
				data := fmt.Sprintf(`
providers:
  - {name: p, issuer: "https://idp.example.com/", audiences: [a], %s, algorithms: [ES256, %s]}
routes: [{name: r, match: {path: /}, upstream: {url: "http://127.0.0.1:1"}}]
`, tc.source, alg)
				_, err := Parse([]byte(data), dir)
				ps := problemsOf(t, err)
				if !hasPath(ps, "providers[0].algorithms[1]") {
					t.Errorf("Parse() error = %v, want path providers[0].algorithms[1]", err)
				}
			})
		}
	}
}

// TestPrivateKeyPEMRejected pins that a public_key_file holding a private
// key is refused (it must not be deployed to the gateway), with a message
// that tells how to extract the public key.
func TestPrivateKeyPEMRejected(t *testing.T) {
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	_, err = Parse([]byte(hmacConfig(`{public_key_file: key.pem}`)), dir)
	ps := problemsOf(t, err)
	i := slices.IndexFunc(ps, func(p FieldError) bool { return p.Path == "providers[0].keys[0].public_key_file" })
	if i < 0 || !strings.Contains(ps[i].Msg, "private key") {
		t.Fatalf("Parse() problems = %v, want a private-key error at providers[0].keys[0].public_key_file", ps)
	}
}

// TestRelativePathsResolveAgainstConfigDir pins that file paths in a
// config mean the same whatever the process's working directory.
func TestRelativePathsResolveAgainstConfigDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "keys/hmac", []byte(strings.Repeat("s", 32)))
	writeFile(t, dir, "keys/chain", []byte(strings.Repeat("c", 40)))
	data := hmacConfig(`{alg: HS256, secret_file: keys/hmac}`) + `
server: {tls: {cert_file: tls/cert.pem, key_file: /abs/key.pem}}
audit: {output: file, file: logs/audit.log, chain: {key_file: keys/chain}}
`
	path := writeFile(t, dir, "gateway.yaml", []byte(data))
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Path != path {
		t.Errorf("Path = %q, want %q", cfg.Path, path)
	}
	checks := []struct{ name, got, want string }{
		{"secret_file", cfg.Providers[0].Keys[0].SecretFile, filepath.Join(dir, "keys/hmac")},
		{"tls.cert_file", cfg.Server.TLS.CertFile, filepath.Join(dir, "tls/cert.pem")},
		{"tls.key_file", cfg.Server.TLS.KeyFile, "/abs/key.pem"},
		{"audit.file", cfg.Audit.File, filepath.Join(dir, "logs/audit.log")},
		{"audit.chain.key_file", cfg.Audit.Chain.KeyFile, filepath.Join(dir, "keys/chain")},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if got := len(cfg.Audit.Chain.Key()); got != 40 {
		t.Errorf("len(Chain.Key()) = %d, want 40", got)
	}
}

// TestDefaultsApplied pins the SPEC §2 defaults, including the ones chosen
// against library defaults (refresh 15m, unknown kid 30s), and that an
// empty auth.providers stays empty (meaning every provider).
func TestDefaultsApplied(t *testing.T) {
	cfg, err := Parse([]byte(jwksConfig("https://idp.example.com/jwks", "")), "")
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Providers[0]
	r := cfg.Routes[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"server.address", cfg.Server.Address, DefaultAddress},
		{"server.read_header_timeout", cfg.Server.ReadHeaderTimeout, DefaultReadHeaderTimeout},
		{"server.idle_timeout", cfg.Server.IdleTimeout, DefaultIdleTimeout},
		{"server.body_idle_timeout", cfg.Server.BodyIdleTimeout, DefaultBodyIdleTimeout},
		{"server.max_header_bytes", cfg.Server.MaxHeaderBytes, DefaultMaxHeaderBytes},
		{"server.shutdown_grace", cfg.Server.ShutdownGrace, DefaultShutdownGrace},
		{"admin.address", cfg.Admin.Address, DefaultAdminAddress},
		{"algorithms", strings.Join(p.Algorithms, " "), strings.Join(DefaultAlgorithms, " ")},
		{"refresh_interval", p.RefreshInterval, 15 * time.Minute},
		{"unknown_kid_min_interval", p.UnknownKIDMinInterval, 30 * time.Second},
		{"fetch_timeout", p.FetchTimeout, DefaultFetchTimeout},
		{"max_token_bytes", p.MaxTokenBytes, DefaultMaxTokenBytes},
		{"clock_skew", p.ClockSkew, DefaultClockSkew},
		{"max_stale", p.MaxStale, DefaultMaxStale},
		{"max_lifetime", p.MaxLifetime, time.Duration(0)},
		{"required_claims", strings.Join(p.RequiredClaims, " "), "exp"},
		{"token_sources", fmt.Sprint(p.TokenSources), fmt.Sprint([]TokenSource{{Header: "Authorization", Prefix: "Bearer "}})},
		{"auth.mode", r.Auth.Mode, ModeRequired},
		{"auth.providers", len(r.Auth.Providers), 0},
		{"upstream.timeout", r.Upstream.Timeout, DefaultUpstreamTimeout},
		{"audit.output", cfg.Audit.Output, DefaultAuditOutput},
		{"audit.on_write_error", cfg.Audit.OnWriteError, DefaultAuditOnWriteError},
		{"audit.rotate.max_size_mb", cfg.Audit.Rotate.MaxSizeMB, DefaultAuditMaxSizeMB},
		{"audit.rotate.max_backups", cfg.Audit.Rotate.MaxBackups, DefaultAuditMaxBackups},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if slices.Contains(p.Algorithms, "HS256") {
		t.Errorf("default algorithms %v contain HMAC", p.Algorithms)
	}
	// The defaults are copies: changing one provider's list must not
	// change the package default.
	p.Algorithms[0] = "changed"
	if DefaultAlgorithms[0] == "changed" {
		t.Error("applyDefaults shares DefaultAlgorithms with the config")
	}
}

// TestParsedFormsFilled pins that Load fills the parsed forms other
// packages read: trusted proxy prefixes (bare addresses as /32 and /128),
// anchored claim regexps, and normalised hosts and methods.
func TestParsedFormsFilled(t *testing.T) {
	data := `
server: {trusted_proxies: [10.0.0.0/8, 192.0.2.7, "2001:db8::1", 172.16.5.4/12]}
routes:
  - name: r
    match: {host: API.Example.COM, path: /r, methods: [get, Post]}
    upstream: {url: "http://127.0.0.1:9001"}
    auth:
      mode: "off"
  - name: s
    match: {path: /s}
    upstream: {url: "http://127.0.0.1:9001"}
    auth:
      mode: optional
      require:
        claims: [{claim: email, matches: 'a|b@example\.com'}]
        any_of: [{claims: [{claim: sub, matches: 'svc-.*'}]}]
providers: [{name: p, issuer: i, audiences: [a], jwks_url: "https://idp.example.com/jwks"}]
`
	cfg, err := Parse([]byte(data), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("172.16.0.0/12"),
	}
	if got := cfg.Server.TrustedPrefixes(); !slices.Equal(got, want) {
		t.Errorf("TrustedPrefixes() = %v, want %v", got, want)
	}
	m := cfg.Routes[0].Match
	if m.Host != "api.example.com" || !slices.Equal(m.Methods, []string{"GET", "POST"}) {
		t.Errorf("match = host %q methods %v, want api.example.com [GET POST]", m.Host, m.Methods)
	}
	re := cfg.Routes[1].Auth.Require.Claims[0].Regexp()
	if re == nil {
		t.Fatal("Regexp() = nil, want the compiled matches")
	}
	// Anchoring wraps the whole alternation: "a|b@example\.com" must not
	// match "xa" or "b@example.com.evil" by one branch alone.
	for s, want := range map[string]bool{"a": true, "b@example.com": true, "xa": false, "b@example.com.evil": false, "ab@example.com": false} {
		if got := re.MatchString(s); got != want {
			t.Errorf("Regexp().MatchString(%q) = %v, want %v", s, got, want)
		}
	}
	if cfg.Routes[1].Auth.Require.AnyOf[0].Claims[0].Regexp() == nil {
		t.Error("any_of claim Regexp() = nil, want the compiled matches")
	}
}

// TestProviderByName pins the lookup routes use to resolve auth.providers.
func TestProviderByName(t *testing.T) {
	cfg, err := Parse([]byte(jwksConfig("https://idp.example.com/jwks", "")), "")
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.ProviderByName("corp"); p == nil || p != &cfg.Providers[0] {
		t.Errorf("ProviderByName(corp) = %p, want %p", p, &cfg.Providers[0])
	}
	if p := cfg.ProviderByName("nope"); p != nil {
		t.Errorf("ProviderByName(nope) = %v, want nil", p)
	}
}

// TestValidateIsPureAndAgreesWithParse pins R5: Validate reads no file,
// changes nothing, accepts what Parse accepted, and reports a problem
// introduced afterwards (as a reload or a test building a Config would).
func TestValidateIsPureAndAgreesWithParse(t *testing.T) {
	t.Setenv("JWTGATE_VALIDATE_SECRET", strings.Repeat("v", 32))
	cfg, err := Parse([]byte(hmacConfig(`{alg: HS256, secret_env: JWTGATE_VALIDATE_SECRET}`)), "")
	if err != nil {
		t.Fatal(err)
	}
	if errs := errorsOnly(cfg.Validate()); len(errs) != 0 {
		t.Fatalf("Validate() = %v, want no errors", errs)
	}
	t.Setenv("JWTGATE_VALIDATE_SECRET", "short") // Validate must not re-read it
	if errs := errorsOnly(cfg.Validate()); len(errs) != 0 {
		t.Fatalf("Validate() after the env changed = %v, want no errors (no I/O)", errs)
	}
	cfg.Routes[0].Auth.Mode = "sometimes"
	cfg.Providers[0].Algorithms = append(cfg.Providers[0].Algorithms, "none")
	errs := errorsOnly(cfg.Validate())
	for _, want := range []string{"routes[0].auth.mode", "providers[0].algorithms[1]"} {
		if !hasPath(errs, want) {
			t.Errorf("Validate() = %v, want path %q", errs, want)
		}
	}
	if cfg.Routes[0].Auth.Mode != "sometimes" {
		t.Error("Validate() changed the config")
	}
	// A zero Config (nothing set) is valid apart from having no routes.
	var zero Config
	if errs := errorsOnly(zero.Validate()); len(errs) != 0 {
		t.Errorf("(&Config{}).Validate() = %v, want no errors", errs)
	}
}

// TestYAMLProblemsReportedTogether pins SPEC §2: unknown keys and type
// errors across the file are reported in one pass, each with its YAML path,
// and no semantic check runs on a file that does not decode.
func TestYAMLProblemsReportedTogether(t *testing.T) {
	data := `
server:
  bogus_option: true
  max_header_bytes: lots
routes:
  - name: r
    match: {path: /r, bogus_match: 1}
    upstream: {url: "ftp://semantic-error-not-reported", timeout: 30}
`
	_, err := Parse([]byte(data), "")
	ps := problemsOf(t, err)
	want := []string{
		"server.bogus_option: unknown field; the keys allowed here are address, allow_encoded_slashes, allow_path_params, body_idle_timeout, h2c, idle_timeout, max_header_bytes, read_header_timeout, shutdown_grace, tls, trusted_proxies",
		`server.max_header_bytes: cannot use "lots" as an integer`,
		"routes[0].match.bogus_match: unknown field; the keys allowed here are host, methods, path, path_prefix",
		`routes[0].upstream.timeout: cannot use 30 as a duration; write a number with a unit, such as "30s" or "15m"`,
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Error())
	}
	if !slices.Equal(got, want) {
		t.Errorf("Parse() problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestAliasBombRejected pins that a small file of nested YAML aliases
// ("billion laughs") is refused quickly instead of being expanded: here
// four nested lists of 50 aliases each would be 6 million claim values.
func TestAliasBombRejected(t *testing.T) {
	const n = 50
	rep := func(s string) string { return strings.TrimSuffix(strings.Repeat(s+", ", n), ", ") }
	data := `
providers: [{name: p, issuer: i, audiences: [a], jwks_url: "https://idp.example.com/jwks"}]
routes:
  - &r
    name: r
    match: {path: /r}
    upstream: {url: "http://127.0.0.1:1"}
    auth:
      require:
        claims: &c [{claim: a, one_of: &o [` + rep("1") + `]}, ` + rep("{claim: a, one_of: *o}") + `]
        any_of: &a [` + rep("{claims: *c}") + `]
` + strings.Repeat("  - *r\n", n)
	if len(data) > 16<<10 {
		t.Fatalf("bomb is %d bytes, want a small file", len(data))
	}
	start := time.Now()
	_, err := Parse([]byte(data), "")
	ps := problemsOf(t, err)
	if !slices.ContainsFunc(ps, func(p FieldError) bool { return strings.Contains(p.Msg, "too many nodes") }) {
		t.Errorf("Parse(alias bomb) problems = %v, want a too-many-nodes error", ps)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Parse(alias bomb) took %v, want it refused quickly", d)
	}
}
