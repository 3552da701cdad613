package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jwtgate/jwtgate/config"
)

// Reason codes a failed Result carries (SPEC §5). Both mean HTTP 403.
const (
	// ReasonScopeMissing means a required scope is absent; the caller names
	// the MissingScopes in WWW-Authenticate scope="…".
	ReasonScopeMissing = "scope_missing"
	// ReasonRequirementFailed means a claim rule or the any_of failed. A
	// claim that a rule names but the token lacks gives this reason, not
	// claim_missing (which is a 401 for provider required_claims).
	ReasonRequirementFailed = "requirement_failed"
)

// Result is the outcome of Requirement.Eval.
type Result struct {
	// OK is true when every requirement holds.
	OK bool
	// Reason is ReasonScopeMissing or ReasonRequirementFailed when OK is
	// false, and empty otherwise.
	Reason string
	// MissingScopes are the required scopes the token lacks, for
	// WWW-Authenticate scope="…" (space-joined by the caller). Set only
	// with ReasonScopeMissing. Every entry is a valid RFC 6749 scope token,
	// so it can be placed inside a quoted string as it is.
	MissingScopes []string
	// Detail is short text for logs and explain, naming the failed rule. It
	// echoes a claim value only when the value's JSON form is at most 64
	// bytes, and always as JSON, so it cannot forge a log line.
	Detail string
}

// Check is one step of Requirement.Explain: one required scope, one claim
// rule, or one any_of block.
type Check struct {
	// What names the step, e.g. `scope orders:read` or
	// `claims[0]: tenant equals "acme"`.
	What string
	// OK reports whether the step holds.
	OK bool
	// Detail says what was found, with the same limits as Result.Detail.
	Detail string
}

// Requirement is a compiled `require` block (SPEC §2): all Scopes, all
// Claims, and, when any_of is set, at least one of its blocks. It is
// immutable and safe for concurrent use. A nil *Requirement always holds.
type Requirement struct {
	scopes []string
	claims []rule
	anyOf  []block
}

// block is one compiled any_of alternative.
type block struct {
	field  string // "any_of[1]"
	scopes []string
	claims []rule
}

// op is a claim rule's operator.
type op uint8

const (
	opEquals op = iota + 1
	opOneOf
	opContainsAny
	opContainsAll
	opMatches
	opExists
)

var opNames = [...]string{opEquals: "equals", opOneOf: "one_of", opContainsAny: "contains_any",
	opContainsAll: "contains_all", opMatches: "matches", opExists: "exists"}

// rule is one compiled claim condition.
type rule struct {
	field  string // "claims[0]" or "any_of[1].claims[0]"
	path   Path
	op     op
	vals   []scalar       // equals (one), one_of, contains_any, contains_all
	re     *regexp.Regexp // matches
	src    string         // matches, as configured
	exists bool           // exists
}

