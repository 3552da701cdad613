package route

import (
	"errors"
	"testing"
)

var (
	strict      = Options{}
	encOK       = Options{AllowEncodedSlashes: true}
	paramsOK    = Options{AllowPathParams: true}
	permissive  = Options{AllowEncodedSlashes: true, AllowPathParams: true}
	allOptCombo = []Options{strict, encOK, paramsOK, permissive}
)

// optName names an Options value in kebab-case for subtest names.
func optName(o Options) string {
	switch o {
	case encOK:
		return "encoded-slashes"
	case paramsOK:
		return "path-params"
	case permissive:
		return "both"
	}
	return "strict"
}

type cleanCase struct {
	name    string
	in      string
	opts    Options
	decoded string
	escaped string
}

// checkClean runs CleanPath on each case, expects success with the given
// forms, and that cleaning the escaped form again changes nothing.
func checkClean(t *testing.T, cases []cleanCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CleanPath(tc.in, tc.opts)
			if err != nil {
				t.Fatalf("CleanPath(%q) error = %v, want nil", tc.in, err)
			}
			want := Path{Decoded: tc.decoded, Escaped: tc.escaped}
			if got != want {
				t.Fatalf("CleanPath(%q) = %+v, want %+v", tc.in, got, want)
			}
			again, err := CleanPath(got.Escaped, tc.opts)
			if err != nil || again != got {
				t.Fatalf("CleanPath(%q) = %+v, %v; want idempotent %+v", got.Escaped, again, err, got)
			}
		})
	}
}

type rejectCase struct {
	name   string
	in     string
	opts   Options
	reason string
}

// checkReject runs CleanPath on each case and expects a *PathError with the
// given reason that wraps ErrPathRejected.
func checkReject(t *testing.T, cases []rejectCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CleanPath(tc.in, tc.opts)
			if !errors.Is(err, ErrPathRejected) {
				t.Fatalf("CleanPath(%q) = %+v, %v; want ErrPathRejected", tc.in, got, err)
			}
			var pe *PathError
			if !errors.As(err, &pe) || pe.Reason != tc.reason {
				t.Fatalf("CleanPath(%q) error = %v, want reason %q", tc.in, err, tc.reason)
			}
			if pe.Offset < 0 || pe.Offset >= max(len(tc.in), 1) {
				t.Fatalf("CleanPath(%q) offset = %d, out of range", tc.in, pe.Offset)
			}
		})
	}
}

// TestCleanPathCanonicalForms pins the canonical decoded and escaped forms
// (SPEC §3.1): minimal RFC 3986 escaping with upper-case hex, unreserved
// characters decoded, sub-delims kept, trailing slash and case preserved.
func TestCleanPathCanonicalForms(t *testing.T) {
	checkClean(t, []cleanCase{
		{name: "root", in: "/", decoded: "/", escaped: "/"},
		{name: "plain", in: "/orders/123", decoded: "/orders/123", escaped: "/orders/123"},
		{name: "trailing-slash-kept", in: "/orders/", decoded: "/orders/", escaped: "/orders/"},
		{name: "case-preserved", in: "/Admin/X", decoded: "/Admin/X", escaped: "/Admin/X"},
		{name: "sub-delims-kept", in: "/a:b@c!$&'()*+,=", decoded: "/a:b@c!$&'()*+,=", escaped: "/a:b@c!$&'()*+,="},
		{name: "unreserved-decoded", in: "/%61%7E%2D%5f", decoded: "/a~-_", escaped: "/a~-_"},
		{name: "encoded-sub-delim-decoded", in: "/a%3Ab%40c", decoded: "/a:b@c", escaped: "/a:b@c"},
		{name: "space", in: "/a%20b", decoded: "/a b", escaped: "/a%20b"},
		{name: "lower-hex-uppercased", in: "/a%3fb", decoded: "/a?b", escaped: "/a%3Fb"},
		{name: "hash-escaped", in: "/a#b", decoded: "/a#b", escaped: "/a%23b"},
		{name: "literal-percent-not-followed-by-hex", in: "/100%25zz", decoded: "/100%zz", escaped: "/100%25zz"},
		{name: "literal-percent-at-end", in: "/100%25", decoded: "/100%", escaped: "/100%25"},
		{name: "dot-in-name-kept", in: "/a.b/..c/c..", decoded: "/a.b/..c/c..", escaped: "/a.b/..c/c.."},
		{name: "params-allowed", in: "/a;jsessionid=1/b", opts: paramsOK, decoded: "/a;jsessionid=1/b", escaped: "/a;jsessionid=1/b"},
	})
}

