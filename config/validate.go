package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// knownAlgorithms are the JWS algorithms a provider may allow.
var knownAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"}

// maxClockSkew is the clock_skew above which validate warns.
const maxClockSkew = 5 * time.Minute

// Validate checks the config as it stands and returns every problem, errors
// and warnings (Warning set), in schema order. It is pure: it reads no
// file or environment variable and changes nothing. Fields left at their
// zero value count as unset (their default applies). Secrets, public keys
// and the chain key are checked only if already resolved by Load or Parse,
// which run the same rules and also resolve them. The config is valid when
// no returned FieldError has Warning false.
func (c *Config) Validate() []FieldError {
	v := &validator{cfg: c}
	v.run()
	return v.problems
}

// validator applies every semantic rule and collects all problems. With
// apply set it also resolves secrets, public keys and the chain key (the
// only I/O) and stores the parsed forms (prefixes, regexps, keys).
type validator struct {
	cfg       *Config
	apply     bool
	lookupEnv func(string) (string, bool)
	problems  []FieldError
}

func (v *validator) errorf(path, format string, args ...any) {
	v.problems = append(v.problems, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) warnf(path, format string, args ...any) {
	v.problems = append(v.problems, FieldError{Path: path, Msg: fmt.Sprintf(format, args...), Warning: true})
}

func (v *validator) run() {
	v.server()
	v.admin()
	v.providers()
	v.routes()
	v.audit()
}

// notNegative reports a negative duration; zero means "use the default".
func (v *validator) notNegative(path string, d, def time.Duration) {
	if d < 0 {
		v.errorf(path, "must be positive, got %s; leave it out to use the default %s", d, def)
	}
}

func (v *validator) notNegativeInt(path string, n, def int) {
	if n < 0 {
		v.errorf(path, "must be positive, got %d; leave it out to use the default %d", n, def)
	}
}

func (v *validator) server() {
	s := &v.cfg.Server
	v.listenAddress("server.address", s.Address)
	if s.TLS != nil {
		if s.TLS.CertFile == "" {
			v.errorf("server.tls.cert_file", "missing; TLS needs a PEM certificate chain file (or remove server.tls to serve plain HTTP)")
		}
		if s.TLS.KeyFile == "" {
			v.errorf("server.tls.key_file", "missing; TLS needs the PEM private key of the certificate (or remove server.tls to serve plain HTTP)")
		}
	}
	v.notNegative("server.read_header_timeout", s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	v.notNegative("server.idle_timeout", s.IdleTimeout, DefaultIdleTimeout)
	v.notNegative("server.body_idle_timeout", s.BodyIdleTimeout, DefaultBodyIdleTimeout)
	v.notNegativeInt("server.max_header_bytes", s.MaxHeaderBytes, DefaultMaxHeaderBytes)
	v.notNegative("server.shutdown_grace", s.ShutdownGrace, DefaultShutdownGrace)

	prefixes := make([]netip.Prefix, 0, len(s.TrustedProxies))
	for i, tp := range s.TrustedProxies {
		p, err := parsePrefix(tp)
		if err != nil {
			v.errorf(fmt.Sprintf("server.trusted_proxies[%d]", i), "%q is not a CIDR or an IP address; write e.g. 10.0.0.0/8 or 192.0.2.7", tp)
			continue
		}
		prefixes = append(prefixes, p)
	}
	if v.apply {
		s.trusted = prefixes
	}
}

// parsePrefix parses a CIDR, or a bare address as a single-address prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %q has a zone", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (v *validator) listenAddress(path, addr string) {
	if addr == "" {
		return // default applies
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		v.errorf(path, "%q is not a listen address; write host:port, e.g. \":8080\" or \"127.0.0.1:8080\"", addr)
	}
}

func (v *validator) admin() {
	a := v.cfg.Admin.Address
	v.listenAddress("admin.address", a)
	pub := v.cfg.Server.Address
	if a == "" {
		a = DefaultAdminAddress
	}
	if pub == "" {
		pub = DefaultAddress
	}
	if sameListener(a, pub) {
		v.errorf("admin.address", "%q is the same listener as server.address %q; the admin endpoints must never be on the public port, pick another port", a, pub)
	}
}

// sameListener reports whether two listen addresses would collide: the
// same port and the same host, or either bound to every interface.
func sameListener(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	if pa != pb || pa == "0" {
		return false
	}
	canon := func(h string) string {
		if strings.EqualFold(h, "localhost") {
			return "127.0.0.1"
		}
		if addr, err := netip.ParseAddr(h); err == nil {
			if addr.IsUnspecified() {
				return ""
			}
			return addr.Unmap().String()
		}
		return strings.ToLower(h)
	}
	ha, hb = canon(ha), canon(hb)
	return ha == hb || ha == "" || hb == ""
}

func (v *validator) providers() {
	names := map[string]int{}
	issuers := map[string]int{}
	for i := range v.cfg.Providers {
		v.provider(i, &v.cfg.Providers[i], names, issuers)
	}
}

func (v *validator) provider(i int, p *Provider, names, issuers map[string]int) {
	base := fmt.Sprintf("providers[%d]", i)
	at := func(s string) string { return base + "." + s }

	switch j, dup := names[p.Name]; {
	case p.Name == "":
		v.errorf(at("name"), "missing; every provider needs a name, which routes and audit records refer to")
	case dup:
		v.errorf(at("name"), "duplicate provider name %q, also used by providers[%d]; names must be unique", p.Name, j)
	default:
		names[p.Name] = i
	}
	switch j, dup := issuers[p.Issuer]; {
	case p.Issuer == "":
		v.errorf(at("issuer"), "missing; set it to the exact iss value of the provider's tokens")
	case dup:
		v.errorf(at("issuer"), "duplicate issuer %q, also used by providers[%d]; a token's provider is chosen by its iss, so issuers must be unique", p.Issuer, j)
	default:
		issuers[p.Issuer] = i
	}

	switch {
	case p.SkipAudienceCheck && len(p.Audiences) > 0:
		v.errorf(at("skip_audience_check"), "set together with audiences; use audiences to accept those aud values, or skip_audience_check alone to accept any")
	case p.SkipAudienceCheck:
		v.warnf(at("skip_audience_check"), "any audience is accepted, so tokens issued for other services are valid here; list the accepted aud values in audiences instead")
	case len(p.Audiences) == 0:
		v.errorf(at("audiences"), "missing; list the aud values this gateway accepts (a token must carry at least one), or set skip_audience_check: true to accept any audience")
	}
	for k, a := range p.Audiences {
		if a == "" {
			v.errorf(at(fmt.Sprintf("audiences[%d]", k)), "empty; an audience is a non-empty string")
		}
	}

	var sources []string
	if p.JWKSURL != "" {
		sources = append(sources, "jwks_url")
	}
	if p.Discovery {
		sources = append(sources, "discovery")
	}
	if p.JWKSFile != "" {
		sources = append(sources, "jwks_file")
	}
	if len(p.Keys) > 0 {
		sources = append(sources, "keys")
	}
	switch len(sources) {
	case 0:
		v.errorf(base, "no key source; set exactly one of jwks_url, discovery, jwks_file or keys")
	case 1:
	default:
		v.errorf(base, "%s; set exactly one of jwks_url, discovery, jwks_file or keys", allSet(sources))
	}
	if p.JWKSURL != "" {
		v.fetchURL(at("jwks_url"), p.JWKSURL, p.AllowInsecureHTTP, at("allow_insecure_http"), false)
	}
	if p.Discovery && p.Issuer != "" {
		v.fetchURL(at("issuer"), p.Issuer, p.AllowInsecureHTTP, at("allow_insecure_http"), true)
	}

	hasSecret := false
	for _, k := range p.Keys {
		if k.SecretEnv != "" || k.SecretFile != "" {
			hasSecret = true
		}
	}
	algs := p.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	seenAlg := map[string]bool{}
	for k, a := range p.Algorithms {
		path := at(fmt.Sprintf("algorithms[%d]", k))
		switch {
		case strings.EqualFold(a, "none"):
			v.errorf(path, "%q is never allowed: it accepts unsigned tokens; remove it", a)
		case !slices.Contains(knownAlgorithms, a):
			if c := canonicalAlg(a); c != "" {
				v.errorf(path, "unknown algorithm %q; algorithm names are case-sensitive, did you mean %q?", a, c)
			} else {
				v.errorf(path, "unknown algorithm %q; use one of %s", a, strings.Join(knownAlgorithms, " "))
			}
		case isHMAC(a) && !hasSecret:
			v.errorf(path, "%s needs a static secret (keys[].secret_env or secret_file); it is not allowed with %s", a, nonSecretSource(sources))
		case seenAlg[a]:
			v.errorf(path, "%s is listed twice; list each algorithm once", a)
		}
		seenAlg[a] = true
	}
	v.keys(i, p, algs)

	v.notNegative(at("refresh_interval"), p.RefreshInterval, DefaultRefreshInterval)
	v.notNegative(at("unknown_kid_min_interval"), p.UnknownKIDMinInterval, DefaultUnknownKIDMinInterval)
	v.notNegative(at("fetch_timeout"), p.FetchTimeout, DefaultFetchTimeout)
	v.notNegativeInt(at("max_token_bytes"), p.MaxTokenBytes, DefaultMaxTokenBytes)
	v.notNegative(at("clock_skew"), p.ClockSkew, DefaultClockSkew)
	if p.ClockSkew > maxClockSkew {
		v.warnf(at("clock_skew"), "%s is long: tokens are accepted that long after they expire; keep it to a few seconds or minutes", p.ClockSkew)
	}
	if p.MaxLifetime < 0 {
		v.errorf(at("max_lifetime"), "must be positive, got %s; leave it out for no bound", p.MaxLifetime)
	}
	v.notNegative(at("max_stale"), p.MaxStale, DefaultMaxStale)

	for k, tt := range p.TokenTypes {
		if tt == "" {
			v.errorf(at(fmt.Sprintf("token_types[%d]", k)), "empty; a token type is a typ header value such as at+jwt")
		}
	}
	for k, rc := range p.RequiredClaims {
		if rc == "" {
			v.errorf(at(fmt.Sprintf("required_claims[%d]", k)), "empty; name a claim such as sub")
		}
	}
	for k := range p.TokenSources {
		v.tokenSource(at(fmt.Sprintf("token_sources[%d]", k)), &p.TokenSources[k])
	}
}

// nonSecretSource names the provider's key source for the HMAC message.
func nonSecretSource(sources []string) string {
	for _, s := range sources {
		if s != "keys" {
			return s
		}
	}
	if len(sources) > 0 {
		return "public_key_file keys"
	}
	return "no key source"
}

// canonicalAlg returns the known algorithm equal to a ignoring case, or "".
func canonicalAlg(a string) string {
	for _, k := range knownAlgorithms {
		if strings.EqualFold(k, a) {
			return k
		}
	}
	return ""
}

func isHMAC(alg string) bool { return strings.HasPrefix(alg, "HS") }

// fetchURL checks a JWKS or discovery URL: absolute https, or http on a
// loopback host unless allow_insecure_http (SPEC §8). A key set fetched over
// plain http can be replaced in transit by anyone on the path.
func (v *validator) fetchURL(path, raw string, allowInsecure bool, insecurePath string, issuer bool) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		if issuer {
			v.errorf(path, "%q is not an absolute URL; with discovery: true the issuer must be an https URL (the discovery document is fetched from issuer + /.well-known/openid-configuration)", raw)
		} else {
			v.errorf(path, "%q is not an absolute URL; write e.g. https://idp.example.com/.well-known/jwks.json", raw)
		}
		return
	}
	switch u.Scheme {
	case "https":
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return
		}
		if allowInsecure {
			v.warnf(insecurePath, "keys for %s are fetched over plain http, so anyone on the path can replace them; use https", u.Host)
			return
		}
		v.errorf(path, "plain http is allowed only on loopback hosts (127.0.0.0/8, ::1, localhost); use https, or set allow_insecure_http: true to accept keys fetched without TLS")
	default:
		v.errorf(path, "scheme %q is not supported; use https (or http on a loopback host)", u.Scheme)
	}
}

