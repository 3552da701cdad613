package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/jwtgate/jwtgate/audit"
	"github.com/jwtgate/jwtgate/config"
	"github.com/jwtgate/jwtgate/jwks"
	"github.com/jwtgate/jwtgate/metrics"
	"github.com/jwtgate/jwtgate/policy"
	"github.com/jwtgate/jwtgate/route"
)

// Recorder receives one audit record per request.
type Recorder interface {
	Request(r *audit.Record)
}

// Deps are the long-lived collaborators a Gateway is built with.
type Deps struct {
	// Logger is the operational log (never the audit trail).
	Logger zerolog.Logger
	// Audit receives the request records.
	Audit Recorder
	// Metrics receives request and key metrics; nil disables them.
	Metrics *metrics.Metrics
	// OnRefresh is told about every JWKS fetch of every provider.
	OnRefresh func(jwks.RefreshEvent)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Transport overrides the upstream transport (tests); nil builds one
	// per route tuned for keep-alive.
	Transport http.RoundTripper
}

// Gateway is the immutable runtime form of one config: compiled routes,
// providers with their keys and parsers, and the header policy.
type Gateway struct {
	cfg       *config.Config
	deps      Deps
	table     *route.Table
	routes    []*routeRT
	providers map[string]*providerRT // by name
	byIssuer  map[string]*providerRT
	allAlgs   map[string]bool // union of every provider's allow-list
	pathOpts  route.Options
	trusted   []netip.Prefix
	// identity holds the normalised names (lower case, '_' → '-') of every
	// header the gateway sets from claims, on any route. A client copy of
	// one of them is removed and makes the request suspicious.
	identity    map[string]bool
	auditClaims []auditClaim
	cache       *tokenCache
	noRoute     *metrics.RouteSeries // series of requests that matched no route
	// pool owns the key sources, keyed by a fingerprint of their config,
	// so a reload keeps the keys of unchanged providers.
	pool map[string]*pooled
	// transports are the upstream transports by (timeout, h2c): routes
	// share them, and a reload reuses them, so keep-alive connections
	// survive reloads and retired ones are closed, not leaked.
	transports map[transportKey]*http.Transport
	// prevTransports are the previous Gateway's, offered for reuse while
	// building; nil afterwards.
	prevTransports map[transportKey]*http.Transport
}

type transportKey struct {
	timeout time.Duration
	h2c     bool
}

type pooled struct {
	src    *jwks.Provider
	cancel context.CancelFunc
}

type auditClaim struct {
	name string
	path policy.Path
}

// providerRT is a provider ready for token checks.
type providerRT struct {
	cfg  *config.Provider
	name string
	keys *jwks.Provider
	// validator checks a verified token's claims (iss, aud any-of, exp
	// required, nbf, iat not in the future, all with clock_skew).
	validator *jwt.Validator
	algs      map[string]bool
	typs      map[string]bool // nil: typ not checked
	skew      time.Duration
}

// routeRT is a route ready to serve.
type routeRT struct {
	idx           int
	name          string
	mode          string
	cfg           *config.Route
	allowed       []*providerRT
	sources       []tokenSource
	maxTokenBytes int
	req           *policy.Requirement
	headers       []claimHeader
	target        *url.URL
	proxy         *httputil.ReverseProxy
	series        *metrics.RouteSeries
	// grpcProxy carries gRPC calls to a plain-http upstream over h2c
	// (HTTP/2 with prior knowledge); nil for https upstreams, where the
	// main transport negotiates HTTP/2 by ALPN.
	grpcProxy *httputil.ReverseProxy
	// corsPass: auth.cors_preflight is pass, so a tokenless CORS
	// preflight is forwarded without a token check.
	corsPass bool
}

type claimHeader struct {
	path   policy.Path
	header string // canonical
}

// Config returns the config the gateway was built from.
func (g *Gateway) Config() *config.Config { return g.cfg }

// Providers returns the key sources by provider name.
func (g *Gateway) Providers() map[string]*jwks.Provider {
	out := make(map[string]*jwks.Provider, len(g.providers))
	for n, p := range g.providers {
		out[n] = p.keys
	}
	return out
}