// TestPathTraversalDotSegments pins that "." and ".." are resolved before
// matching, so "/public/../admin" is matched and forwarded as "/admin", and
// that ".." above the root is rejected rather than clamped.
func TestPathTraversalDotSegments(t *testing.T) {
	checkClean(t, []cleanCase{
		{name: "dotdot", in: "/public/../admin", decoded: "/admin", escaped: "/admin"},
		{name: "dot", in: "/public/./x", decoded: "/public/x", escaped: "/public/x"},
		{name: "dotdot-last-keeps-slash", in: "/a/b/..", decoded: "/a/", escaped: "/a/"},
		{name: "dot-last-keeps-slash", in: "/a/.", decoded: "/a/", escaped: "/a/"},
		{name: "dotdot-to-root", in: "/a/..", decoded: "/", escaped: "/"},
		{name: "dot-root", in: "/.", decoded: "/", escaped: "/"},
		{name: "nested", in: "/a/b/../../c/./d/..", decoded: "/c/", escaped: "/c/"},
	})
	checkReject(t, []rejectCase{
		{name: "above-root", in: "/..", reason: ReasonAboveRoot},
		{name: "above-root-deep", in: "/a/../../etc/passwd", reason: ReasonAboveRoot},
		{name: "above-root-encoded", in: "/%2e%2e/etc", reason: ReasonAboveRoot},
	})
}

// TestPathTraversalPercentEncodedDots pins that percent-encoded dot
// segments (%2e%2e, %2E., .%2E) are decoded and resolved like plain ones.
func TestPathTraversalPercentEncodedDots(t *testing.T) {
	checkClean(t, []cleanCase{
		{name: "pct2e-pct2e", in: "/public/%2e%2e/admin", decoded: "/admin", escaped: "/admin"},
		{name: "pct2E-dot", in: "/public/%2E./admin", decoded: "/admin", escaped: "/admin"},
		{name: "dot-pct2E", in: "/public/.%2E/admin", decoded: "/admin", escaped: "/admin"},
		{name: "pct2e", in: "/public/%2e/x", decoded: "/public/x", escaped: "/public/x"},
		{name: "mixed-case", in: "/public/%2E%2e/admin", decoded: "/admin", escaped: "/admin"},
	})
}

// TestDoubleSlashMerged pins that runs of "/" are merged, so "//admin" is
// "/admin" for matching and forwarding alike.
func TestDoubleSlashMerged(t *testing.T) {
	checkClean(t, []cleanCase{
		{name: "leading", in: "//admin", decoded: "/admin", escaped: "/admin"},
		{name: "inner", in: "/public//..//admin", decoded: "/admin", escaped: "/admin"},
		{name: "trailing", in: "/a///", decoded: "/a/", escaped: "/a/"},
		{name: "only-slashes", in: "///", decoded: "/", escaped: "/"},
	})
}

