package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/config"
)

func ptr[T any](v T) *T { return &v }

func ruleEquals(claim string, v any) config.ClaimRule {
	return config.ClaimRule{Claim: claim, Equals: v}
}
func ruleOneOf(claim string, v ...any) config.ClaimRule {
	return config.ClaimRule{Claim: claim, OneOf: v}
}
func ruleAny(claim string, v ...any) config.ClaimRule {
	return config.ClaimRule{Claim: claim, ContainsAny: v}
}
func ruleAll(claim string, v ...any) config.ClaimRule {
	return config.ClaimRule{Claim: claim, ContainsAll: v}
}
func ruleMatches(claim, re string) config.ClaimRule {
	return config.ClaimRule{Claim: claim, Matches: re}
}
func ruleExists(claim string, b bool) config.ClaimRule {
	return config.ClaimRule{Claim: claim, Exists: ptr(b)}
}

// mustCompile compiles r or fails the test.
func mustCompile(t testing.TB, r config.Require) *Requirement {
	t.Helper()
	q, err := Compile(r)
	if err != nil {
		t.Fatalf("Compile(%+v) error = %v", r, err)
	}
	return q
}

// operatorClaims is a token's claims with values of every JSON type, and
// the usual attacker tricks (numbers as strings, nested arrays, newlines).
const operatorClaims = `{
	"sub": "alice",
	"tenant": "acme",
	"exp": 1700000000,
	"exp_str": "1700000000",
	"ratio": 0.5,
	"big": 9007199254740993,
	"hundred": 100.0,
	"hundred_e": 1e2,
	"huge": 1e400,
	"admin": true,
	"admin_str": "true",
	"roles": ["user", "ops"],
	"nested": [["admin"]],
	"mixed": ["1", 2, true, null, {"a": 1}],
	"groups_str": "billing eng",
	"null_claim": null,
	"realm_access": {"roles": ["admin"]},
	"https://example.com/groups": ["eng", "x", "billing"],
	"a~b": {"c/d": "x"},
	"email": "bob@example.com",
	"email_nl": "bob@example.com\n",
	"email_suffix": "bob@example.com.evil.test",
	"email_multi": "bob@evil.test\nx@example.com",
	"email_num": 12,
	"email_arr": ["bob@example.com"],
	"obj": {"k": "v"}
}`

