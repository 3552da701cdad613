package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestEverySpecSeriesExposed pins SPEC §7: after one event of each kind,
// every series is on /metrics with its labels, plus Go runtime metrics.
func TestEverySpecSeriesExposed(t *testing.T) {
	m := New()
	m.Touch()
	rs := m.Route("orders")
	rs.Request("deny", "token_missing", 401, 0.002)
	rs.Request("allow", "", 200, 0.004)
	rs.Upstream(0.003)
	m.JWKSRefresh("corp", "ok", 3)
	m.JWKSState("corp", 3, 12)
	m.CacheHit()
	m.CacheMiss()
	m.Suspicious("signature_invalid")
	m.SetAuditSource(func() (uint64, uint64) { return 7, 1 })
	m.SetAuditWaitSource(func() (uint64, uint64) { return 3, 1500000000 })

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for _, want := range []string{
		`jwtgate_requests_total{code="401",decision="deny",reason="token_missing",route="orders"} 1`,
		`jwtgate_requests_total{code="200",decision="allow",reason="",route="orders"} 1`,
		`jwtgate_request_duration_seconds_bucket{route="orders",le=`,
		`jwtgate_upstream_duration_seconds_count{route="orders"} 1`,
		`jwtgate_jwks_refresh_total{provider="corp",result="ok"} 1`,
		`jwtgate_jwks_keys{provider="corp"} 3`,
		`jwtgate_jwks_age_seconds{provider="corp"} 12`,
		`jwtgate_config_reloads_total{result="error"} 0`,
		`jwtgate_audit_records_total 7`,
		`jwtgate_audit_dropped_total 1`,
		`jwtgate_audit_waits_total 3`,
		`jwtgate_audit_wait_seconds_total 1.5`,
		`jwtgate_token_cache_hits_total 1`,
		`jwtgate_token_cache_misses_total 1`,
		`jwtgate_suspicious_total{kind="signature_invalid"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestForgetProviderRemovesGauges: a provider retired by a reload leaves
// no stale key gauges behind.
func TestForgetProviderRemovesGauges(t *testing.T) {
	m := New()
	m.JWKSState("old", 2, 5)
	m.ForgetProvider("old")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if strings.Contains(rec.Body.String(), `provider="old"`) {
		t.Error("gauges of a forgotten provider remain")
	}
}

// BenchmarkRouteRequest is the per-request metrics cost on the hot path.
func BenchmarkRouteRequest(b *testing.B) {
	rs := New().Route("orders")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rs.Request("allow", "", 200, 0.001)
	}
}
