package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtgate/jwtgate/audit"
	"github.com/jwtgate/jwtgate/config"
	"github.com/jwtgate/jwtgate/jwks"
	"github.com/jwtgate/jwtgate/policy"
)

// Sentinels for the checks jwtgate makes itself, before golang-jwt runs.
var (
	// ErrAlgorithmNotAllowed: the header alg is not in the allow-list.
	ErrAlgorithmNotAllowed = errors.New("algorithm not allowed")
	// ErrCritUnsupported: the header lists crit extensions jwtgate does not implement.
	ErrCritUnsupported = errors.New("crit header names an unsupported extension")
	// ErrUnknownIssuer: no provider has the token's iss.
	ErrUnknownIssuer = errors.New("unknown issuer")
	// ErrIssuerNotAllowed: the provider is not accepted on the route.
	ErrIssuerNotAllowed = errors.New("issuer not allowed on route")
	// ErrTokenType: typ is absent or not in token_types.
	ErrTokenType = errors.New("token type not allowed")
	// ErrLifetime: exp - iat exceeds max_lifetime.
	ErrLifetime = errors.New("token lifetime exceeds max_lifetime")
	// errAmbiguousToken: the request carries several token headers, or
	// different tokens under one cookie or query name, so which token
	// applies would be the backend's guess.
	errAmbiguousToken = errors.New("several tokens in one source")
)

const (
	srcHeader = iota
	srcCookie
	srcQuery
)

// tokenSource is one configured place a token may be found.
type tokenSource struct {
	kind   int
	name   string // canonical header name, cookie name or query parameter
	prefix string
}

func newTokenSource(s config.TokenSource) tokenSource {
	switch {
	case s.Cookie != "":
		return tokenSource{kind: srcCookie, name: s.Cookie}
	case s.Query != "":
		return tokenSource{kind: srcQuery, name: s.Query}
	default:
		return tokenSource{kind: srcHeader, name: http.CanonicalHeaderKey(s.Header), prefix: s.Prefix}
	}
}

func (s tokenSource) key() string { return fmt.Sprintf("%d|%s|%s", s.kind, s.name, s.prefix) }

// String names the source for audit inventories, e.g. "header:Authorization".
func (s tokenSource) String() string {
	switch s.kind {
	case srcCookie:
		return "cookie:" + s.name
	case srcQuery:
		return "query:" + s.name
	}
	if s.prefix != "" {
		return "header:" + s.name + " (" + strings.TrimSpace(s.prefix) + ")"
	}
	return "header:" + s.name
}

// extract returns the token from r, which source held it, and whether the
// request carried something ambiguous (several Authorization headers, or
// different values under the token's cookie or query name: parsers
// disagree on which one counts, first or last).
func extract(r *http.Request, sources []tokenSource) (tok string, from int, ambiguous bool) {
	for i, s := range sources {
		switch s.kind {
		case srcHeader:
			vals := r.Header[s.name]
			if len(vals) == 0 {
				continue
			}
			if len(vals) > 1 {
				return "", i, true
			}
			v := vals[0]
			if s.prefix != "" {
				if len(v) < len(s.prefix) || !strings.EqualFold(v[:len(s.prefix)], s.prefix) {
					continue
				}
				v = v[len(s.prefix):]
			}
			if v = strings.TrimSpace(v); v != "" {
				return v, i, false
			}
		case srcCookie:
			var vals []string
			for _, c := range r.CookiesNamed(s.name) {
				vals = append(vals, c.Value)
			}
			if v, ok := single(vals); !ok {
				return "", i, true
			} else if v != "" {
				return v, i, false
			}
		case srcQuery:
			if r.URL.RawQuery == "" {
				continue
			}
			if v, ok := single(r.URL.Query()[s.name]); !ok {
				return "", i, true
			} else if v != "" {
				return v, i, false
			}
		}
	}
	return "", -1, false
}

// single returns the one non-empty value among vals ("" when none), and
// false when there are several different ones.
func single(vals []string) (string, bool) {
	v := ""
	for _, s := range vals {
		if s == "" || s == v {
			continue
		}
		if v != "" {
			return "", false
		}
		v = s
	}
	return v, true
}