// TestOperators pins every claim operator of SPEC §2 against claims decoded
// with UseNumber, including type mismatches: exp as a string, numbers
// against strings, nested arrays, objects, nulls and absent claims.
func TestOperators(t *testing.T) {
	claims := decodeClaims(t, operatorClaims)
	const email = `[^@]+@example\.com`
	tests := []struct {
		name string
		rule config.ClaimRule
		want bool
	}{
		// equals
		{name: "equals-string", rule: ruleEquals("tenant", "acme"), want: true},
		{name: "equals-string-case-differs", rule: ruleEquals("tenant", "ACME")},
		{name: "equals-string-trailing-space", rule: ruleEquals("tenant", "acme ")},
		{name: "equals-string-prefix", rule: ruleEquals("tenant", "acm")},
		{name: "equals-int-vs-json-number", rule: ruleEquals("exp", 1700000000), want: true},
		{name: "equals-float-vs-json-integer", rule: ruleEquals("exp", 1.7e9), want: true},
		{name: "equals-exp-as-string-vs-number", rule: ruleEquals("exp_str", 1700000000)},
		{name: "equals-number-claim-vs-string-value", rule: ruleEquals("exp", "1700000000")},
		{name: "equals-float", rule: ruleEquals("ratio", 0.5), want: true},
		{name: "equals-float-mismatch", rule: ruleEquals("ratio", 1)},
		{name: "equals-float-vs-zero", rule: ruleEquals("ratio", 0)},
		{name: "equals-big-int-exact", rule: ruleEquals("big", int64(9007199254740993)), want: true},
		{name: "equals-big-int-not-rounded", rule: ruleEquals("big", int64(9007199254740992))},
		{name: "equals-100.0-vs-100", rule: ruleEquals("hundred", 100), want: true},
		{name: "equals-1e2-vs-100", rule: ruleEquals("hundred_e", 100), want: true},
		{name: "equals-uint64", rule: ruleEquals("exp", uint64(1700000000)), want: true},
		{name: "equals-out-of-range-number", rule: ruleEquals("huge", 1)},
		{name: "equals-bool", rule: ruleEquals("admin", true), want: true},
		{name: "equals-bool-false", rule: ruleEquals("admin", false)},
		{name: "equals-bool-vs-string-true", rule: ruleEquals("admin_str", true)},
		{name: "equals-string-true-vs-bool", rule: ruleEquals("admin", "true")},
		{name: "equals-array-claim", rule: ruleEquals("roles", "user")},
		{name: "equals-object-claim", rule: ruleEquals("obj", "v")},
		{name: "equals-null-claim", rule: ruleEquals("null_claim", "null")},
		{name: "equals-absent", rule: ruleEquals("nope", "x")},
		{name: "equals-pointer-escapes", rule: ruleEquals("/a~0b/c~1d", "x"), want: true},
		{name: "equals-pointer-index", rule: ruleEquals("/roles/1", "ops"), want: true},
		{name: "equals-dotted-no-index", rule: ruleEquals("roles.1", "ops")},
		// one_of
		{name: "one-of-hit", rule: ruleOneOf("sub", "svc-batch", "alice"), want: true},
		{name: "one-of-miss", rule: ruleOneOf("sub", "svc-batch", "svc-cron")},
		{name: "one-of-case", rule: ruleOneOf("sub", "Alice", "ALICE")},
		{name: "one-of-number", rule: ruleOneOf("exp", "x", 1700000000), want: true},
		{name: "one-of-number-as-string", rule: ruleOneOf("exp_str", 1700000000, 1)},
		{name: "one-of-array-claim", rule: ruleOneOf("roles", "user", "ops")},
		{name: "one-of-absent", rule: ruleOneOf("nope", "x")},
		// contains_any
		{name: "contains-any-array", rule: ruleAny("roles", "admin", "ops"), want: true},
		{name: "contains-any-array-miss", rule: ruleAny("roles", "admin")},
		{name: "contains-any-nested-array", rule: ruleAny("nested", "admin")},
		{name: "contains-any-nested-dotted", rule: ruleAny("realm_access.roles", "admin", "ops"), want: true},
		{name: "contains-any-mixed-number", rule: ruleAny("mixed", 2), want: true},
		{name: "contains-any-mixed-number-as-string", rule: ruleAny("mixed", "2")},
		{name: "contains-any-mixed-string-as-number", rule: ruleAny("mixed", 1)},
		{name: "contains-any-mixed-bool", rule: ruleAny("mixed", true), want: true},
		{name: "contains-any-space-string-word", rule: ruleAny("groups_str", "eng"), want: true},
		{name: "contains-any-space-string-whole", rule: ruleAny("groups_str", "billing eng"), want: true},
		{name: "contains-any-space-string-substring", rule: ruleAny("groups_str", "bill", "en")},
		{name: "contains-any-scalar-string", rule: ruleAny("tenant", "acme"), want: true},
		{name: "contains-any-scalar-number", rule: ruleAny("exp", 1700000000), want: true},
		{name: "contains-any-number-vs-string-claim", rule: ruleAny("exp_str", 1700000000)},
		{name: "contains-any-object", rule: ruleAny("obj", "v", "k")},
		{name: "contains-any-null", rule: ruleAny("null_claim", "x")},
		{name: "contains-any-absent", rule: ruleAny("nope", "x")},
		// contains_all
		{name: "contains-all-pointer", rule: ruleAll("/https:~1~1example.com~1groups", "billing", "eng"), want: true},
		{name: "contains-all-pointer-miss", rule: ruleAll("/https:~1~1example.com~1groups", "billing", "ops")},
		{name: "contains-all-dotted-whole-key", rule: ruleAll("https://example.com/groups", "eng"), want: true},
		{name: "contains-all-space-string", rule: ruleAll("groups_str", "eng", "billing"), want: true},
		{name: "contains-all-space-string-miss", rule: ruleAll("groups_str", "eng", "ops")},
		{name: "contains-all-scalar", rule: ruleAll("tenant", "acme"), want: true},
		{name: "contains-all-nested-array", rule: ruleAll("nested", "admin")},
		{name: "contains-all-absent", rule: ruleAll("nope", "x")},
		// matches
		{name: "matches", rule: ruleMatches("email", email), want: true},
		{name: "matches-user-anchors", rule: ruleMatches("email", `^[^@]+@example\.com$`), want: true},
		{name: "matches-trailing-newline", rule: ruleMatches("email_nl", `^[^@]+@example\.com$`)},
		{name: "matches-suffix", rule: ruleMatches("email_suffix", email)},
		{name: "matches-second-line", rule: ruleMatches("email_multi", email)},
		{name: "matches-unanchored-pattern-is-anchored", rule: ruleMatches("email_suffix", `example\.com`)},
		{name: "matches-multiline-flag-cannot-escape", rule: ruleMatches("email_nl", `(?m)[^@]+@example\.com$`)},
		{name: "matches-number", rule: ruleMatches("email_num", `\d+`)},
		{name: "matches-bool", rule: ruleMatches("admin", `true`)},
		{name: "matches-array", rule: ruleMatches("email_arr", email)},
		{name: "matches-object", rule: ruleMatches("obj", `.*`)},
		{name: "matches-null", rule: ruleMatches("null_claim", `.*`)},
		{name: "matches-absent", rule: ruleMatches("nope", `.*`)},
		{name: "matches-alternation-anchored", rule: ruleMatches("email_suffix", `nope|bob@example\.com`)},
		// exists
		{name: "exists-true-present", rule: ruleExists("sub", true), want: true},
		{name: "exists-true-absent", rule: ruleExists("act", true)},
		{name: "exists-false-absent", rule: ruleExists("act", false), want: true},
		{name: "exists-false-present", rule: ruleExists("sub", false)},
		{name: "exists-true-null", rule: ruleExists("null_claim", true), want: true},
		{name: "exists-false-null", rule: ruleExists("null_claim", false)},
		{name: "exists-nested", rule: ruleExists("realm_access.roles", true), want: true},
		{name: "exists-false-nested-absent", rule: ruleExists("realm_access.groups", false), want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := mustCompile(t, config.Require{Claims: []config.ClaimRule{tc.rule}})
			res := q.Eval(claims, nil)
			if res.OK != tc.want {
				t.Fatalf("Eval(%+v) = %+v, want OK=%v", tc.rule, res, tc.want)
			}
			if !res.OK && (res.Reason != ReasonRequirementFailed || res.MissingScopes != nil || res.Detail == "") {
				t.Errorf("Eval(%+v) = %+v, want reason %s with a detail and no scopes", tc.rule, res, ReasonRequirementFailed)
			}
			// A block with the rule behaves the same inside any_of.
			qa := mustCompile(t, config.Require{AnyOf: []config.RequireBlock{{Claims: []config.ClaimRule{tc.rule}}}})
			if got := qa.Eval(claims, nil).OK; got != tc.want {
				t.Errorf("any_of Eval(%+v).OK = %v, want %v", tc.rule, got, tc.want)
			}
		})
	}
}

