package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtgate/jwtgate/audit"
	"github.com/jwtgate/jwtgate/config"
	"github.com/jwtgate/jwtgate/jwks"
	"github.com/jwtgate/jwtgate/route"
)

// Handler serves requests with the current Gateway. Swap replaces it
// atomically; requests in flight finish on the Gateway they started with.
type Handler struct {
	cur      atomic.Pointer[Gateway]
	idPrefix string
	idSeq    atomic.Uint64
}

// NewHandler returns a Handler serving g.
func NewHandler(g *Gateway) *Handler {
	var b [6]byte
	_, _ = rand.Read(b[:])
	h := &Handler{idPrefix: hex.EncodeToString(b[:])}
	h.cur.Store(g)
	return h
}

// Current returns the Gateway in service.
func (h *Handler) Current() *Gateway { return h.cur.Load() }

// Swap puts g in service and returns the previous Gateway.
func (h *Handler) Swap(g *Gateway) *Gateway { return h.cur.Swap(g) }

// KeysChanged evicts cached verifications made with keys a JWKS refresh
// removed. Wire it to every provider's refresh events.
func (h *Handler) KeysChanged(ev jwks.RefreshEvent) {
	g := h.cur.Load()
	if g == nil || g.cache == nil {
		return
	}
	for _, k := range ev.Removed {
		g.cache.evictKey(ev.Provider, k.Thumbprint)
	}
}

// exchange is the state of one request, carried through the reverse proxy
// in the request context.
type exchange struct {
	g       *Gateway
	rt      *routeRT
	rec     audit.Record
	forward string // escaped path to send upstream
	v       *verified
	from    int // token source index, -1 when none
	peer    netip.Addr
	peerStr string // the direct peer's address, for X-Forwarded-For
	trusted bool
	upStart time.Time
	upErr   *denial
	body    *countingBody
	spoofed bool
	// Storage that lives in the pooled exchange instead of being
	// allocated per request.
	sw       statusWriter
	claimBuf [8]audit.Claim
	// upgraded: the upstream answered 101 and the connection was handed
	// over (WebSocket); nothing passed through the statusWriter.
	upgraded bool
}

type ctxKey struct{}

var exchangePool = sync.Pool{New: func() any { return new(exchange) }}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := h.cur.Load()
	x := exchangePool.Get().(*exchange)
	*x = exchange{g: g, from: -1}
	defer exchangePool.Put(x)
	start := g.deps.Now()
	x.sw = statusWriter{ResponseWriter: w}
	sw := &x.sw

	rec := &x.rec
	rec.Time = start
	rec.ConfigVersion = g.cfg.Version
	rec.Method = r.Method
	rec.Host = r.Host
	rec.UserAgent = r.UserAgent()
	rawPath := requestPath(r)
	rec.Path = rawPath
	x.peer = peerAddr(r.RemoteAddr)
	x.trusted = g.isTrusted(x.peer)
	rec.ClientIP = g.clientIP(r, x.peer, x.trusted)
	x.peerStr = rec.ClientIP
	if x.trusted {
		x.peerStr = x.peer.String()
	}
	rec.RequestID = h.requestID(r, x.trusted)
	if r.Body != nil && r.Body != http.NoBody {
		// Allocated per request, not pooled with the exchange: the upstream
		// transport may still read the body after the handler returned,
		// and must never reach the next request's body through it.
		var rc io.ReadCloser = r.Body
		if !isGRPC(r) { // gRPC streams may legitimately idle; they have their own deadlines
			rc = g.idleBody(w, r.Body) // server.body_idle_timeout: see body.go
		}
		x.body = &countingBody{rc: rc}
		r.Body = x.body
	}
	x.spoofed = g.hasIdentityHeader(r.Header)
	if r.ProtoMajor == 1 && offersH2C(r.Header) {
		// The gateway never switches to h2c by upgrade, and forwarding the
		// offer would let a backend that does switch the connection to
		// HTTP/2 and take every later request on it unchecked (h2c
		// smuggling). The request is served as ordinary HTTP/1.1.
		r.Header.Del("Upgrade")
		r.Header.Del("Http2-Settings")
	}

	d, aborted := h.serveAborting(sw, r, x)
	if d != nil {
		if d.Status == 499 || r.Context().Err() != nil && d.Status >= 500 {
			d = deny(audit.ReasonClientClosed, d.Err)
		}
		if !sw.wroteHeader {
			if gs := d.write(sw, r, rec.RequestID); gs >= 0 {
				rec.GRPCStatus, rec.HasGRPCStatus = gs, true
			}
		}
		rec.Status = d.Status
		if !rec.DryRun || rec.Reason == "" {
			rec.Reason = d.Reason // in dry_run the would-be denial stays
		}
		if rec.Decision == "" {
			rec.Decision = audit.DecisionDeny
		}
	} else {
		rec.Status = sw.status
		if rec.Status == 0 && x.upgraded {
			rec.Status = http.StatusSwitchingProtocols
		} else if rec.Status == 0 {
			rec.Status = http.StatusOK
		}
	}
	rec.Suspicious = rec.Reason.Suspicious() || x.spoofed
	end := g.deps.Now()
	rec.Duration = end.Sub(start)
	rec.BytesOut = sw.bytes
	if x.body != nil {
		rec.BytesIn = x.body.n
	}
	g.deps.Audit.Request(rec)
	if m := g.deps.Metrics; m != nil {
		series := g.noRoute
		if x.rt != nil {
			series = x.rt.series
		}
		series.Request(string(rec.Decision), string(rec.Reason), rec.Status, rec.Duration.Seconds())
		if !x.upStart.IsZero() {
			series.Upstream(end.Sub(x.upStart).Seconds())
		}
		if rec.Suspicious {
			kind := string(rec.Reason)
			if x.spoofed {
				kind = "identity_header_spoofed"
			}
			m.Suspicious(kind)
		}
	}
	if aborted || x.body.bodyIdled() { // a stalled body gets no answer, only a dropped connection
		panic(http.ErrAbortHandler) // recorded; now let the server drop the connection
	}
}