// isLoopbackHost reports whether h is localhost or a loopback address.
func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

func (v *validator) keys(i int, p *Provider, algs []string) {
	kids := map[string]int{}
	for j := range p.Keys {
		k := &p.Keys[j]
		kb := fmt.Sprintf("providers[%d].keys[%d]", i, j)
		kat := func(s string) string { return kb + "." + s }
		if k.KID == "" && len(p.Keys) > 1 {
			v.errorf(kat("kid"), "missing; with more than one key every key needs a kid, which tokens name in their header")
		}
		if k.KID != "" {
			if prev, dup := kids[k.KID]; dup {
				v.errorf(kat("kid"), "duplicate kid %q, also used by keys[%d]; kids must be unique within a provider", k.KID, prev)
			} else {
				kids[k.KID] = j
			}
		}
		var set []string
		if k.SecretEnv != "" {
			set = append(set, "secret_env")
		}
		if k.SecretFile != "" {
			set = append(set, "secret_file")
		}
		if k.PublicKeyFile != "" {
			set = append(set, "public_key_file")
		}
		switch {
		case len(set) == 0:
			v.errorf(kb, "no key; set exactly one of secret_env, secret_file or public_key_file")
			continue
		case len(set) > 1:
			v.errorf(kb, "%s; set exactly one of secret_env, secret_file or public_key_file", allSet(set))
			continue
		}
		notAllowed := func() {
			v.errorf(kat("alg"), "%s is not in providers[%d].algorithms; add it there, the allow-list decides which algorithms tokens may use", k.Alg, i)
		}
		if k.PublicKeyFile == "" {
			switch {
			case k.Alg == "":
				v.errorf(kat("alg"), "missing; an HMAC secret needs alg: HS256, HS384 or HS512")
			case !slices.Contains([]string{"HS256", "HS384", "HS512"}, k.Alg):
				v.errorf(kat("alg"), "%q cannot be used with an HMAC secret; use HS256, HS384 or HS512", k.Alg)
			case !slices.Contains(algs, k.Alg):
				notAllowed()
			}
			v.secret(kb, k)
			continue
		}
		pub := v.publicKey(kat("public_key_file"), k)
		switch {
		case k.Alg == "":
			if pub != nil && !slices.ContainsFunc(algs, func(a string) bool { return algFitsKey(a, pub) }) {
				v.errorf(kat("public_key_file"), "no algorithm in providers[%d].algorithms fits this %s key; add one that does (or set alg on the key)", i, describePublicKey(pub))
			}
		case !slices.Contains(knownAlgorithms, k.Alg) || isHMAC(k.Alg):
			v.errorf(kat("alg"), "%q cannot be used with a public key; use the RS*, PS*, ES* or EdDSA algorithm that fits the key", k.Alg)
		case pub != nil && !algFitsKey(k.Alg, pub):
			v.errorf(kat("alg"), "%s does not fit this %s key; use an algorithm made for it", k.Alg, describePublicKey(pub))
		case !slices.Contains(algs, k.Alg):
			notAllowed()
		}
	}
}