// TestMatchesTrailingNewlineTrickFails pins the anchored full match of
// `matches` (conformance E10): Go RE2's "$" without (?m) matches only at the
// end of the text, so "a@example.com\n" is refused, unlike PCRE's "$".
func TestMatchesTrailingNewlineTrickFails(t *testing.T) {
	q := mustCompile(t, config.Require{Claims: []config.ClaimRule{ruleMatches("email", `^[^@]+@example\.com$`)}})
	tests := []struct {
		name  string
		email string
		want  bool
	}{
		{name: "plain", email: "a@example.com", want: true},
		{name: "trailing-newline", email: "a@example.com\n"},
		{name: "trailing-crlf", email: "a@example.com\r\n"},
		{name: "newline-then-line", email: "a@evil.test\nb@example.com"},
		{name: "suffix", email: "a@example.com.evil.test"},
		{name: "trailing-nul", email: "a@example.com\x00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims := map[string]any{"email": tc.email}
			if got := q.Eval(claims, nil).OK; got != tc.want {
				t.Errorf("Eval(email=%q).OK = %v, want %v", tc.email, got, tc.want)
			}
		})
	}
}

// TestMatchesPatternCannotEscapeAnchors pins that a pattern cannot close the
// anchoring group early ("a)|(.*") to match anything: Compile refuses it.
func TestMatchesPatternCannotEscapeAnchors(t *testing.T) {
	for _, src := range []string{`a)|(.*`, `x)|(?:.*`, `(`} {
		_, err := Compile(config.Require{Claims: []config.ClaimRule{ruleMatches("email", src)}})
		var fe config.FieldError
		if !errors.As(err, &fe) || fe.Path != "claims[0].matches" || !strings.HasPrefix(fe.Msg, "invalid regexp") {
			t.Errorf("Compile(matches %q) error = %v, want claims[0].matches: invalid regexp", src, err)
		}
	}
}

