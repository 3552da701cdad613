package policy

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzParsePath pins that ParsePath never panics, that a parsed path's
// String round-trips to the same path, and that Lookup never panics.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"sub", "realm_access.roles", "/https:~1~1example.com~1groups", "/a~0b/c~1d",
		"/roles/0", "/roles/01", "a..b", "/a~2", "/", "", ".", "~", "/~", "a.b.c.d", "/0/1/2", "/-"} {
		f.Add(s)
	}
	claims := decodeClaims(f, lookupClaims)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("ParsePath(%q).String() = %q", s, p.String())
		}
		p2, err := ParsePath(p.String())
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Fatalf("ParsePath(ParsePath(%q).String()) = %+v, %v, want %+v", s, p2, err, p)
		}
		if len(p.segs) == 0 {
			t.Fatalf("ParsePath(%q) has no segments", s)
		}
		p.Lookup(claims)
		p.Lookup(nil)
	})
}

// FuzzEval pins that arbitrary JSON claims, decoded with UseNumber, never
// make Scopes, Eval, Explain or HeaderValue panic, that Eval's verdict
// agrees with Explain's checks, and that HeaderValue never lets CR or LF
// through.
func FuzzEval(f *testing.F) {
	for _, s := range []string{
		benchClaims,
		`{}`,
		`{"scope":"orders:read","tenant":"acme","sub":"svc-batch"}`,
		`{"scope":["orders:read",1,null],"scp":"orders:admin","tenant":1e400}`,
		`{"tenant":["acme"],"level":"3","email":"bob@example.com\n","act":null}`,
		`{"realm_access":"ops","https://example.com/groups":"billing eng","level":3.0}`,
		`{"realm_access":{"roles":[["admin"]]},"email":12,"sub":{"a":"b"}}`,
		`{"scope":"orders:read","tenant":"acme","level":3,"realm_access":{"roles":["ops"]},"https://example.com/groups":["billing"],"email":"a@example.com","sub":"x"}`,
	} {
		f.Add([]byte(s))
	}
	q := benchRequirement(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var claims map[string]any
		if err := dec.Decode(&claims); err != nil {
			return
		}
		scopes := Scopes(claims, "")
		Scopes(claims, "realm_access.roles")
		res := q.Eval(claims, scopes)
		if res.OK == (res.Reason != "") {
			t.Fatalf("Eval() = %+v: OK and Reason disagree", res)
		}
		if res.Reason != "" && res.Reason != ReasonScopeMissing && res.Reason != ReasonRequirementFailed {
			t.Fatalf("Eval() reason = %q", res.Reason)
		}
		checks := q.Explain(claims, scopes)
		allOK, anyBlock := true, false
		for _, c := range checks {
			if strings.HasPrefix(c.What, "any_of[") {
				anyBlock = anyBlock || c.OK
			} else if !c.OK {
				allOK = false
			}
		}
		if want := allOK && anyBlock; res.OK != want {
			t.Fatalf("Eval().OK = %v, Explain() says %v: %+v", res.OK, want, checks)
		}
		for _, v := range claims {
			if s, ok := HeaderValue(v); ok && strings.ContainsAny(s, "\r\n\x00") {
				t.Fatalf("HeaderValue(%#v) = %q", v, s)
			}
		}
	})
}
