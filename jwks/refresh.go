package jwks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jwtgate/jwtgate/config"
)

// errRateLimited is the refresh outcome for an unknown kid inside
// unknown_kid_min_interval.
var errRateLimited = errors.New("unknown-kid refresh rate-limited")

// errClosed is the refresh outcome once the provider is closed.
var errClosed = errors.New("provider closed")

// run is the background refresher. It exits when p.ctx is done. While the
// provider is ready it refreshes every refresh_interval; otherwise (never
// loaded, empty, or stale) it retries with a backoff from 1s doubling to
// min(refresh_interval, 30s).
func (p *Provider) run() {
	defer p.wg.Done()
	retryCap := min(p.refreshInterval, maxRetryBackoff)
	var backoff time.Duration
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var d time.Duration
		if ok, _ := p.Ready(); ok {
			backoff, d = 0, p.refreshInterval
		} else {
			if backoff == 0 {
				backoff = min(time.Second, retryCap)
			} else {
				backoff = min(2*backoff, retryCap)
			}
			d = backoff
		}
		timer.Reset(d)
		select {
		case <-p.ctx.Done():
			return
		case <-timer.C:
		}
		trigger := TriggerPeriodic
		if !p.snap.Load().loaded {
			trigger = TriggerInitial
		}
		p.mu.Lock()
		f := p.cur
		if f == nil {
			f = p.startLocked(trigger)
		}
		p.mu.Unlock()
		if f == nil {
			return
		}
		select {
		case <-p.ctx.Done():
			return
		case <-f.done:
		}
	}
}

// startLocked starts a refresh in a new goroutine and records it as the
// one in flight. p.mu must be held. It returns nil once the provider is
// closed. Refreshes never overlap: callers join p.cur when it is set.
func (p *Provider) startLocked(trigger string) *flight {
	if p.closed || p.ctx.Err() != nil {
		return nil
	}
	f := &flight{done: make(chan struct{})}
	p.cur = f
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f.err = p.refresh(trigger)
		p.mu.Lock()
		p.cur = nil
		p.mu.Unlock()
		close(f.done)
	}()
	return f
}

// refreshOnDemand is the unknown-kid path. It joins a refresh already in
// flight (whatever started it); otherwise it starts one if the limiter
// allows (Allow never waits), or fails at once. It waits for the refresh
// until ctx is done and at most fetch_timeout.
func (p *Provider) refreshOnDemand(ctx context.Context) error {
	p.mu.Lock()
	f := p.cur
	if f == nil {
		if p.closed {
			p.mu.Unlock()
			return errClosed
		}
		if !p.limiter.AllowN(p.now(), 1) {
			p.mu.Unlock()
			return fmt.Errorf("%w (unknown_kid_min_interval %s)", errRateLimited, p.unknownKIDEvery)
		}
		f = p.startLocked(TriggerUnknownKID)
	}
	p.mu.Unlock()
	if f == nil {
		return errClosed
	}
	wait := time.NewTimer(p.fetchTimeout)
	defer wait.Stop()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return fmt.Errorf("request gave up waiting for refresh: %v", context.Cause(ctx))
	case <-wait.C:
		return fmt.Errorf("refresh still running after fetch_timeout %s", p.fetchTimeout)
	}
}

// refresh fetches and parses the remote set, then swaps it in. On any
// failure the last good keys stay. Every attempt is reported.
func (p *Provider) refresh(trigger string) error {
	src, set, err := p.fetchSet(trigger)
	if err != nil {
		err = fmt.Errorf("jwks %s: %w", p.name, err)
		p.emit(RefreshEvent{
			Provider: p.name,
			Source:   src,
			Trigger:  trigger,
			Result:   ResultError,
			Err:      err,
			Keys:     len(p.snap.Load().list),
		})
		return err
	}
	p.apply(set, trigger, src)
	return nil
}

// fetchSet resolves the JWKS URL (through discovery when configured) and
// fetches and parses the set. src is the URL the error or set belongs to.
func (p *Provider) fetchSet(trigger string) (src string, set parsedSet, err error) {
	// Discovery runs on every refresh except an unknown-kid one that can
	// reuse the jwks_uri found before, so a moved jwks_uri is picked up.
	if p.discoveryURL != "" && (p.jwksURL == "" || trigger != TriggerUnknownKID) {
		u, err := p.fetch.discover(p.ctx, p.discoveryURL, p.issuer, p.allowInsecure)
		if err != nil {
			return p.discoveryURL, parsedSet{}, fmt.Errorf("discovery %q: %w", p.discoveryURL, err)
		}
		p.jwksURL = u
	}
	body, err := p.fetch.get(p.ctx, p.jwksURL)
	if err != nil {
		return p.jwksURL, parsedSet{}, fmt.Errorf("fetch %q: %w", p.jwksURL, err)
	}
	set, err = parseSet(body)
	if err != nil {
		return p.jwksURL, parsedSet{}, fmt.Errorf("fetch %q: %w", p.jwksURL, err)
	}
	return p.jwksURL, set, nil
}