// TestEncodedSlashRejected pins SPEC §3.1: %2F and %5C are refused unless
// allow_encoded_slashes, in which case they stay encoded inside their
// segment (upper case); a dot segment hidden between encoded slashes is
// refused even then, since a backend that decodes %2F would resolve it.
func TestEncodedSlashRejected(t *testing.T) {
	checkReject(t, []rejectCase{
		{name: "pct2f", in: "/public/..%2fadmin", reason: ReasonEncodedSlash},
		{name: "pct2F", in: "/a%2Fb", reason: ReasonEncodedSlash},
		{name: "pct5c", in: "/a%5cb", reason: ReasonEncodedSlash},
		{name: "pct5C", in: "/a%5Cb", reason: ReasonEncodedSlash},
		{name: "pct2f-with-params-only", in: "/a%2fb", opts: paramsOK, reason: ReasonEncodedSlash},
		{name: "hidden-dotdot", in: "/public/..%2F..%2Fadmin", opts: encOK, reason: ReasonHiddenDot},
		{name: "hidden-dotdot-backslash", in: "/public/x%5C..%5Cadmin", opts: encOK, reason: ReasonHiddenDot},
		{name: "hidden-dot-encoded", in: "/public/%2e%2e%2fadmin", opts: encOK, reason: ReasonHiddenDot},
	})
	checkClean(t, []cleanCase{
		{name: "kept-encoded", in: "/a%2fb", opts: encOK, decoded: "/a%2Fb", escaped: "/a%2Fb"},
		{name: "backslash-kept-encoded", in: "/a%5cb", opts: encOK, decoded: "/a%5Cb", escaped: "/a%5Cb"},
		{name: "percent-next-to-kept-slash", in: "/a%25%2Fb", opts: encOK, decoded: "/a%%2Fb", escaped: "/a%25%2Fb"},
	})
}

// TestPathParamsRejected pins SPEC §3.1: ';' (Tomcat's ;jsessionid, the
// "..;/" traversal) is refused unless allow_path_params; with it, dot and
// empty segments carrying parameters are still refused.
func TestPathParamsRejected(t *testing.T) {
	checkReject(t, []rejectCase{
		{name: "jsessionid", in: "/login;jsessionid=ABC", reason: ReasonPathParams},
		{name: "encoded-semicolon", in: "/login%3bjsessionid=ABC", reason: ReasonPathParams},
		{name: "dotdot-semicolon", in: "/public/..;/admin", reason: ReasonPathParams},
		{name: "dotdot-semicolon-allowed", in: "/public/..;/admin", opts: paramsOK, reason: ReasonParamDotSegment},
		{name: "dot-semicolon-allowed", in: "/public/.;x/admin", opts: paramsOK, reason: ReasonParamDotSegment},
		{name: "empty-semicolon-allowed", in: "/admin/;x/secret", opts: paramsOK, reason: ReasonParamDotSegment},
	})
}