func (v *validator) tokenSource(path string, ts *TokenSource) {
	var set []string
	if ts.Header != "" {
		set = append(set, "header")
	}
	if ts.Cookie != "" {
		set = append(set, "cookie")
	}
	if ts.Query != "" {
		set = append(set, "query")
	}
	switch len(set) {
	case 0:
		v.errorf(path, "empty token source; set exactly one of header, cookie or query")
	case 1:
	default:
		v.errorf(path, "%s; a token source is exactly one of header, cookie or query (add one source per place)", allSet(set))
	}
	if ts.Prefix != "" && ts.Header == "" {
		v.errorf(path+".prefix", "applies only to a header source; remove it")
	}
	if ts.Header != "" && !isToken(ts.Header) {
		v.errorf(path+".header", "%q is not a valid header name; use letters, digits and - such as Authorization", ts.Header)
	}
	if ts.Cookie != "" && !isToken(ts.Cookie) {
		v.errorf(path+".cookie", "%q is not a valid cookie name; use letters, digits, - and _", ts.Cookie)
	}
}

// isToken reports whether s is an RFC 9110 token: the syntax of header
// names, cookie names and methods.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (v *validator) routes() {
	rs := v.cfg.Routes
	if len(rs) == 0 {
		v.warnf("routes", "no routes, so every request gets 404; add a route")
	}
	names := map[string]int{}
	for i := range rs {
		r := &rs[i]
		base := fmt.Sprintf("routes[%d]", i)
		switch j, dup := names[r.Name]; {
		case r.Name == "":
			v.errorf(base+".name", "missing; every route needs a name, which audit records and metrics refer to")
		case dup:
			v.errorf(base+".name", "duplicate route name %q, also used by routes[%d]; names must be unique", r.Name, j)
		default:
			names[r.Name] = i
		}
		v.match(base+".match", &r.Match)
		v.upstream(base+".upstream", r)
		v.auth(base+".auth", &r.Auth)
	}
	v.shadowed()
}

