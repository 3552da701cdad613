package config

import (
	"crypto"
	"net/netip"
	"regexp"
	"time"
)

// Defaults applied by Load to fields left unset. Each is named so that code,
// docs and tests refer to one value.
const (
	DefaultAddress           = ":8080"
	DefaultAdminAddress      = "127.0.0.1:9901"
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 32768
	DefaultShutdownGrace     = 20 * time.Second

	// DefaultBodyIdleTimeout cuts off a request body that stalls. Long
	// enough for a mobile client on a poor link, short enough that a
	// slow-body attacker cannot hold connections and upstream requests.
	DefaultBodyIdleTimeout = 30 * time.Second

	// DefaultRefreshInterval is how often a remote JWKS is fetched again.
	// keyfunc's own default is one hour, too slow for key revocation.
	DefaultRefreshInterval = 15 * time.Minute
	// DefaultUnknownKIDMinInterval bounds refreshes caused by unknown kids.
	// keyfunc's own default (5 minutes, with a wait of up to a minute) lets
	// a rotated key fail for minutes and can hold a request for a minute.
	DefaultUnknownKIDMinInterval = 30 * time.Second
	DefaultFetchTimeout          = 5 * time.Second
	DefaultMaxTokenBytes         = 8192
	DefaultClockSkew             = 30 * time.Second
	DefaultMaxStale              = 24 * time.Hour

	DefaultUpstreamTimeout = 30 * time.Second

	DefaultAuditOutput       = "stdout"
	DefaultAuditMaxSizeMB    = 100
	DefaultAuditMaxBackups   = 10
	DefaultAuditOnWriteError = "block"

	// MaxJWKSBytes caps every JWKS and discovery response body (SPEC §8).
	MaxJWKSBytes = 1 << 20
	// MinHMACSecretBytes is the shortest HMAC secret accepted (SPEC §2).
	MinHMACSecretBytes = 32
)

// DefaultAlgorithms is the provider allow-list when `algorithms` is unset.
// HMAC is absent on purpose: it is only allowed, explicitly, with static secrets.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// DefaultRequiredClaims is the provider's `required_claims` when unset.
var DefaultRequiredClaims = []string{"exp"}

// Auth modes (routes[].auth.mode).
const (
	ModeRequired = "required"
	ModeOptional = "optional"
	ModeOff      = "off"
	ModeDryRun   = "dry_run"
)

// CORS preflight policies (routes[].auth.cors_preflight).
const (
	// CORSPreflightCheck treats a preflight like any other request.
	CORSPreflightCheck = "check"
	// CORSPreflightPass forwards a tokenless preflight without a token check.
	CORSPreflightPass = "pass"
)

// Config is a whole gateway configuration as loaded from one YAML file.
type Config struct {
	// Server configures the public listener.
	Server Server `yaml:"server"`
	// Admin configures the admin listener (health, readiness, metrics).
	Admin Admin `yaml:"admin"`
	// Providers are the token issuers, selected per token by its iss claim.
	Providers []Provider `yaml:"providers"`
	// Routes map requests to upstreams and their auth rules.
	Routes []Route `yaml:"routes"`
	// Audit configures the audit record stream.
	Audit Audit `yaml:"audit"`

	// Version is the first 16 hex digits of the SHA-256 of the file's bytes
	// (SPEC §5 config_version). Set by Load and Parse.
	Version string `yaml:"-"`
	// Path is the file the config was loaded from; empty for Parse.
	Path string `yaml:"-"`
	// Warnings are the problems that do not fail validation, such as a
	// route that can never match. Set by Load and Parse.
	Warnings []FieldError `yaml:"-"`
}

