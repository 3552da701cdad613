package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/config"
)

// testTime is a fixed clock for deterministic records.
var testTime = time.Date(2025, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("X", 3600))

// newKey returns a random 32-byte chain key.
func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// memSink is a thread-safe in-memory sink that remembers every Write and
// can fail or be slow on demand.
type memSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  [][]byte
	failN   int           // fail this many more writes
	failAll bool          // fail every write
	delay   time.Duration // sleep in every write
	fails   int           // failed writes so far
}

var errSinkDown = errors.New("sink down")

func (s *memSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAll || s.failN > 0 {
		if s.failN > 0 {
			s.failN--
		}
		s.fails++
		return 0, errSinkDown
	}
	s.writes = append(s.writes, bytes.Clone(p))
	return s.buf.Write(p)
}

func (s *memSink) set(f func(s *memSink)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *memSink) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}

// checkWrites fails unless every Write held only complete lines.
func (s *memSink) checkWrites(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range s.writes {
		if len(w) == 0 || w[len(w)-1] != '\n' || w[0] == '\n' {
			t.Fatalf("write %d does not hold complete lines: %q", i, w)
		}
	}
}

// stdoutWriter returns a Writer on a memSink.
func stdoutWriter(t testing.TB, cfg config.Audit, opts Options) (*Writer, *memSink) {
	t.Helper()
	sink := &memSink{}
	cfg.Output = OutputStdout
	opts.Stdout = sink
	if opts.Now == nil {
		opts.Now = func() time.Time { return testTime }
	}
	w, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w, sink
}

// splitLines splits output into lines without their newlines and fails on
// an unterminated last line.
func splitLines(t testing.TB, data []byte) [][]byte {
	t.Helper()
	if len(data) == 0 {
		return nil
	}
	if data[len(data)-1] != '\n' {
		t.Fatalf("output does not end with a newline: %q", data[max(0, len(data)-80):])
	}
	return bytes.Split(data[:len(data)-1], []byte{'\n'})
}

// decode parses one line as a JSON object with numbers kept exact and
// returns its members and their order.
func decode(t testing.TB, line []byte) (map[string]any, []string) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("line is not a JSON object: %v: %q", err, line)
	}
	if dec.More() {
		t.Fatalf("line holds more than one JSON value: %q", line)
	}
	// Member order, and no duplicate keys.
	var order []string
	tok := json.NewDecoder(bytes.NewReader(line))
	tok.UseNumber()
	if _, err := tok.Token(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for tok.More() {
		k, err := tok.Token()
		if err != nil {
			t.Fatal(err)
		}
		key := k.(string)
		if seen[key] {
			t.Fatalf("duplicate key %q in %q", key, line)
		}
		seen[key] = true
		order = append(order, key)
		var skip json.RawMessage
		if err := tok.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return m, order
}

// records decodes every line of output.
func records(t testing.TB, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range splitLines(t, data) {
		m, _ := decode(t, l)
		out = append(out, m)
	}
	return out
}

// verifyChain is an implementation of SPEC §6 independent of the package:
// it checks seq and chain of every line, starting from prev and seq 1
// (or startSeq), and returns the last chain.
func verifyChain(key []byte, prev string, startSeq uint64, lines [][]byte) (string, error) {
	seq := startSeq
	for i, line := range lines {
		idx := bytes.LastIndex(line, []byte(`,"chain":"`))
		if idx < 0 || len(line) != idx+len(`,"chain":"`)+64+2 || !bytes.HasSuffix(line, []byte(`"}`)) {
			return "", fmt.Errorf("line %d: chain is not the last member: %q", i+1, line)
		}
		got := string(line[idx+len(`,"chain":"`) : idx+len(`,"chain":"`)+64])
		covered := append(bytes.Clone(line[:idx]), '}')
		m := hmac.New(sha256.New, key)
		m.Write([]byte(prev + "\n"))
		m.Write(covered)
		want := hex.EncodeToString(m.Sum(nil))
		if got != want {
			return "", fmt.Errorf("line %d: chain %s, want %s", i+1, got, want)
		}
		if !bytes.HasSuffix(covered, []byte(fmt.Sprintf(`,"seq":%d}`, seq))) {
			return "", fmt.Errorf("line %d: seq is not %d, or not the member before chain", i+1, seq)
		}
		// prev_chain, when present, names the record right before (SPEC
		// §6), as the read side (auditlog.Verify) insists.
		var pc struct {
			PrevChain *string `json:"prev_chain"`
		}
		if err := json.Unmarshal(line, &pc); err != nil {
			return "", fmt.Errorf("line %d: %v", i+1, err)
		}
		if pc.PrevChain != nil && *pc.PrevChain != prev {
			return "", fmt.Errorf("line %d: prev_chain %s, want the previous chain %s", i+1, *pc.PrevChain, prev)
		}
		seq++
		prev = got
	}
	return prev, nil
}

// auditFiles returns the audit file's rotated backups, oldest first, then
// the file itself.
func auditFiles(t *testing.T, path string) []string {
	t.Helper()
	dir := filepath.Dir(path)
	base := filepath.Base(path)
	ext := filepath.Ext(base)
	prefix := strings.TrimSuffix(base, ext) + "-"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var backups []string
	for _, e := range entries {
		if n := e.Name(); n != base && strings.HasPrefix(n, prefix) && strings.HasSuffix(n, ext) {
			backups = append(backups, filepath.Join(dir, n))
		}
	}
	sort.Strings(backups) // lumberjack's timestamps sort chronologically
	return append(backups, path)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fullRecord sets every Record field.
func fullRecord(i int) *Record {
	return &Record{
		Time:          testTime,
		RequestID:     fmt.Sprintf("req-%d", i),
		Route:         "orders",
		Method:        "GET",
		Host:          "api.example.com",
		Path:          "/orders/1",
		Query:         "access_token=REDACTED&x=1",
		ClientIP:      "203.0.113.9",
		Status:        403,
		GRPCStatus:    7,
		HasGRPCStatus: true,
		Decision:      DecisionDeny,
		DryRun:        true,
		Reason:        ReasonScopeMissing,
		Suspicious:    true,
		Provider:      "corp",
		Iss:           "https://idp.example.com/",
		Sub:           "alice",
		Kid:           "k1",
		Alg:           "ES256",
		JTI:           "jti-1",
		TokenID:       "0123456789abcdef",
		KeyThumbprint: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
		ConfigVersion: "fedcba9876543210",
		Claims: []Claim{
			{Name: "azp", Value: "cli"},
			{Name: "tenant", Value: "acme"},
		},
		Upstream:  "http://127.0.0.1:9001",
		Duration:  12345678 * time.Nanosecond,
		BytesIn:   10,
		BytesOut:  20,
		UserAgent: "curl/8",
	}
}
