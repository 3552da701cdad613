package policy

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// decodeClaims decodes JSON the way the gateway decodes token claims: with
// UseNumber, so numbers are json.Number.
func decodeClaims(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode claims %q: %v", s, err)
	}
	return m
}

// TestParsePath pins both path forms of SPEC §2 (`claim:`): JSON Pointer
// escapes (~0, ~1), and the errors for empty segments and bad escapes.
func TestParsePath(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		segs    []string
		pointer bool
		wantErr bool
	}{
		{name: "dotted-single", in: "sub", segs: []string{"sub"}},
		{name: "dotted-nested", in: "realm_access.roles", segs: []string{"realm_access", "roles"}},
		{name: "dotted-url-name", in: "https://example.com/groups", segs: []string{"https://example", "com/groups"}},
		{name: "dotted-tilde-is-literal", in: "a~1b", segs: []string{"a~1b"}},
		{name: "pointer-namespaced", in: "/https:~1~1example.com~1groups", segs: []string{"https://example.com/groups"}, pointer: true},
		{name: "pointer-tilde-zero", in: "/a~0b/c~1d", segs: []string{"a~b", "c/d"}, pointer: true},
		{name: "pointer-escape-order", in: "/~01", segs: []string{"~1"}, pointer: true},
		{name: "pointer-index", in: "/roles/0", segs: []string{"roles", "0"}, pointer: true},
		{name: "pointer-dots-are-literal", in: "/a.b", segs: []string{"a.b"}, pointer: true},
		{name: "empty", in: "", wantErr: true},
		{name: "dotted-empty-middle", in: "a..b", wantErr: true},
		{name: "dotted-leading-dot", in: ".a", wantErr: true},
		{name: "dotted-trailing-dot", in: "a.", wantErr: true},
		{name: "dotted-only-dot", in: ".", wantErr: true},
		{name: "pointer-root-only", in: "/", wantErr: true},
		{name: "pointer-unescaped-slash", in: "/https://example.com/groups", wantErr: true},
		{name: "pointer-trailing-slash", in: "/a/", wantErr: true},
		{name: "pointer-bad-escape", in: "/a~2", wantErr: true},
		{name: "pointer-dangling-tilde", in: "/a~", wantErr: true},
		{name: "pointer-tilde-letter", in: "/~x/b", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePath(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidPath) {
					t.Fatalf("ParsePath(%q) error = %v, want ErrInvalidPath", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePath(%q) error = %v", tc.in, err)
			}
			if !reflect.DeepEqual(p.segs, tc.segs) || p.IsPointer() != tc.pointer {
				t.Errorf("ParsePath(%q) = %q pointer=%v, want %q pointer=%v", tc.in, p.segs, p.IsPointer(), tc.segs, tc.pointer)
			}
			if p.String() != tc.in {
				t.Errorf("ParsePath(%q).String() = %q", tc.in, p.String())
			}
		})
	}
}

// lookupClaims holds namespaced, nested, dotted-name and array claims.
const lookupClaims = `{
	"sub": "alice",
	"null_claim": null,
	"realm_access": {"roles": ["admin", "ops"], "n": {"deep": 1}},
	"https://example.com/groups": ["eng", "billing"],
	"a.b": "whole-key",
	"a": {"b": "nested"},
	"x.y": {"z": "not-reached"},
	"a~b": {"c/d": "escaped"},
	"roles": ["user", "ops", ["inner"]],
	"s": "string"
}`

// TestPathLookup pins what each path form finds: dotted paths (with the
// whole-key rule), JSON Pointers with ~0/~1 and array indexes, and that
// walking into a non-container finds nothing.
func TestPathLookup(t *testing.T) {
	claims := decodeClaims(t, lookupClaims)
	tests := []struct {
		name  string
		path  string
		want  any
		found bool
	}{
		{name: "top-level", path: "sub", want: "alice", found: true},
		{name: "null-is-present", path: "null_claim", want: nil, found: true},
		{name: "absent", path: "nope", found: false},
		{name: "dotted-nested", path: "realm_access.n.deep", want: json.Number("1"), found: true},
		{name: "dotted-whole-key-wins", path: "a.b", want: "whole-key", found: true},
		{name: "pointer-does-not-use-whole-key", path: "/a/b", want: "nested", found: true},
		{name: "pointer-dotted-name", path: "/a.b", want: "whole-key", found: true},
		{name: "dotted-url-whole-key", path: "https://example.com/groups", want: []any{"eng", "billing"}, found: true},
		{name: "pointer-url-escaped", path: "/https:~1~1example.com~1groups", want: []any{"eng", "billing"}, found: true},
		{name: "pointer-tilde-escapes", path: "/a~0b/c~1d", want: "escaped", found: true},
		{name: "dotted-prefix-key-not-split", path: "x.y.z", found: false},
		{name: "pointer-index-0", path: "/roles/0", want: "user", found: true},
		{name: "pointer-index-1", path: "/roles/1", want: "ops", found: true},
		{name: "pointer-nested-array", path: "/roles/2/0", want: "inner", found: true},
		{name: "pointer-index-out-of-range", path: "/roles/3", found: false},
		{name: "pointer-index-leading-zero", path: "/roles/01", found: false},
		{name: "pointer-index-dash", path: "/roles/-", found: false},
		{name: "pointer-index-negative", path: "/roles/-1", found: false},
		{name: "pointer-index-huge", path: "/roles/99999999999999999999", found: false},
		{name: "dotted-does-not-index-arrays", path: "roles.1", found: false},
		{name: "into-string", path: "s.x", found: false},
		{name: "into-null", path: "/null_claim/x", found: false},
		{name: "pointer-nested-roles", path: "/realm_access/roles", want: []any{"admin", "ops"}, found: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePath(tc.path)
			if err != nil {
				t.Fatalf("ParsePath(%q) error = %v", tc.path, err)
			}
			got, found := p.Lookup(claims)
			if found != tc.found || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Lookup(%q) = %#v, %v, want %#v, %v", tc.path, got, found, tc.want, tc.found)
			}
		})
	}
}

// TestZeroPathFindsNothing pins that an unparsed Path never matches a claim.
func TestZeroPathFindsNothing(t *testing.T) {
	var p Path
	if v, ok := p.Lookup(map[string]any{"": "x"}); ok {
		t.Errorf("zero Path Lookup = %v, true, want not found", v)
	}
	if _, ok := (Path{}).Lookup(nil); ok {
		t.Error("zero Path Lookup(nil) found a value")
	}
}

// TestLookupDoesNotAllocate pins the brief's "Lookup allocates nothing":
// it runs on every request for every rule and header.
func TestLookupDoesNotAllocate(t *testing.T) {
	claims := decodeClaims(t, lookupClaims)
	for _, s := range []string{"sub", "realm_access.n.deep", "a.b", "/roles/2/0", "/a~0b/c~1d", "nope.x"} {
		p, err := ParsePath(s)
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { p.Lookup(claims) }); n != 0 {
			t.Errorf("Lookup(%q) allocs = %v, want 0", s, n)
		}
	}
}