func (v *validator) match(mb string, m *Match) {
	switch {
	case m.Path == "" && m.PathPrefix == "":
		v.errorf(mb, "no path; set exactly one of path (one exact path) or path_prefix (a path and everything below it)")
	case m.Path != "" && m.PathPrefix != "":
		v.errorf(mb, "path and path_prefix are both set; set exactly one")
	}
	if m.Path != "" {
		v.routePath(mb+".path", m.Path)
	}
	if m.PathPrefix != "" {
		v.routePath(mb+".path_prefix", m.PathPrefix)
	}
	if m.Host != "" {
		if msg := hostProblem(strings.ToLower(m.Host)); msg != "" {
			v.errorf(mb+".host", "%q %s", m.Host, msg)
		}
	}
	seen := map[string]bool{}
	for j, meth := range m.Methods {
		path := fmt.Sprintf("%s.methods[%d]", mb, j)
		up := strings.ToUpper(meth)
		switch {
		case !isToken(meth):
			v.errorf(path, "%q is not an HTTP method; use a method name such as GET or POST", meth)
		case seen[up]:
			v.errorf(path, "%s is listed twice; list each method once", up)
		}
		seen[up] = true
	}
}

// routePath checks a match path. The gateway matches the cleaned path (dot
// segments resolved, "//" merged, no ";" or encoded slashes), so a route
// path that is not itself clean could never match.
func (v *validator) routePath(path, p string) {
	switch {
	case !strings.HasPrefix(p, "/"):
		v.errorf(path, "%q does not start with \"/\"; write an absolute path such as /orders", p)
	case strings.Contains(p, "//"):
		v.errorf(path, "%q contains \"//\"; requests are matched after repeated slashes are merged, so it could never match; use single slashes", p)
	case hasDotSegment(p):
		v.errorf(path, "%q contains a \".\" or \"..\" segment; requests are matched after those are resolved, so it could never match", p)
	case strings.Contains(p, "%"):
		v.errorf(path, "%q contains \"%%\"; write the path decoded, percent-encoding is not allowed in a route path", p)
	case strings.Contains(p, ";"):
		v.errorf(path, "%q contains \";\"; path parameters cannot be matched, remove it", p)
	case strings.ContainsAny(p, "?#"):
		v.errorf(path, "%q contains \"?\" or \"#\"; a route matches the path only, without query or fragment", p)
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }):
		v.errorf(path, "%q contains a control character or a backslash; such paths are refused before routing", p)
	}
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// hostProblem says what is wrong with a lowercase match host, or "".
func hostProblem(h string) string {
	if h == "*" {
		return `is not a host; leave host out to match any host`
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if a, err := netip.ParseAddr(h[1 : len(h)-1]); err == nil && a.Is6() && a.Zone() == "" {
			return ""
		}
		return "is not a valid IPv6 address"
	}
	if strings.Contains(h, ":") {
		return "includes a port or is not a host name; match.host is a host name without a port"
	}
	rest := strings.TrimPrefix(h, "*.")
	if strings.Contains(rest, "*") {
		return `has "*" outside a leading "*." label; only a leading wildcard such as *.example.com is allowed`
	}
	if strings.HasSuffix(rest, ".") {
		return "ends with a dot; write the host without the trailing dot"
	}
	if len(rest) > 253 {
		return "is longer than 253 characters; a host name is at most 253"
	}
	for _, label := range strings.Split(rest, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.ContainsFunc(label, func(r rune) bool {
				return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_')
			}) {
			return "is not a valid host name; use labels of letters, digits and -, separated by dots, optionally with a leading *."
		}
	}
	return ""
}

