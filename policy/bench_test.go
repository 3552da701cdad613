package policy

import (
	"testing"

	"github.com/jwtgate/jwtgate/config"
)

// benchClaims is a realistic access token's claims.
const benchClaims = `{
	"iss": "https://idp.example.com/",
	"sub": "svc-batch",
	"aud": ["orders-api"],
	"exp": 1900000000,
	"iat": 1700000000,
	"scope": "openid profile orders:read orders:write",
	"tenant": "acme",
	"email": "bob@example.com",
	"level": 3,
	"realm_access": {"roles": ["user", "ops"]},
	"https://example.com/groups": ["eng", "billing", "x"]
}`

// benchRequirement uses every operator, as SPEC §2's example route does.
func benchRequirement(tb testing.TB) *Requirement {
	tb.Helper()
	return mustCompile(tb, config.Require{
		Scopes: []string{"orders:read"},
		Claims: []config.ClaimRule{
			ruleEquals("tenant", "acme"),
			ruleEquals("level", 3),
			ruleAny("realm_access.roles", "admin", "ops"),
			ruleAll("/https:~1~1example.com~1groups", "billing"),
			ruleMatches("email", `^[^@]+@example\.com$`),
			ruleExists("act", false),
		},
		AnyOf: []config.RequireBlock{
			{Scopes: []string{"orders:admin"}},
			{Claims: []config.ClaimRule{ruleOneOf("sub", "svc-batch")}},
		},
	})
}

// BenchmarkEval measures a full requirement evaluation that passes.
func BenchmarkEval(b *testing.B) {
	q := benchRequirement(b)
	claims := decodeClaims(b, benchClaims)
	scopes := Scopes(claims, "")
	b.ReportAllocs()
	for b.Loop() {
		if !q.Eval(claims, scopes).OK {
			b.Fatal("Eval failed")
		}
	}
}

// BenchmarkEvalDenied measures an evaluation that fails on a claim.
func BenchmarkEvalDenied(b *testing.B) {
	q := benchRequirement(b)
	claims := decodeClaims(b, benchClaims)
	claims["tenant"] = "other"
	scopes := Scopes(claims, "")
	b.ReportAllocs()
	for b.Loop() {
		if q.Eval(claims, scopes).OK {
			b.Fatal("Eval passed")
		}
	}
}

// BenchmarkLookup measures claim path lookups of both forms.
func BenchmarkLookup(b *testing.B) {
	claims := decodeClaims(b, benchClaims)
	for _, s := range []string{"sub", "realm_access.roles", "/https:~1~1example.com~1groups/1"} {
		p, err := ParsePath(s)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := p.Lookup(claims); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
}

// BenchmarkScopes measures reading the scope claim.
func BenchmarkScopes(b *testing.B) {
	claims := decodeClaims(b, benchClaims)
	b.ReportAllocs()
	for b.Loop() {
		Scopes(claims, "")
	}
}
