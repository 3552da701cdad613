package audit

import (
	"testing"

	"github.com/jwtgate/jwtgate/config"
)

// FuzzRequestRecordOneLine pins "no log injection" (SPEC §5) for any bytes
// in request- and claim-derived values: one record is exactly one valid
// JSON line, the value round-trips as a string, and the chain verifies.
func FuzzRequestRecordOneLine(f *testing.F) {
	f.Add("/orders", "curl/8", "alice", "tenant")
	f.Add("\"\n{\"event\":\"allow\"}", "\r\n", "\x00\xff", "sub")
	f.Add("\u2028\u2029", "\\\"", "</script>", "chain")
	key := newKey(f)
	f.Fuzz(func(t *testing.T, path, ua, value, claimName string) {
		w, sink := stdoutWriter(t, config.Audit{}, Options{ChainKey: key})
		w.Request(&Record{Path: path, UserAgent: ua, Sub: value, Decision: DecisionDeny,
			Claims: []Claim{{Name: claimName, Value: value}, {Name: "v", Value: []any{value}}}})
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		lines := splitLines(t, sink.bytes())
		if len(lines) != 1 {
			t.Fatalf("got %d lines, want 1: %q", len(lines), sink.bytes())
		}
		m, _ := decode(t, lines[0])
		if m["event"] != "request" || m["decision"] != "deny" {
			t.Errorf("event, decision = %v, %v", m["event"], m["decision"])
		}
		if _, err := verifyChain(key, GenesisChain, 1, lines); err != nil {
			t.Fatal(err)
		}
	})
}