func (v *validator) upstream(ub string, r *Route) {
	u := &r.Upstream
	switch pu, err := url.Parse(u.URL); {
	case u.URL == "":
		v.errorf(ub+".url", "missing; set the backend's base URL, e.g. http://127.0.0.1:9000")
	case err != nil:
		v.errorf(ub+".url", "%q is not a valid URL; write e.g. http://127.0.0.1:9000", u.URL)
	case pu.Scheme != "http" && pu.Scheme != "https":
		v.errorf(ub+".url", "%q must use http or https; write an absolute URL such as http://127.0.0.1:9000", u.URL)
	case pu.Host == "":
		v.errorf(ub+".url", "%q has no host; write an absolute URL such as http://127.0.0.1:9000", u.URL)
	}
	v.notNegative(ub+".timeout", u.Timeout, DefaultUpstreamTimeout)
	if r.MaxBodyBytes < 0 {
		v.errorf(strings.TrimSuffix(ub, ".upstream")+".max_body_bytes", "%d is negative; set a byte count, or 0 for no cap", r.MaxBodyBytes)
	}
	if u.StripPrefix && r.Match.PathPrefix == "" {
		v.warnf(ub+".strip_prefix", "has no effect without match.path_prefix; remove it")
	}
}

func (v *validator) auth(ab string, a *Auth) {
	mode := a.Mode
	switch mode {
	case ModeRequired, ModeOptional, ModeOff, ModeDryRun:
	case "":
		mode = ModeRequired
	default:
		v.errorf(ab+".mode", "unknown mode %q; use required, optional, off or dry_run", a.Mode)
	}
	var provNames []string
	for _, p := range v.cfg.Providers {
		if p.Name != "" {
			provNames = append(provNames, p.Name)
		}
	}
	seen := map[string]bool{}
	for j, name := range a.Providers {
		path := fmt.Sprintf("%s.providers[%d]", ab, j)
		switch {
		case !slices.Contains(provNames, name) && len(provNames) == 0:
			v.errorf(path, "unknown provider %q; no providers are configured", name)
		case !slices.Contains(provNames, name):
			v.errorf(path, "unknown provider %q; name one of the providers: %s", name, strings.Join(provNames, ", "))
		case seen[name]:
			v.errorf(path, "provider %q is listed twice; list each provider once", name)
		}
		seen[name] = true
	}
	if mode != ModeOff && len(v.cfg.Providers) == 0 {
		v.errorf(ab+".mode", "mode %s checks tokens, but no providers are configured; add a provider or set mode: off", mode)
	}
	req := &a.Require
	if mode == ModeOff {
		var ignored []string
		if len(a.Providers) > 0 {
			ignored = append(ignored, "providers")
		}
		if len(req.Scopes) > 0 || len(req.Claims) > 0 || len(req.AnyOf) > 0 {
			ignored = append(ignored, "require")
		}
		if len(a.Forward.ClaimsToHeaders) > 0 || a.Forward.StripToken {
			ignored = append(ignored, "forward")
		}
		if len(ignored) > 0 {
			v.warnf(ab+".mode", "mode off checks no token, so auth.%s; remove %s, or use mode: optional", strings.Join(ignored, " and auth.")+plural(len(ignored), " is ignored", " are ignored"), plural(len(ignored), "it", "them"))
		}
	}

	rb := ab + ".require"
	v.scopes(rb+".scopes", req.Scopes)
	for k := range req.Claims {
		v.claimRule(fmt.Sprintf("%s.claims[%d]", rb, k), &req.Claims[k])
	}
	for b := range req.AnyOf {
		blk := &req.AnyOf[b]
		bb := fmt.Sprintf("%s.any_of[%d]", rb, b)
		if len(blk.Scopes) == 0 && len(blk.Claims) == 0 {
			v.errorf(bb, "empty block; an any_of block needs scopes or claims, an empty one would always hold")
		}
		v.scopes(bb+".scopes", blk.Scopes)
		for k := range blk.Claims {
			v.claimRule(fmt.Sprintf("%s.claims[%d]", bb, k), &blk.Claims[k])
		}
	}
	v.forward(ab+".forward", &a.Forward)
	switch a.CORSPreflight {
	case CORSPreflightCheck, "":
	case CORSPreflightPass:
		if mode == ModeOff {
			v.warnf(ab+".cors_preflight", "pass has no effect with mode off, which checks no token at all; remove it")
		}
	default:
		v.errorf(ab+".cors_preflight", "unknown policy %q; use check (a preflight needs a token like any request) or pass (a tokenless preflight is forwarded unchecked)", a.CORSPreflight)
	}
}

