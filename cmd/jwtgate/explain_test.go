package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExplainNamesRouteChecksAndDecision pins SPEC §1 explain: for a
// request and optional token it names the chosen route (and the ones that
// lost), each check and the decision, as text and as JSON.
func TestExplainNamesRouteChecksAndDecision(t *testing.T) {
	e := newLifecycleEnv(t)
	e.writeConfig(t, `  - {name: docs, match: {path_prefix: /docs}, upstream: {url: "`+e.backend.URL+`"}, auth: {mode: "off"}}
  - {name: life-exact, match: {path: /life/exact}, upstream: {url: "`+e.backend.URL+`"}, auth: {providers: [main], require: {scopes: [admin]}}}`)
	good := e.token(t)
	cases := []struct {
		name, url, token string
		route, decision  string
		status           int
		reason           string
	}{
		{"public-route", "https://api.test/docs/intro", "", "docs", "public", 200, ""},
		{"no-token", "https://api.test/life/1", "", "life", "deny", 401, "token_missing"},
		{"valid-token", "https://api.test/life/1", good, "life", "allow", 200, ""},
		{"bad-token", "https://api.test/life/1", good[:len(good)-4] + "AAAA", "life", "deny", 401, "signature_invalid"},
		{"missing-scope", "https://api.test/life/exact", good, "life-exact", "deny", 403, "scope_missing"},
		{"no-route", "https://api.test/nowhere", "", "", "deny", 404, "no_route"},
		{"path-rejected", "https://api.test/life/%2e%2e%2fx", "", "", "deny", 400, "path_rejected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"explain", "-c", e.cfgPath, "--method", "GET", "--url", tc.url, "--json"}
			if tc.token != "" {
				args = append(args, "--token", tc.token)
			}
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			var got struct {
				Route, Decision, Reason string
				Status                  int
				Steps                   []struct{ Check string }
				Candidates              []struct{ Name string }
			}
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out.String())
			}
			if got.Route != tc.route || got.Decision != tc.decision || got.Status != tc.status || got.Reason != tc.reason {
				t.Errorf("explain = route %q decision %q status %d reason %q, want %q %q %d %q", got.Route, got.Decision, got.Status, got.Reason, tc.route, tc.decision, tc.status, tc.reason)
			}
			if len(got.Steps) == 0 {
				t.Error("no steps")
			}
			if tc.token != "" && strings.Contains(out.String(), tc.token) {
				t.Error("explain output echoes the token")
			}
		})
	}
	// Text mode lists the losing routes too.
	var out, errb bytes.Buffer
	if code := run([]string{"explain", "-c", e.cfgPath, "--url", "https://api.test/life/exact", "--token", good}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"life-exact", "life", "docs", "decision: deny"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestExplainInvalidConfig: a broken config is reported with its paths and
// exit 1, not explained.
func TestExplainInvalidConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte("routes: [{name: r, match: {path_prefix: /a}, upstream: {url: x}, bogus: 1}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"explain", "-c", p, "--url", "https://h/a"}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "routes[0].bogus") {
		t.Errorf("stderr lacks the field path: %s", errb.String())
	}
}
