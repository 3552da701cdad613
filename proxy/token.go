package proxy

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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
	gen    uint64 // the provider's key generation the token was verified under
}

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
		if g.deps.Metrics != nil {
			g.deps.Metrics.CacheHit() // found; the time and route checks below may still refuse it
		}
		if err := g.checkCached(rt, v, now); err != nil {
			return nil, err
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

// Sentinels for token shapes jwtgate refuses although golang-jwt would
// accept them. Each is reported as token_malformed and wrapped together
// with jwt.ErrTokenMalformed, except ErrPSSSaltLength (signature_invalid,
// wrapped with jwt.ErrTokenSignatureInvalid).
var (
	// ErrTokenEncoding means the token is not a compact JWS in strict
	// base64url: a character outside [A-Za-z0-9_-] in a segment (padding
	// "=", "+", "/", whitespace, line breaks, which Go's decoder would
	// silently skip), non-zero trailing bits, or the wrong segment count
	// (JWE, JSON serialization, dot floods).
	ErrTokenEncoding = errors.New("token is not a compact jws in strict base64url")
	// ErrTokenJSON means the header or the claims are not one JSON object
	// (syntax error, another type, or trailing data after the object, which
	// golang-jwt's claims decoder would ignore).
	ErrTokenJSON = errors.New("token header or claims are not one json object")
	// ErrDuplicateMember means a JSON object in the header or claims names
	// a member twice, or two members whose names differ only in case:
	// parsers disagree on which one counts (Go's map decoding keeps the
	// last, case-insensitive struct decoding may take either), so a
	// backend reading the forwarded token could see another identity.
	ErrDuplicateMember = errors.New("duplicate or case-variant json member name")
	// ErrUnsupportedJWS means the header asks for a JWS feature jwtgate
	// does not implement and will not guess at: b64 (RFC 7797 unencoded
	// payload) or a nested JWT (cty JWT).
	ErrUnsupportedJWS = errors.New("jws feature not supported")
	// ErrClaimType means a registered claim jwtgate interprets has the
	// wrong JSON type or an out-of-range value: iss, sub, jti not strings;
	// aud not a string or array of strings; exp, nbf, iat not a number from
	// 0 to 253402300799 (year 9999); the scope claim not a string or array
	// of strings; null for any of them.
	ErrClaimType = errors.New("claim has the wrong json type or an out-of-range value")
	// ErrUnsafeText means the header or claims are not valid UTF-8, or an
	// identity value (iss, sub, jti, aud, kid) holds a control character,
	// a bidirectional override or isolate, an invisible character, or
	// U+FFFD (what Go's decoder substitutes for broken UTF-8 and lone
	// surrogate escapes).
	ErrUnsafeText = errors.New("invalid utf-8 or a control, bidi or invisible character in an identity value")
	// ErrPSSSaltLength means a PS256/PS384/PS512 signature does not verify
	// with a salt as long as the hash (RFC 7518 §3.5). golang-jwt verifies
	// PSS with rsa.PSSSaltLengthAuto, accepting any salt length.
	ErrPSSSaltLength = errors.New("rsa-pss signature does not verify with a hash-length salt")
)

// malformed wraps a structural refusal so that errors.Is finds both
// jwt.ErrTokenMalformed and the jwtgate sentinel.
func malformed(sentinel error, detail string) error {
	return fmt.Errorf("%w: %w: %s", jwt.ErrTokenMalformed, sentinel, detail)
}

// maxNumericDate is 9999-12-31T23:59:59Z: later (or negative, or
// non-finite) exp, nbf and iat values are refused instead of being fed to
// golang-jwt's float-to-int64 conversion, which is undefined out of range.
const maxNumericDate = 253402300799

// strictB64 is base64url without padding, refusing non-zero trailing bits.
var strictB64 = base64.RawURLEncoding.Strict()

// jwsParts is a compact JWS split and decoded under jwtgate's rules.
type jwsParts struct {
	header       map[string]any
	alg          string // "" when absent
	kid          string // "" when absent
	payload      []byte // decoded, not interpreted
	sig          []byte
	signingInput string // header "." payload, exactly as received
}

// isB64URL reports whether c may appear in a base64url segment.
func isB64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// parseJWS splits raw into the three segments of a compact JWS, decodes
// each in strict base64url, and decodes the header: valid UTF-8, one JSON
// object without duplicate member names, alg and kid strings when present
// (kid free of control, bidi and invisible characters). The payload is
// decoded but not interpreted.
func parseJWS(raw string) (*jwsParts, error) {
	dots := 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '.':
			dots++
		case !isB64URL(c):
			return nil, malformed(ErrTokenEncoding, "character outside base64url")
		}
	}
	if dots != 2 {
		return nil, malformed(ErrTokenEncoding, fmt.Sprintf("%d segments, want 3", dots+1))
	}
	h, rest, _ := strings.Cut(raw, ".")
	pl, sg, _ := strings.Cut(rest, ".")
	if h == "" {
		return nil, malformed(ErrTokenEncoding, "empty header")
	}
	hb, err := strictB64.DecodeString(h)
	if err != nil {
		return nil, malformed(ErrTokenEncoding, "header: "+err.Error())
	}
	pb, err := strictB64.DecodeString(pl)
	if err != nil {
		return nil, malformed(ErrTokenEncoding, "payload: "+err.Error())
	}
	sb, err := strictB64.DecodeString(sg)
	if err != nil {
		return nil, malformed(ErrTokenEncoding, "signature: "+err.Error())
	}
	if !utf8.Valid(hb) {
		return nil, malformed(ErrUnsafeText, "header is not utf-8")
	}
	if err := checkMembers(hb); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	j := &jwsParts{payload: pb, sig: sb, signingInput: raw[:len(h)+1+len(pl)]}
	if err := json.Unmarshal(hb, &j.header); err != nil {
		return nil, malformed(ErrTokenJSON, "header: "+err.Error())
	}
	if v, has := j.header["alg"]; has {
		s, ok := v.(string)
		if !ok {
			return nil, malformed(ErrTokenJSON, "alg is not a string")
		}
		j.alg = s
	}
	if v, has := j.header["kid"]; has {
		s, ok := v.(string)
		if !ok {
			return nil, malformed(ErrTokenJSON, "kid is not a string")
		}
		if !safeText(s) {
			return nil, malformed(ErrUnsafeText, "kid")
		}
		j.kid = s
	}
	return j, nil
}

