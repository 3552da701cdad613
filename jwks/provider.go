package jwks

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/jwtgate/jwtgate/config"
)

// Refresh triggers, as reported in RefreshEvent.Trigger.
const (
	// TriggerInitial is the first load of a remote set, and every retry
	// until one succeeds.
	TriggerInitial = "initial"
	// TriggerPeriodic is a background refresh (every refresh_interval, or
	// sooner while the provider has no usable keys).
	TriggerPeriodic = "periodic"
	// TriggerUnknownKID is a refresh caused by a token whose kid is unknown.
	TriggerUnknownKID = "unknown_kid"
	// TriggerStatic is the one-time load of static keys or a jwks_file.
	TriggerStatic = "static"
)

// Refresh results, as reported in RefreshEvent.Result.
const (
	// ResultOK is a successful load; the keys were replaced.
	ResultOK = "ok"
	// ResultError is a failed fetch; the last good keys stay.
	ResultError = "error"
)

// maxRetryBackoff caps the retry delay while a provider has no usable keys
// (it is also capped by refresh_interval).
const maxRetryBackoff = 30 * time.Second

// Options are the runtime dependencies of a Provider. The zero value works.
type Options struct {
	// Logger receives operational logs, with component=jwks and
	// provider=<name> added. The zero value logs nothing.
	Logger zerolog.Logger
	// OnRefresh is called after every fetch attempt (initial, periodic,
	// unknown_kid) and once for static keys or a jwks_file, success or
	// failure; the first call happens inside New. Calls never overlap. It
	// runs on the refreshing goroutine, and requests waiting for an
	// unknown-kid refresh wait for it too (up to fetch_timeout), so it must
	// be quick (update metrics, write an audit record). May be nil.
	OnRefresh func(RefreshEvent)
	// Client overrides the HTTP client (tests). Its redirect policy is
	// replaced by jwtgate's and its Timeout is capped at fetch_timeout.
	// Default: a client tuned for JWKS fetches with fetch_timeout on every
	// phase.
	Client *http.Client
	// Now returns the current time (tests). Default time.Now.
	Now func() time.Time
}

// KeyInfo describes one usable key, for audit records, events and metrics.
type KeyInfo struct {
	// KID is the key id; empty when the key has none.
	KID string
	// Kty is the key type: "RSA", "EC", "OKP" or "oct" (static secrets).
	Kty string
	// Alg is the key's own declared alg; empty when it declares none.
	Alg string
	// Use is the key's declared use ("sig" or empty).
	Use string
	// Crv is the curve for EC and OKP keys.
	Crv string
	// Bits is the key size: RSA modulus bits, curve size, or secret bits.
	Bits int
	// Thumbprint is the RFC 7638 SHA-256 JWK thumbprint, base64url without
	// padding.
	Thumbprint string
}

// SkippedKey is a key in a set that was not loaded, and why.
type SkippedKey struct {
	// KID is the skipped key's kid, when it had a readable one.
	KID string
	// Reason says why the key is unusable, e.g. "rsa key is 1024 bits,
	// minimum 2048".
	Reason string
}

// RefreshEvent reports one fetch attempt or static load (SPEC §5
// jwks_refresh records).
type RefreshEvent struct {
	// Provider is the provider name.
	Provider string
	// Source is the JWKS URL, the discovery URL (when discovery failed),
	// the file path, or "keys" for static keys.
	Source string
	// Trigger is TriggerInitial, TriggerPeriodic, TriggerUnknownKID or
	// TriggerStatic.
	Trigger string
	// Result is ResultOK or ResultError.
	Result string
	// Err is the failure when Result is ResultError.
	Err error
	// Added and Removed are the keys that appeared and disappeared, by kid
	// and thumbprint, compared with the keys before the event.
	Added, Removed []KeyInfo
	// Skipped are the keys in the set that are not used, with reasons.
	Skipped []SkippedKey
	// Keys is the number of usable keys after this event.
	Keys int
}

// Provider is the key source of one configured token provider. It is safe
// for concurrent use. Build it with New.
type Provider struct {
	name          string
	issuer        string
	remote        bool   // jwks_url or discovery: refreshed, may go stale
	source        string // configured JWKS URL, discovery URL, file path, or "keys"
	discoveryURL  string // set for discovery providers
	allowInsecure bool

	fetchTimeout    time.Duration
	refreshInterval time.Duration
	maxStale        time.Duration
	unknownKIDEvery time.Duration

	algs algSet // the provider's algorithms allow-list; 0 = no extra limit

	fetch     *fetcher
	limiter   *rate.Limiter
	now       func() time.Time
	onRefresh func(RefreshEvent)
	log       zerolog.Logger

	snap atomic.Pointer[snapshot]

	// jwksURL is the URL last used (or found by discovery). Only refresh
	// touches it, and refreshes are serialized through cur.
	jwksURL string

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	cur    *flight // the refresh in progress, nil when none
	closed bool
	wg     sync.WaitGroup
	done   chan struct{}
}

