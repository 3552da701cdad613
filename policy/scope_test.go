package policy

import (
	"reflect"
	"testing"

	"github.com/jwtgate/jwtgate/config"
)

// TestScopes pins SPEC §2 scope_claim: by default "scope" (space-separated
// string, or array) then "scp" (array or string); with scope_claim set, only
// that claim; non-string entries ignored.
func TestScopes(t *testing.T) {
	tests := []struct {
		name       string
		claims     string
		scopeClaim string
		want       []string
	}{
		{name: "scope-string", claims: `{"scope":"a b  c"}`, want: []string{"a", "b", "c"}},
		{name: "scope-array", claims: `{"scope":["a","b"]}`, want: []string{"a", "b"}},
		{name: "scope-array-non-strings-ignored", claims: `{"scope":["a",1,null,true,["b"],{"c":1},""]}`, want: []string{"a"}},
		{name: "scp-array", claims: `{"scp":["orders:write","orders:read"]}`, want: []string{"orders:write", "orders:read"}},
		{name: "scp-string", claims: `{"scp":"orders:read orders:write"}`, want: []string{"orders:read", "orders:write"}},
		{name: "scope-wins-over-scp", claims: `{"scope":"a","scp":["b"]}`, want: []string{"a"}},
		{name: "scope-wrong-type-falls-back-to-scp", claims: `{"scope":5,"scp":["b"]}`, want: []string{"b"}},
		{name: "scope-null-falls-back-to-scp", claims: `{"scope":null,"scp":"b"}`, want: []string{"b"}},
		{name: "no-scopes", claims: `{"sub":"x"}`, want: nil},
		{name: "scp-number-ignored", claims: `{"scp":42}`, want: nil},
		{name: "only-space-splits", claims: `{"scope":"a\tb,c"}`, want: []string{"a\tb,c"}},
		{name: "custom-claim-array", claims: `{"scope":"a","permissions":["p:1","p:2"]}`, scopeClaim: "permissions", want: []string{"p:1", "p:2"}},
		{name: "custom-claim-string", claims: `{"perm":"x y"}`, scopeClaim: "perm", want: []string{"x", "y"}},
		{name: "custom-claim-absent-ignores-scope", claims: `{"scope":"a","scp":["b"]}`, scopeClaim: "permissions", want: nil},
		{name: "custom-claim-path", claims: `{"realm_access":{"roles":["r1"]}}`, scopeClaim: "realm_access.roles", want: []string{"r1"}},
		{name: "custom-claim-pointer", claims: `{"https://x/s":"s1 s2"}`, scopeClaim: "/https:~1~1x~1s", want: []string{"s1", "s2"}},
		{name: "custom-claim-wrong-type", claims: `{"perm":{"a":1}}`, scopeClaim: "perm", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Scopes(decodeClaims(t, tc.claims), tc.scopeClaim)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Scopes(%s, %q) = %q, want %q", tc.claims, tc.scopeClaim, got, tc.want)
			}
		})
	}
}

// TestScopeLookalikesDoNotSatisfy pins exact, case-sensitive scope matching
// (conformance E05): prefixes, suffixes, case variants, comma-joined,
// concatenated, wildcard and tab-separated strings never stand in for the
// required scope.
func TestScopeLookalikesDoNotSatisfy(t *testing.T) {
	q, err := Compile(config.Require{Scopes: []string{"orders:read"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		claims string
	}{
		{name: "suffix-digit", claims: `{"scope":"orders:read2"}`},
		{name: "suffix-word", claims: `{"scope":"orders:reader orders:writer"}`},
		{name: "prefix", claims: `{"scope":"xorders:read"}`},
		{name: "case", claims: `{"scope":"Orders:read"}`},
		{name: "upper", claims: `{"scope":"ORDERS:READ"}`},
		{name: "comma-joined", claims: `{"scope":"orders:read,orders:write"}`},
		{name: "concatenated", claims: `{"scope":"orders:readorders:write"}`},
		{name: "tab-separated", claims: `{"scope":"orders:read\torders:write"}`},
		{name: "newline-separated", claims: `{"scope":"orders:read\norders:write"}`},
		{name: "wildcard", claims: `{"scope":"orders:* *"}`},
		{name: "parent", claims: `{"scope":"orders"}`},
		{name: "trailing-space-in-array", claims: `{"scp":["orders:read "]}`},
		{name: "array-entry-with-space", claims: `{"scp":["orders:read orders:write"]}`},
		{name: "nested-array", claims: `{"scp":[["orders:read"]]}`},
		{name: "in-other-claim", claims: `{"scopes":"orders:read"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims := decodeClaims(t, tc.claims)
			res := q.Eval(claims, Scopes(claims, ""))
			if res.OK || res.Reason != ReasonScopeMissing {
				t.Errorf("Eval(%s) = %+v, want %s", tc.claims, res, ReasonScopeMissing)
			}
			if !reflect.DeepEqual(res.MissingScopes, []string{"orders:read"}) {
				t.Errorf("Eval(%s).MissingScopes = %q, want [orders:read]", tc.claims, res.MissingScopes)
			}
		})
	}
	// The real scope, among look-alikes, does satisfy it.
	claims := decodeClaims(t, `{"scope":"orders:read2 orders:read Orders:read"}`)
	if res := q.Eval(claims, Scopes(claims, "")); !res.OK {
		t.Errorf("Eval with the exact scope = %+v, want OK", res)
	}
}
