package route

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrPathRejected is wrapped by every error CleanPath returns: the request
// must be refused with 400 and reason path_rejected (SPEC §3.1).
var ErrPathRejected = errors.New("path rejected")

// Reasons a path is rejected, as found in PathError.Reason. They describe
// the input, never quote it.
const (
	ReasonNoLeadingSlash  = "path does not start with \"/\""
	ReasonInvalidEscape   = "invalid percent-escape"
	ReasonEncodedSlash    = "encoded slash or backslash"
	ReasonBackslash       = "backslash"
	ReasonPathParams      = "path parameter (';')"
	ReasonControl         = "control character"
	ReasonDoubleEncoding  = "double percent-encoding"
	ReasonInvalidUTF8     = "invalid UTF-8"
	ReasonAboveRoot       = "dot segment above the root"
	ReasonHiddenDot       = "dot segment hidden by an encoded slash"
	ReasonParamDotSegment = "dot or empty segment with path parameters"
)

// A PathError says why CleanPath rejected a path. It unwraps to
// ErrPathRejected. Offset is the byte offset in the raw input where the
// problem was found; Reason is one of the Reason constants. The input
// itself is not kept, so the error is safe to log.
type PathError struct {
	// Offset is the byte offset in the raw path.
	Offset int
	// Reason is one of the Reason constants.
	Reason string
}

// Error returns "path rejected at byte N: reason".
func (e *PathError) Error() string {
	return "path rejected at byte " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

// Unwrap returns ErrPathRejected.
func (e *PathError) Unwrap() error { return ErrPathRejected }

// Options relaxes CleanPath for backends that need it; the zero value is
// the strict default. They mirror server.allow_encoded_slashes and
// server.allow_path_params.
type Options struct {
	// AllowEncodedSlashes keeps %2F and %5C in the path, encoded and part of
	// their segment, instead of rejecting it. A segment that holds a "." or
	// ".." between encoded slashes is still rejected, since a backend that
	// decodes %2F would resolve it.
	AllowEncodedSlashes bool
	// AllowPathParams accepts ';' path parameters. Routes are then matched
	// on each segment's name before its first ';' (as Tomcat and Jetty read
	// it), and segments whose name is empty, "." or ".." are rejected
	// ("/..;/admin", "/;x/admin").
	AllowPathParams bool
}

// Path is a canonical request path.
type Path struct {
	// Decoded is the clean path with its segments percent-decoded, used for
	// matching. With AllowEncodedSlashes it may hold "%2F" or "%5C" (always
	// upper case) inside a segment; a literal '%' is never followed by two
	// hex digits, so the two cannot be confused.
	Decoded string
	// Escaped is the canonical escaped form of the same path: the form to
	// forward. Each segment is escaped minimally (RFC 3986 pchar: unreserved
	// characters, sub-delims, ':' and '@' stay as they are) with upper-case
	// hex. CleanPath(Escaped) returns the same Path.
	Escaped string
}

// CleanPath canonicalises rawPath, the request path as received (escaped
// form: r.URL.EscapedPath() or the request-URI up to '?'; a '?' or '#'
// left in it is treated as data and escaped). It returns the path to match
// and forward, or an error wrapping ErrPathRejected (a *PathError).
//
// It decodes every escape except %2F and %5C, resolves "." and ".." (also
// percent-encoded ones) and merges runs of "/". It rejects: a missing
// leading "/"; invalid escapes; %2F and %5C unless
// opts.AllowEncodedSlashes; '\'; ';' unless opts.AllowPathParams; control
// characters (below 0x20 and 0x7f), raw or encoded; invalid UTF-8
// (including over-long forms such as %c0%ae); a decoded '%' followed by
// two hex digits (double encoding, which a backend that decodes twice
// would turn into "..", "/" or any other byte); and a ".." above the root,
// which is rejected rather than clamped because only an attacker sends it.
// A trailing slash and the case of the path are preserved. When rawPath is
// already canonical and plain ASCII, CleanPath returns it unchanged
// without allocating.
func CleanPath(rawPath string, opts Options) (Path, error) {
	if rawPath == "" || rawPath[0] != '/' {
		return Path{}, &PathError{Offset: 0, Reason: ReasonNoLeadingSlash}
	}
	if isCanonical(rawPath, opts) {
		return Path{Decoded: rawPath, Escaped: rawPath}, nil
	}
	return cleanSlow(rawPath, opts)
}

// keep reports which bytes stay unescaped in Path.Escaped: RFC 3986
// unreserved, sub-delims other than ';', ':' and '@'.
var keep = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()*+,=:@" {
		t[c] = true
	}
	return t
}()

// keepByte reports whether c is written unescaped in Path.Escaped.
func keepByte(c byte, opts Options) bool {
	return keep[c] || (c == ';' && opts.AllowPathParams)
}

// isCanonical reports whether p (starting with "/") is already in the form
// cleanSlow would produce and needs no decoding: only bytes that stay
// unescaped, no empty segment except a trailing one, no dot segment.
func isCanonical(p string, opts Options) bool {
	start := 1 // start of the current segment
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			if !keepByte(p[i], opts) {
				return false
			}
			continue
		}
		seg := p[start:i]
		if seg == "" && i < len(p) {
			return false // "//"
		}
		if isDotName(seg) || (opts.AllowPathParams && badParamSegment(seg)) {
			return false
		}
		start = i + 1
	}
	return true
}

// isDotName reports whether s is "." or "..".
func isDotName(s string) bool { return s == "." || s == ".." }