// fieldPaths returns the Path of every config.FieldError joined in err.
func fieldPaths(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	var walk func(error)
	walk = func(e error) {
		var fe config.FieldError
		if errors.As(e, &fe) && !isJoin(e) {
			out = append(out, fe.Path)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

func isJoin(e error) bool {
	_, ok := e.(interface{ Unwrap() []error })
	return ok
}

// TestCompileErrors pins that every problem in a require block is reported,
// each naming its field path (SPEC §2: "claims[0].matches: invalid regexp").
func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name  string
		req   config.Require
		paths []string
	}{
		{name: "bad-regexp", req: config.Require{Claims: []config.ClaimRule{ruleMatches("email", "([")}}, paths: []string{"claims[0].matches"}},
		{name: "missing-claim-name", req: config.Require{Claims: []config.ClaimRule{{Equals: "x"}}}, paths: []string{"claims[0].claim"}},
		{name: "bad-path", req: config.Require{Claims: []config.ClaimRule{ruleEquals("a..b", "x")}}, paths: []string{"claims[0].claim"}},
		{name: "bad-pointer-escape", req: config.Require{Claims: []config.ClaimRule{ruleEquals("/a~2", "x")}}, paths: []string{"claims[0].claim"}},
		{name: "no-operator", req: config.Require{Claims: []config.ClaimRule{{Claim: "sub"}}}, paths: []string{"claims[0]"}},
		{name: "two-operators", req: config.Require{Claims: []config.ClaimRule{{Claim: "sub", Equals: "a", Matches: "a"}}}, paths: []string{"claims[0]"}},
		{name: "empty-one-of", req: config.Require{Claims: []config.ClaimRule{{Claim: "sub", OneOf: []any{}}}}, paths: []string{"claims[0].one_of"}},
		{name: "list-value", req: config.Require{Claims: []config.ClaimRule{ruleAny("roles", "a", []any{"b"})}}, paths: []string{"claims[0].contains_any[1]"}},
		{name: "map-equals", req: config.Require{Claims: []config.ClaimRule{ruleEquals("obj", map[string]any{"k": "v"})}}, paths: []string{"claims[0].equals"}},
		{name: "null-in-list", req: config.Require{Claims: []config.ClaimRule{ruleAll("roles", nil)}}, paths: []string{"claims[0].contains_all[0]"}},
		{name: "empty-scope", req: config.Require{Scopes: []string{"a", ""}}, paths: []string{"scopes[1]"}},
		{name: "scope-with-space", req: config.Require{Scopes: []string{"a b"}}, paths: []string{"scopes[0]"}},
		{name: "scope-with-quote", req: config.Require{Scopes: []string{`a"b`}}, paths: []string{"scopes[0]"}},
		{name: "empty-any-of-block", req: config.Require{AnyOf: []config.RequireBlock{{Scopes: []string{"a"}}, {}}}, paths: []string{"any_of[1]"}},
		{name: "any-of-nested-paths", req: config.Require{AnyOf: []config.RequireBlock{{Scopes: []string{"a"}}, {Scopes: []string{"b c"}, Claims: []config.ClaimRule{ruleMatches("e", "(")}}}},
			paths: []string{"any_of[1].scopes[0]", "any_of[1].claims[0].matches"}},
		{name: "all-problems-reported", req: config.Require{Scopes: []string{""}, Claims: []config.ClaimRule{ruleMatches("e", "("), {Claim: "x"}}},
			paths: []string{"scopes[0]", "claims[0].matches", "claims[1]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := Compile(tc.req)
			if err == nil || q != nil {
				t.Fatalf("Compile(%+v) = %v, %v, want error", tc.req, q, err)
			}
			if got := fieldPaths(t, err); !reflect.DeepEqual(got, tc.paths) {
				t.Errorf("Compile(%+v) error paths = %q, want %q (error: %v)", tc.req, got, tc.paths, err)
			}
		})
	}
}

// TestCompileErrorText pins the user-facing form of one error.
func TestCompileErrorText(t *testing.T) {
	_, err := Compile(config.Require{Claims: []config.ClaimRule{{Claim: "sub", Equals: "a", OneOf: []any{"b"}}}})
	const want = "claims[0]: several operators (equals, one_of); set exactly one"
	if err == nil || err.Error() != want {
		t.Errorf("Compile() error = %v, want %q", err, want)
	}
}

// TestEmpty pins Empty for nil, empty and non-empty requirements.
func TestEmpty(t *testing.T) {
	var nilq *Requirement
	if !nilq.Empty() || !nilq.Eval(nil, nil).OK {
		t.Error("nil Requirement is not empty or does not hold")
	}
	if q := mustCompile(t, config.Require{}); !q.Empty() || !q.Eval(nil, nil).OK {
		t.Error("empty Require is not empty or does not hold")
	}
	if q := mustCompile(t, config.Require{Scopes: []string{"a"}}); q.Empty() {
		t.Error("Require with scopes is empty")
	}
	if q := mustCompile(t, config.Require{AnyOf: []config.RequireBlock{{Scopes: []string{"a"}}}}); q.Empty() {
		t.Error("Require with any_of is empty")
	}
}

// TestMissingClaimIsRequirementFailed pins SPEC §3.7 and conformance E14: a
// claim named by a requirement but absent from the token is a 403
// requirement_failed, never 401 claim_missing.
func TestMissingClaimIsRequirementFailed(t *testing.T) {
	q := mustCompile(t, config.Require{Claims: []config.ClaimRule{ruleEquals("tenant", "acme")}})
	res := q.Eval(decodeClaims(t, `{"sub":"x"}`), nil)
	if res.OK || res.Reason != ReasonRequirementFailed {
		t.Errorf("Eval(no tenant) = %+v, want %s", res, ReasonRequirementFailed)
	}
	if !strings.Contains(res.Detail, "claim absent") {
		t.Errorf("Eval(no tenant).Detail = %q, want it to say the claim is absent", res.Detail)
	}
}

// TestReasonSelection pins the reason rules: top-level scopes first
// (scope_missing with every missing scope), then claims
// (requirement_failed), then any_of (scope_missing with the first block's
// scopes only when every block failed on scopes alone).
func TestReasonSelection(t *testing.T) {
	req := config.Require{
		Scopes: []string{"a", "b", "c"},
		Claims: []config.ClaimRule{ruleEquals("tenant", "acme")},
	}
	scopeBlocks := config.Require{AnyOf: []config.RequireBlock{
		{Scopes: []string{"x", "y"}},
		{Scopes: []string{"z"}, Claims: []config.ClaimRule{ruleEquals("tenant", "acme")}},
	}}
	mixedBlocks := config.Require{
		Scopes: []string{"a"},
		AnyOf: []config.RequireBlock{
			{Scopes: []string{"orders:admin"}},
			{Claims: []config.ClaimRule{ruleOneOf("sub", "svc-batch")}},
		},
	}
	tests := []struct {
		name    string
		req     config.Require
		claims  string
		ok      bool
		reason  string
		missing []string
	}{
		{name: "all-hold", req: req, claims: `{"scope":"c b a","tenant":"acme"}`, ok: true},
		{name: "scopes-missing-listed-in-order", req: req, claims: `{"scope":"b","tenant":"acme"}`, reason: ReasonScopeMissing, missing: []string{"a", "c"}},
		{name: "scopes-win-over-claims", req: req, claims: `{"scope":"a","tenant":"evil"}`, reason: ReasonScopeMissing, missing: []string{"b", "c"}},
		{name: "claim-fails", req: req, claims: `{"scope":"a b c","tenant":"evil"}`, reason: ReasonRequirementFailed},
		{name: "claim-absent", req: req, claims: `{"scope":"a b c"}`, reason: ReasonRequirementFailed},
		{name: "any-of-first-block", req: scopeBlocks, claims: `{"scope":"x y"}`, ok: true},
		{name: "any-of-second-block", req: scopeBlocks, claims: `{"scope":"z","tenant":"acme"}`, ok: true},
		{name: "any-of-scope-only-failures", req: scopeBlocks, claims: `{"scope":"y","tenant":"acme"}`, reason: ReasonScopeMissing, missing: []string{"x"}},
		{name: "any-of-no-scopes-at-all", req: scopeBlocks, claims: `{"tenant":"acme"}`, reason: ReasonScopeMissing, missing: []string{"x", "y"}},
		{name: "any-of-a-block-failed-on-claims", req: scopeBlocks, claims: `{"scope":"z","tenant":"evil"}`, reason: ReasonRequirementFailed},
		{name: "any-of-admin-scope", req: mixedBlocks, claims: `{"scope":"a orders:admin"}`, ok: true},
		{name: "any-of-svc-batch", req: mixedBlocks, claims: `{"scope":"a","sub":"svc-batch"}`, ok: true},
		{name: "any-of-neither", req: mixedBlocks, claims: `{"scope":"a","sub":"alice"}`, reason: ReasonRequirementFailed},
		{name: "any-of-top-scope-first", req: mixedBlocks, claims: `{"sub":"svc-batch"}`, reason: ReasonScopeMissing, missing: []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := mustCompile(t, tc.req)
			claims := decodeClaims(t, tc.claims)
			res := q.Eval(claims, Scopes(claims, ""))
			if res.OK != tc.ok || res.Reason != tc.reason || !reflect.DeepEqual(res.MissingScopes, tc.missing) {
				t.Errorf("Eval(%s) = %+v, want OK=%v reason %q missing %q", tc.claims, res, tc.ok, tc.reason, tc.missing)
			}
			if res.OK != (res.Detail == "") {
				t.Errorf("Eval(%s).Detail = %q, want a detail exactly when it fails", tc.claims, res.Detail)
			}
		})
	}
}