// apply swaps in a new snapshot built from set and reports the change.
// Callers are serialized (New, or one flight at a time).
func (p *Provider) apply(set parsedSet, trigger, src string) {
	now := p.now()
	ns := &snapshot{
		loaded:  true,
		fetched: now,
		list:    set.entries,
		byKID:   make(map[string]*entry, len(set.entries)),
	}
	if p.remote {
		ns.expires = now.Add(p.maxStale)
	}
	for _, e := range set.entries {
		if e.info.KID != "" {
			ns.byKID[e.info.KID] = e
		}
	}
	old := p.snap.Load()
	added, removed := diff(old.list, ns.list)
	ns.gen = old.gen
	if len(added) > 0 || len(removed) > 0 {
		ns.gen++
	}
	p.snap.Store(ns) // callers are serialized, so Load then Store is safe
	if set.private > 0 {
		p.log.Warn().Int("keys", set.private).Str("source", src).
			Msg("jwk set publishes private key members; only the public parts are used")
	}
	p.emit(RefreshEvent{
		Provider: p.name,
		Source:   src,
		Trigger:  trigger,
		Result:   ResultOK,
		Added:    added,
		Removed:  removed,
		Skipped:  set.skipped,
		Keys:     len(ns.list),
	})
}

// diff returns the keys in next but not in prev, and in prev but not in
// next, comparing kid and thumbprint.
func diff(prev, next []*entry) (added, removed []KeyInfo) {
	type id struct{ kid, tp string }
	in := func(list []*entry) map[id]bool {
		m := make(map[id]bool, len(list))
		for _, e := range list {
			m[id{e.info.KID, e.info.Thumbprint}] = true
		}
		return m
	}
	pm, nm := in(prev), in(next)
	for _, e := range next {
		if !pm[id{e.info.KID, e.info.Thumbprint}] {
			added = append(added, e.info)
		}
	}
	for _, e := range prev {
		if !nm[id{e.info.KID, e.info.Thumbprint}] {
			removed = append(removed, e.info)
		}
	}
	return added, removed
}

// emit logs ev and passes it to OnRefresh.
func (p *Provider) emit(ev RefreshEvent) {
	for _, s := range ev.Skipped {
		p.log.Warn().Str("source", ev.Source).Str("kid", s.KID).Str("reason", s.Reason).Msg("jwk skipped")
	}
	if ev.Result == ResultError {
		p.log.Warn().Err(ev.Err).Str("source", ev.Source).Str("trigger", ev.Trigger).Int("keys", ev.Keys).
			Msg("jwks refresh failed; keeping the last good keys")
	} else {
		lvl := p.log.Info()
		if ev.Trigger == TriggerPeriodic && len(ev.Added) == 0 && len(ev.Removed) == 0 && len(ev.Skipped) == 0 && ev.Keys > 0 {
			lvl = p.log.Debug()
		}
		if ev.Keys == 0 {
			lvl = p.log.Warn()
		}
		lvl.Str("source", ev.Source).Str("trigger", ev.Trigger).Int("keys", ev.Keys).
			Strs("added", kids(ev.Added)).Strs("removed", kids(ev.Removed)).Int("skipped", len(ev.Skipped)).
			Msg("jwks loaded")
	}
	if p.onRefresh != nil {
		p.onRefresh(ev)
	}
}

func kids(ks []KeyInfo) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.KID
	}
	return out
}

// readFileSet reads and parses a jwks_file, with the same size cap and
// per-key rules as a remote set.
func readFileSet(path string) (parsedSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return parsedSet{}, err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, config.MaxJWKSBytes+1))
	if err != nil {
		return parsedSet{}, err
	}
	if len(body) > config.MaxJWKSBytes {
		return parsedSet{}, fmt.Errorf("%w: exceeds %d bytes", ErrResponseTooLarge, config.MaxJWKSBytes)
	}
	return parseSet(body)
}

// staticEntries builds entries from static keys. Unlike a JWK Set, a bad
// static key is a configuration error, not a skip.
func staticEntries(keys []staticKey) ([]*entry, error) {
	out := make([]*entry, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for i, k := range keys {
		var (
			e   *entry
			err error
		)
		switch {
		case k.secret != nil && k.pub != nil:
			err = errors.New("both a secret and a public key")
		case k.secret != nil:
			switch {
			case algBit(k.alg)&algsHMAC == 0:
				err = fmt.Errorf("hmac secret needs alg HS256, HS384 or HS512, got %q", k.alg)
			case len(k.secret) < hmacMinBytes(k.alg):
				err = fmt.Errorf("hmac secret is %d bytes, minimum %d for %s (RFC 7518 §3.2: at least the hash size)", len(k.secret), hmacMinBytes(k.alg), k.alg)
			default:
				e, err = newEntry(append([]byte(nil), k.secret...), k.kid, k.alg, "", true)
			}
		case k.pub != nil:
			e, err = newEntry(k.pub, k.kid, k.alg, "", false)
		default:
			err = errors.New("neither a secret nor a public key was resolved (config.Load resolves them)")
		}
		if err == nil && k.kid != "" && seen[k.kid] {
			err = errors.New("duplicate kid")
		}
		if err != nil {
			return nil, fmt.Errorf("keys[%d] (kid %q): %w", i, k.kid, err)
		}
		seen[k.kid] = true
		out = append(out, e)
	}
	return out, nil
}

// hmacMinBytes is the shortest secret usable with an HMAC alg: the hash
// output size (RFC 7518 §3.2: "a key of the same size as the hash output
// ... or larger MUST be used"), and never under config.MinHMACSecretBytes.
func hmacMinBytes(alg string) int {
	n := config.MinHMACSecretBytes
	switch alg {
	case "HS384":
		n = max(n, 48)
	case "HS512":
		n = max(n, 64)
	}
	return n
}