// allSet says that several mutually exclusive keys are set.
func allSet(keys []string) string {
	if len(keys) == 2 {
		return keys[0] + " and " + keys[1] + " are both set"
	}
	return strings.Join(keys[:len(keys)-1], ", ") + " and " + keys[len(keys)-1] + " are all set"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (v *validator) scopes(path string, scopes []string) {
	for k, s := range scopes {
		p := fmt.Sprintf("%s[%d]", path, k)
		switch {
		case s == "":
			v.errorf(p, "empty; a scope is a non-empty string such as orders:read")
		case strings.ContainsAny(s, " \t\r\n"):
			v.errorf(p, "%q contains whitespace; list each scope separately (the scope claim separates scopes with spaces)", s)
		case !isScopeToken(s):
			v.errorf(p, "%q is not an RFC 6749 scope token; use printable ASCII other than space, \" and \\", s)
		}
	}
}

func (v *validator) claimRule(cb string, c *ClaimRule) {
	if c.Claim == "" {
		v.errorf(cb+".claim", "missing; name the claim as a dotted path (realm_access.roles) or a JSON Pointer (/https:~1~1example.com~1groups)")
	} else if msg := claimPathProblem(c.Claim); msg != "" {
		v.errorf(cb+".claim", "%s", msg)
	}
	var ops []string
	if c.Equals != nil {
		ops = append(ops, "equals")
	}
	if c.OneOf != nil {
		ops = append(ops, "one_of")
	}
	if c.ContainsAny != nil {
		ops = append(ops, "contains_any")
	}
	if c.ContainsAll != nil {
		ops = append(ops, "contains_all")
	}
	if c.Matches != "" {
		ops = append(ops, "matches")
	}
	if c.Exists != nil {
		ops = append(ops, "exists")
	}
	switch len(ops) {
	case 0:
		v.errorf(cb, "no operator; set exactly one of equals, one_of, contains_any, contains_all, matches or exists")
	case 1:
	default:
		v.errorf(cb, "%s; set exactly one operator per rule (use one rule per condition)", allSet(ops))
	}
	if c.Equals != nil && !isScalarValue(c.Equals) {
		v.errorf(cb+".equals", "must be a string, number or boolean (quote dates); use contains_any or contains_all for lists")
	}
	v.valueList(cb+".one_of", c.OneOf)
	v.valueList(cb+".contains_any", c.ContainsAny)
	v.valueList(cb+".contains_all", c.ContainsAll)
	if c.Matches != "" {
		if _, err := regexp.Compile(c.Matches); err != nil {
			v.errorf(cb+".matches", "invalid regexp: %s; write RE2 syntax, it is anchored at both ends", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		} else if v.apply {
			c.re = regexp.MustCompile("^(?:" + c.Matches + ")$")
		}
	}
}

func (v *validator) valueList(path string, list []any) {
	if list == nil {
		return
	}
	if len(list) == 0 {
		v.errorf(path, "empty list; list at least one value")
	}
	for n, x := range list {
		if !isScalarValue(x) {
			v.errorf(fmt.Sprintf("%s[%d]", path, n), "must be a string, number or boolean (quote dates)")
		}
	}
}

// isScalarValue reports whether a decoded YAML value is a string, number
// or boolean, the values a claim can be compared with. NaN and infinities
// (YAML .nan, .inf) never equal a JSON number, so they are refused.
func isScalarValue(x any) bool {
	switch f := x.(type) {
	case string, bool, int, int64, uint64:
		return true
	case float64:
		return !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return false
}

// isScopeToken reports whether s is an RFC 6749 §3.3 scope-token
// (%x21 / %x23-5B / %x5D-7E), so it can be named in WWW-Authenticate.
func isScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == 0x21 || c >= 0x23 && c <= 0x5B || c >= 0x5D && c <= 0x7E) {
			return false
		}
	}
	return s != ""
}

