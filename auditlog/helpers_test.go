package auditlog

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// kv is one member of a test record, kept in order like zerolog writes them.
type kv struct {
	k string
	v any
}

// line renders members as one compact JSON object, in order.
func line(t testing.TB, members ...kv) string {
	t.Helper()
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.k)
		if err != nil {
			t.Fatal(err)
		}
		v, err := json.Marshal(m.v)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String()
}

// newKey returns a fresh random chain key.
func newKey(t testing.TB) []byte {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

// chainWriter is an independent, minimal writer of SPEC §6 chained lines for
// the tests: seq, then chain = HMAC(key, P "\n" L) as the last member.
type chainWriter struct {
	t     testing.TB
	key   []byte
	prev  string // chain of the last record written ("" before the first)
	seq   int
	lines []string // lines of the current file
	files []string // finished files' paths
	dir   string
	n     int // file counter
	start time.Time
}

func newChainWriter(t testing.TB, key []byte) *chainWriter {
	return &chainWriter{t: t, key: key, dir: t.TempDir(), start: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)}
}

// mac computes lower-hex HMAC-SHA256(key, p + "\n" + body).
func (w *chainWriter) mac(p, body string) string {
	m := hmac.New(sha256.New, w.key)
	m.Write([]byte(p + "\n" + body))
	return hex.EncodeToString(m.Sum(nil))
}

// writeWith appends a record whose chain commits to predecessor p.
func (w *chainWriter) writeWith(p string, members ...kv) {
	w.seq++
	members = append(members, kv{"seq", w.seq})
	body := line(w.t, members...)
	c := w.mac(p, body)
	w.lines = append(w.lines, body[:len(body)-1]+`,"chain":"`+c+`"}`)
	w.prev = c
}

// write appends a record continuing the chain.
func (w *chainWriter) write(members ...kv) {
	p := w.prev
	if p == "" {
		p = zeroChain
	}
	w.writeWith(p, members...)
}

// request appends a request record with the given sub and decision.
func (w *chainWriter) request(sub, decision string) {
	at := w.start.Add(time.Duration(len(w.lines)+10*len(w.files)) * time.Second)
	w.write(kv{"time", at.Format("2006-01-02T15:04:05.000Z07:00")}, kv{"level", "info"}, kv{"event", "request"},
		kv{"route", "orders"}, kv{"decision", decision}, kv{"sub", sub}, kv{"status", 200})
}

// startup appends a startup record.
func (w *chainWriter) startup() {
	w.write(kv{"time", w.start.Format("2006-01-02T15:04:05.000Z07:00")}, kv{"level", "info"}, kv{"event", "startup"})
}

// rotate ends the current file. With restart the new file's first record
// starts a new chain from 64 zeros (a startup record naming the old chain
// in prev_chain); without it, an audit_rotated record continues the chain
// and also names it.
func (w *chainWriter) rotate(restart bool) {
	w.flush()
	last := w.prev
	w.seq = 0
	if restart {
		w.writeWith(zeroChain, kv{"time", w.start.Format("2006-01-02T15:04:05.000Z07:00")}, kv{"level", "info"},
			kv{"event", "startup"}, kv{"prev_chain", last})
		return
	}
	w.writeWith(last, kv{"time", w.start.Format("2006-01-02T15:04:05.000Z07:00")}, kv{"level", "info"},
		kv{"event", "audit_rotated"}, kv{"prev_chain", last})
}

// flush writes the current file and starts a new one.
func (w *chainWriter) flush() {
	w.n++
	p := filepath.Join(w.dir, fmt.Sprintf("audit-%d.log", w.n))
	writeLines(w.t, p, w.lines)
	w.files = append(w.files, p)
	w.lines = nil
}

// done flushes the last file and returns every file, oldest first.
func (w *chainWriter) done() []string {
	w.flush()
	return w.files
}

// writeLines writes lines to path, each followed by a newline.
func writeLines(t testing.TB, path string, lines []string) {
	t.Helper()
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// readLines reads path's lines (without newlines).
func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// syntheticAudit mirrors the conformance kit's syntheticAudit(): six
// SPEC-shaped request records around now.
func syntheticAudit(t testing.TB, now time.Time) []string {
	t.Helper()
	type rec struct {
		decision, route, sub, reason string
		status                       int
	}
	recs := []rec{
		{"allow", "orders", "alice", "", 200},
		{"allow", "orders", "alice", "", 200},
		{"deny", "orders", "bob", "token_expired", 401},
		{"allow", "orders", "alice", "", 200},
		{"deny", "orders", "bob", "token_expired", 401},
		{"public", "docs", "", "", 200},
	}
	var out []string
	for i, r := range recs {
		m := []kv{
			{"time", now.Add(time.Duration(i-10) * time.Second).UTC().Format("2006-01-02T15:04:05.000Z07:00")},
			{"level", "info"}, {"event", "request"}, {"request_id", fmt.Sprintf("req-%d", i)},
			{"route", r.route}, {"method", "GET"}, {"host", "api.example.com"}, {"path", "/" + r.route + "/1"},
			{"client_ip", "192.0.2.1"}, {"status", r.status}, {"decision", r.decision},
		}
		if r.reason != "" {
			m = append(m, kv{"reason", r.reason})
		}
		if r.sub != "" {
			m = append(m, kv{"sub", r.sub})
		}
		if r.decision == "allow" {
			m = append(m, kv{"provider", "main"}, kv{"kid", "kid-a"}, kv{"alg", "RS256"},
				kv{"token_id", "0123456789abcdef"}, kv{"upstream", "http://127.0.0.1:9001"})
		}
		m = append(m, kv{"duration_ms", 1.5}, kv{"bytes_in", 0}, kv{"bytes_out", 10}, kv{"user_agent", "curl/8"})
		out = append(out, line(t, m...))
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