// Server configures the public listener.
type Server struct {
	// Address is the public listen address. Defaults to ":8080".
	Address string `yaml:"address"`
	// TLS enables HTTPS (and HTTP/2) when set.
	TLS *TLS `yaml:"tls"`
	// ReadHeaderTimeout bounds reading a request's headers. Defaults to 5s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle keep-alive connections. Defaults to 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// BodyIdleTimeout cuts off a request body that sends no bytes for this
	// long: the connection is dropped, the upstream request ends and the
	// audit record says client_closed, so a slow-body client cannot hold a
	// connection and an upstream request open forever. Long uploads that
	// keep sending are not affected: the timer restarts on every read. It
	// applies while the body is read; idle keep-alive connections stay
	// governed by IdleTimeout. gRPC calls are exempt: their streams may
	// idle for long, and gRPC has deadlines and keepalives of its own.
	// Defaults to 30s.
	BodyIdleTimeout time.Duration `yaml:"body_idle_timeout"`
	// MaxHeaderBytes caps the request header size in bytes. Defaults to 32768.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// TrustedProxies are CIDRs (or single addresses) whose X-Forwarded-For
	// and X-Request-Id are believed. Defaults to none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ShutdownGrace bounds how long in-flight requests may run after
	// SIGTERM. Defaults to 20s.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// AllowEncodedSlashes lets paths keep %2F and %5C (SPEC §3.1). Default false.
	AllowEncodedSlashes bool `yaml:"allow_encoded_slashes"`
	// AllowPathParams lets paths keep ';' parameters (SPEC §3.1). Default false.
	AllowPathParams bool `yaml:"allow_path_params"`
	// H2C accepts cleartext HTTP/2 (prior knowledge, as gRPC clients
	// without TLS speak it) on the public port. Default false: an h2c
	// upgrade or preface is not accepted unless configured.
	H2C bool `yaml:"h2c"`

	trusted []netip.Prefix
}

// TrustedPrefixes returns the parsed TrustedProxies, filled by Load.
func (s *Server) TrustedPrefixes() []netip.Prefix { return s.trusted }

// TLS names a certificate and key in PEM files.
type TLS struct {
	// CertFile is the PEM certificate chain. A relative path is resolved
	// against the config file's directory.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key. A relative path is resolved against
	// the config file's directory.
	KeyFile string `yaml:"key_file"`
}

// Admin configures the admin listener.
type Admin struct {
	// Address is the admin listen address; it must differ from the public
	// one. Defaults to "127.0.0.1:9901".
	Address string `yaml:"address"`
	// Pprof serves net/http/pprof under /debug/pprof/ on the admin listener.
	// Default false.
	Pprof bool `yaml:"pprof"`
}

// Provider is a token issuer and where its verification keys come from.
// Exactly one of JWKSURL, Discovery, JWKSFile and Keys is set.
type Provider struct {
	// Name identifies the provider in routes, audit records and metrics.
	Name string `yaml:"name"`
	// Issuer is matched exactly against the token's iss claim.
	Issuer string `yaml:"issuer"`
	// Audiences: the token's aud must contain at least one. Required unless
	// SkipAudienceCheck is set.
	Audiences []string `yaml:"audiences"`
	// SkipAudienceCheck accepts any aud. validate warns about it.
	SkipAudienceCheck bool `yaml:"skip_audience_check"`
	// JWKSURL is a remote JWK Set (https, or http on loopback).
	JWKSURL string `yaml:"jwks_url"`
	// Discovery finds the JWKS through Issuer + "/.well-known/openid-configuration".
	Discovery bool `yaml:"discovery"`
	// JWKSFile is a local JWK Set file. A relative path is resolved against
	// the config file's directory.
	JWKSFile string `yaml:"jwks_file"`
	// Keys are static keys: PEM public keys, or HMAC secrets from the
	// environment or a file (the only place HMAC is allowed).
	Keys []StaticKey `yaml:"keys"`
	// Algorithms is the alg allow-list. Defaults to DefaultAlgorithms.
	// "none" is never allowed; HS* only with static secrets.
	Algorithms []string `yaml:"algorithms"`
	// RefreshInterval is the background JWKS refresh period. Defaults to 15m.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// UnknownKIDMinInterval: an unknown kid triggers at most one refresh per
	// interval. Defaults to 30s.
	UnknownKIDMinInterval time.Duration `yaml:"unknown_kid_min_interval"`
	// FetchTimeout bounds each JWKS or discovery fetch. Defaults to 5s.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// AllowInsecureHTTP allows plain-http JWKS and discovery URLs off
	// loopback. Default false.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http"`
	// MaxTokenBytes caps the raw token length. Defaults to 8192.
	MaxTokenBytes int `yaml:"max_token_bytes"`
	// ClockSkew is the leeway for exp, nbf and iat. Defaults to 30s.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// MaxLifetime, when set, bounds exp - iat. Zero means no bound.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// MaxStale: keys whose last good fetch is older make the provider answer
	// 503 and /readyz fail. Defaults to 24h.
	MaxStale time.Duration `yaml:"max_stale"`
	// TokenTypes, when set, lists the allowed typ header values (RFC 9068);
	// a token without typ is then refused.
	TokenTypes []string `yaml:"token_types"`
	// RequiredClaims must be present in every token. Defaults to [exp].
	RequiredClaims []string `yaml:"required_claims"`
	// ScopeClaim names the claim holding scopes. When empty, "scope"
	// (space-separated) then "scp" (array or string) are read.
	ScopeClaim string `yaml:"scope_claim"`
	// TokenSources are tried in order. Defaults to the Authorization header
	// with prefix "Bearer ".
	TokenSources []TokenSource `yaml:"token_sources"`
}

