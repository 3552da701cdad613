package auditlog

import (
	"strings"
	"testing"
	"time"
)

// FuzzRecordLine pins that no audit line, however hostile, crashes the
// readers or reaches the terminal raw: parseRecord accepts only valid JSON,
// the human view of anything it accepts holds no control characters, and
// the chain check answers without panicking.
func FuzzRecordLine(f *testing.F) {
	for _, s := range []string{
		`{"time":"2025-03-01T10:00:01.234Z","event":"request","decision":"deny","status":401,"reason":"token_expired","sub":"bob","duration_ms":1.5}`,
		`{"event":"startup","seq":1,"prev_chain":"0000000000000000000000000000000000000000000000000000000000000000","chain":"00"}`,
		`{"event":"request","path":"/\u001b[31mred","sub":"a\u202eb","duration_ms":1e309}`,
		`{"a":1}{"b":2}`,
		`{"time":"2025`,
		`[1,2,3]`,
		`{"decision":"allow","decision":"deny"}`,
		"",
	} {
		f.Add([]byte(s))
	}
	key := []byte(strings.Repeat("k", 32))
	h := humanFormatter{loc: time.UTC}
	f.Fuzz(func(t *testing.T, b []byte) {
		st := &chainState{key: key}
		_ = st.check(b, false, true, true)
		_, _, _ = recoverRecord(b)
		r, err := parseRecord(b)
		if err != nil {
			return
		}
		if !jsonValid(b) {
			t.Fatalf("parseRecord accepted invalid JSON %q", b)
		}
		out := h.format(r)
		for _, c := range out {
			if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == '\u202e' {
				t.Fatalf("human view of %q holds control character %U: %q", b, c, out)
			}
		}
	})
}