// TestDetailNeverEchoesLongClaimValues pins that Detail (written to logs)
// shows a claim value only when its JSON form is at most 64 bytes, and
// escapes control characters so a claim cannot forge a log line.
func TestDetailNeverEchoesLongClaimValues(t *testing.T) {
	q := mustCompile(t, config.Require{Claims: []config.ClaimRule{ruleEquals("tenant", "acme")}})
	long := strings.Repeat("S", 65)
	tests := []struct {
		name   string
		value  any
		absent string
		want   string
	}{
		{name: "short-string", value: "evil", want: `"evil"`},
		{name: "long-string", value: long, absent: long, want: "a string of 65 bytes"},
		{name: "long-array", value: []any{long}, absent: long, want: "an array of 1 items"},
		{name: "long-object", value: map[string]any{"k": long}, absent: long, want: "an object of 1 members"},
		{name: "newline-escaped", value: "a\nb", absent: "\n", want: `"a\nb"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := q.Eval(map[string]any{"tenant": tc.value}, nil)
			if tc.absent != "" && strings.Contains(res.Detail, tc.absent) {
				t.Errorf("Eval().Detail = %q echoes the value", res.Detail)
			}
			if !strings.Contains(res.Detail, tc.want) {
				t.Errorf("Eval().Detail = %q, want it to contain %q", res.Detail, tc.want)
			}
			for _, c := range q.Explain(map[string]any{"tenant": tc.value}, nil) {
				if tc.absent != "" && strings.Contains(c.Detail+c.What, tc.absent) {
					t.Errorf("Explain() check %+v echoes the value", c)
				}
			}
		})
	}
}

// TestExplain pins `jwtgate explain`'s view: one check per scope, claim rule
// and any_of block, in order, each with its own verdict.
func TestExplain(t *testing.T) {
	q := mustCompile(t, config.Require{
		Scopes: []string{"orders:read", "orders:write"},
		Claims: []config.ClaimRule{ruleEquals("tenant", "acme"), ruleAll("groups", "billing", "eng"), ruleExists("act", false)},
		AnyOf: []config.RequireBlock{
			{Scopes: []string{"orders:admin"}},
			{Claims: []config.ClaimRule{ruleOneOf("sub", "svc-batch")}},
		},
	})
	claims := decodeClaims(t, `{"scope":"orders:read","tenant":"acme","groups":["billing"],"sub":"svc-batch"}`)
	got := q.Explain(claims, Scopes(claims, ""))
	want := []Check{
		{What: "scope orders:read", OK: true, Detail: "present"},
		{What: "scope orders:write", OK: false, Detail: "missing"},
		{What: `claims[0]: tenant equals "acme"`, OK: true, Detail: `got "acme"`},
		{What: `claims[1]: groups contains_all ["billing","eng"]`, OK: false, Detail: `got ["billing"]; lacks ["eng"]`},
		{What: "claims[2]: act exists false", OK: true, Detail: "claim absent"},
		{What: "any_of[0]: scopes orders:admin", OK: false, Detail: "missing scope orders:admin"},
		{What: `any_of[1]: sub one_of ["svc-batch"]`, OK: true, Detail: "holds"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Explain() =\n%+v\nwant\n%+v", got, want)
	}
	var nilq *Requirement
	if c := nilq.Explain(claims, nil); c != nil {
		t.Errorf("nil Explain() = %+v, want nil", c)
	}
}

// TestEvalDoesNotAllocateWhenAllowed pins that the allow path, run on every
// request, costs no allocations.
func TestEvalDoesNotAllocateWhenAllowed(t *testing.T) {
	q := benchRequirement(t)
	claims := decodeClaims(t, benchClaims)
	scopes := Scopes(claims, "")
	if res := q.Eval(claims, scopes); !res.OK {
		t.Fatalf("Eval() = %+v, want OK", res)
	}
	if n := testing.AllocsPerRun(100, func() { q.Eval(claims, scopes) }); n != 0 {
		t.Errorf("Eval() allocs = %v, want 0", n)
	}
}