// StaticKey is one configured verification key.
type StaticKey struct {
	// KID is the key id tokens name in their kid header.
	KID string `yaml:"kid"`
	// Alg is the key's algorithm. Required for HMAC secrets.
	Alg string `yaml:"alg"`
	// SecretEnv names an environment variable holding an HMAC secret
	// (raw bytes, or base64 after a "base64:" prefix; at least 32 bytes).
	SecretEnv string `yaml:"secret_env"`
	// SecretFile names a file holding an HMAC secret (same rules; the
	// file's bytes are used as they are, a trailing newline included). A
	// relative path is resolved against the config file's directory.
	SecretFile string `yaml:"secret_file"`
	// PublicKeyFile names a PEM public key (RSA of at least 2048 bits, EC
	// P-256/P-384/P-521 or Ed25519) as a PUBLIC KEY, RSA PUBLIC KEY or
	// CERTIFICATE block. A relative path is resolved against the config
	// file's directory.
	PublicKeyFile string `yaml:"public_key_file"`

	secret    []byte
	publicKey crypto.PublicKey
}

// Secret returns the resolved HMAC secret, filled by Load; nil for public keys.
func (k *StaticKey) Secret() []byte { return k.secret }

// PublicKey returns the parsed public key, filled by Load; nil for secrets.
func (k *StaticKey) PublicKey() crypto.PublicKey { return k.publicKey }

// TokenSource is one place a token may be found. Exactly one of Header,
// Cookie and Query is set.
type TokenSource struct {
	// Header is a request header name.
	Header string `yaml:"header"`
	// Prefix is stripped from the header value (matched case-insensitively),
	// e.g. "Bearer ". A header value without it holds no token.
	Prefix string `yaml:"prefix"`
	// Cookie is a cookie name.
	Cookie string `yaml:"cookie"`
	// Query is a query parameter name.
	Query string `yaml:"query"`
}