// Compile checks and compiles a require block once, at configuration load.
// The returned error joins one config.FieldError per problem (reach them
// with errors.As, or with Unwrap() []error for all), each with a path
// relative to the block, such as "claims[0].matches" or
// "any_of[1].scopes[0]"; the caller prefixes "routes[i].auth.require.".
//
// Compile rejects: a claim rule without exactly one operator, an invalid
// claim path, an empty one_of/contains_any/contains_all, a value that is not
// a string, number or boolean, an invalid regexp, a scope that is not an
// RFC 6749 scope token (printable ASCII without space, '"' or '\', so it can
// be echoed in WWW-Authenticate), and an empty any_of block (it would always
// hold and make any_of meaningless).
func Compile(r config.Require) (*Requirement, error) {
	c := compiler{}
	q := &Requirement{
		scopes: c.scopes("scopes", r.Scopes),
		claims: c.rules("claims", r.Claims),
	}
	for i, b := range r.AnyOf {
		field := fmt.Sprintf("any_of[%d]", i)
		if len(b.Scopes) == 0 && len(b.Claims) == 0 {
			c.errorf(field, "empty block; give it scopes or claims (an empty block always holds)")
		}
		q.anyOf = append(q.anyOf, block{
			field:  field,
			scopes: c.scopes(field+".scopes", b.Scopes),
			claims: c.rules(field+".claims", b.Claims),
		})
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return q, nil
}

// compiler collects every problem of one require block.
type compiler struct{ errs []error }

func (c *compiler) errorf(path, format string, args ...any) {
	c.errs = append(c.errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *compiler) scopes(field string, in []string) []string {
	for i, s := range in {
		if !validScopeToken(s) {
			c.errorf(fmt.Sprintf("%s[%d]", field, i), "%q is not a scope token (RFC 6749 §3.3: printable ASCII without space, '\"' or '\\'); list each scope separately", s)
		}
	}
	if len(in) == 0 {
		return nil
	}
	return append([]string(nil), in...)
}

// validScopeToken reports whether s is 1*( %x21 / %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}

func (c *compiler) rules(field string, in []config.ClaimRule) []rule {
	var out []rule
	for i := range in {
		if r, ok := c.rule(fmt.Sprintf("%s[%d]", field, i), &in[i]); ok {
			out = append(out, r)
		}
	}
	return out
}

func (c *compiler) rule(field string, cr *config.ClaimRule) (rule, bool) {
	r := rule{field: field}
	ok := true
	if cr.Claim == "" {
		c.errorf(field+".claim", "required; name the claim as a dotted path (realm_access.roles) or a JSON Pointer (/https:~1~1example.com~1groups)")
		ok = false
	} else if p, err := ParsePath(cr.Claim); err != nil {
		c.errorf(field+".claim", "%v", err)
		ok = false
	} else {
		r.path = p
	}

	var set []string
	if cr.Equals != nil {
		set = append(set, "equals")
		r.op = opEquals
		if s, err := newScalar(cr.Equals); err != nil {
			c.errorf(field+".equals", "%v", err)
			ok = false
		} else {
			r.vals = []scalar{s}
		}
	}
	for _, l := range []struct {
		name string
		op   op
		vals []any
	}{{"one_of", opOneOf, cr.OneOf}, {"contains_any", opContainsAny, cr.ContainsAny}, {"contains_all", opContainsAll, cr.ContainsAll}} {
		if l.vals == nil {
			continue
		}
		set = append(set, l.name)
		r.op = l.op
		vals, good := c.values(field+"."+l.name, l.vals)
		ok = ok && good
		r.vals = vals
	}
	if cr.Matches != "" {
		set = append(set, "matches")
		r.op = opMatches
		r.src = cr.Matches
		re, err := anchored(cr.Matches, cr.Regexp())
		if err != nil {
			c.errorf(field+".matches", "invalid regexp: %s; write RE2 syntax, it is anchored at both ends", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			ok = false
		}
		r.re = re
	}
	if cr.Exists != nil {
		set = append(set, "exists")
		r.op = opExists
		r.exists = *cr.Exists
	}
	switch len(set) {
	case 0:
		c.errorf(field, "no operator; set exactly one of equals, one_of, contains_any, contains_all, matches, exists")
		ok = false
	case 1:
	default:
		c.errorf(field, "several operators (%s); set exactly one", strings.Join(set, ", "))
		ok = false
	}
	return r, ok
}

func (c *compiler) values(field string, in []any) ([]scalar, bool) {
	if len(in) == 0 {
		c.errorf(field, "empty; list at least one value")
		return nil, false
	}
	out := make([]scalar, 0, len(in))
	ok := true
	for i, v := range in {
		s, err := newScalar(v)
		if err != nil {
			c.errorf(fmt.Sprintf("%s[%d]", field, i), "%v", err)
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}

// anchored returns src compiled as "^(?:src)$". RE2's "$" without the m
// flag matches only at the end of the text, so "a@example.com\n" cannot
// pass for "a@example.com". src must compile on its own first: otherwise a
// pattern such as "a)|(.*" would escape the group and the anchors. A
// regexp already compiled by config.Load is reused when it is exactly that.
func anchored(src string, pre *regexp.Regexp) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(src); err != nil {
		return nil, err
	}
	want := "^(?:" + src + ")$"
	if pre != nil && pre.String() == want {
		return pre, nil
	}
	return regexp.Compile(want)
}

// Empty reports whether the block requires nothing.
func (q *Requirement) Empty() bool {
	return q == nil || (len(q.scopes) == 0 && len(q.claims) == 0 && len(q.anyOf) == 0)
}

// Eval decides whether claims and scopes (from Scopes) meet the
// requirement. Top-level scopes are checked first: when any is missing the
// result is ReasonScopeMissing with those scopes. Then every claim rule,
// then any_of. When no any_of block holds and every block failed on its
// scopes alone, the result is ReasonScopeMissing with the first block's
// missing scopes; otherwise ReasonRequirementFailed. Eval does not allocate
// when the requirement holds.
func (q *Requirement) Eval(claims map[string]any, scopes []string) Result {
	if q == nil {
		return Result{OK: true}
	}
	if !hasAllScopes(scopes, q.scopes) {
		m := missingScopes(scopes, q.scopes)
		return Result{Reason: ReasonScopeMissing, MissingScopes: m, Detail: "missing scope " + strings.Join(m, " ")}
	}
	for i := range q.claims {
		if !q.claims[i].holds(claims) {
			r := &q.claims[i]
			return Result{Reason: ReasonRequirementFailed, Detail: r.field + " " + r.describe() + ": " + r.found(claims)}
		}
	}
	if len(q.anyOf) == 0 {
		return Result{OK: true}
	}
	scopesOnly := true
	for i := range q.anyOf {
		b := &q.anyOf[i]
		sOK := hasAllScopes(scopes, b.scopes)
		cOK := b.claimsHold(claims)
		if sOK && cOK {
			return Result{OK: true}
		}
		if !cOK {
			scopesOnly = false
		}
	}
	parts := make([]string, len(q.anyOf))
	for i := range q.anyOf {
		_, parts[i] = q.anyOf[i].check(claims, scopes)
		parts[i] = q.anyOf[i].field + ": " + parts[i]
	}
	detail := "no any_of block holds (" + strings.Join(parts, "; ") + ")"
	if scopesOnly {
		return Result{Reason: ReasonScopeMissing, MissingScopes: missingScopes(scopes, q.anyOf[0].scopes), Detail: detail}
	}
	return Result{Reason: ReasonRequirementFailed, Detail: detail}
}

// Explain evaluates every step, without stopping at the first failure, for
// `jwtgate explain`: one Check per required scope, per claim rule and per
// any_of block, in configuration order. Eval gives the verdict.
func (q *Requirement) Explain(claims map[string]any, scopes []string) []Check {
	if q == nil {
		return nil
	}
	var out []Check
	for _, s := range q.scopes {
		c := Check{What: "scope " + s, OK: hasScope(scopes, s), Detail: "present"}
		if !c.OK {
			c.Detail = "missing"
		}
		out = append(out, c)
	}
	for i := range q.claims {
		r := &q.claims[i]
		out = append(out, Check{What: r.field + ": " + r.describe(), OK: r.holds(claims), Detail: r.found(claims)})
	}
	for i := range q.anyOf {
		b := &q.anyOf[i]
		ok, detail := b.check(claims, scopes)
		out = append(out, Check{What: b.field + ": " + b.describe(), OK: ok, Detail: detail})
	}
	return out
}

func (b *block) claimsHold(claims map[string]any) bool {
	for i := range b.claims {
		if !b.claims[i].holds(claims) {
			return false
		}
	}
	return true
}

// check reports whether the block holds and, if not, its first failure.
func (b *block) check(claims map[string]any, scopes []string) (bool, string) {
	if m := missingScopes(scopes, b.scopes); len(m) > 0 {
		return false, "missing scope " + strings.Join(m, " ")
	}
	for i := range b.claims {
		r := &b.claims[i]
		if !r.holds(claims) {
			return false, r.field + " " + r.describe() + ": " + r.found(claims)
		}
	}
	return true, "holds"
}

func (b *block) describe() string {
	var parts []string
	if len(b.scopes) > 0 {
		parts = append(parts, "scopes "+strings.Join(b.scopes, " "))
	}
	for i := range b.claims {
		parts = append(parts, b.claims[i].describe())
	}
	return strings.Join(parts, " and ")
}

// holds reports whether the rule holds for claims. A claim the rule names
// but the token lacks fails every operator except exists: false.
func (r *rule) holds(claims map[string]any) bool {
	v, present := r.path.Lookup(claims)
	if r.op == opExists {
		return present == r.exists
	}
	if !present {
		return false
	}
	switch r.op {
	case opEquals, opOneOf:
		return matchesAny(r.vals, v)
	case opContainsAny:
		for i := range r.vals {
			if contains(v, &r.vals[i]) {
				return true
			}
		}
		return false
	case opContainsAll:
		for i := range r.vals {
			if !contains(v, &r.vals[i]) {
				return false
			}
		}
		return len(r.vals) > 0
	case opMatches:
		s, ok := v.(string)
		return ok && r.re != nil && r.re.MatchString(s)
	}
	return false
}

// contains reports whether the claim value v, seen as a set, holds want.
// An array is the set of its elements (nested arrays and objects never
// equal a value); a string is the set of itself and its space-separated
// words; a number or boolean is a one-element set; an object or null is
// empty.
func contains(v any, want *scalar) bool {
	switch c := v.(type) {
	case []any:
		for _, e := range c {
			if want.matches(e) {
				return true
			}
		}
		return false
	case []string:
		for _, e := range c {
			if want.matches(e) {
				return true
			}
		}
		return false
	case string:
		if want.kind != kindString {
			return false
		}
		if c == want.s {
			return true
		}
		for len(c) > 0 {
			i := strings.IndexByte(c, ' ')
			if i < 0 {
				return c == want.s
			}
			if c[:i] == want.s {
				return true
			}
			c = c[i+1:]
		}
		return false
	case map[string]any, nil:
		return false
	}
	return want.matches(v)
}

// describe renders the rule as configured, e.g. `tenant equals "acme"`.
func (r *rule) describe() string {
	name := r.path.String() + " " + opNames[r.op] + " "
	switch r.op {
	case opExists:
		return fmt.Sprintf("%s%t", name, r.exists)
	case opMatches:
		js, _ := compactJSON(r.src)
		return name + js
	case opEquals:
		if len(r.vals) == 1 {
			js, _ := compactJSON(r.vals[0].raw)
			return name + js
		}
	}
	raws := make([]any, len(r.vals))
	for i := range r.vals {
		raws[i] = r.vals[i].raw
	}
	js, _ := compactJSON(raws)
	return name + js
}

// found says what the rule found in claims, for Detail.
func (r *rule) found(claims map[string]any) string {
	v, present := r.path.Lookup(claims)
	if !present {
		return "claim absent"
	}
	if r.op == opExists {
		return "claim present"
	}
	if r.op == opMatches {
		if _, ok := v.(string); !ok {
			return "got " + typeName(v) + ", want a string"
		}
	}
	got := "got " + describe(v)
	if r.op == opContainsAll && !r.holds(claims) {
		var lack []any
		for i := range r.vals {
			if !contains(v, &r.vals[i]) {
				lack = append(lack, r.vals[i].raw)
			}
		}
		js, _ := compactJSON(lack)
		got += "; lacks " + js
	}
	return got
}