// serveAborting runs serve. ReverseProxy aborts with http.ErrAbortHandler
// when an answer breaks after its header was sent (the upstream hung up
// mid-body, or the client went away mid-stream); that becomes a denial
// here so the request is still recorded, and aborted tells ServeHTTP to
// re-panic afterwards. Any other panic passes through.
func (h *Handler) serveAborting(w *statusWriter, r *http.Request, x *exchange) (d *denial, aborted bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				panic(p)
			}
			reason := audit.ReasonUpstreamUnreachable
			if w.failed || r.Context().Err() != nil {
				reason = audit.ReasonClientClosed
			}
			d, aborted = deny(reason, errors.New("answer aborted mid-body")), true
		}
	}()
	return h.serve(w, r, x), false
}

// serve runs SPEC §3 for one request. It returns a denial to answer, or
// nil when the request was forwarded (the upstream's answer is written).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, x *exchange) *denial {
	g, rec := x.g, &x.rec
	// §3.1 path and route.
	p, err := route.CleanPath(rec.Path, g.pathOpts) // the path as received, set in ServeHTTP
	if err != nil {
		return deny(audit.ReasonPathRejected, err)
	}
	res := g.table.Match(r.Host, r.Method, p)
	switch res.Status {
	case http.StatusNotFound:
		return deny(audit.ReasonNoRoute, nil)
	case http.StatusMethodNotAllowed:
		d := deny(audit.ReasonMethodNotAllowed, nil)
		d.Allow = strings.Join(res.Allow, ", ")
		return d
	}
	rt := g.routes[res.Index]
	x.rt = rt
	x.forward = res.Forward
	rec.Route = rt.name
	rec.Upstream = rt.cfg.Upstream.URL
	if max := rt.cfg.MaxBodyBytes; max > 0 {
		if r.ContentLength > max {
			return deny(ReasonBodyTooLarge, nil)
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
	}

	if rt.mode == config.ModeOff {
		rec.Decision = audit.DecisionPublic
		return g.forward(w, r, x)
	}
	dry := rt.mode == config.ModeDryRun
	rec.DryRun = dry

	// §3.2 token.
	raw, from, ambiguous := extract(r, rt.sources)
	x.from = from
	if ambiguous {
		return g.refuse(w, r, x, &tokenError{reason: audit.ReasonTokenMalformed, err: errAmbiguousToken})
	}
	if raw == "" {
		// auth.cors_preflight: pass. A browser never attaches credentials
		// to a CORS preflight (OPTIONS with Origin and
		// Access-Control-Request-Method), so a tokenless one is forwarded
		// unchecked; nothing was refused, so the record has no reason. A
		// preflight that carries a token is not a browser's and is checked
		// below like any request.
		if rt.corsPass && r.Method == http.MethodOptions &&
			r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			rec.Decision = audit.DecisionAnonymous
			return g.forward(w, r, x)
		}
		switch rt.mode {
		case config.ModeOptional:
			rec.Decision = audit.DecisionAnonymous
			return g.forward(w, r, x)
		case config.ModeDryRun:
			rec.Decision = audit.DecisionAnonymous
			rec.Reason = audit.ReasonTokenMissing
			return g.forward(w, r, x)
		}
		return deny(audit.ReasonTokenMissing, nil)
	}
	digest := digestOf(raw)
	rec.TokenID = tokenID(&digest)

	// §3.3–3.6 token checks.
	v, terr := g.check(r.Context(), rt, raw, &digest)
	if terr != nil {
		if terr.reason == audit.ReasonTokenExpired || terr.reason == audit.ReasonTokenNotYetValid {
			g.cache.evict(&digest)
		}
		return g.refuse(w, r, x, terr)
	}
	x.v = v
	g.fillIdentity(rec, v, x.claimBuf[:0])

	// §3.7 requirements.
	if rt.req != nil {
		res := rt.req.Eval(v.claims, v.scopes)
		if !res.OK {
			d := deny(audit.Reason(res.Reason), nil)
			d.Scopes = res.MissingScopes
			if dry {
				rec.Decision = audit.DecisionAllow
				rec.Reason = d.Reason
				return g.forward(w, r, x)
			}
			rec.Decision = audit.DecisionDeny
			return d
		}
	}
	rec.Decision = audit.DecisionAllow
	return g.forward(w, r, x)
}