// snapshot is an immutable view of a provider's keys.
type snapshot struct {
	loaded  bool      // a load has succeeded at least once
	fetched time.Time // last good fetch (load time for static keys and files)
	expires time.Time // fetched + max_stale; zero for keys that never go stale
	list    []*entry  // usable keys, in set order
	byKID   map[string]*entry
	gen     uint64 // bumped whenever a key is added or removed
}

// flight is one refresh in progress, shared by everyone waiting for it.
type flight struct {
	done chan struct{}
	err  error // set before done is closed
}

// staticKey is a resolved config.StaticKey.
type staticKey struct {
	kid, alg string
	secret   []byte
	pub      crypto.PublicKey
}

// New builds the key source for provider cp. For a remote provider it
// fetches the keys once (bounded by fetch_timeout per request; discovery
// makes two), then refreshes them in a goroutine that runs until ctx is
// cancelled or Close is called.
//
// New fails only for bad configuration: no or several key sources, an
// insecure or unparsable URL, an unreadable or invalid jwks_file, or an
// unusable static key. A JWKS endpoint that is down is not an error: the
// provider starts without keys (Resolve answers ErrKeysUnavailable, Ready
// is false), reports the failure through Options.OnRefresh, and retries with
// a backoff no slower than min(refresh_interval, 30s) until it has keys.
//
// OnRefresh sees the first event before New returns. Every provider keeps
// one goroutine until ctx is cancelled or Close is called, so cancel ctx
// when a reload retires the provider.
func New(ctx context.Context, cp *config.Provider, opts Options) (*Provider, error) {
	if cp == nil {
		return nil, errors.New("jwks: nil provider config")
	}
	keys := make([]staticKey, len(cp.Keys))
	for i := range cp.Keys {
		k := &cp.Keys[i]
		keys[i] = staticKey{kid: k.KID, alg: k.Alg, secret: k.Secret(), pub: k.PublicKey()}
	}
	return newProvider(ctx, cp, keys, opts)
}

// newProvider is New with the static keys already resolved.
func newProvider(ctx context.Context, cp *config.Provider, keys []staticKey, opts Options) (*Provider, error) {
	if ctx == nil {
		return nil, fmt.Errorf("jwks %s: nil context", cp.Name)
	}
	sources := 0
	for _, set := range []bool{cp.JWKSURL != "", cp.Discovery, cp.JWKSFile != "", len(cp.Keys) > 0 || len(keys) > 0} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return nil, fmt.Errorf("jwks %s: exactly one of jwks_url, discovery, jwks_file and keys must be set, got %d", cp.Name, sources)
	}

	p := &Provider{
		name:            cp.Name,
		issuer:          cp.Issuer,
		allowInsecure:   cp.AllowInsecureHTTP,
		fetchTimeout:    orDefault(cp.FetchTimeout, config.DefaultFetchTimeout),
		refreshInterval: orDefault(cp.RefreshInterval, config.DefaultRefreshInterval),
		maxStale:        orDefault(cp.MaxStale, config.DefaultMaxStale),
		unknownKIDEvery: orDefault(cp.UnknownKIDMinInterval, config.DefaultUnknownKIDMinInterval),
		now:             opts.Now,
		onRefresh:       opts.OnRefresh,
		log:             opts.Logger.With().Str("component", "jwks").Str("provider", cp.Name).Logger(),
		done:            make(chan struct{}),
	}
	if p.now == nil {
		p.now = time.Now
	}
	for _, a := range cp.Algorithms {
		p.algs |= algBit(a)
	}
	p.snap.Store(&snapshot{})

	switch {
	case len(keys) > 0:
		p.source = "keys"
		entries, err := staticEntries(keys)
		if err != nil {
			return nil, fmt.Errorf("jwks %s: %w", p.name, err)
		}
		p.apply(parsedSet{entries: entries}, TriggerStatic, p.source)
	case cp.JWKSFile != "":
		p.source = cp.JWKSFile
		set, err := readFileSet(cp.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("jwks %s: jwks_file %q: %w", p.name, cp.JWKSFile, err)
		}
		p.apply(set, TriggerStatic, p.source)
	default:
		p.remote = true
		if cp.Discovery {
			if _, err := checkURL(cp.Issuer, cp.AllowInsecureHTTP); err != nil {
				return nil, fmt.Errorf("jwks %s: discovery issuer: %w", p.name, err)
			}
			p.discoveryURL = discoveryURLFor(cp.Issuer)
			p.source = p.discoveryURL
		} else {
			u, err := checkURL(cp.JWKSURL, cp.AllowInsecureHTTP)
			if err != nil {
				return nil, fmt.Errorf("jwks %s: jwks_url: %w", p.name, err)
			}
			p.source = u.String()
			p.jwksURL = p.source
		}
		p.fetch = newFetcher(opts.Client, p.fetchTimeout)
		p.limiter = rate.NewLimiter(rate.Every(p.unknownKIDEvery), 1)
	}

	p.ctx, p.cancel = context.WithCancel(ctx)
	if p.remote {
		_ = p.refresh(TriggerInitial) // a failure is reported, not fatal
		p.wg.Add(1)
		go p.run()
	}
	go p.watch()
	return p, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Name returns the provider's configured name.