// stripToken removes the token from where it was found on the outbound
// request. Other cookies and query parameters are kept byte for byte, in
// their order: re-encoding them would change what the backend receives
// (quoting, parameter order, "+" versus "%20", parameters without "=").
func stripToken(out *http.Request, s tokenSource) {
	switch s.kind {
	case srcHeader:
		out.Header.Del(s.name)
	case srcCookie:
		var kept []string
		for _, line := range out.Header.Values("Cookie") {
			for part := range strings.SplitSeq(line, ";") {
				part = strings.TrimSpace(part)
				name, _, _ := strings.Cut(part, "=")
				if part != "" && strings.TrimSpace(name) != s.name {
					kept = append(kept, part)
				}
			}
		}
		out.Header.Del("Cookie")
		if len(kept) > 0 {
			out.Header.Set("Cookie", strings.Join(kept, "; "))
		}
	case srcQuery:
		var kept []string
		for part := range strings.SplitSeq(out.URL.RawQuery, "&") {
			key, _, _ := strings.Cut(part, "=")
			if k, err := url.QueryUnescape(key); part != "" && (err != nil || k != s.name) {
				kept = append(kept, part)
			}
		}
		out.URL.RawQuery = strings.Join(kept, "&")
	}
}

// redactQuery returns raw with the values of token query parameters
// replaced, for logging.
func redactQuery(raw string, sources []tokenSource) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "[unparseable]"
	}
	for _, s := range sources {
		if s.kind == srcQuery && q.Has(s.name) {
			q.Set(s.name, "[redacted]")
		}
	}
	return q.Encode()
}

// verified is a token that passed every check of SPEC §3.3–3.6.
type verified struct {
	p      *providerRT
	claims map[string]any
	kid    string
	alg    string
	thumb  string
	iss    string
	sub    string
	jti    string
	exp    int64 // unix seconds
	nbf    int64 // unix seconds; 0 when absent
	size   int
	scopes []string
}

// unverifiedParser decodes header and claims to choose the provider. The
// same strictness as the verifying parsers: JSON numbers, strict base64.
var unverifiedParser = jwt.NewParser(jwt.WithJSONNumber(), jwt.WithStrictDecoding())

// tokenError is a failed token check: its reason and the wrapped cause.
type tokenError struct {
	reason audit.Reason
	err    error
	// What was learnt before the failure, for the audit record.
	p        *providerRT
	alg, kid string
	iss, sub string
}

