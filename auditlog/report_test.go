package auditlog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func reportCmd(ctx context.Context, args []string, out, errb *bytes.Buffer) int {
	return ReportCommand(ctx, args, out, errb)
}

// TestSummarizeSynthetic pins the report's numbers on the conformance kit's
// records: totals by decision and reason, per route, top subjects, keys.
func TestSummarizeSynthetic(t *testing.T) {
	p, _ := writeSynthetic(t)
	s, err := Summarize([]string{p}, time.Now().Add(-24*time.Hour), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("Records", s.Records, 7)
	check("Requests", s.Requests, 7)
	check("ByDecision", s.ByDecision, map[string]int{"allow": 3, "deny": 3, "public": 1})
	check("ByReason", s.ByReason, map[string]int{"token_expired": 2, "token_missing": 1})
	check("Routes", s.Routes, []RouteCount{{"docs", 0, 0, 1}, {"orders", 3, 3, 0}})
	check("TopAllowed", s.TopAllowed, []Count{{"alice", 3}})
	check("TopDenied", s.TopDenied, []Count{{"bob", 2}, {"old", 1}})
	check("Keys", s.Keys, []KeyUse{{KID: "kid-a", Alg: "RS256", N: 3}})
	check("Chain", s.Chain.State, ChainNone)
	check("Bucket", s.Bucket, time.Hour) // the old record makes the span 2h+

	s, err = Summarize([]string{p}, time.Now().Add(-time.Hour), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	check("windowed Records", s.Records, 6)
	check("windowed ByDecision", s.ByDecision, map[string]int{"allow": 3, "deny": 2, "public": 1})
	check("windowed Bucket", s.Bucket, time.Minute)
	total := 0
	for _, b := range s.DenialBuckets {
		total += b.N
	}
	check("windowed denials in buckets", total, 2)

	s, err = Summarize([]string{p}, time.Time{}, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	check("until Records", s.Records, 1)
}

// TestSummarizeLifecycleAndVersions pins lifecycle counting (startups,
// reloads ok/failed, jwks refreshes ok/failed, rotations, drops) and
// config versions with first/last seen.
func TestSummarizeLifecycleAndVersions(t *testing.T) {
	ts := func(s int) string {
		return time.Date(2025, 3, 1, 10, 0, s, 0, time.UTC).Format("2006-01-02T15:04:05.000Z07:00")
	}
	lines := []string{
		line(t, kv{"time", ts(0)}, kv{"level", "info"}, kv{"event", "startup"}, kv{"config_version", "v1"}),
		line(t, kv{"time", ts(1)}, kv{"level", "info"}, kv{"event", "jwks_refresh"}, kv{"provider", "corp"}, kv{"result", "ok"}),
		line(t, kv{"time", ts(2)}, kv{"level", "warn"}, kv{"event", "jwks_refresh"}, kv{"provider", "corp"}, kv{"result", "failed"}),
		line(t, kv{"time", ts(3)}, kv{"level", "info"}, kv{"event", "request"}, kv{"decision", "allow"}, kv{"config_version", "v1"}),
		line(t, kv{"time", ts(4)}, kv{"level", "error"}, kv{"event", "config_reload"}, kv{"error", "routes[0]: bad"}),
		line(t, kv{"time", ts(5)}, kv{"level", "info"}, kv{"event", "config_reload"}, kv{"result", "ok"}, kv{"config_version", "v2"}),
		line(t, kv{"time", ts(6)}, kv{"level", "info"}, kv{"event", "request"}, kv{"decision", "allow"}, kv{"config_version", "v2"}),
		line(t, kv{"time", ts(7)}, kv{"level", "info"}, kv{"event", "audit_rotated"}),
		line(t, kv{"time", ts(8)}, kv{"level", "warn"}, kv{"event", "audit_dropped"}, kv{"dropped", 3}),
		line(t, kv{"time", ts(9)}, kv{"level", "info"}, kv{"event", "shutdown"}, kv{"config_version", "v2"}),
	}
	p := filepath.Join(t.TempDir(), "a.log")
	writeLines(t, p, lines)
	s, err := Summarize([]string{p}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := Lifecycle{Startups: 1, Shutdowns: 1, ReloadsOK: 1, ReloadsFailed: 1, JWKSRefreshesOK: 1, JWKSRefreshesFailed: 1, Rotations: 1, Dropped: 1}
	if s.Lifecycle != want {
		t.Errorf("Lifecycle = %+v, want %+v", s.Lifecycle, want)
	}
	v1 := Seen{Version: "v1", First: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), Last: time.Date(2025, 3, 1, 10, 0, 3, 0, time.UTC), N: 2}
	if len(s.ConfigVersions) != 2 || s.ConfigVersions[0] != v1 || s.ConfigVersions[1].Version != "v2" || s.ConfigVersions[1].N != 3 {
		t.Errorf("ConfigVersions = %+v, want v1 (%+v) then v2 ×3", s.ConfigVersions, v1)
	}
}

// suspiciousLog writes records exercising each suspicious-activity rule,
// each once just above and once just below its threshold.
func suspiciousLog(t *testing.T) string {
	t.Helper()
	base := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	var lines []string
	req := func(at time.Time, ip, decision, sub, reason, tokenID string, suspicious bool) {
		m := []kv{{"time", at.Format("2006-01-02T15:04:05.000Z07:00")}, {"level", "info"}, {"event", "request"},
			{"route", "orders"}, {"client_ip", ip}, {"decision", decision}}
		if reason != "" {
			m = append(m, kv{"reason", reason})
		}
		if suspicious {
			m = append(m, kv{"suspicious", true})
		}
		if sub != "" {
			m = append(m, kv{"sub", sub})
		}
		if tokenID != "" {
			m = append(m, kv{"token_id", tokenID})
		}
		lines = append(lines, line(t, m...))
	}
	// Burst: 12 denials from 203.0.113.9 within 33 s.
	for i := range 12 {
		req(base.Add(time.Duration(i*3)*time.Second), "203.0.113.9", "deny", "", "signature_invalid", "", true)
	}
	// Not a burst: 9 denials in 10 s, and 10 denials spread over 5 minutes.
	for i := range 9 {
		req(base.Add(time.Duration(i)*time.Second), "203.0.113.10", "deny", "", "token_missing", "", false)
	}
	for i := range 10 {
		req(base.Add(time.Duration(i*30)*time.Second), "203.0.113.11", "deny", "", "token_missing", "", false)
	}
	// Shared token: one token_id from three addresses; another from two.
	for i, ip := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.1"} {
		req(base.Add(time.Duration(i)*time.Minute), ip, "allow", "alice", "", "aaaaaaaaaaaaaaaa", false)
	}
	for i, ip := range []string{"198.51.100.4", "198.51.100.5"} {
		req(base.Add(time.Duration(i)*time.Minute), ip, "allow", "bob", "", "bbbbbbbbbbbbbbbb", false)
	}
	// Repeated denials: mallory 5 times, trudy 4 times.
	for i := range 5 {
		req(base.Add(time.Duration(i)*10*time.Minute), "192.0.2.50", "deny", "mallory", "scope_missing", "", false)
	}
	for i := range 4 {
		req(base.Add(time.Duration(i)*10*time.Minute), "192.0.2.51", "deny", "trudy", "requirement_failed", "", false)
	}
	// A spoofed identity header on an allowed request.
	req(base, "192.0.2.52", "allow", "eve", "", "", true)
	p := filepath.Join(t.TempDir(), "suspicious.log")
	writeLines(t, p, lines)
	return p
}

// TestSuspiciousActivity pins the report's attack detectors: a burst of ≥ 10
// denials from one address within a minute, a token_id seen from ≥ 3
// addresses (stolen token), a subject denied ≥ 5 times, and the count of
// suspicious records by reason — each with a near miss that must not fire.
func TestSuspiciousActivity(t *testing.T) {
	p := suspiciousLog(t)
	s, err := Summarize([]string{p}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sp := s.Suspicious
	if len(sp.Bursts) != 1 || sp.Bursts[0].ClientIP != "203.0.113.9" || sp.Bursts[0].Denials != 12 || sp.Bursts[0].PeakPerMin != 12 ||
		sp.Bursts[0].Reasons["signature_invalid"] != 12 {
		t.Errorf("Bursts = %+v, want one burst of 12 from 203.0.113.9", sp.Bursts)
	}
	if len(sp.SharedTokens) != 1 || sp.SharedTokens[0].TokenID != "aaaaaaaaaaaaaaaa" || len(sp.SharedTokens[0].ClientIPs) != 3 ||
		sp.SharedTokens[0].Requests != 4 || strings.Join(sp.SharedTokens[0].Subjects, ",") != "alice" {
		t.Errorf("SharedTokens = %+v, want token aaaa… from 3 addresses", sp.SharedTokens)
	}
	if fmt.Sprint(sp.RepeatDenied) != fmt.Sprint([]Count{{"mallory", 5}}) {
		t.Errorf("RepeatDenied = %v, want [{mallory 5}]", sp.RepeatDenied)
	}
	if sp.Total != 13 || sp.ByReason["signature_invalid"] != 12 || sp.ByReason[""] != 1 {
		t.Errorf("suspicious Total = %d ByReason = %v, want 13: signature_invalid 12, (none) 1", sp.Total, sp.ByReason)
	}
}

// TestFindBurstsSeparatesEpisodes pins that two bursts from one address an
// hour apart are two episodes, and overlapping windows merge into one.
func TestFindBurstsSeparatesEpisodes(t *testing.T) {
	base := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	var ds []denial
	for i := range 15 {
		ds = append(ds, denial{at: base.Add(time.Duration(i*5) * time.Second)})
	}
	for i := range 10 {
		ds = append(ds, denial{at: base.Add(time.Hour + time.Duration(i)*time.Second)})
	}
	got := findBursts(map[string][]denial{"10.0.0.1": ds})
	if len(got) != 2 || got[0].Denials != 15 || got[1].Denials != 10 || got[0].PeakPerMin != 12 {
		t.Errorf("findBursts() = %+v, want episodes of 15 (peak 12/min) and 10", got)
	}
}

// TestReportText pins the text report (conformance H21): exit 0, the reason
// codes, the totals and every section.
func TestReportText(t *testing.T) {
	p, _ := writeSynthetic(t)
	code, out, errs := runCmd(reportCmd, "--since", "24h", "--format", "text", p)
	if code != 0 {
		t.Fatalf("report exit %d: %s", code, errs)
	}
	for _, re := range []string{
		`token_expired\s+2\n`, `token_missing\s+1\n`,
		`\n  allow\s+3\s+42\.9%`, `\n  deny\s+3\s+42\.9%`, `\n  public\s+1\s+14\.3%`,
		`Records:\s+7 \(7 requests, 0 lifecycle\)`,
		`orders\s+3\s+3\s+0\n`, `docs\s+0\s+0\s+1\n`,
		`Top subjects allowed\n  alice\s+3`, `Top subjects denied\n  bob\s+2`,
		`Denials over time \(per hour`, `Chain:\s+no chain`, `Suspicious activity`, `kid-a\s+-\s+RS256\s+3`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("text report does not match %q:\n%s", re, out)
		}
	}
}

// dataNumber extracts the number in the first data-ATTR="N" of html.
func dataNumber(t *testing.T, html, attr string) int {
	t.Helper()
	m := regexp.MustCompile(` ` + regexp.QuoteMeta(attr) + `="(\d+)"`).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("html has no %s attribute", attr)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestReportHTMLMatchesSummarize pins that the HTML report shows the numbers
// Summarize computes (read back from its data-* attributes), and that it is
// self-contained: no scripts, no http(s) references.
func TestReportHTMLMatchesSummarize(t *testing.T) {
	for _, file := range []string{"synthetic", "suspicious"} {
		t.Run(file, func(t *testing.T) {
			var p string
			if file == "synthetic" {
				p, _ = writeSynthetic(t)
			} else {
				p = suspiciousLog(t)
			}
			code, html, errs := runCmd(reportCmd, "--format", "html", p)
			if code != 0 {
				t.Fatalf("report exit %d: %s", code, errs)
			}
			s, err := Summarize([]string{p}, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			denials := 0
			for _, b := range s.DenialBuckets {
				denials += b.N
			}
			for attr, want := range map[string]int{
				"data-total-records": s.Records, "data-total-requests": s.Requests,
				"data-total-allow": s.ByDecision["allow"], "data-total-deny": s.ByDecision["deny"],
				"data-total-anonymous": s.ByDecision["anonymous"], "data-total-public": s.ByDecision["public"],
				"data-denials-total": denials, "data-suspicious-total": s.Suspicious.Total,
				"data-bursts": len(s.Suspicious.Bursts), "data-shared-tokens": len(s.Suspicious.SharedTokens),
				"data-repeat-denied": len(s.Suspicious.RepeatDenied), "data-startups": s.Lifecycle.Startups,
			} {
				if got := dataNumber(t, html, attr); got != want {
					t.Errorf("html %s = %d, Summarize says %d", attr, got, want)
				}
			}
			for reason, n := range s.ByReason {
				if !strings.Contains(html, fmt.Sprintf(`data-reason="%s"><td><code>%s</code></td><td class="n" data-count="%d">`, reason, reason, n)) {
					t.Errorf("html lacks reason %s with count %d", reason, n)
				}
			}
			for _, r := range s.Routes {
				if !strings.Contains(html, fmt.Sprintf(`data-route="%s" data-allow="%d" data-deny="%d" data-other="%d"`, r.Route, r.Allow, r.Deny, r.Other)) {
					t.Errorf("html lacks route %+v", r)
				}
			}
			for _, bad := range []string{"http://", "https://", "<script", " src=", " href=", "@import", "url("} {
				if strings.Contains(strings.ToLower(html), bad) {
					t.Errorf("html report contains %q: not self-contained", bad)
				}
			}
			if !strings.Contains(html, "<svg") || !strings.HasPrefix(html, "<!DOCTYPE html>") {
				t.Error("html report lacks its inline SVG charts or doctype")
			}
		})
	}
}

// TestReportHTMLEscapesLogValues pins that values from the log (a subject,
// a route, a reason written by an attacker into a claim or path) are
// HTML-escaped, so the report cannot run script in a reviewer's browser.
func TestReportHTMLEscapesLogValues(t *testing.T) {
	evil := `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	lines := []string{
		line(t, kv{"time", "2025-03-01T10:00:00.000Z"}, kv{"event", "request"}, kv{"decision", "deny"},
			kv{"sub", evil}, kv{"route", evil}, kv{"reason", evil}, kv{"client_ip", evil}, kv{"config_version", evil}, kv{"kid", evil}),
	}
	p := filepath.Join(t.TempDir(), "a.log")
	writeLines(t, p, lines)
	code, html, _ := runCmd(reportCmd, "--format", "html", p)
	if code != 0 {
		t.Fatalf("report exit %d", code)
	}
	if strings.Contains(html, "<script") || strings.Contains(html, "<img") || strings.Contains(html, `"><`+"img") {
		t.Errorf("html report carries unescaped markup from the log:\n%s", html)
	}
	if !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("html report does not show the escaped value")
	}
}

// TestReportChainStatus pins the chain line: "verified" with the right key,
// "broken" at FILE:LINE (exit 1) after tampering, "not checked" without a
// key, "no chain" for unchained records.
func TestReportChainStatus(t *testing.T) {
	key := newKey(t)
	_, files := threeFiles(t, key)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "k")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCmd(reportCmd, append([]string{"--key-file", keyFile}, files...)...)
	if code != 0 || !strings.Contains(out, "verified: 16 records, chain intact") {
		t.Errorf("report with key = %d, want verified:\n%s", code, out)
	}
	code, out, _ = runCmd(reportCmd, files...)
	if code != 0 || !strings.Contains(out, "not checked") {
		t.Errorf("report without key = %d, want not checked:\n%s", code, out)
	}
	edit(t, files[1], func(l []string) []string { l[2] = strings.Replace(l[2], `"deny"`, `"allow"`, 1); return l })
	htmlOut := filepath.Join(dir, "r.html")
	code, _, errs := runCmd(reportCmd, append([]string{"--key-file", keyFile, "--format", "html", "-o", htmlOut}, files...)...)
	b, err := os.ReadFile(htmlOut)
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 || !strings.Contains(string(b), `data-chain-state="broken"`) || !strings.Contains(string(b), files[1]+":3: chain mismatch") {
		t.Errorf("report after tampering = %d (stderr %s), want exit 1 and a broken chain at %s:3 in the html", code, errs, files[1])
	}
}

// TestReportUsage pins the exit codes of `audit report`.
func TestReportUsage(t *testing.T) {
	p, _ := writeSynthetic(t)
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"-h"}, 0},
		{"no-files", []string{"--since", "24h"}, 2},
		{"bad-format", []string{"--format", "pdf", p}, 2},
		{"bad-since", []string{"--since", "last week", p}, 2},
		{"flags-after-file", []string{p, "--format", "html", "--until", "1m"}, 0},
		{"missing-file", []string{filepath.Join(t.TempDir(), "nope")}, 1},
		{"bad-key-file", []string{"--key-file", filepath.Join(t.TempDir(), "nokey"), p}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, errs := runCmd(reportCmd, tc.args...); code != tc.want {
				t.Errorf("report %q = %d, want %d (stderr %s)", tc.args, code, tc.want, errs)
			}
		})
	}
}

// TestVerifyAndReportStopOnCancel pins that Ctrl-C (ctx cancelled) stops a
// verify or report over large files with exit 1 instead of running on: the
// lead's signal handling replaces the default kill on SIGINT.
func TestVerifyAndReportStopOnCancel(t *testing.T) {
	key := newKey(t)
	_, files := threeFiles(t, key)
	keyFile := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	if code := VerifyCommand(ctx, append([]string{"--key-file", keyFile}, files...), &out, &errb); code != 1 || !strings.Contains(errb.String(), "context canceled") {
		t.Errorf("VerifyCommand(cancelled) = %d, stderr %q; want 1 and context canceled", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := ReportCommand(ctx, files, &out, &errb); code != 1 || out.Len() != 0 {
		t.Errorf("ReportCommand(cancelled) = %d, stdout %d bytes; want 1 and no report", code, out.Len())
	}
}
