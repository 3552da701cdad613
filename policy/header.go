package policy

import (
	"encoding/json"
	"strconv"
	"strings"
)

// HeaderValue renders a claim value as a request header value (SPEC §5,
// claims_to_headers): a string as it is; a number (json.Number, a Go
// integer or float) and a boolean as JSON text; an array whose elements are
// all strings joined with ", " (an empty array gives ""); any other array
// and an object as compact JSON (without HTML escaping). A nil value (JSON
// null, or an absent claim) gives ("", false): no header is set.
//
// Header injection: HeaderValue also returns ("", false) when the rendered
// value holds a control character other than horizontal tab — CR, LF, NUL,
// any other byte below 0x20, or DEL (0x7f), the bytes RFC 9110 §5.5 forbids
// in a field value. A claim such as "alice\r\nX-Admin: true" therefore can
// never add a header line or split a request; the caller sets no header
// (and should log the refusal without the value). Strings nested in arrays
// that are rendered as JSON are escaped by the encoder and cannot inject
// either. Bytes 0x80 and above (UTF-8) are passed through as they are.
func HeaderValue(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		s = x
	case json.Number:
		s = string(x)
	case bool:
		s = strconv.FormatBool(x)
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case []any:
		if strs, ok := allStrings(x); ok {
			s = strings.Join(strs, ", ")
			break
		}
		js, err := compactJSON(x)
		if err != nil {
			return "", false
		}
		s = js
	case []string:
		s = strings.Join(x, ", ")
	default:
		// float64, other integers, objects: JSON text. NaN and ±Inf have
		// no JSON form and give false.
		js, err := compactJSON(x)
		if err != nil {
			return "", false
		}
		s = js
	}
	if !validHeaderValue(s) {
		return "", false
	}
	return s, true
}

// allStrings returns a's elements when every one is a string.
func allStrings(a []any) ([]string, bool) {
	out := make([]string, len(a))
	for i, e := range a {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}

// validHeaderValue reports whether s holds no control character other than
// horizontal tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if (b < 0x20 && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}
