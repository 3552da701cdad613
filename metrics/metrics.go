// Package metrics defines jwtgate's Prometheus series (SPEC §7) on a
// registry of its own, so tests and reloads never touch global state.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every jwtgate series. Its methods are safe for concurrent use.
type Metrics struct {
	// Registry holds jwtgate's series plus Go runtime and process metrics.
	Registry *prometheus.Registry

	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	upstreamDuration *prometheus.HistogramVec
	jwksRefresh      *prometheus.CounterVec
	jwksKeys         *prometheus.GaugeVec
	jwksAge          *prometheus.GaugeVec
	configReloads    *prometheus.CounterVec
	auditSource      atomic.Pointer[func() (written, dropped uint64)]
	auditWaitSource  atomic.Pointer[func() (waits, nanos uint64)]
	cacheHits        prometheus.Counter
	cacheMisses      prometheus.Counter
	suspicious       *prometheus.CounterVec
}

type reqKey struct {
	decision, reason string
	code             int
}

// New registers every series on a new registry.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtgate_requests_total", Help: "Requests by route, decision, reason and HTTP status code.",
	}, []string{"route", "decision", "reason", "code"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jwtgate_request_duration_seconds", Help: "Whole request duration through the gateway.", Buckets: buckets,
	}, []string{"route"})
	m.upstreamDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jwtgate_upstream_duration_seconds", Help: "Time from forwarding to the end of the upstream response.", Buckets: buckets,
	}, []string{"route"})
	m.jwksRefresh = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtgate_jwks_refresh_total", Help: "JWKS fetch attempts by provider and result (ok, error).",
	}, []string{"provider", "result"})
	m.jwksKeys = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jwtgate_jwks_keys", Help: "Usable verification keys per provider.",
	}, []string{"provider"})
	m.jwksAge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jwtgate_jwks_age_seconds", Help: "Seconds since the provider's last good key fetch.",
	}, []string{"provider"})
	m.configReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtgate_config_reloads_total", Help: "Config reload attempts by result (ok, error).",
	}, []string{"result"})
	auditRecords := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "jwtgate_audit_records_total", Help: "Audit records written.",
	}, func() float64 { w, _ := m.audit(); return float64(w) })
	auditDropped := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "jwtgate_audit_dropped_total", Help: "Audit records dropped (on_write_error: drop only).",
	}, func() float64 { _, d := m.audit(); return float64(d) })
	auditWaits := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "jwtgate_audit_waits_total", Help: "Audit records whose caller waited for the sink (on_write_error: block).",
	}, func() float64 { n, _ := m.auditWait(); return float64(n) })
	auditWaitSeconds := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "jwtgate_audit_wait_seconds_total", Help: "Total time requests waited for the audit sink (on_write_error: block).",
	}, func() float64 { _, ns := m.auditWait(); return float64(ns) / 1e9 })
	m.cacheHits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "jwtgate_token_cache_hits_total", Help: "Token checks answered from the verified-token cache.",
	})
	m.cacheMisses = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "jwtgate_token_cache_misses_total", Help: "Token checks that needed a signature verification.",
	})
	m.suspicious = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtgate_suspicious_total", Help: "Requests that look like attacks, by kind (the audit reason or identity_header_spoofed).",
	}, []string{"kind"})
	m.Registry.MustRegister(m.requests, m.requestDuration, m.upstreamDuration, m.jwksRefresh, m.jwksKeys,
		m.jwksAge, m.configReloads, auditRecords, auditDropped, auditWaits, auditWaitSeconds, m.cacheHits, m.cacheMisses, m.suspicious,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// RouteSeries holds one route's series so the request path does not look
// labels up per request: the histograms are resolved once, the counters
// once per (decision, reason, code).
type RouteSeries struct {
	m        *Metrics
	route    string
	request  prometheus.Observer
	upstream prometheus.Observer
	counts   sync.Map // reqKey → prometheus.Counter
}

// Route returns the series of one route; build it once per route.
func (m *Metrics) Route(route string) *RouteSeries {
	return &RouteSeries{m: m, route: route, request: m.requestDuration.WithLabelValues(route), upstream: m.upstreamDuration.WithLabelValues(route)}
}

// Request counts one request of the route and observes its duration.
func (rs *RouteSeries) Request(decision, reason string, code int, seconds float64) {
	k := reqKey{decision: decision, reason: reason, code: code}
	c, ok := rs.counts.Load(k)
	if !ok {
		c, _ = rs.counts.LoadOrStore(k, rs.m.requests.WithLabelValues(rs.route, decision, reason, strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
	rs.request.Observe(seconds)
}

// Upstream observes the upstream part of a request of the route.
func (rs *RouteSeries) Upstream(seconds float64) { rs.upstream.Observe(seconds) }

// JWKSRefresh counts a key fetch attempt and sets the provider's key count.
func (m *Metrics) JWKSRefresh(provider, result string, keys int) {
	m.jwksRefresh.WithLabelValues(provider, result).Inc()
	m.jwksKeys.WithLabelValues(provider).Set(float64(keys))
}

// JWKSState sets a provider's key count and key age in seconds.
func (m *Metrics) JWKSState(provider string, keys int, ageSeconds float64) {
	m.jwksKeys.WithLabelValues(provider).Set(float64(keys))
	m.jwksAge.WithLabelValues(provider).Set(ageSeconds)
}

// ForgetProvider removes a retired provider's gauges.
func (m *Metrics) ForgetProvider(provider string) {
	m.jwksKeys.DeleteLabelValues(provider)
	m.jwksAge.DeleteLabelValues(provider)
}

// ConfigReload counts a reload attempt; result is "ok" or "error".
func (m *Metrics) ConfigReload(result string) { m.configReloads.WithLabelValues(result).Inc() }

// SetAuditSource names the function that reports the audit writer's
// running totals of written and dropped records.
func (m *Metrics) SetAuditSource(f func() (written, dropped uint64)) { m.auditSource.Store(&f) }

// SetAuditWaitSource names the function that reports how many audit
// records waited for the sink and for how long in total (nanoseconds).
func (m *Metrics) SetAuditWaitSource(f func() (waits, nanos uint64)) { m.auditWaitSource.Store(&f) }

func (m *Metrics) auditWait() (waits, nanos uint64) {
	if f := m.auditWaitSource.Load(); f != nil {
		return (*f)()
	}
	return 0, 0
}

func (m *Metrics) audit() (written, dropped uint64) {
	if f := m.auditSource.Load(); f != nil {
		return (*f)()
	}
	return 0, 0
}

// CacheHit counts a verified-token cache hit.
func (m *Metrics) CacheHit() { m.cacheHits.Inc() }

// CacheMiss counts a verified-token cache miss.
func (m *Metrics) CacheMiss() { m.cacheMisses.Inc() }

// Suspicious counts a request that looks like an attack.
func (m *Metrics) Suspicious(kind string) { m.suspicious.WithLabelValues(kind).Inc() }

// Touch creates the label-less and zero-valued series so they are visible
// on /metrics before the first event (SPEC §7 lists them all).
func (m *Metrics) Touch() {
	m.configReloads.WithLabelValues("ok")
	m.configReloads.WithLabelValues("error")
}