func (p *Provider) Name() string { return p.name }

// Resolve returns the key to verify a token with header alg and kid, and
// its description (for the audit record's key_thumbprint).
//
// With a kid, the key with that kid is used; an unknown kid triggers a
// refresh of a remote set (at most one per unknown_kid_min_interval, shared
// by concurrent callers), which the caller waits for until ctx is done, and
// never longer than fetch_timeout. A rate-limited caller fails at once.
// Without a kid, the provider's only key is used, or ErrNoKID.
//
// The key must fit alg: alg must be in the provider's algorithms (when
// set), the JWK's own alg (if any) must equal it, and the key's type, curve
// and size must suit the algorithm family. HS* only ever resolves to a
// static secret.
//
// Errors wrap ErrKeyNotFound, ErrKeysUnavailable, ErrKeyMismatch or
// ErrNoKID. They never wrap context errors, so a slow JWKS cannot be
// mistaken for an upstream timeout; check ctx.Err() separately. Resolving
// a known kid takes no lock and does not allocate.
func (p *Provider) Resolve(ctx context.Context, alg, kid string) (key any, info KeyInfo, err error) {
	s := p.snap.Load()
	e, st := s.find(kid, p.now())
	if st == found {
		return p.fit(e, alg)
	}
	if st == noKID || !p.remote {
		return nil, KeyInfo{}, p.lookupError(s, st, kid, nil)
	}
	rerr := p.refreshOnDemand(ctx)
	s = p.snap.Load()
	if e, st = s.find(kid, p.now()); st == found {
		return p.fit(e, alg)
	}
	return nil, KeyInfo{}, p.lookupError(s, st, kid, rerr)
}

// KeyfuncCtx returns a jwt.Keyfunc for one request, resolving keys with
// ctx; it is Keyfunc(ctx, nil).
func (p *Provider) KeyfuncCtx(ctx context.Context) jwt.Keyfunc { return p.Keyfunc(ctx, nil) }

// Keyfunc returns a jwt.Keyfunc for one request that reads the token's alg
// and kid headers and calls Resolve with ctx. When used is not nil, the
// resolved key's KeyInfo is stored there (for key_thumbprint). A kid that
// is not a string resolves nothing. The jku, x5u, jwk and x5c headers are
// never read.
func (p *Provider) Keyfunc(ctx context.Context, used *KeyInfo) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg, _ := t.Header["alg"].(string)
		var kid string
		if v, ok := t.Header["kid"]; ok && v != nil {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("jwks %s: kid header is not a string: %w", p.name, ErrKeyNotFound)
			}
			kid = s
		}
		key, info, err := p.Resolve(ctx, alg, kid)
		if err != nil {
			return nil, err
		}
		if used != nil {
			*used = info
		}
		return key, nil
	}
}

// findResult classifies a snapshot lookup.
type findResult int

const (
	found       findResult = iota
	notFound               // no key with this kid
	noKID                  // no kid, and not exactly one key
	neverLoaded            // no load has succeeded yet
	stale                  // last good fetch older than max_stale
)

// find looks kid up. It takes no lock and does not allocate.
func (s *snapshot) find(kid string, now time.Time) (*entry, findResult) {
	if !s.loaded {
		return nil, neverLoaded
	}
	if !s.expires.IsZero() && now.After(s.expires) {
		return nil, stale
	}
	if kid == "" {
		if len(s.list) != 1 {
			return nil, noKID
		}
		return s.list[0], found
	}
	if e := s.byKID[kid]; e != nil {
		return e, found
	}
	return nil, notFound
}

