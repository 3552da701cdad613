package auditlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxLineBytes caps one audit line. Real records are a few hundred bytes (a
// jwks_refresh record listing many keys a few KiB); anything longer is not a
// record jwtgate wrote, and reading it whole would let a hostile file exhaust
// memory. Longer lines are consumed and reported as unparseable.
const maxLineBytes = 4 << 20

// errNotObject is returned by parseRecord for a line that is not exactly one
// JSON object.
var errNotObject = errors.New("not a JSON object")

// record is one decoded audit line. Members keep the order they were written
// in (for the human view of lifecycle events); numbers stay json.Number so no
// precision is lost. When a member name repeats, the first one wins: jwtgate
// writes its own fields before any copied claims, so a claim can never shadow
// a decision field here.
type record struct {
	keys []string
	vals map[string]any
}

// parseRecord decodes line, which must hold exactly one JSON object (trailing
// white space aside).
func parseRecord(line []byte) (*record, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotObject, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errNotObject
	}
	r := &record{vals: make(map[string]any)}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errNotObject, err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errNotObject
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: member %q: %w", errNotObject, key, err)
		}
		if _, dup := r.vals[key]; !dup {
			r.keys = append(r.keys, key)
			r.vals[key] = v
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errNotObject
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the object", errNotObject)
	}
	return r, nil
}

// maxRecoverTries bounds recoverRecord's attempts, so a hostile line full of
// `{"` cannot make it quadratic.
const maxRecoverTries = 16

// recoverRecord handles a line that is not one JSON object but ends with
// one: what a writer that died mid-record leaves (a record cut short, no
// newline) followed by the next record appended after a restart. It returns
// the offset where the trailing record starts and that record; ok is false
// when the line holds no such record.
func recoverRecord(line []byte) (start int, r *record, ok bool) {
	off := 1
	for range maxRecoverTries {
		if off >= len(line) {
			return 0, nil, false
		}
		i := bytes.Index(line[off:], []byte(`{"`))
		if i < 0 {
			return 0, nil, false
		}
		start = off + i
		if r, err := parseRecord(line[start:]); err == nil {
			return start, r, true
		}
		off = start + 1
	}
	return 0, nil, false
}

// has reports whether the record carries member k.
func (r *record) has(k string) bool {
	_, ok := r.vals[k]
	return ok
}

// str returns member k when it is a string, else "".
func (r *record) str(k string) string {
	s, _ := r.vals[k].(string)
	return s
}

// strOK returns member k and whether it is present as a string.
func (r *record) strOK(k string) (string, bool) {
	s, ok := r.vals[k].(string)
	return s, ok
}

// num returns member k as a float64 when it is a number.
func (r *record) num(k string) (float64, bool) {
	n, ok := r.vals[k].(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// int returns member k when it is an integral number.
func (r *record) int(k string) (int64, bool) {
	n, ok := r.vals[k].(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

// flag returns member k when it is the boolean true.
func (r *record) flag(k string) bool {
	b, _ := r.vals[k].(bool)
	return b
}

// text renders member k for display: strings as they are, numbers as
// written, other values as compact JSON. Missing members give "".
func (r *record) text(k string) string {
	switch v := r.vals[k].(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
}

// time returns the record's time member, parsed as RFC 3339.
func (r *record) time() (time.Time, bool) {
	s, ok := r.strOK("time")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// event returns the record's event, treating a record without one that
// carries a decision as a request.
func (r *record) event() string {
	if e := r.str("event"); e != "" {
		return e
	}
	if r.has("decision") {
		return "request"
	}
	return ""
}

// isRequest reports whether the record describes a request decision.
func (r *record) isRequest() bool { return r.event() == "request" }

// splitter cuts a byte stream into lines. It keeps an incomplete last line
// until its newline arrives (a writer may be half-way through a record), and
// discards the body of a line longer than max while still counting its size.
type splitter struct {
	max     int
	pending []byte
	dropped int // bytes of the current line discarded beyond max
}

// lineFunc receives one line without its newline. size is the line's full
// length in bytes; tooLong says the content was discarded because size
// exceeded the cap (line is then nil).
type lineFunc func(line []byte, size int, tooLong bool) error

// feed adds p and calls fn for every line it completes.
func (s *splitter) feed(p []byte, fn lineFunc) error {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if s.dropped > 0 || len(s.pending)+len(chunk) > s.max {
			s.dropped += len(s.pending) + len(chunk)
			s.pending = s.pending[:0]
		} else {
			s.pending = append(s.pending, chunk...)
		}
		if i < 0 {
			return nil
		}
		p = p[i+1:]
		if err := s.emit(fn); err != nil {
			return err
		}
	}
	return nil
}

// flush emits the incomplete line held back, if any.
func (s *splitter) flush(fn lineFunc) error {
	if len(s.pending) == 0 && s.dropped == 0 {
		return nil
	}
	return s.emit(fn)
}

// hasPending reports whether an incomplete line is held back.
func (s *splitter) hasPending() bool { return len(s.pending) > 0 || s.dropped > 0 }

func (s *splitter) emit(fn lineFunc) error {
	var err error
	if s.dropped > 0 {
		err = fn(nil, s.dropped, true)
	} else {
		// The callback may keep the slice, so hand it a copy.
		err = fn(bytes.Clone(s.pending), len(s.pending), false)
	}
	s.pending = s.pending[:0]
	s.dropped = 0
	return err
}

// forEachLine calls fn for every line of r, the last one even when it lacks
// its newline (unterminated is then true for that call). It stops with
// ctx's error when ctx is done, so Ctrl-C interrupts a long read.
func forEachLine(ctx context.Context, r io.Reader, fn func(line []byte, size int, tooLong, unterminated bool) error) error {
	s := splitter{max: maxLineBytes}
	buf := make([]byte, 64<<10)
	cb := func(line []byte, size int, tooLong bool) error { return fn(line, size, tooLong, false) }
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		if n > 0 {
			if ferr := s.feed(buf[:n], cb); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return s.flush(func(line []byte, size int, tooLong bool) error { return fn(line, size, tooLong, true) })
		}
		if err != nil {
			return err
		}
	}
}

// clean makes s safe to print on a terminal: control characters (including
// ESC, so no ANSI sequences from a request path or a claim), bidi overrides
// and invalid UTF-8 are shown as Go escapes. Printable text is unchanged.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// quoteIfNeeded renders a value for a key=value list: bare when it is
// printable and has no spaces or quotes, else as a Go quoted string.
func quoteIfNeeded(s string) string {
	if s == "" {
		return `""`
	}
	if clean(s) == s && !strings.ContainsAny(s, " \"=") {
		return s
	}
	return strconv.Quote(s)
}