// Build turns a validated config into a Gateway. Key sources of providers
// whose config is unchanged since prev are reused (prev may be nil); others
// are created under ctx, which bounds their refresh goroutines. On error
// everything Build started is released.
func Build(ctx context.Context, cfg *config.Config, deps Deps, prev *Gateway) (_ *Gateway, err error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	g := &Gateway{
		cfg:        cfg,
		deps:       deps,
		providers:  make(map[string]*providerRT, len(cfg.Providers)),
		byIssuer:   make(map[string]*providerRT, len(cfg.Providers)),
		allAlgs:    map[string]bool{},
		pathOpts:   route.Options{AllowEncodedSlashes: cfg.Server.AllowEncodedSlashes, AllowPathParams: cfg.Server.AllowPathParams},
		trusted:    cfg.Server.TrustedPrefixes(),
		identity:   map[string]bool{},
		pool:       map[string]*pooled{},
		transports: map[transportKey]*http.Transport{},
		cache:      newTokenCache(defaultCacheEntries, defaultCacheBytes),
	}
	defer func() {
		if err != nil {
			g.Retire(prev)
		}
	}()
	if deps.Metrics != nil {
		g.noRoute = deps.Metrics.Route("")
	}
	if err := g.buildProviders(ctx, prev); err != nil {
		return nil, err
	}
	g.prevTransports = nil
	if prev != nil {
		g.prevTransports = prev.transports
	}
	if g.table, err = route.New(cfg.Routes); err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	for i := range cfg.Routes {
		rt, err := g.buildRoute(i, &cfg.Routes[i])
		if err != nil {
			return nil, err
		}
		g.routes = append(g.routes, rt)
	}
	for _, name := range cfg.Audit.Claims {
		p, err := policy.ParsePath(name)
		if err != nil {
			return nil, fmt.Errorf("audit.claims: %q: %w", name, err)
		}
		g.auditClaims = append(g.auditClaims, auditClaim{name: name, path: p})
	}
	g.prevTransports = nil
	return g, nil
}

// Retire releases what g holds that next does not reuse: the key sources
// of providers that are gone or changed. next may be nil (shutdown).
func (g *Gateway) Retire(next *Gateway) {
	if g == nil {
		return
	}
	for fp, p := range g.pool {
		if next != nil && next.pool[fp] == p {
			continue
		}
		p.cancel()
		p.src.Close()
	}
	for k, t := range g.transports {
		if next != nil && next.transports[k] == t {
			continue
		}
		// Idle connections close now; busy ones when their requests end
		// and the transport is collected (in-flight requests keep it).
		t.CloseIdleConnections()
	}
}

// transport returns the shared upstream transport for a timeout and mode,
// reusing the previous Gateway's when it has one.
func (g *Gateway) transport(timeout time.Duration, h2c bool) *http.Transport {
	k := transportKey{timeout, h2c}
	if t := g.transports[k]; t != nil {
		return t
	}
	t := g.prevTransports[k]
	if t == nil {
		t = newTransport(timeout, h2c)
	}
	g.transports[k] = t
	return t
}