// fit checks that e can verify alg and returns it. The provider's
// algorithms allow-list is applied again here as a backstop (the proxy
// checks it first, with its own reason code).
func (p *Provider) fit(e *entry, alg string) (any, KeyInfo, error) {
	b := algBit(alg)
	if p.algs != 0 && p.algs&b == 0 {
		return nil, KeyInfo{}, fmt.Errorf("jwks %s: alg %q is not in the provider's algorithms: %w", p.name, oneLine(alg), ErrKeyMismatch)
	}
	if b == 0 || e.allowed&b == 0 {
		return nil, KeyInfo{}, fmt.Errorf("jwks %s: key %q (kty %s, alg %q) cannot verify alg %q: %w",
			p.name, e.info.KID, e.info.Kty, e.info.Alg, oneLine(alg), ErrKeyMismatch)
	}
	return e.key, e.info, nil
}

// lookupError builds the error for a failed lookup. rerr is the outcome of
// the unknown-kid refresh, if one was attempted; it is described but not
// wrapped (it may hold context errors).
func (p *Provider) lookupError(s *snapshot, st findResult, kid string, rerr error) error {
	var why string
	if rerr != nil {
		why = "; refresh: " + oneLine(rerr.Error())
	}
	switch st {
	case noKID:
		return fmt.Errorf("jwks %s: %d keys: %w", p.name, len(s.list), ErrNoKID)
	case neverLoaded:
		return fmt.Errorf("jwks %s: keys never loaded%s: %w", p.name, why, ErrKeysUnavailable)
	case stale:
		return fmt.Errorf("jwks %s: keys stale since %s (max_stale %s)%s: %w",
			p.name, s.fetched.UTC().Format(time.RFC3339), p.maxStale, why, ErrKeysUnavailable)
	}
	return fmt.Errorf("jwks %s: kid %q%s: %w", p.name, oneLine(kid), why, ErrKeyNotFound)
}

// Ready reports whether the provider can verify tokens: it has at least one
// usable key, and (for remote sets) the last good fetch is no older than
// max_stale. why explains a false answer, for /readyz.
func (p *Provider) Ready() (ok bool, why string) {
	s := p.snap.Load()
	switch {
	case !s.loaded:
		return false, "keys never loaded"
	case !s.expires.IsZero() && p.now().After(s.expires):
		return false, fmt.Sprintf("keys stale: last good fetch %s, older than max_stale %s",
			s.fetched.UTC().Format(time.RFC3339), p.maxStale)
	case len(s.list) == 0:
		return false, "no usable keys"
	}
	return true, ""
}

// HasKeys reports whether the provider currently holds at least one usable
// key (stale or not). The proxy answers 503 keys_unavailable when it is
// false.
func (p *Provider) HasKeys() bool { return len(p.snap.Load().list) > 0 }

// KeyCount returns the number of usable keys (jwtgate_jwks_keys).
func (p *Provider) KeyCount() int { return len(p.snap.Load().list) }

// Generation changes whenever the provider's key set gains or loses a
// key. A result computed with the keys of one generation (the proxy's
// verified-token cache) must not outlive it.
func (p *Provider) Generation() uint64 { return p.snap.Load().gen }

// LastGoodFetch returns when keys were last loaded successfully (for static
// keys and files: when New loaded them), or the zero time if never
// (jwtgate_jwks_age_seconds).
func (p *Provider) LastGoodFetch() time.Time { return p.snap.Load().fetched }

// Keys describes the usable keys, in set order.
func (p *Provider) Keys() []KeyInfo {
	s := p.snap.Load()
	out := make([]KeyInfo, len(s.list))
	for i, e := range s.list {
		out[i] = e.info
	}
	return out
}

// Done returns a channel closed once the provider's background work has
// stopped, after its context was cancelled or Close was called.
func (p *Provider) Done() <-chan struct{} { return p.done }

// Close stops background refreshes and waits for them to finish. Keys
// already loaded stay usable. Close is idempotent.
func (p *Provider) Close() {
	p.cancel()
	<-p.done
}

// watch marks the provider closed when its context ends, waits for every
// goroutine it started, and then closes done.
func (p *Provider) watch() {
	<-p.ctx.Done()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
	if p.fetch != nil {
		p.fetch.client.CloseIdleConnections()
	}
	close(p.done)
}