// refuse answers a failed token check, or, in dry_run, records it and
// forwards anonymously.
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, x *exchange, te *tokenError) *denial {
	rec := &x.rec
	rec.Alg, rec.Kid, rec.Iss, rec.Sub = te.alg, te.kid, te.iss, te.sub
	if te.p != nil {
		rec.Provider = te.p.name
	}
	d := deny(te.reason, te.err)
	g.deps.Logger.Debug().Str("component", "proxy").Str("route", x.rt.name).Str("reason", string(te.reason)).AnErr("cause", te.err).Str("request_id", rec.RequestID).Msg("token refused")
	if x.rt.mode == config.ModeDryRun {
		rec.Decision = audit.DecisionAnonymous
		rec.Reason = d.Reason
		return g.forward(w, r, x)
	}
	return d
}

// fillIdentity copies the verified token's identity into the record.
func (g *Gateway) fillIdentity(rec *audit.Record, v *verified, buf []audit.Claim) {
	rec.Provider = v.p.name
	rec.Iss, rec.Sub, rec.Kid, rec.Alg, rec.JTI = v.iss, v.sub, v.kid, v.alg, v.jti
	rec.KeyThumbprint = v.thumb
	if len(g.auditClaims) > 0 {
		rec.Claims = buf
		for _, c := range g.auditClaims {
			if val, ok := c.path.Lookup(v.claims); ok {
				rec.Claims = append(rec.Claims, audit.Claim{Name: c.name, Value: val})
			}
		}
	}
}

// requestPath returns the path as the client sent it (escaped form,
// without the query), also for absolute-form request targets.
func requestPath(r *http.Request) string {
	u := r.RequestURI
	if u == "" || u[0] != '/' {
		return r.URL.EscapedPath()
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func (g *Gateway) isTrusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range g.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the peer address, or, when the peer is a trusted proxy, the
// right-most address in X-Forwarded-For that is not itself trusted.
func (g *Gateway) clientIP(r *http.Request, peer netip.Addr, trusted bool) string {
	if trusted {
		vals := r.Header.Values("X-Forwarded-For")
		for i := len(vals) - 1; i >= 0; i-- {
			parts := strings.Split(vals[i], ",")
			for j := len(parts) - 1; j >= 0; j-- {
				a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
				if err != nil {
					return peer.String()
				}
				a = a.Unmap()
				if !g.isTrusted(a) {
					return a.String()
				}
			}
		}
	}
	if !peer.IsValid() {
		return ""
	}
	return peer.String()
}

// requestID keeps a trusted proxy's X-Request-Id when it is a plain token,
// and otherwise makes one: a random per-process prefix and a counter.
func (h *Handler) requestID(r *http.Request, trusted bool) string {
	if trusted {
		if v := r.Header.Get("X-Request-Id"); validRequestID(v) {
			return v
		}
	}
	n := h.idSeq.Add(1)
	var b [12 + 1 + 16]byte
	copy(b[:], h.idPrefix)
	b[12] = '-'
	s := strconv.AppendUint(b[:13], n, 16)
	return string(s)
}

func validRequestID(v string) bool {
	if v == "" || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// offersH2C reports whether the request offers an upgrade to h2c.
func offersH2C(h http.Header) bool {
	for _, v := range h["Upgrade"] {
		for p := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "h2c") {
				return true
			}
		}
	}
	return false
}

// hasIdentityHeader reports whether the client sent a header the gateway
// sets from claims, in any spelling.
func (g *Gateway) hasIdentityHeader(hdr http.Header) bool {
	if len(g.identity) == 0 {
		return false
	}
	for k := range hdr {
		if g.identity[normalizeHeaderName(k)] {
			return true
		}
	}
	return false
}

// statusWriter records the status and size of the response.
type statusWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	failed      bool // a write to the client failed: it went away
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	if err != nil {
		w.failed = true
	}
	return n, err
}

// Flush passes flushes through (server-sent events, streaming).
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach Hijack (WebSocket upgrades).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts request body bytes read by the upstream copy.
type countingBody struct {
	rc interface {
		Read([]byte) (int, error)
		Close() error
	}
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

var _ http.Handler = (*Handler)(nil)

// withExchange stores x in the request context for the proxy hooks.
func withExchange(r *http.Request, x *exchange) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), ctxKey{}, x))
}

func exchangeOf(r *http.Request) *exchange {
	x, _ := r.Context().Value(ctxKey{}).(*exchange)
	return x
}