// Route maps matching requests to an upstream under auth rules.
type Route struct {
	// Name identifies the route in audit records and metrics.
	Name string `yaml:"name"`
	// Match selects the requests this route handles.
	Match Match `yaml:"match"`
	// Upstream is where matching requests are forwarded.
	Upstream Upstream `yaml:"upstream"`
	// Auth holds the route's token rules.
	Auth Auth `yaml:"auth"`
	// MaxBodyBytes, when > 0, caps the request body: a larger body is
	// refused with 413 (reason body_too_large) and never fully forwarded.
	// Zero means no cap.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// Match selects requests. Exactly one of Path and PathPrefix is set.
type Match struct {
	// Host is an exact host or "*.example.com"; empty matches any host.
	Host string `yaml:"host"`
	// Path matches one exact path.
	Path string `yaml:"path"`
	// PathPrefix matches the path and everything below it, segment-aware.
	PathPrefix string `yaml:"path_prefix"`
	// Methods, when set, limits the route to these methods.
	Methods []string `yaml:"methods"`
}

// Upstream is a backend.
type Upstream struct {
	// URL is the backend's base URL (http or https).
	URL string `yaml:"url"`
	// StripPrefix removes the matched path_prefix before forwarding.
	StripPrefix bool `yaml:"strip_prefix"`
	// Timeout bounds the wait for the response headers. Defaults to 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// Auth is a route's token policy.
type Auth struct {
	// Mode is required (default), optional, off or dry_run.
	Mode string `yaml:"mode"`
	// Providers names the providers accepted; defaults to all.
	Providers []string `yaml:"providers"`
	// Require holds the claim requirements (403 when they fail).
	Require Require `yaml:"require"`
	// Forward controls what is passed to the upstream.
	Forward Forward `yaml:"forward"`
	// CORSPreflight is "check" (default) or "pass". With check, a CORS
	// preflight is treated like any request: on a required route it needs
	// a token and gets 401 without one, so a browser's cross-origin call
	// fails before it starts. With pass, a preflight (method OPTIONS with
	// non-empty Origin and Access-Control-Request-Method headers) that
	// carries no token is forwarded without a token check, as Envoy's
	// bypass_cors_preflight does: browsers never attach credentials to a
	// preflight. A preflight carries no body the backend acts on, but the
	// upstream answers it unauthenticated, so it must answer OPTIONS
	// without side effects. A preflight that does carry a token is
	// checked as usual. No effect with mode off.
	CORSPreflight string `yaml:"cors_preflight"`
}

// Require is a set of requirements that must all hold.
type Require struct {
	// Scopes must all be present.
	Scopes []string `yaml:"scopes"`
	// Claims must all hold.
	Claims []ClaimRule `yaml:"claims"`
	// AnyOf: when set, at least one block must hold.
	AnyOf []RequireBlock `yaml:"any_of"`
}

// RequireBlock is one alternative of an any_of.
type RequireBlock struct {
	// Scopes must all be present.
	Scopes []string `yaml:"scopes"`
	// Claims must all hold.
	Claims []ClaimRule `yaml:"claims"`
}

// ClaimRule is one claim condition. Claim is a dotted path ("a.b") or a
// JSON Pointer ("/https:~1~1example.com~1groups"). Exactly one operator is set.
type ClaimRule struct {
	// Claim is the claim path.
	Claim string `yaml:"claim"`
	// Equals: the claim equals this value.
	Equals any `yaml:"equals"`
	// OneOf: the claim equals one of these values.
	OneOf []any `yaml:"one_of"`
	// ContainsAny: the claim (an array, or a scalar) holds at least one.
	ContainsAny []any `yaml:"contains_any"`
	// ContainsAll: the claim (an array, or a scalar) holds all of them.
	ContainsAll []any `yaml:"contains_all"`
	// Matches: the claim is a string matching this RE2 regexp, anchored
	// at both ends.
	Matches string `yaml:"matches"`
	// Exists: the claim is present (true) or absent (false).
	Exists *bool `yaml:"exists"`

	re *regexp.Regexp
}

// Regexp returns the compiled, anchored Matches, filled by Load.
func (c *ClaimRule) Regexp() *regexp.Regexp { return c.re }

// Forward controls what the gateway passes to the upstream.
type Forward struct {
	// ClaimsToHeaders maps a claim path to a request header set from it.
	// Client-sent copies of these headers are always removed.
	ClaimsToHeaders map[string]string `yaml:"claims_to_headers"`
	// StripToken removes the token from wherever it was found.
	StripToken bool `yaml:"strip_token"`
}

// Audit configures the audit record stream.
type Audit struct {
	// Output is "stdout" (default) or "file".
	Output string `yaml:"output"`
	// File is the audit log path when Output is "file". A relative path is
	// resolved against the config file's directory.
	File string `yaml:"file"`
	// Rotate configures size-based rotation of File.
	Rotate Rotate `yaml:"rotate"`
	// Claims are copied from the token into each record. Never the token.
	Claims []string `yaml:"claims"`
	// Chain enables the tamper-evident HMAC chain (SPEC §6).
	Chain *Chain `yaml:"chain"`
	// OnWriteError is "block" (default: never drop) or "drop" (count drops).
	OnWriteError string `yaml:"on_write_error"`
}

// Rotate configures audit file rotation (lumberjack).
type Rotate struct {
	// MaxSizeMB rotates the file at this size. Defaults to 100.
	MaxSizeMB int `yaml:"max_size_mb"`
	// MaxBackups is how many rotated files are kept. Defaults to 10.
	MaxBackups int `yaml:"max_backups"`
}

// Chain configures the audit HMAC chain.
type Chain struct {
	// KeyFile holds the chain key's raw bytes (at least 32). A relative
	// path is resolved against the config file's directory.
	KeyFile string `yaml:"key_file"`

	key []byte
}

// Key returns the chain key's bytes read from KeyFile, filled by Load.
func (c *Chain) Key() []byte { return c.key }

// ProviderByName returns the provider called name, or nil when there is none.
func (c *Config) ProviderByName(name string) *Provider {
	for i := range c.Providers {
		if c.Providers[i].Name == name {
			return &c.Providers[i]
		}
	}
	return nil
}