func (e *tokenError) Error() string { return string(e.reason) + ": " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// check runs SPEC §3.3–3.6 on raw for route rt. digest is SHA-256(raw).
func (g *Gateway) check(ctx context.Context, rt *routeRT, raw string, digest *[32]byte) (*verified, *tokenError) {
	now := g.deps.Now()
	if len(raw) > rt.maxTokenBytes {
		return nil, &tokenError{reason: audit.ReasonTokenTooLarge, err: fmt.Errorf("token of %d bytes exceeds %d", len(raw), rt.maxTokenBytes)}
	}
	if v := g.cache.get(digest); v != nil {
		if err := g.checkCached(rt, v, now); err != nil {
			return nil, err
		}
		if g.deps.Metrics != nil {
			g.deps.Metrics.CacheHit()
		}
		return v, nil
	}
	if g.deps.Metrics != nil {
		g.deps.Metrics.CacheMiss()
	}
	v, terr := g.verify(ctx, rt, raw, now)
	if terr != nil {
		return nil, terr
	}
	g.cache.put(digest, v)
	return v, nil
}

// checkCached applies to a cache hit what can change between requests: the
// route's issuers, the keys' freshness and time (exp, nbf with skew).
func (g *Gateway) checkCached(rt *routeRT, v *verified, now time.Time) *tokenError {
	fail := func(r audit.Reason, err error) *tokenError { // allocates only on refusal
		return &tokenError{reason: r, err: err, p: v.p, alg: v.alg, kid: v.kid, iss: v.iss, sub: v.sub}
	}
	if !rt.allows(v.p) {
		return fail(audit.ReasonIssuerNotAllowed, ErrIssuerNotAllowed)
	}
	if ok, why := v.p.keys.Ready(); !ok {
		return fail(audit.ReasonKeysUnavailable, fmt.Errorf("%w: %s", jwks.ErrKeysUnavailable, why))
	}
	skew := int64(v.p.skew / time.Second)
	sec := now.Unix()
	if sec > v.exp+skew || (sec == v.exp+skew && now.Nanosecond() > 0) {
		return fail(audit.ReasonTokenExpired, jwt.ErrTokenExpired)
	}
	if v.nbf != 0 && sec+skew < v.nbf {
		return fail(audit.ReasonTokenNotYetValid, jwt.ErrTokenNotValidYet)
	}
	return nil
}

func (rt *routeRT) allows(p *providerRT) bool {
	for _, a := range rt.allowed {
		if a == p {
			return true
		}
	}
	return false
}

// verify is the full check of a token not in the cache.
func (g *Gateway) verify(ctx context.Context, rt *routeRT, raw string, now time.Time) (*verified, *tokenError) {
	te := &tokenError{}
	fail := func(r audit.Reason, err error) (*verified, *tokenError) {
		te.reason, te.err = r, err
		return nil, te
	}
	// Compact JWS only: JWE (5 parts), JSON serialization and dot floods
	// are refused before any decoding.
	if strings.Count(raw, ".") != 2 {
		return fail(audit.ReasonTokenMalformed, jwt.ErrTokenMalformed)
	}
	uc := jwt.MapClaims{}
	tok, _, err := unverifiedParser.ParseUnverified(raw, uc)
	if err != nil {
		if tok != nil && tok.Header != nil && errors.Is(err, jwt.ErrTokenUnverifiable) {
			// golang-jwt knows no such alg ("None", "HS257", ...).
			te.alg, _ = tok.Header["alg"].(string)
			return fail(audit.ReasonAlgorithmNotAllowed, fmt.Errorf("%w: %w", ErrAlgorithmNotAllowed, err))
		}
		return fail(audit.ReasonTokenMalformed, err)
	}
	alg, ok := tok.Header["alg"].(string)
	if !ok {
		return fail(audit.ReasonTokenMalformed, fmt.Errorf("%w: alg is not a string", jwt.ErrTokenMalformed))
	}
	te.alg = alg
	if kv, has := tok.Header["kid"]; has {
		kid, ok := kv.(string)
		if !ok {
			return fail(audit.ReasonTokenMalformed, fmt.Errorf("%w: kid is not a string", jwt.ErrTokenMalformed))
		}
		te.kid = kid
	}
	// §3.3: the alg must be allowed by at least one provider before
	// anything else is trusted ("none" never is); the token's own
	// provider's list is checked once iss has chosen it.
	if !g.allAlgs[alg] {
		return fail(audit.ReasonAlgorithmNotAllowed, fmt.Errorf("%w: %q", ErrAlgorithmNotAllowed, alg))
	}
	if _, has := tok.Header["crit"]; has {
		// jwtgate implements no JWS extensions (b64, ...), so any crit
		// list names one it does not understand (RFC 7515 §4.1.11).
		return fail(audit.ReasonTokenMalformed, ErrCritUnsupported)
	}
	iss, _ := uc["iss"].(string)
	te.iss = iss
	if sub, ok := uc["sub"].(string); ok {
		te.sub = sub
	}
	p := g.byIssuer[iss]
	if p == nil {
		return fail(audit.ReasonUnknownIssuer, ErrUnknownIssuer)
	}
	te.p = p
	if !rt.allows(p) {
		return fail(audit.ReasonIssuerNotAllowed, ErrIssuerNotAllowed)
	}
	if !p.algs[alg] {
		return fail(audit.ReasonAlgorithmNotAllowed, fmt.Errorf("%w: %q for provider %s", ErrAlgorithmNotAllowed, alg, p.name))
	}
	if len(raw) > p.cfg.MaxTokenBytes {
		return fail(audit.ReasonTokenTooLarge, fmt.Errorf("token of %d bytes exceeds %d", len(raw), p.cfg.MaxTokenBytes))
	}
	if p.typs != nil {
		typ, _ := tok.Header["typ"].(string)
		if !p.typs[normalizeTyp(typ)] {
			return fail(audit.ReasonTokenTypeNotAllowed, ErrTokenType)
		}
	}
	if ok, why := p.keys.Ready(); !ok {
		return fail(audit.ReasonKeysUnavailable, fmt.Errorf("%w: %s", jwks.ErrKeysUnavailable, why))
	}

	// §3.5–3.6: key by kid, signature, then exp, nbf, iat, aud by golang-jwt.
	var info jwks.KeyInfo
	keyfunc := func(t *jwt.Token) (any, error) {
		key, ki, err := p.keys.Resolve(ctx, alg, te.kid)
		info = ki
		return key, err
	}
	claims := jwt.MapClaims{}
	if _, err := p.parser.ParseWithClaims(raw, claims, keyfunc); err != nil {
		return fail(classify(err), err)
	}
	v := &verified{p: p, claims: claims, kid: te.kid, alg: alg, thumb: info.Thumbprint, iss: iss, sub: te.sub, size: len(raw)}
	v.scopes = policy.Scopes(claims, p.cfg.ScopeClaim)
	if j, ok := claims["jti"].(string); ok {
		v.jti = j
	}
	exp, _ := claims.GetExpirationTime() // required and type-checked by the parser
	v.exp = exp.Unix()
	if nbf, _ := claims.GetNotBefore(); nbf != nil {
		v.nbf = nbf.Unix()
	}
	if p.cfg.MaxLifetime > 0 {
		iat, _ := claims.GetIssuedAt()
		if iat == nil {
			return fail(audit.ReasonClaimMissing, fmt.Errorf("%w: iat (max_lifetime is set)", jwt.ErrTokenRequiredClaimMissing))
		}
		if exp.Sub(iat.Time) > p.cfg.MaxLifetime {
			return fail(audit.ReasonLifetimeExceeded, ErrLifetime)
		}
	}
	for _, c := range p.cfg.RequiredClaims {
		if val, ok := claims[c]; !ok || val == nil {
			return fail(audit.ReasonClaimMissing, fmt.Errorf("%w: %s", jwt.ErrTokenRequiredClaimMissing, c))
		}
	}
	return v, nil
}

// classify maps a golang-jwt / jwks error to its SPEC §5 reason. The order
// matters: a claims error can wrap several sentinels, and the first
// failing check in SPEC §3.6 order wins.
func classify(err error) audit.Reason {
	switch {
	case errors.Is(err, jwks.ErrKeysUnavailable):
		return audit.ReasonKeysUnavailable
	case errors.Is(err, jwks.ErrKeyMismatch):
		return audit.ReasonAlgorithmNotAllowed
	case errors.Is(err, jwks.ErrKeyNotFound), errors.Is(err, jwks.ErrNoKID):
		return audit.ReasonKeyNotFound
	case errors.Is(err, jwt.ErrTokenMalformed):
		return audit.ReasonTokenMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return audit.ReasonSignatureInvalid
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return audit.ReasonKeyNotFound
	case errors.Is(err, jwt.ErrInvalidType):
		return audit.ReasonTokenMalformed
	case errors.Is(err, jwt.ErrTokenExpired):
		return audit.ReasonTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return audit.ReasonTokenNotYetValid
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return audit.ReasonTokenIssuedInFuture
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return audit.ReasonClaimMissing
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return audit.ReasonAudienceMismatch
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return audit.ReasonUnknownIssuer
	}
	return audit.ReasonTokenMalformed
}

// tokenID is the first 16 hex digits of SHA-256 of the raw token (SPEC §5).
func tokenID(d *[32]byte) string {
	const hexd = "0123456789abcdef"
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[2*i] = hexd[d[i]>>4]
		b[2*i+1] = hexd[d[i]&0xf]
	}
	return string(b[:])
}

// digestOf is SHA-256 of raw without copying it: Sum256 only reads the
// bytes, and a string's bytes are immutable.
func digestOf(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}
