package policy

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// TestHeaderValue pins SPEC §5's rendering of claim values as header
// values: strings as they are, numbers and booleans as JSON text, arrays of
// strings joined with ", ", other arrays and objects as compact JSON, null
// as no header.
func TestHeaderValue(t *testing.T) {
	claims := decodeClaims(t, `{
		"sub": "alice",
		"exp": 1700000000,
		"ratio": 0.5,
		"expo": 1.5e3,
		"admin": true,
		"off": false,
		"groups": ["eng", "billing"],
		"one": ["solo"],
		"empty": [],
		"mixed": [1, "a", true, null],
		"nested": [["a"], "b"],
		"obj": {"b": 1, "a": "<x>&"},
		"null_claim": null,
		"unicode": "Zoë 東京",
		"tab": "a\tb"
	}`)
	tests := []struct {
		name   string
		v      any
		want   string
		wantOK bool
	}{
		{name: "string", v: claims["sub"], want: "alice", wantOK: true},
		{name: "json-integer", v: claims["exp"], want: "1700000000", wantOK: true},
		{name: "json-float", v: claims["ratio"], want: "0.5", wantOK: true},
		{name: "json-exponent-kept-as-text", v: claims["expo"], want: "1.5e3", wantOK: true},
		{name: "bool-true", v: claims["admin"], want: "true", wantOK: true},
		{name: "bool-false", v: claims["off"], want: "false", wantOK: true},
		{name: "string-array", v: claims["groups"], want: "eng, billing", wantOK: true},
		{name: "single-string-array", v: claims["one"], want: "solo", wantOK: true},
		{name: "empty-array", v: claims["empty"], want: "", wantOK: true},
		{name: "mixed-array-json", v: claims["mixed"], want: `[1,"a",true,null]`, wantOK: true},
		{name: "nested-array-json", v: claims["nested"], want: `[["a"],"b"]`, wantOK: true},
		{name: "object-compact-sorted-no-html-escape", v: claims["obj"], want: `{"a":"<x>&","b":1}`, wantOK: true},
		{name: "null", v: claims["null_claim"], want: "", wantOK: false},
		{name: "absent", v: nil, want: "", wantOK: false},
		{name: "unicode", v: claims["unicode"], want: "Zoë 東京", wantOK: true},
		{name: "tab-allowed", v: claims["tab"], want: "a\tb", wantOK: true},
		{name: "go-float", v: 1.5, want: "1.5", wantOK: true},
		{name: "go-float-integral", v: 100.0, want: "100", wantOK: true},
		{name: "go-int", v: 42, want: "42", wantOK: true},
		{name: "go-int64", v: int64(-7), want: "-7", wantOK: true},
		{name: "go-uint8", v: uint8(7), want: "7", wantOK: true},
		{name: "go-string-slice", v: []string{"a", "b"}, want: "a, b", wantOK: true},
		{name: "nan", v: math.NaN(), wantOK: false},
		{name: "inf", v: math.Inf(1), wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := HeaderValue(tc.v)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("HeaderValue(%#v) = %q, %v, want %q, %v", tc.v, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// TestClaimHeaderInjectionRejected pins that a claim can never add a header
// line or split a request: values holding CR, LF, NUL or another control
// character (tab excepted) are refused, whether the claim is a string, an
// array of strings or a json.Number; inside JSON-rendered values the
// encoder escapes them, and the raw bytes never reach the header.
func TestClaimHeaderInjectionRejected(t *testing.T) {
	tests := []struct {
		name   string
		json   string // a claim decoded from JSON
		v      any    // or a value built in Go
		wantOK bool
	}{
		{name: "crlf-header-injection", json: `"alice\r\nX-Admin: true"`},
		{name: "lf-only", json: `"alice\nX-Admin: true"`},
		{name: "cr-only", json: `"alice\rX-Admin: true"`},
		{name: "nul", json: `"alice\u0000"`},
		{name: "escape-sequence", json: `"\u001b[31malice"`},
		{name: "vertical-tab", json: `"a\u000bb"`},
		{name: "form-feed", json: `"a\u000cb"`},
		{name: "del", json: `"a\u007fb"`},
		{name: "request-splitting", json: `"x\r\n\r\nGET /admin HTTP/1.1\r\nHost: internal"`},
		{name: "string-array-element", json: `["eng", "evil\r\nX-Admin: true"]`},
		{name: "object-string-with-del", json: `{"k":"a\u007fb"}`},
		{name: "go-json-number", v: json.Number("1\r\nX-Admin: true")},
		{name: "go-string-slice", v: []string{"a\nb"}},
		{name: "object-newline-is-escaped", json: `{"k":"a\r\nb"}`, wantOK: true},
		{name: "mixed-array-newline-is-escaped", json: `[1,"a\nb"]`, wantOK: true},
		{name: "tab-is-fine", json: `"a\tb"`, wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.v
			if tc.json != "" {
				v = decodeClaims(t, `{"c":`+tc.json+`}`)["c"]
			}
			got, ok := HeaderValue(v)
			if ok != tc.wantOK {
				t.Fatalf("HeaderValue(%#v) = %q, %v, want ok=%v", v, got, ok, tc.wantOK)
			}
			if !ok && got != "" {
				t.Errorf("HeaderValue(%#v) = %q with false, want empty", v, got)
			}
			if strings.ContainsAny(got, "\r\n\x00\x7f") {
				t.Errorf("HeaderValue(%#v) = %q holds a control character", v, got)
			}
		})
	}
}