// TestBackslashRejected pins that a raw backslash is refused whatever the
// options: IIS and some frameworks treat it as a separator.
func TestBackslashRejected(t *testing.T) {
	var cases []rejectCase
	for _, o := range allOptCombo {
		cases = append(cases,
			rejectCase{name: "inner-" + optName(o), in: `/public\..\admin`, opts: o, reason: ReasonBackslash},
			rejectCase{name: "trailing-" + optName(o), in: `/a\`, opts: o, reason: ReasonBackslash},
		)
	}
	checkReject(t, cases)
}

// TestControlCharsRejected pins that NUL and every control character, raw
// or percent-encoded, are refused (header injection, C-string truncation).
func TestControlCharsRejected(t *testing.T) {
	checkReject(t, []rejectCase{
		{name: "pct00", in: "/admin%00.png", reason: ReasonControl},
		{name: "raw-nul", in: "/admin\x00.png", reason: ReasonControl},
		{name: "crlf", in: "/a%0d%0aSet-Cookie:x", reason: ReasonControl},
		{name: "tab", in: "/a\tb", reason: ReasonControl},
		{name: "del-encoded", in: "/a%7F", reason: ReasonControl},
		{name: "del-raw", in: "/a\x7f", reason: ReasonControl},
		{name: "pct1f", in: "/a%1f", opts: permissive, reason: ReasonControl},
	})
}

// TestDoubleEncodingRejected pins that a decoded '%' followed by two hex
// digits (%252e%252e, %2541, also split across escapes) is refused: a
// backend that decodes twice would otherwise see "..".
func TestDoubleEncodingRejected(t *testing.T) {
	checkReject(t, []rejectCase{
		{name: "pct252e-pct252e", in: "/public/%252e%252e/admin", reason: ReasonDoubleEncoding},
		{name: "pct2541", in: "/%2541dmin", reason: ReasonDoubleEncoding},
		{name: "pct252f-allowed-slashes", in: "/a%252fb", opts: encOK, reason: ReasonDoubleEncoding},
		{name: "split-escape", in: "/%25%32%65", reason: ReasonDoubleEncoding},
		{name: "half-raw", in: "/%252%65", reason: ReasonDoubleEncoding},
	})
}

// TestInvalidUTF8Rejected pins that decoded paths must be valid UTF-8, which
// also refuses over-long encodings of "." and "/" (%c0%ae, %c0%af) that old
// decoders turned into traversal, and encoded surrogates.
func TestInvalidUTF8Rejected(t *testing.T) {
	checkReject(t, []rejectCase{
		{name: "overlong-dot", in: "/public/%c0%ae%c0%ae/admin", reason: ReasonInvalidUTF8},
		{name: "overlong-slash", in: "/public/..%c0%afadmin", reason: ReasonInvalidUTF8},
		{name: "overlong-dot-3byte", in: "/%e0%80%ae", reason: ReasonInvalidUTF8},
		{name: "lone-byte", in: "/%ff", reason: ReasonInvalidUTF8},
		{name: "truncated", in: "/%c3", reason: ReasonInvalidUTF8},
		{name: "surrogate", in: "/%ed%a0%80", reason: ReasonInvalidUTF8},
		{name: "raw-invalid", in: "/a\xffb", reason: ReasonInvalidUTF8},
		{name: "split-by-slash", in: "/%c3/%a9", reason: ReasonInvalidUTF8},
	})
}

// TestUnicodeKeptEscaped pins that non-ASCII characters are decoded for
// matching and forwarded percent-encoded (upper-case hex), whether the
// client sent them raw or escaped.
func TestUnicodeKeptEscaped(t *testing.T) {
	checkClean(t, []cleanCase{
		{name: "escaped-upper", in: "/caf%C3%A9", decoded: "/café", escaped: "/caf%C3%A9"},
		{name: "escaped-lower", in: "/%e2%82%ac", decoded: "/€", escaped: "/%E2%82%AC"},
		{name: "raw", in: "/café", decoded: "/café", escaped: "/caf%C3%A9"},
	})
}

// TestInvalidEscapeRejected pins that malformed percent-escapes are refused,
// not passed through for a backend to interpret.
func TestInvalidEscapeRejected(t *testing.T) {
	checkReject(t, []rejectCase{
		{name: "bare-percent", in: "/100%", reason: ReasonInvalidEscape},
		{name: "one-digit", in: "/a%2", reason: ReasonInvalidEscape},
		{name: "non-hex", in: "/a%zz", reason: ReasonInvalidEscape},
		{name: "cut-by-slash", in: "/a%2/f", reason: ReasonInvalidEscape},
	})
}

// TestNoLeadingSlashRejected pins that only origin-form paths are accepted.
func TestNoLeadingSlashRejected(t *testing.T) {
	checkReject(t, []rejectCase{
		{name: "empty", in: "", reason: ReasonNoLeadingSlash},
		{name: "relative", in: "admin", reason: ReasonNoLeadingSlash},
		{name: "asterisk", in: "*", reason: ReasonNoLeadingSlash},
		{name: "absolute-url", in: "http://x/admin", reason: ReasonNoLeadingSlash},
	})
}

// TestCleanPathCanonicalInputDoesNotAllocate pins the fast path: an
// already canonical ASCII path is returned as it is, without allocating.
func TestCleanPathCanonicalInputDoesNotAllocate(t *testing.T) {
	in := "/orders/123/items/"
	allocs := testing.AllocsPerRun(100, func() {
		p, err := CleanPath(in, strict)
		if err != nil || p.Decoded != in || p.Escaped != in {
			t.Fatalf("CleanPath(%q) = %+v, %v", in, p, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("CleanPath(%q) allocs = %v, want 0", in, allocs)
	}
}

// TestPathErrorDoesNotEchoInput pins that rejection errors never quote the
// path, so they are safe in logs and never reflected to a client.
func TestPathErrorDoesNotEchoInput(t *testing.T) {
	_, err := CleanPath("/secret-token-value%00", strict)
	if err == nil {
		t.Fatal("CleanPath() error = nil, want rejection")
	}
	if msg := err.Error(); containsAny(msg, "secret", "%00") {
		t.Fatalf("error %q echoes the input", msg)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
	}
	return false
}
