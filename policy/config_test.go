package policy

import (
	"testing"

	"github.com/jwtgate/jwtgate/config"
)

// specRequireYAML is SPEC §2's example require block, plus numeric values as
// YAML decodes them (int, float64), inside a minimal valid config.
const specRequireYAML = `
providers:
  - name: corp
    issuer: https://idp.example.com/
    audiences: [orders-api]
    jwks_url: https://idp.example.com/.well-known/jwks.json
routes:
  - name: orders
    match: {path_prefix: /orders}
    upstream: {url: "http://127.0.0.1:9001"}
    auth:
      require:
        scopes: [orders:read]
        claims:
          - {claim: tenant, equals: acme}
          - {claim: realm_access.roles, contains_any: [admin, ops]}
          - {claim: "/https:~1~1example.com~1groups", contains_all: [billing]}
          - {claim: email, matches: '^[^@]+@example\.com$'}
          - {claim: act, exists: false}
          - {claim: level, equals: 3}
          - {claim: ratio, one_of: [0.5, 1.5]}
        any_of:
          - {scopes: [orders:admin]}
          - {claims: [{claim: sub, one_of: [svc-batch]}]}
`

// TestCompileFromParsedConfig pins the load path end to end: the require
// block as config.Parse decodes it from YAML (ints, floats, the regexp
// config anchors) compiles and decides on claims decoded with UseNumber.
func TestCompileFromParsedConfig(t *testing.T) {
	cfg, err := config.Parse([]byte(specRequireYAML), t.TempDir())
	if err != nil {
		t.Fatalf("config.Parse() error = %v", err)
	}
	req := cfg.Routes[0].Auth.Require
	q := mustCompile(t, req)
	if re := req.Claims[3].Regexp(); re == nil || q.claims[3].re != re {
		t.Errorf("Compile() did not reuse config's anchored regexp %q, compiled %q", re, q.claims[3].re)
	}
	const good = `{"scope":"orders:read","tenant":"acme","realm_access":{"roles":["ops"]},
		"https://example.com/groups":["eng","billing"],"email":"a@example.com","level":3,"ratio":0.5,"sub":"svc-batch"}`
	tests := []struct {
		name   string
		claims string
		reason string
	}{
		{name: "all-hold", claims: good},
		{name: "newline-email", claims: `{"scope":"orders:read","tenant":"acme","realm_access":{"roles":["ops"]},
			"https://example.com/groups":["billing"],"email":"a@example.com\n","level":3,"ratio":0.5,"sub":"svc-batch"}`, reason: ReasonRequirementFailed},
		{name: "level-as-string", claims: `{"scope":"orders:read","tenant":"acme","realm_access":{"roles":["ops"]},
			"https://example.com/groups":["billing"],"email":"a@example.com","level":"3","ratio":0.5,"sub":"svc-batch"}`, reason: ReasonRequirementFailed},
		{name: "act-present", claims: `{"scope":"orders:read","tenant":"acme","realm_access":{"roles":["ops"]},
			"https://example.com/groups":["billing"],"email":"a@example.com","level":3,"ratio":0.5,"sub":"svc-batch","act":{"sub":"x"}}`, reason: ReasonRequirementFailed},
		{name: "no-scope", claims: `{"tenant":"acme"}`, reason: ReasonScopeMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims := decodeClaims(t, tc.claims)
			res := q.Eval(claims, Scopes(claims, cfg.Providers[0].ScopeClaim))
			if res.OK != (tc.reason == "") || res.Reason != tc.reason {
				t.Errorf("Eval(%s) = %+v, want reason %q", tc.name, res, tc.reason)
			}
		})
	}
}
