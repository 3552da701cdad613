package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var hexVersion = regexp.MustCompile(`^[0-9a-f]{16}$`)

// FuzzParse pins that Parse never panics on any input and that whatever it
// accepts satisfies the invariants the gateway relies on without checking
// again: Validate finds no error, "none" is never allowed, HMAC only with
// static secrets of at least 32 bytes, every public key resolved (RSA at
// least 2048 bits), every matches compiled, every trusted proxy parsed,
// and every route mode known.
func FuzzParse(f *testing.F) {
	f.Add([]byte(jwksConfig("https://idp.example.com/jwks", "")))
	f.Add([]byte(hmacConfig(`{alg: HS256, secret_env: PATH}`)))
	f.Add([]byte("server: {bogus: 1, max_header_bytes: lots}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte(""))
	for _, pattern := range []string{"../testdata/config/*/*.yaml", "../gateway.example.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, dir)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("Parse() error = %v, want an *Error with problems", err)
			}
			for _, p := range ce.Problems {
				if p.Warning || p.Msg == "" {
					t.Fatalf("Parse() problem %+v: want a non-warning with a message", p)
				}
			}
			return
		}
		checkInvariants(t, cfg, data)
	})
}

// checkInvariants fails t when a config accepted by Parse breaks a rule
// that validation should have enforced.
func checkInvariants(t *testing.T, cfg *Config, data []byte) {
	t.Helper()
	if !hexVersion.MatchString(cfg.Version) || cfg.Version != versionOf(data) {
		t.Fatalf("Version = %q, want the file hash", cfg.Version)
	}
	for _, p := range cfg.Validate() {
		if !p.Warning {
			t.Fatalf("Validate() after a successful Parse reports %v", p)
		}
	}
	for _, w := range cfg.Warnings {
		if !w.Warning {
			t.Fatalf("Warnings holds a non-warning %v", w)
		}
	}
	if len(cfg.Server.TrustedPrefixes()) != len(cfg.Server.TrustedProxies) {
		t.Fatalf("TrustedPrefixes() = %v for %v", cfg.Server.TrustedPrefixes(), cfg.Server.TrustedProxies)
	}
	if cfg.Admin.Address == cfg.Server.Address {
		t.Fatalf("admin and server share %q", cfg.Admin.Address)
	}
	for _, p := range cfg.Providers {
		if p.Name == "" || p.Issuer == "" || len(p.Algorithms) == 0 {
			t.Fatalf("provider %+v accepted without name, issuer or algorithms", p)
		}
		if !p.SkipAudienceCheck && len(p.Audiences) == 0 {
			t.Fatalf("provider %q accepted without audiences", p.Name)
		}
		hasSecret := false
		for _, k := range p.Keys {
			switch {
			case k.PublicKeyFile != "":
				if k.PublicKey() == nil || k.Secret() != nil {
					t.Fatalf("provider %q key %q: public key not resolved", p.Name, k.KID)
				}
			default:
				hasSecret = true
				if len(k.Secret()) < MinHMACSecretBytes || !strings.HasPrefix(k.Alg, "HS") {
					t.Fatalf("provider %q key %q: secret of %d bytes with alg %q accepted", p.Name, k.KID, len(k.Secret()), k.Alg)
				}
			}
		}
		for _, a := range p.Algorithms {
			if strings.EqualFold(a, "none") || !slices.Contains(knownAlgorithms, a) {
				t.Fatalf("provider %q allows %q", p.Name, a)
			}
			if strings.HasPrefix(a, "HS") && !hasSecret {
				t.Fatalf("provider %q allows %s without a static secret", p.Name, a)
			}
		}
		if p.RefreshInterval <= 0 || p.UnknownKIDMinInterval <= 0 || p.FetchTimeout <= 0 || p.ClockSkew <= 0 || p.MaxStale <= 0 || p.MaxTokenBytes <= 0 || p.MaxLifetime < 0 {
			t.Fatalf("provider %q accepted with a non-positive limit: %+v", p.Name, p)
		}
	}
	for _, r := range cfg.Routes {
		if !slices.Contains([]string{ModeRequired, ModeOptional, ModeOff, ModeDryRun}, r.Auth.Mode) {
			t.Fatalf("route %q accepted with mode %q", r.Name, r.Auth.Mode)
		}
		if (r.Match.Path == "") == (r.Match.PathPrefix == "") {
			t.Fatalf("route %q accepted with path %q and path_prefix %q", r.Name, r.Match.Path, r.Match.PathPrefix)
		}
		if r.Auth.Mode != ModeOff && len(cfg.Providers) == 0 {
			t.Fatalf("route %q checks tokens with no providers", r.Name)
		}
		for _, name := range r.Auth.Providers {
			if cfg.ProviderByName(name) == nil {
				t.Fatalf("route %q names unknown provider %q", r.Name, name)
			}
		}
		rules := slices.Clone(r.Auth.Require.Claims)
		for _, b := range r.Auth.Require.AnyOf {
			rules = append(rules, b.Claims...)
		}
		for _, c := range rules {
			if c.Matches != "" && (c.Regexp() == nil || c.Regexp().String() != "^(?:"+c.Matches+")$") {
				t.Fatalf("route %q: matches %q not compiled anchored", r.Name, c.Matches)
			}
		}
		for _, h := range r.Auth.Forward.ClaimsToHeaders {
			if isReservedHeader(h) || !isToken(h) {
				t.Fatalf("route %q sets header %q from a claim", r.Name, h)
			}
		}
	}
	if c := cfg.Audit.Chain; c != nil && len(c.Key()) < MinHMACSecretBytes {
		t.Fatalf("audit chain key of %d bytes accepted", len(c.Key()))
	}
}
