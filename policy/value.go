package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// kind is the type of an expected value from the configuration.
type kind uint8

const (
	kindString kind = iota + 1
	kindNumber
	kindBool
)

// number is a numeric value normalised so that equal numbers compare equal
// whatever their spelling: any integral value within int64 range is held
// exactly in i (so 100, 100.0, 1e2 and json.Number("100") agree, and large
// integers are not rounded through float64); other values are in f.
type number struct {
	isInt bool
	i     int64
	f     float64
}

func (a number) equal(b number) bool {
	if a.isInt != b.isInt {
		return false
	}
	if a.isInt {
		return a.i == b.i
	}
	return a.f == b.f
}

func numberFromFloat(f float64) (number, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return number{}, false
	}
	// -2^63 <= f < 2^63 and integral: exactly representable as int64.
	if f == math.Trunc(f) && f >= -9.223372036854775808e18 && f < 9.223372036854775808e18 {
		return number{isInt: true, i: int64(f)}, true
	}
	return number{f: f}, true
}

// numberFromJSON parses a JSON number's text without allocating on the
// common paths.
func numberFromJSON(s string) (number, bool) {
	if isIntLiteral(s) {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return number{isInt: true, i: i}, true
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return number{}, false
	}
	return numberFromFloat(f)
}

// isIntLiteral reports whether s is an optional "-" followed by 1 to 18
// digits, which ParseInt always accepts.
func isIntLiteral(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	if s == "" || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// asNumber returns v as a number when it is one: json.Number (claims), or a
// Go integer or float (YAML values, claims built in Go).
func asNumber(v any) (number, bool) {
	switch n := v.(type) {
	case json.Number:
		return numberFromJSON(string(n))
	case float64:
		return numberFromFloat(n)
	case float32:
		return numberFromFloat(float64(n))
	case int:
		return number{isInt: true, i: int64(n)}, true
	case int8:
		return number{isInt: true, i: int64(n)}, true
	case int16:
		return number{isInt: true, i: int64(n)}, true
	case int32:
		return number{isInt: true, i: int64(n)}, true
	case int64:
		return number{isInt: true, i: n}, true
	case uint:
		return numberFromUint(uint64(n))
	case uint8:
		return number{isInt: true, i: int64(n)}, true
	case uint16:
		return number{isInt: true, i: int64(n)}, true
	case uint32:
		return number{isInt: true, i: int64(n)}, true
	case uint64:
		return numberFromUint(n)
	}
	return number{}, false
}

func numberFromUint(u uint64) (number, bool) {
	if u <= math.MaxInt64 {
		return number{isInt: true, i: int64(u)}, true
	}
	return number{f: float64(u)}, true
}

// scalar is an expected value from the configuration: a string, a number or
// a boolean. raw keeps the configured value for display.
type scalar struct {
	kind kind
	s    string
	n    number
	b    bool
	raw  any
}

// newScalar validates and normalises a configured value.
func newScalar(v any) (scalar, error) {
	switch x := v.(type) {
	case string:
		return scalar{kind: kindString, s: x, raw: v}, nil
	case bool:
		return scalar{kind: kindBool, b: x, raw: v}, nil
	case nil:
		return scalar{}, fmt.Errorf("must be a string, number or boolean, got null")
	}
	if n, ok := asNumber(v); ok {
		return scalar{kind: kindNumber, n: n, raw: v}, nil
	}
	switch v.(type) {
	case float64, float32:
		return scalar{}, fmt.Errorf("must be a finite number, got %v", v)
	case []any, map[string]any, map[any]any:
		return scalar{}, fmt.Errorf("must be a string, number or boolean, got a list or map")
	}
	return scalar{}, fmt.Errorf("must be a string, number or boolean, got %T", v)
}

// matches reports whether the claim value v equals s. Strings compare
// exactly and case-sensitively, numbers numerically, booleans as booleans;
// a string never equals a number or a boolean, and arrays, objects and null
// never equal a scalar.
func (s *scalar) matches(v any) bool {
	switch s.kind {
	case kindString:
		c, ok := v.(string)
		return ok && c == s.s
	case kindBool:
		c, ok := v.(bool)
		return ok && c == s.b
	case kindNumber:
		c, ok := asNumber(v)
		return ok && c.equal(s.n)
	}
	return false
}

// matchesAny reports whether v equals one of vals.
func matchesAny(vals []scalar, v any) bool {
	for i := range vals {
		if vals[i].matches(v) {
			return true
		}
	}
	return false
}

// maxShown is the longest rendered claim value that details may echo.
const maxShown = 64

// describe renders a claim value for Detail text: compact JSON (which
// quotes strings and escapes control characters, so nothing can forge a log
// line) when it is at most maxShown bytes, otherwise only its type and size.
func describe(v any) string {
	if js, err := compactJSON(v); err == nil && len(js) <= maxShown {
		return js
	}
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("a string of %d bytes", len(x))
	case []any:
		return fmt.Sprintf("an array of %d items", len(x))
	case map[string]any:
		return fmt.Sprintf("an object of %d members", len(x))
	case json.Number:
		return fmt.Sprintf("a number of %d digits", len(x))
	}
	return fmt.Sprintf("a %T", v)
}

// typeName names a claim value's JSON type.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any, []string:
		return "an array"
	case map[string]any:
		return "an object"
	}
	if _, ok := asNumber(v); ok {
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}

// compactJSON marshals v without HTML escaping and without a trailing
// newline.
func compactJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}