// badParamSegment reports whether seg carries ';' parameters on a name that
// is empty, "." or "..".
func badParamSegment(seg string) bool {
	i := strings.IndexByte(seg, ';')
	return i >= 0 && (i == 0 || isDotName(seg[:i]))
}

const upperHex = "0123456789ABCDEF"

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isHex(c byte) bool { _, ok := unhex(c); return ok }

// cleanSlow decodes, checks and resolves p segment by segment, writing the
// decoded and the escaped form side by side. mark holds the output lengths
// before each kept segment, so ".." pops in O(1).
func cleanSlow(p string, opts Options) (Path, error) {
	dec := make([]byte, 0, len(p))
	esc := make([]byte, 0, len(p)+8)
	type mark struct{ d, e int }
	var stackBuf [16]mark
	stack := stackBuf[:0]
	var litPct []int // offsets in dec of '%' decoded from %25
	trailing := false

	start := 1
	for start <= len(p) {
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		last := end == len(p)
		m := mark{len(dec), len(esc)}
		dec = append(dec, '/')
		esc = append(esc, '/')
		ds := len(dec)
		hiddenSlash := false
		litPct = litPct[:0]
		for i := start; i < end; i++ {
			c := p[i]
			switch {
			case c == '%':
				if i+2 >= end {
					return Path{}, &PathError{Offset: i, Reason: ReasonInvalidEscape}
				}
				hi, ok1 := unhex(p[i+1])
				lo, ok2 := unhex(p[i+2])
				if !ok1 || !ok2 {
					return Path{}, &PathError{Offset: i, Reason: ReasonInvalidEscape}
				}
				v := hi<<4 | lo
				if v == '/' || v == '\\' {
					if !opts.AllowEncodedSlashes {
						return Path{}, &PathError{Offset: i, Reason: ReasonEncodedSlash}
					}
					enc := "%2F"
					if v == '\\' {
						enc = "%5C"
					}
					dec = append(dec, enc...)
					esc = append(esc, enc...)
					hiddenSlash = true
					i += 2
					continue
				}
				if v == '%' {
					litPct = append(litPct, len(dec))
				}
				if err := checkByte(v, i, opts); err != nil {
					return Path{}, err
				}
				dec = append(dec, v)
				esc = appendEscaped(esc, v, opts)
				i += 2
			default:
				if err := checkByte(c, i, opts); err != nil {
					return Path{}, err
				}
				dec = append(dec, c)
				esc = appendEscaped(esc, c, opts)
			}
		}
		seg := dec[ds:]
		for _, at := range litPct {
			if at+2 < len(dec) && isHex(dec[at+1]) && isHex(dec[at+2]) {
				return Path{}, &PathError{Offset: start, Reason: ReasonDoubleEncoding}
			}
		}
		if !utf8.Valid(seg) {
			return Path{}, &PathError{Offset: start, Reason: ReasonInvalidUTF8}
		}
		if hiddenSlash && hasHiddenDot(seg) {
			return Path{}, &PathError{Offset: start, Reason: ReasonHiddenDot}
		}
		if opts.AllowPathParams && badParamSegment(string(seg)) {
			return Path{}, &PathError{Offset: start, Reason: ReasonParamDotSegment}
		}
		switch {
		case len(seg) == 0 || string(seg) == ".":
			dec, esc = dec[:m.d], esc[:m.e]
			trailing = last
		case string(seg) == "..":
			if len(stack) == 0 {
				return Path{}, &PathError{Offset: start, Reason: ReasonAboveRoot}
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			dec, esc = dec[:top.d], esc[:top.e]
			trailing = last
		default:
			stack = append(stack, m)
			trailing = false
		}
		start = end + 1
	}
	if trailing || len(dec) == 0 {
		dec = append(dec, '/')
		esc = append(esc, '/')
	}
	d := string(dec)
	if string(esc) == d {
		return Path{Decoded: d, Escaped: d}, nil
	}
	return Path{Decoded: d, Escaped: string(esc)}, nil
}

// checkByte rejects a (raw or decoded) byte that must never reach a
// backend: control characters, backslash, and ';' unless allowed.
func checkByte(c byte, off int, opts Options) error {
	switch {
	case c < 0x20 || c == 0x7f:
		return &PathError{Offset: off, Reason: ReasonControl}
	case c == '\\':
		return &PathError{Offset: off, Reason: ReasonBackslash}
	case c == ';' && !opts.AllowPathParams:
		return &PathError{Offset: off, Reason: ReasonPathParams}
	}
	return nil
}

// appendEscaped appends c to b, percent-encoded unless it stays as it is.
func appendEscaped(b []byte, c byte, opts Options) []byte {
	if keepByte(c, opts) {
		return append(b, c)
	}
	return append(b, '%', upperHex[c>>4], upperHex[c&15])
}

// hasHiddenDot reports whether seg, split at its kept "%2F"/"%5C", has a
// "." or ".." piece: a backend that decodes encoded slashes would resolve
// it ("..%2F..%2Fadmin").
func hasHiddenDot(seg []byte) bool {
	s := string(seg)
	for s != "" {
		i := strings.Index(s, "%2F")
		if j := strings.Index(s, "%5C"); j >= 0 && (i < 0 || j < i) {
			i = j
		}
		piece := s
		if i >= 0 {
			piece, s = s[:i], s[i+3:]
		} else {
			s = ""
		}
		if isDotName(piece) {
			return true
		}
	}
	return false
}