// claimPathProblem says what is wrong with a claim path, or "". A path is
// a JSON Pointer when it starts with "/" (RFC 6901: "~" only as ~0 or ~1),
// otherwise a dotted path with non-empty segments.
func claimPathProblem(p string) string {
	if strings.HasPrefix(p, "/") {
		for i := 0; i < len(p); i++ {
			if p[i] == '~' && (i+1 >= len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
				return fmt.Sprintf("%q is not a valid JSON Pointer: \"~\" must be followed by 0 or 1 (~0 is \"~\", ~1 is \"/\")", p)
			}
		}
		if p == "/" || strings.Contains(p, "//") || strings.HasSuffix(p, "/") {
			return fmt.Sprintf("%q has an empty JSON Pointer segment; escape a \"/\" inside a claim name as ~1, e.g. /https:~1~1example.com~1groups", p)
		}
		return ""
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return fmt.Sprintf("%q has an empty segment; write a dotted path such as realm_access.roles, or a JSON Pointer starting with \"/\" for names that contain dots", p)
		}
	}
	return ""
}

// reservedHeaders are set or consumed by the gateway, carry credentials,
// or are hop-by-hop; a claim must never set them.
var reservedHeaders = []string{"host", "authorization", "cookie", "connection", "content-length", "transfer-encoding", "te", "trailer", "upgrade", "keep-alive", "forwarded", "x-request-id", "x-real-ip"}

