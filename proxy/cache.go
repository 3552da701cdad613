package proxy

import (
	"sync"
)

// Defaults for the verified-token cache: enough distinct live tokens for a
// busy edge (16,384), and at most 16 MiB of estimated heap, so a gateway
// stays well under 64 MiB RSS however many distinct tokens it sees.
const (
	defaultCacheEntries = 16384
	defaultCacheBytes   = 16 << 20
	cacheShards         = 64
)

// tokenCache holds tokens that passed every check of SPEC §3.3–3.6, keyed
// by SHA-256 of the raw token, so a repeated token skips signature
// verification. An entry never outlives its token's exp (checked on every
// hit and evicted), the key that verified it (evictKey on a JWKS refresh
// that removes the key), or the config that admitted it (a reload builds a
// new Gateway with an empty cache). It is bounded in entries and bytes.
type tokenCache struct {
	shards     [cacheShards]cacheShard
	maxEntries int // per shard
	maxBytes   int // per shard
}

type cacheShard struct {
	mu    sync.RWMutex
	m     map[[32]byte]*verified
	bytes int
}

func newTokenCache(entries, bytes int) *tokenCache {
	c := &tokenCache{maxEntries: max(1, entries/cacheShards), maxBytes: max(1, bytes/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]*verified)
	}
	return c
}

func (c *tokenCache) shard(d *[32]byte) *cacheShard { return &c.shards[d[31]%cacheShards] }

// get returns the cached verification of the token with digest d, or nil.
func (c *tokenCache) get(d *[32]byte) *verified {
	if c == nil {
		return nil
	}
	s := c.shard(d)
	s.mu.RLock()
	v := s.m[*d]
	s.mu.RUnlock()
	return v
}

// cost estimates an entry's heap: the decoded claims map (keys, values,
// json.Number strings) takes about four times the raw token's bytes, plus
// fixed overhead (measured: 1.7 KiB for a 388-byte token, estimated 2 KiB).
func (v *verified) cost() int { return 4*v.size + 512 }

// put stores v. When the shard is full, an arbitrary entry is evicted
// (Go's map iteration order is randomised, so this is random eviction:
// cheap, and hard for a client to game).
func (c *tokenCache) put(d *[32]byte, v *verified) {
	if c == nil || v.cost() > c.maxBytes {
		return
	}
	s := c.shard(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	// A key set that changed since v was verified may have removed its key,
	// and the eviction for that removal may already have run. Checked under
	// the shard lock, so an eviction either sees this entry or this check
	// sees the new generation.
	if v.p.keys.Generation() != v.gen {
		return
	}
	if old, ok := s.m[*d]; ok { // replaced: take it out first, so the loop below cannot count it twice
		delete(s.m, *d)
		s.bytes -= old.cost()
	}
	for k, old := range s.m {
		if len(s.m) < c.maxEntries && s.bytes+v.cost() <= c.maxBytes {
			break
		}
		delete(s.m, k)
		s.bytes -= old.cost()
	}
	s.m[*d] = v
	s.bytes += v.cost()
}

// evict removes the entry for d (an expired token seen on a hit).
func (c *tokenCache) evict(d *[32]byte) {
	s := c.shard(d)
	s.mu.Lock()
	if old, ok := s.m[*d]; ok {
		delete(s.m, *d)
		s.bytes -= old.cost()
	}
	s.mu.Unlock()
}

// evictKey removes every entry verified by the key with this thumbprint
// at the named provider (the key left the provider's set).
func (c *tokenCache) evictKey(provider, thumbprint string) int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, v := range s.m {
			if v.p.name == provider && v.thumb == thumbprint {
				delete(s.m, k)
				s.bytes -= v.cost()
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// len returns the number of cached entries.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
