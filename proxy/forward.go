package proxy

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	"github.com/jwtgate/jwtgate/audit"
	"github.com/jwtgate/jwtgate/policy"
)

// Headers the gateway sets itself. Client copies are always removed: a
// client must not be able to choose its own request id or forwarding chain
// unless it is a trusted proxy (SPEC §3.8, §5).
var forwardingHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Real-Ip", "X-Request-Id",
	// Method and path overrides: frameworks that honour them (Symfony,
	// IIS URL Rewrite, method-override middleware) would run a different
	// method or path than the one the gateway routed and authorised.
	"X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "X-Original-Url", "X-Rewrite-Url", "X-Original-Method"}

// Shared, never-modified header values: setting them costs no allocation.
var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

// bufferPool lends ReverseProxy its copy buffers (32 KiB), saving an
// allocation per response.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(v []byte) { b.p.Put(&v) }

var sharedBuffers = &bufferPool{p: sync.Pool{New: func() any { v := make([]byte, 32<<10); return &v }}}

// newReverseProxy builds the route's ReverseProxy. Rewrite (not Director)
// runs after the hop-by-hop headers, including those a client named in
// Connection, were removed, so nothing a client sends can strip a header
// the gateway sets here.
func (g *Gateway) newReverseProxy(rt *routeRT, h2c bool) *httputil.ReverseProxy {
	var tr http.RoundTripper = g.deps.Transport
	if tr == nil {
		tr = g.transport(rt.cfg.Upstream.Timeout, h2c)
	}
	return &httputil.ReverseProxy{
		Rewrite:       g.rewrite,
		Transport:     tr,
		BufferPool:    sharedBuffers,
		FlushInterval: 0, // text/event-stream and unknown-length bodies are flushed at once by ReverseProxy
		ErrorHandler:  g.upstreamError,
		ErrorLog:      log.New(g.deps.Logger.With().Str("component", "reverseproxy").Logger(), "", 0),
		// A 101 answer is written on the hijacked connection, past the
		// statusWriter; note it so the record says 101, not 200.
		ModifyResponse: func(res *http.Response) error {
			if res.StatusCode == http.StatusSwitchingProtocols {
				if x := exchangeOf(res.Request); x != nil {
					x.upgraded = true
				}
			}
			return nil
		},
	}
}

// forward sends the request upstream and returns nil, or the denial to
// answer when the upstream failed before a response was written.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, x *exchange) *denial {
	x.upStart = g.deps.Now()
	rp := x.rt.proxy
	if x.rt.grpcProxy != nil && r.ProtoMajor == 2 && isGRPC(r) {
		rp = x.rt.grpcProxy
	}
	rp.ServeHTTP(w, withExchange(r, x))
	return x.upErr
}

// rewrite builds the outbound request (SPEC §3.8).
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	x := exchangeOf(pr.In)
	rt, out := x.rt, pr.Out
	pr.SetURL(rt.target) // also clears Out.Host: the upstream sees its own host

	// The path forwarded is the path that was matched and authorised.
	fwd := x.forward
	if base := strings.TrimSuffix(rt.target.EscapedPath(), "/"); base != "" {
		fwd = base + fwd
	}
	// RawPath carries the exact bytes: Go's own escaping would rewrite
	// sub-delims such as "!" or "*" and the backend would then receive a
	// path other than the one that was authorised.
	out.URL.Path, out.URL.RawPath = fwd, fwd
	if strings.IndexByte(fwd, '%') >= 0 {
		if dec, err := url.PathUnescape(fwd); err == nil {
			out.URL.Path = dec
		}
	}

	h := out.Header
	for _, name := range forwardingHeaders {
		h.Del(name)
	}
	// Remove every client copy of an identity header, in any spelling
	// (X-User-Id, x_user_id, X-USER-ID).
	if len(g.identity) > 0 {
		for k := range h {
			if g.identity[normalizeHeaderName(k)] {
				delete(h, k)
			}
		}
	}
	prior := ""
	if x.trusted {
		prior = strings.Join(pr.In.Header.Values("X-Forwarded-For"), ", ")
	}
	client := x.peerStr
	if prior != "" {
		client = prior + ", " + client
	}
	h.Set("X-Forwarded-For", client)
	h.Set("X-Forwarded-Host", pr.In.Host)
	proto := "http"
	if pr.In.TLS != nil {
		proto = "https"
	}
	if x.trusted {
		if p := pr.In.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			proto = p
		}
	}
	if proto == "https" {
		h["X-Forwarded-Proto"] = protoHTTPS
	} else {
		h["X-Forwarded-Proto"] = protoHTTP
	}
	h.Set("X-Request-Id", x.rec.RequestID)

	if x.v != nil {
		for _, ch := range rt.headers {
			if val, ok := ch.path.Lookup(x.v.claims); ok {
				if s, ok := policy.HeaderValue(val); ok {
					h.Set(ch.header, s)
				}
			}
		}
	}
	if x.from >= 0 && rt.cfg.Auth.Forward.StripToken {
		stripToken(out, rt.sources[x.from])
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = nil // do not let Go add its own
	}
}

// upstreamError records a failed upstream exchange; ServeHTTP answers it.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeOf(r)
	var d *denial
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		d = deny(ReasonBodyTooLarge, err)
	case errors.Is(err, errBodyIdle):
		// The client stopped sending its body (server.body_idle_timeout):
		// the client's fault, not the upstream's, although the error is a
		// timeout.
		d = deny(audit.ReasonClientClosed, err)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		d = deny(audit.ReasonClientClosed, err)
	case isTimeout(err):
		d = deny(audit.ReasonUpstreamTimeout, err)
	default:
		d = deny(audit.ReasonUpstreamUnreachable, err)
	}
	ev := g.deps.Logger.Warn()
	if d.Reason == audit.ReasonClientClosed {
		ev = g.deps.Logger.Debug() // the client left: not an upstream problem
	}
	ev.Str("component", "proxy").Err(err).Str("route", x.rt.name).Str("request_id", x.rec.RequestID).Str("reason", string(d.Reason)).Msg("upstream failed")
	x.upErr = d
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