func isReservedHeader(h string) bool {
	l := strings.ToLower(h)
	return slices.Contains(reservedHeaders, l) || strings.HasPrefix(l, "proxy-") || strings.HasPrefix(l, "x-forwarded-")
}

func (v *validator) forward(fb string, f *Forward) {
	claims := make([]string, 0, len(f.ClaimsToHeaders))
	for c := range f.ClaimsToHeaders {
		claims = append(claims, c)
	}
	sort.Strings(claims)
	headers := map[string]string{}
	for _, claim := range claims {
		h := f.ClaimsToHeaders[claim]
		path := fb + ".claims_to_headers" + mapKeyPath(claim)
		if msg := claimPathProblem(claim); msg != "" || claim == "" {
			if claim == "" {
				msg = "empty claim path; name the claim to forward"
			}
			v.errorf(path, "%s", msg)
		}
		switch prev, dup := headers[strings.ToLower(h)]; {
		case h == "":
			v.errorf(path, "empty header name; map the claim to a header such as X-User-Id")
		case !isToken(h):
			v.errorf(path, "%q is not a valid header name; use letters, digits and - such as X-User-Id", h)
		case isReservedHeader(h):
			v.errorf(path, "%s is reserved: the gateway sets it itself, or it carries credentials or connection handling; pick another name such as X-User-Id", h)
		case dup:
			v.errorf(path, "header %s is already set from claim %q; each header carries one claim", h, prev)
		default:
			headers[strings.ToLower(h)] = claim
		}
	}
}

// shadowed warns about routes that can never match: an earlier route has
// the same host and path and handles every method this one does.
func (v *validator) shadowed() {
	rs := v.cfg.Routes
	for i := range rs {
		b := rs[i].Match
		if b.Path == "" && b.PathPrefix == "" {
			continue
		}
		for j := range i {
			a := rs[j].Match
			if strings.EqualFold(a.Host, b.Host) && a.Path == b.Path && a.PathPrefix == b.PathPrefix && methodsCover(a.Methods, b.Methods) {
				v.warnf(fmt.Sprintf("routes[%d]", i), "route %q can never match: route %q (routes[%d]) comes first with the same host and path and handles all its methods; remove one or change its match", rs[i].Name, rs[j].Name, j)
				break
			}
		}
	}
}

// methodsCover reports whether method list a handles every method of b;
// an empty list means every method.
func methodsCover(a, b []string) bool {
	if len(a) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	for _, m := range b {
		if !slices.ContainsFunc(a, func(x string) bool { return strings.EqualFold(x, m) }) {
			return false
		}
	}
	return true
}

func (v *validator) audit() {
	a := &v.cfg.Audit
	switch a.Output {
	case "", "stdout":
		if a.File != "" {
			v.warnf("audit.file", "is ignored because audit.output is stdout; set output: file to write to it")
		}
	case "file":
		if a.File == "" {
			v.errorf("audit.file", "missing; output: file needs the audit log path")
		}
	default:
		v.errorf("audit.output", "unknown output %q; use stdout or file", a.Output)
	}
	switch a.OnWriteError {
	case "", "block", "drop":
	default:
		v.errorf("audit.on_write_error", "unknown value %q; use block (never drop a record) or drop (count every dropped record)", a.OnWriteError)
	}
	v.notNegativeInt("audit.rotate.max_size_mb", a.Rotate.MaxSizeMB, DefaultAuditMaxSizeMB)
	v.notNegativeInt("audit.rotate.max_backups", a.Rotate.MaxBackups, DefaultAuditMaxBackups)
	for k, c := range a.Claims {
		path := fmt.Sprintf("audit.claims[%d]", k)
		if c == "" {
			v.errorf(path, "empty; name a claim such as sub")
		} else if msg := claimPathProblem(c); msg != "" {
			v.errorf(path, "%s", msg)
		}
	}
	if a.Chain != nil {
		if a.Chain.KeyFile == "" {
			v.errorf("audit.chain.key_file", "missing; the chain needs a file of at least %d random bytes (e.g. openssl rand 32 > audit-chain.key), or remove audit.chain", MinHMACSecretBytes)
		} else {
			v.chainKey(a.Chain)
		}
	}
}