// fingerprint identifies a provider's config including its resolved
// secrets and keys and the contents of its jwks_file, so that any change
// causes a fresh key source.
func fingerprint(p *config.Provider) string {
	h := sha256.New()
	b, _ := json.Marshal(p)
	h.Write(b)
	if p.JWKSFile != "" {
		// The file is read once per key source, so a changed file must
		// make a new one on reload even when its path is unchanged.
		if b, err := os.ReadFile(p.JWKSFile); err == nil {
			h.Write(b)
		}
	}
	for _, k := range p.Keys {
		h.Write([]byte{0})
		h.Write(k.Secret())
		if pk := k.PublicKey(); pk != nil {
			der, _ := x509.MarshalPKIXPublicKey(pk)
			h.Write(der)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (g *Gateway) buildProviders(ctx context.Context, prev *Gateway) error {
	type result struct {
		i   int
		fp  string
		p   *pooled
		err error
	}
	results := make([]result, len(g.cfg.Providers))
	var wg sync.WaitGroup
	for i := range g.cfg.Providers {
		pc := &g.cfg.Providers[i]
		fp := fingerprint(pc)
		results[i] = result{i: i, fp: fp}
		if prev != nil && prev.pool[fp] != nil {
			results[i].p = prev.pool[fp]
			continue
		}
		wg.Add(1)
		go func(i int) { // first fetches run in parallel: startup waits for the slowest, not the sum
			defer wg.Done()
			pctx, cancel := context.WithCancel(ctx)
			src, err := jwks.New(pctx, pc, jwks.Options{
				Logger:    g.deps.Logger, // jwks adds component and provider
				OnRefresh: g.deps.OnRefresh,
				Now:       g.deps.Now,
			})
			if err != nil {
				cancel()
				results[i].err = fmt.Errorf("providers[%d] %s: %w", i, pc.Name, err)
				return
			}
			results[i].p = &pooled{src: src, cancel: cancel}
		}(i)
	}
	wg.Wait()
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		g.pool[r.fp] = r.p
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for i := range g.cfg.Providers {
		pc := &g.cfg.Providers[i]
		p := &providerRT{
			cfg:  pc,
			name: pc.Name,
			keys: g.pool[results[i].fp].src,
			algs: make(map[string]bool, len(pc.Algorithms)),
			skew: pc.ClockSkew,
		}
		for _, a := range pc.Algorithms {
			p.algs[a] = true
			g.allAlgs[a] = true
		}
		if len(pc.TokenTypes) > 0 {
			p.typs = make(map[string]bool, len(pc.TokenTypes))
			for _, t := range pc.TokenTypes {
				p.typs[normalizeTyp(t)] = true
			}
		}
		// Every validation option set explicitly. Decoding options (JSON
		// numbers, strict base64, the alg allow-list) are applied by
		// parseJWS and decodeClaims before the validator runs.
		opts := []jwt.ParserOption{
			jwt.WithIssuer(pc.Issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(pc.ClockSkew),
			jwt.WithTimeFunc(g.deps.Now),
		}
		if !pc.SkipAudienceCheck {
			opts = append(opts, jwt.WithAudience(pc.Audiences...))
		}
		p.validator = jwt.NewValidator(opts...)
		g.providers[pc.Name] = p
		g.byIssuer[pc.Issuer] = p
	}
	return nil
}

func (g *Gateway) buildRoute(i int, rc *config.Route) (*routeRT, error) {
	rt := &routeRT{idx: i, name: rc.Name, mode: rc.Auth.Mode, cfg: rc, corsPass: rc.Auth.CORSPreflight == config.CORSPreflightPass}
	if rt.mode == "" {
		rt.mode = config.ModeRequired
	}
	var err error
	if rt.target, err = url.Parse(rc.Upstream.URL); err != nil {
		return nil, fmt.Errorf("routes[%d].upstream.url: %w", i, err)
	}
	for from, to := range rc.Auth.Forward.ClaimsToHeaders {
		p, err := policy.ParsePath(from)
		if err != nil {
			return nil, fmt.Errorf("routes[%d].auth.forward.claims_to_headers: %q: %w", i, from, err)
		}
		h := textproto.CanonicalMIMEHeaderKey(to)
		rt.headers = append(rt.headers, claimHeader{path: p, header: h})
		g.identity[normalizeHeaderName(h)] = true
	}
	if rt.mode != config.ModeOff {
		names := rc.Auth.Providers
		if len(names) == 0 {
			for _, p := range g.cfg.Providers {
				names = append(names, p.Name)
			}
		}
		seen := map[string]bool{}
		for _, n := range names {
			p := g.providers[n]
			if p == nil {
				return nil, fmt.Errorf("routes[%d].auth.providers: unknown provider %q", i, n)
			}
			rt.allowed = append(rt.allowed, p)
			if p.cfg.MaxTokenBytes > rt.maxTokenBytes {
				rt.maxTokenBytes = p.cfg.MaxTokenBytes
			}
			for _, s := range p.cfg.TokenSources {
				ts := newTokenSource(s)
				if !seen[ts.key()] {
					seen[ts.key()] = true
					rt.sources = append(rt.sources, ts)
				}
			}
		}
		if rt.req, err = policy.Compile(rc.Auth.Require); err != nil {
			return nil, fmt.Errorf("routes[%d].auth.require.%w", i, err)
		}
		if rt.req.Empty() {
			rt.req = nil
		}
	}
	if g.deps.Metrics != nil {
		rt.series = g.deps.Metrics.Route(rt.name)
	}
	rt.proxy = g.newReverseProxy(rt, false)
	if rt.target.Scheme == "http" {
		rt.grpcProxy = g.newReverseProxy(rt, true)
	}
	return rt, nil
}

// normalizeHeaderName folds case and treats '_' like '-', the way CGI-style
// backends do, so look-alike spellings of identity headers are caught.
func normalizeHeaderName(h string) string {
	return strings.ReplaceAll(strings.ToLower(h), "_", "-")
}

// normalizeTyp compares typ values as RFC 7515 §4.1.9 says: case-insensitive,
// with an optional "application/" prefix.
func normalizeTyp(t string) string {
	t = strings.ToLower(t)
	return strings.TrimPrefix(t, "application/")
}

// newTransport builds the upstream transport of one route: keep-alive
// pools sized for a busy edge, and the route's response-header timeout.
// With h2c it speaks only HTTP/2 with prior knowledge over cleartext (gRPC
// to a plain-http upstream).
func newTransport(timeout time.Duration, h2c bool) *http.Transport {
	t := &http.Transport{
		Proxy: nil, // never route upstream traffic through an environment proxy
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true, // pass encodings through as the client asked
	}
	if h2c {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}