// checkHeader refuses header members that change how a JWS must be
// processed: crit (jwtgate implements no extensions, so any list names one
// it does not understand, RFC 7515 §4.1.11), b64 (RFC 7797: the payload
// would be signed unencoded) and cty naming a nested JWT (RFC 7519 §5.2).
// jku, x5u, jwk and x5c are not refused: they are never read.
func checkHeader(h map[string]any) error {
	if _, has := h["crit"]; has {
		return ErrCritUnsupported
	}
	if _, has := h["b64"]; has {
		return malformed(ErrUnsupportedJWS, "b64 header")
	}
	if v, has := h["cty"]; has {
		if s, ok := v.(string); !ok || normalizeTyp(s) == "jwt" {
			return malformed(ErrUnsupportedJWS, "nested jwt (cty)")
		}
	}
	return nil
}

// decodeClaims decodes the payload as JWT claims: valid UTF-8, one JSON
// object without duplicate or case-variant member names at any depth,
// numbers kept as json.Number, and registered claims of the right type.
func decodeClaims(payload []byte) (jwt.MapClaims, error) {
	if !utf8.Valid(payload) {
		return nil, malformed(ErrUnsafeText, "claims are not utf-8")
	}
	if err := checkMembers(payload); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	claims := jwt.MapClaims{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return nil, malformed(ErrTokenJSON, "claims: "+err.Error())
	}
	if err := checkClaimTypes(claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// checkClaimTypes enforces the JSON types of the registered claims that
// jwtgate and golang-jwt interpret. golang-jwt alone would ignore an aud
// that is a number (no audience), treat a non-string sub as absent, and
// convert out-of-range numeric dates with undefined results.
func checkClaimTypes(c jwt.MapClaims) error {
	for _, name := range [...]string{"iss", "sub", "jti"} {
		v, has := c[name]
		if !has {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return malformed(ErrClaimType, name+" is not a string")
		}
		if !safeText(s) {
			return malformed(ErrUnsafeText, name)
		}
	}
	if v, has := c["aud"]; has {
		switch a := v.(type) {
		case string:
			if !safeText(a) {
				return malformed(ErrUnsafeText, "aud")
			}
		case []any:
			for _, e := range a {
				s, ok := e.(string)
				if !ok {
					return malformed(ErrClaimType, "aud has a member that is not a string")
				}
				if !safeText(s) {
					return malformed(ErrUnsafeText, "aud")
				}
			}
		default:
			return malformed(ErrClaimType, "aud is not a string or an array of strings")
		}
	}
	for _, name := range [...]string{"exp", "nbf", "iat"} {
		v, has := c[name]
		if !has {
			continue
		}
		n, ok := v.(json.Number)
		if !ok {
			return malformed(ErrClaimType, name+" is not a number")
		}
		f, err := n.Float64()
		if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
			return malformed(ErrClaimType, name+" is out of range")
		}
	}
	return nil
}

// checkScopeClaim enforces the type of the claims scopes are read from
// (scope_claim, or scope and scp): a string or an array of strings. Any
// other type would silently read as "no scopes".
func checkScopeClaim(c jwt.MapClaims, scopeClaim string) error {
	one := func(name string) error {
		v, has := c[name]
		if !has {
			return nil
		}
		switch x := v.(type) {
		case string:
			return nil
		case []any:
			for _, e := range x {
				if _, ok := e.(string); !ok {
					return malformed(ErrClaimType, name+" has a member that is not a string")
				}
			}
			return nil
		}
		return malformed(ErrClaimType, name+" is not a string or an array of strings")
	}
	if scopeClaim != "" {
		return one(scopeClaim)
	}
	if err := one("scope"); err != nil {
		return err
	}
	return one("scp")
}

// safeText reports whether s is fit to identify someone: no C0 or C1
// control characters, no bidirectional marks, overrides or isolates
// (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), no invisible
// characters (U+200B–U+200D, U+2060, U+FEFF) and no U+FFFD.
func safeText(s string) bool {
	for _, r := range s {
		switch {
		case r < 0x20, r >= 0x7f && r <= 0x9f:
			return false
		case r < 0x7f:
		case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return false
		case r >= 0x200b && r <= 0x200d, r == 0x2060, r == 0xfeff, r == utf8.RuneError:
			return false
		}
	}
	return true
}

// auditText returns s for an audit record when it is short, safe text, and
// "" otherwise (an attacker-chosen alg is recorded only when harmless).
func auditText(s string) string {
	if len(s) > 64 || !safeText(s) {
		return ""
	}
	return s
}

// checkMembers walks data with encoding/json's token stream and refuses
// anything but a single JSON object, and any object (at any depth) with
// two member names that are equal or equal under Unicode case folding
// (strings.EqualFold).
func checkMembers(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*memberSet // nil entries are arrays
	started := false
	for {
		tok, err := dec.Token()
		if err == io.EOF && started && len(stack) == 0 {
			return nil
		}
		if err != nil {
			return malformed(ErrTokenJSON, err.Error())
		}
		if len(stack) == 0 {
			if started {
				return malformed(ErrTokenJSON, "data after the json object")
			}
			started = true
			if tok != json.Delim('{') {
				return malformed(ErrTokenJSON, "not a json object")
			}
			stack = append(stack, &memberSet{wantKey: true})
			continue
		}
		top := stack[len(stack)-1]
		if top != nil && top.wantKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				continue
			}
			name, _ := tok.(string) // the decoder only yields strings as object keys
			if !top.add(name) {
				return malformed(ErrDuplicateMember, fmt.Sprintf("%q", auditText(name)))
			}
			top.wantKey = false
			continue
		}
		if top != nil {
			top.wantKey = true // this token is the member's value
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &memberSet{wantKey: true})
		case json.Delim('['):
			stack = append(stack, nil)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// memberSet holds the member names of one JSON object seen so far. Small
// objects (the usual JWT header and claims) are compared pairwise with
// strings.EqualFold, without allocating; past smallObject names a map of
// folded names keeps the walk linear for large, hostile objects.
type memberSet struct {
	wantKey bool
	names   []string
	folded  map[string]struct{}
}

const smallObject = 16

// add records name and reports false when an equal-folding name is
// already present.
func (m *memberSet) add(name string) bool {
	if m.folded == nil {
		for _, n := range m.names {
			if strings.EqualFold(n, name) {
				return false
			}
		}
		if len(m.names) < smallObject {
			m.names = append(m.names, name)
			return true
		}
		m.folded = make(map[string]struct{}, 2*smallObject)
		for _, n := range m.names {
			m.folded[foldName(n)] = struct{}{}
		}
		m.names = nil
	}
	k := foldName(name)
	if _, dup := m.folded[k]; dup {
		return false
	}
	m.folded[k] = struct{}{}
	return true
}

// foldName maps a member name to a canonical form under Unicode simple
// case folding (the smallest rune of each fold orbit), so that two names
// get the same form exactly when strings.EqualFold says they are equal —
// including "K" (U+212A KELVIN SIGN) versus "k".
func foldName(s string) string {
	return strings.Map(func(r rune) rune {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		return m
	}, s)
}

// strictSignature applies the signature rules jwtgate adds to golang-jwt's
// verification: a PS* signature must verify with a salt of the hash's
// length (rsa.PSSSaltLengthEqualsHash, RFC 7518 §3.5), where golang-jwt
// accepts any salt length. Other algorithms need nothing extra: ES*
// signatures must be exactly r||s of the curve's size (golang-jwt checks
// the length, so DER is refused) with 0 < r, s < n (crypto/ecdsa), and
// high-S signatures (s' = n - s) verify, as JWS does not forbid them.
func strictSignature(alg string, key any, signingInput string, sig []byte) error {
	var h crypto.Hash
	switch alg {
	case "PS256":
		h = crypto.SHA256
	case "PS384":
		h = crypto.SHA384
	case "PS512":
		h = crypto.SHA512
	default:
		return nil
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil // golang-jwt refuses the key type itself
	}
	d := h.New()
	d.Write([]byte(signingInput))
	if err := rsa.VerifyPSS(pub, h, d.Sum(nil), sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
		return fmt.Errorf("%w: %w", jwt.ErrTokenSignatureInvalid, ErrPSSSaltLength)
	}
	return nil
}

// keyfunc resolves the key for j from p's key source (by kid, with the
// JWK's own alg, use and size rules) and applies strictSignature; the
// key's description is stored in info. It never reads jku, x5u, jwk or
// x5c.
func (p *providerRT) keyfunc(ctx context.Context, j *jwsParts, info *jwks.KeyInfo) jwt.Keyfunc {
	return func(*jwt.Token) (any, error) {
		key, ki, err := p.keys.Resolve(ctx, j.alg, j.kid)
		if err != nil {
			return nil, err
		}
		if err := strictSignature(j.alg, key, j.signingInput, j.sig); err != nil {
			return nil, err
		}
		*info = ki
		return key, nil
	}
}

// verifySignature runs only the signature layer of verify for provider p:
// compact form and strict base64url, header rules, the provider's alg
// allow-list, the key for kid, and the signature with strictSignature and
// golang-jwt's signing method. It neither decodes the payload nor checks
// claims, so conformance vectors whose payload is not a claims object
// (Wycheproof) exercise exactly the code that decides signatures. verify
// runs the same steps, then lets golang-jwt's parser verify and validate.
func (p *providerRT) verifySignature(ctx context.Context, raw string) (jwks.KeyInfo, *tokenError) {
	te := &tokenError{p: p}
	fail := func(r audit.Reason, err error) (jwks.KeyInfo, *tokenError) {
		te.reason, te.err = r, err
		return jwks.KeyInfo{}, te
	}
	j, err := parseJWS(raw)
	if err != nil {
		return fail(audit.ReasonTokenMalformed, err)
	}
	te.alg, te.kid = auditText(j.alg), j.kid
	if !p.algs[j.alg] {
		return fail(audit.ReasonAlgorithmNotAllowed, fmt.Errorf("%w: %q for provider %s", ErrAlgorithmNotAllowed, te.alg, p.name))
	}
	if err := checkHeader(j.header); err != nil {
		return fail(audit.ReasonTokenMalformed, err)
	}
	if ok, why := p.keys.Ready(); !ok {
		return fail(audit.ReasonKeysUnavailable, fmt.Errorf("%w: %s", jwks.ErrKeysUnavailable, why))
	}
	var info jwks.KeyInfo
	if reason, err := p.checkSignature(ctx, j, &info); err != nil {
		return fail(reason, err)
	}
	return info, nil
}

// checkSignature resolves the key for the token's alg and kid and verifies
// the signature over the bytes as received with golang-jwt's signing
// method. info receives the key that verified it.
func (p *providerRT) checkSignature(ctx context.Context, j *jwsParts, info *jwks.KeyInfo) (audit.Reason, error) {
	key, err := p.keyfunc(ctx, j, info)(nil)
	if err != nil {
		return classify(err), err
	}
	m := jwt.GetSigningMethod(j.alg)
	if m == nil {
		return audit.ReasonAlgorithmNotAllowed, fmt.Errorf("%w: %q has no signing method", ErrAlgorithmNotAllowed, auditText(j.alg))
	}
	if err := m.Verify(j.signingInput, j.sig, key); err != nil {
		return audit.ReasonSignatureInvalid, fmt.Errorf("%w: %w", jwt.ErrTokenSignatureInvalid, err)
	}
	return "", nil
}

// verify is the full check of a token not in the cache, in SPEC §3 order:
// structure and header (parseJWS), alg allow-list, header rules, claims
// structure and types, provider by iss, the provider's rules, then key,
// signature and claims validation by golang-jwt, then max_lifetime and
// required_claims.
func (g *Gateway) verify(ctx context.Context, rt *routeRT, raw string, now time.Time) (*verified, *tokenError) {
	te := &tokenError{}
	fail := func(r audit.Reason, err error) (*verified, *tokenError) {
		te.reason, te.err = r, err
		return nil, te
	}
	// Compact JWS only: JWE (5 parts), JSON serialization and dot floods
	// are refused before any decoding.
	if strings.Count(raw, ".") != 2 {
		return fail(audit.ReasonTokenMalformed, malformed(ErrTokenEncoding, "not three segments"))
	}
	j, err := parseJWS(raw)
	if err != nil {
		return fail(audit.ReasonTokenMalformed, err)
	}
	alg := j.alg
	te.alg, te.kid = auditText(alg), j.kid
	// §3.3: the alg must be allowed by at least one provider before
	// anything else is trusted ("none" never is); the token's own
	// provider's list is checked once iss has chosen it.
	if !g.allAlgs[alg] {
		return fail(audit.ReasonAlgorithmNotAllowed, fmt.Errorf("%w: %q", ErrAlgorithmNotAllowed, te.alg))
	}
	if err := checkHeader(j.header); err != nil {
		return fail(audit.ReasonTokenMalformed, err)
	}
	claims, err := decodeClaims(j.payload)
	if err != nil {
		return fail(audit.ReasonTokenMalformed, err)
	}
	iss, _ := claims["iss"].(string)
	te.iss = iss
	te.sub, _ = claims["sub"].(string)
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
		typ, _ := j.header["typ"].(string)
		if !p.typs[normalizeTyp(typ)] {
			return fail(audit.ReasonTokenTypeNotAllowed, ErrTokenType)
		}
	}
	if err := checkScopeClaim(claims, p.cfg.ScopeClaim); err != nil {
		return fail(audit.ReasonTokenMalformed, err)
	}
	if ok, why := p.keys.Ready(); !ok {
		return fail(audit.ReasonKeysUnavailable, fmt.Errorf("%w: %s", jwks.ErrKeysUnavailable, why))
	}

	// §3.5–3.6: key by kid, then golang-jwt's own pieces: the signing
	// method verifies the signature over the bytes as received, and the
	// provider's Validator (built from the same parser options as a
	// jwt.Parser: issuer, audience, exp required, iat, leeway, clock)
	// checks the claims already decoded above. This is what
	// Parser.ParseWithClaims does, without decoding the token a second time.
	var info jwks.KeyInfo
	gen := p.keys.Generation() // read before the key: see tokenCache.put
	if reason, err := p.checkSignature(ctx, j, &info); err != nil {
		return fail(reason, err)
	}
	if err := p.validator.Validate(claims); err != nil {
		err = fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, err)
		return fail(classify(err), err)
	}
	v := &verified{p: p, claims: claims, kid: j.kid, alg: alg, thumb: info.Thumbprint, iss: iss, sub: te.sub, size: len(raw), gen: gen}
	v.scopes = policy.Scopes(claims, p.cfg.ScopeClaim)
	if jti, ok := claims["jti"].(string); ok {
		v.jti = jti
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
