package auditlog_test

// These tests cross-check the two independent implementations of SPEC §5
// and §6: records written by the audit package's Writer (the gateway's write
// side) must verify with this package's Verify (the auditor's read side),
// through restarts, rotation, crashes and write failures; and tampering
// with what the Writer wrote must be caught at the right file and line.
// They live in the external test package so that importing audit here does
// not make auditlog itself depend on the writer.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/audit"
	"github.com/jwtgate/jwtgate/auditlog"
	"github.com/jwtgate/jwtgate/config"
)

// chainKey returns a fresh 32-byte chain key.
func chainKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// openWriter starts an audit.Writer on the file at path, rotating at
// rotateBytes (0: the default size).
func openWriter(t testing.TB, path string, key []byte, rotateBytes int64) *audit.Writer {
	t.Helper()
	w, err := audit.New(config.Audit{Output: audit.OutputFile, File: path},
		audit.Options{ChainKey: key, RotateBytes: rotateBytes, ConfigVersion: "cfg-v1"})
	if err != nil {
		t.Fatalf("audit.New() error = %v", err)
	}
	return w
}

// request returns the request record numbered i: a mix of decisions.
func request(i int) *audit.Record {
	r := &audit.Record{
		RequestID: fmt.Sprintf("req-%d", i), Route: "orders", Method: "GET",
		Host: "api.example.com", Path: fmt.Sprintf("/orders/%d", i), ClientIP: "192.0.2.7",
		Status: 200, Decision: audit.DecisionAllow, Provider: "corp", Iss: "https://idp.example.com/",
		Sub: fmt.Sprintf("user-%d", i%7), Kid: "k1", Alg: "ES256", TokenID: "0123456789abcdef",
		Duration: 1500 * time.Microsecond, BytesOut: 42, UserAgent: "test",
	}
	if i%5 == 0 {
		r.Status, r.Decision, r.Reason = 401, audit.DecisionDeny, audit.ReasonSignatureInvalid
		r.Suspicious = true
	}
	return r
}

// runProcess is one gateway process's life on the audit file: startup,
// n request records, shutdown.
func runProcess(t testing.TB, path string, key []byte, rotateBytes int64, first, n int) {
	t.Helper()
	w := openWriter(t, path, key, rotateBytes)
	w.Startup(audit.StartupInfo{Version: "test"})
	for i := first; i < first+n; i++ {
		w.Request(request(i))
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush() error = %v", err)
	}
	w.Shutdown(audit.ShutdownInfo{Reason: "test", Records: w.Written(), Dropped: w.Dropped()})
	if err := w.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
}

// logFiles returns the audit files of path oldest first: lumberjack's
// timestamped backups (audit-<time>.log, which sort by time), then path.
func logFiles(t testing.TB, path string) []string {
	t.Helper()
	ext := filepath.Ext(path)
	backups, err := filepath.Glob(strings.TrimSuffix(path, ext) + "-*" + ext)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(backups)
	return append(backups, path)
}

// fileLines returns the lines of a file without their newlines.
func fileLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// countLines counts the lines of all files.
func countLines(t testing.TB, files []string) int {
	t.Helper()
	n := 0
	for _, f := range files {
		n += len(fileLines(t, f))
	}
	return n
}

// member decodes one member of a JSON line.
func member(t testing.TB, line, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return m[name]
}

// mustVerify runs Verify and fails unless the chain is intact.
func mustVerify(t testing.TB, key []byte, files []string) auditlog.Result {
	t.Helper()
	res, err := auditlog.Verify(key, files)
	if err != nil {
		t.Fatalf("Verify(%v) error = %v", files, err)
	}
	if res.Broken != nil {
		t.Fatalf("Verify(%v) broken at %s, want intact", files, res.Broken)
	}
	return res
}

// TestWriterChainVerifiesAcrossRestartsAndRotation pins SPEC §6 end to
// end between the two implementations: three processes append to one file
// (the chain continues across restarts, each startup naming the previous
// chain), the third rotating many times; Verify over all files in order
// finds every record intact, and every rotated file verifies on its own,
// continuing from the previous file's last chain.
func TestWriterChainVerifiesAcrossRestartsAndRotation(t *testing.T) {
	key := chainKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	runProcess(t, path, key, 0, 0, 50)
	runProcess(t, path, key, 0, 50, 50)
	if files := logFiles(t, path); len(files) != 1 {
		t.Fatalf("restarts made files %v, want one appended file", files)
	}
	lines := fileLines(t, path)
	if got, want := member(t, lines[52], "prev_chain"), member(t, lines[51], "chain"); member(t, lines[52], "event") != "startup" || got != want {
		t.Fatalf("second startup prev_chain = %v, want the previous chain %v", got, want)
	}
	runProcess(t, path, key, 8<<10, 100, 400)

	files := logFiles(t, path)
	if len(files) < 4 {
		t.Fatalf("got files %v, want several rotations", files)
	}
	res := mustVerify(t, key, files)
	if want := countLines(t, files); res.Records != want || res.Files != len(files) {
		t.Errorf("Verify() = %d records in %d files, want %d in %d", res.Records, res.Files, want, len(files))
	}
	if res.ContinuesFrom != "" {
		t.Errorf("ContinuesFrom = %q, want none: the first file starts the chain", res.ContinuesFrom)
	}
	for i := 1; i < len(files); i++ {
		t.Run(fmt.Sprintf("file-%d-alone", i), func(t *testing.T) {
			prev := fileLines(t, files[i-1])
			cur := fileLines(t, files[i])
			if ev := member(t, cur[0], "event"); ev != "audit_rotated" {
				t.Fatalf("%s starts with %v, want audit_rotated", files[i], ev)
			}
			res := mustVerify(t, key, files[i:i+1])
			if want := member(t, prev[len(prev)-1], "chain"); res.ContinuesFrom != want {
				t.Errorf("ContinuesFrom = %q, want the previous file's last chain %v", res.ContinuesFrom, want)
			}
			if res.Records != len(cur) {
				t.Errorf("Records = %d, want %d", res.Records, len(cur))
			}
		})
	}
}

// TestWriterRestartOnOversizedFileVerifies pins a restart whose file is
// already over the rotation size (max_size_mb lowered between runs): the
// Writer rotates before the startup record, and the new file's
// audit_rotated and startup records must both satisfy Verify's rule that
// prev_chain names the record right before.
func TestWriterRestartOnOversizedFileVerifies(t *testing.T) {
	key := chainKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	runProcess(t, path, key, 0, 0, 40)
	runProcess(t, path, key, 2<<10, 40, 5)
	files := logFiles(t, path)
	if len(files) < 2 {
		t.Fatalf("files = %v, want the oversized file rotated away", files)
	}
	res := mustVerify(t, key, files)
	if want := countLines(t, files); res.Records != want {
		t.Errorf("Records = %d, want %d", res.Records, want)
	}
	mustVerify(t, key, files[1:])
}

// TestWriterRestartAfterCrashMidLineVerifies pins the crash case: a process
// died half-way through writing a line. The next run rotates that file
// away and chains its audit_rotated record from the last complete record;
// Verify accepts the interrupted line at the end of the older file (the
// chain never committed to it) because the next file continues from the
// record before it, and reports it as a note.
func TestWriterRestartAfterCrashMidLineVerifies(t *testing.T) {
	key := chainKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	runProcess(t, path, key, 0, 0, 10)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"time":"2025-01-01T00:00:00.000Z","level":"info","event":"requ`); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	runProcess(t, path, key, 0, 10, 10)
	files := logFiles(t, path)
	if len(files) != 2 {
		t.Fatalf("files = %v, want the crashed file rotated away", files)
	}
	res := mustVerify(t, key, files)
	if want := countLines(t, files) - 1; res.Records != want {
		t.Errorf("Records = %d, want %d (every line but the interrupted one)", res.Records, want)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].File != files[0] || res.Skipped[0].Line != 13 {
		t.Errorf("Skipped = %v, want %s:13", res.Skipped, files[0])
	}

	// The interrupted line is tolerated only as the last line of a file
	// that the next file continues from: the same bytes as the last line
	// of the newest file are reported.
	res, err = auditlog.Verify(key, files[:1])
	if err != nil {
		t.Fatal(err)
	}
	if res.Broken == nil || res.Broken.File != files[0] || res.Broken.Line != 13 {
		t.Errorf("Verify(crashed file alone) = %v, want a break at %s:13", res.Broken, files[0])
	}
}

// TestChainKeyChangeStartsVerifiableFile pins a change of the chain key
// between runs: continuing the old chain with the new key would leave
// records that neither key verifies, so the Writer starts a new file whose
// chain the new key verifies from its first record, while the old file
// still verifies with the old key.
func TestChainKeyChangeStartsVerifiableFile(t *testing.T) {
	oldKey, newKey := chainKey(t), chainKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	runProcess(t, path, oldKey, 0, 0, 5)
	runProcess(t, path, oldKey, 0, 5, 5) // same key: appended
	runProcess(t, path, newKey, 0, 10, 5)
	files := logFiles(t, path)
	if len(files) != 2 {
		t.Fatalf("files = %v, want the old-key file rotated away", files)
	}
	if res := mustVerify(t, oldKey, files[:1]); res.Records != 14 {
		t.Errorf("old file: %d records verified with the old key, want 14", res.Records)
	}
	res := mustVerify(t, newKey, files[1:])
	if res.ContinuesFrom != "" || res.Records != len(fileLines(t, files[1])) {
		t.Errorf("new file with the new key: %+v, want every record, starting a chain", res)
	}
	if res, err := auditlog.Verify(newKey, files); err != nil || res.Broken == nil || res.Broken.File != files[0] || res.Broken.Line != 1 {
		t.Errorf("Verify(new key, all files) = %+v, %v; want a break at %s:1", res, err, files[0])
	}
}

// failOnce is a sink whose first failing write puts only part of the batch
// on the sink, as a full disk does.
type failOnce struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	failAt int // the write that fails half-way
}

func (f *failOnce) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if f.writes == f.failAt {
		n := len(p) / 2
		f.buf.Write(p[:n])
		return n, errors.New("no space left on device")
	}
	return f.buf.Write(p)
}

func (f *failOnce) bytes() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.buf.Bytes())
}

// TestDropModePartialWriteVerifies pins on_write_error "drop" with a write
// that fails half-way (a full disk): the Writer ends the partial line,
// counts the lost records, chains the next records (an audit_dropped record
// first) from the last complete one, and Verify accepts the result while
// naming the partial line.
func TestDropModePartialWriteVerifies(t *testing.T) {
	key := chainKey(t)
	sink := &failOnce{failAt: 2}
	w, err := audit.New(config.Audit{Output: audit.OutputStdout, OnWriteError: audit.OnErrorDrop},
		audit.Options{ChainKey: key, Stdout: sink})
	if err != nil {
		t.Fatal(err)
	}
	w.Startup(audit.StartupInfo{Version: "test"})
	_ = w.Flush()
	for i := range 20 {
		w.Request(request(i))
	}
	if err := w.Flush(); err == nil {
		t.Fatal("Flush() error = nil, want the sink's error")
	}
	for i := 20; i < 25; i++ {
		w.Request(request(i))
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	if w.Dropped() == 0 {
		t.Fatal("Dropped() = 0, want the records of the failed write counted")
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, sink.bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := fileLines(t, path)
	res := mustVerify(t, key, []string{path})
	if len(res.Skipped) != 1 {
		t.Fatalf("Skipped = %v, want the one partial line", res.Skipped)
	}
	if got := lines[res.Skipped[0].Line-1]; json.Valid([]byte(got)) {
		t.Errorf("skipped line %d = %q, want the partial one", res.Skipped[0].Line, got)
	}
	if ev := member(t, lines[res.Skipped[0].Line], "event"); ev != "audit_dropped" {
		t.Errorf("record after the partial line is %v, want audit_dropped", ev)
	}
	if res.Records != len(lines)-1 {
		t.Errorf("Records = %d, want %d", res.Records, len(lines)-1)
	}
}

// TestVerifyCatchesTamperingWithWriterOutput pins issue 4's tamper test on
// real Writer output spread over rotated files: an edited, deleted,
// inserted, swapped or truncated line, a missing file and files out of
// order are each reported by Verify at the right file and line.
func TestVerifyCatchesTamperingWithWriterOutput(t *testing.T) {
	key := chainKey(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	runProcess(t, path, key, 0, 0, 10)
	runProcess(t, path, key, 6<<10, 10, 60)
	orig := logFiles(t, path)
	if len(orig) < 4 {
		t.Fatalf("files = %v, want at least 4", orig)
	}
	content := make([][]string, len(orig))
	for i, f := range orig {
		content[i] = fileLines(t, f)
	}
	mustVerify(t, key, orig)

	type where struct{ file, line int }
	cases := []struct {
		name   string
		mutate func(c [][]string) [][]string // c is a deep copy
		order  func(names []string) []string // nil: as written
		want   where
	}{
		{"edit-decision", func(c [][]string) [][]string {
			c[1][3] = strings.Replace(c[1][3], `"decision":"deny"`, `"decision":"allow"`, 1)
			c[1][3] = strings.Replace(c[1][3], `"sub":"user-`, `"sub":"admin-`, 1)
			return c
		}, nil, where{1, 4}},
		{"edit-first-line-of-first-file", func(c [][]string) [][]string {
			c[0][0] = strings.Replace(c[0][0], `"version":"test"`, `"version":"evil"`, 1)
			return c
		}, nil, where{0, 1}},
		{"edit-seq-number", func(c [][]string) [][]string {
			c[2][4] = strings.Replace(c[2][4], `"seq":5,`, `"seq":6,`, 1)
			return c
		}, nil, where{2, 5}},
		{"delete-line", func(c [][]string) [][]string {
			c[1] = slices.Delete(c[1], 2, 3)
			return c
		}, nil, where{1, 3}},
		{"delete-first-line-of-file", func(c [][]string) [][]string {
			c[2] = c[2][1:]
			return c
		}, nil, where{2, 1}},
		{"delete-last-line-of-older-file", func(c [][]string) [][]string {
			c[1] = c[1][:len(c[1])-1]
			return c
		}, nil, where{2, 1}},
		{"insert-copy-of-line", func(c [][]string) [][]string {
			c[1] = slices.Insert(c[1], 4, c[1][2])
			return c
		}, nil, where{1, 5}},
		{"insert-forged-record", func(c [][]string) [][]string {
			forged := strings.Replace(c[1][2], `"request_id":"`, `"request_id":"forged-`, 1)
			c[1] = slices.Insert(c[1], 3, forged)
			return c
		}, nil, where{1, 4}},
		{"swap-adjacent-lines", func(c [][]string) [][]string {
			c[1][2], c[1][3] = c[1][3], c[1][2]
			return c
		}, nil, where{1, 3}},
		{"truncate-mid-line-of-newest-file", func(c [][]string) [][]string {
			last := len(c) - 1
			l := c[last][len(c[last])-1]
			c[last][len(c[last])-1] = l[:len(l)/2] + "\x00"
			return c
		}, nil, where{-1, -1}},
		{"truncate-older-file-mid-line", func(c [][]string) [][]string {
			l := c[1][len(c[1])-1]
			c[1][len(c[1])-1] = l[:len(l)/2] + "\x00"
			return c
		}, nil, where{1, -1}},
		{"file-missing", nil, func(n []string) []string {
			return slices.Delete(slices.Clone(n), 1, 2)
		}, where{1, 1}},
		{"files-out-of-order", nil, func(n []string) []string {
			n = slices.Clone(n)
			n[1], n[2] = n[2], n[1]
			return n
		}, where{1, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := make([][]string, len(content))
			for i := range content {
				c[i] = slices.Clone(content[i])
			}
			if tc.mutate != nil {
				c = tc.mutate(c)
			}
			tdir := t.TempDir()
			names := make([]string, len(c))
			for i, ls := range c {
				names[i] = filepath.Join(tdir, filepath.Base(orig[i]))
				data := strings.Join(ls, "\n") + "\n"
				// "\x00" marks a line cut short: no newline after it.
				data = strings.Replace(data, "\x00\n", "", 1)
				if err := os.WriteFile(names[i], []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			wantFile, wantLine := tc.want.file, tc.want.line
			if wantFile < 0 {
				wantFile = len(names) - 1
			}
			if wantLine < 0 {
				wantLine = len(c[wantFile])
			}
			given := names
			if tc.order != nil {
				given = tc.order(names)
			}
			res, err := auditlog.Verify(key, given)
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if res.Broken == nil {
				t.Fatalf("Verify() found the chain intact, want a break at %s:%d", given[wantFile], wantLine)
			}
			if res.Broken.File != given[wantFile] || res.Broken.Line != wantLine {
				t.Errorf("Verify() break = %s, want %s:%d", res.Broken, given[wantFile], wantLine)
			}
		})
	}
}

// TestHundredThousandRecordsThroughRotation pins issue 4's no-loss test:
// 100,000 request records from concurrent callers, written by audit.Writer
// through many rotations, all verify with auditlog.Verify, and each
// request appears exactly once.
func TestHundredThousandRecordsThroughRotation(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	key := chainKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	w := openWriter(t, path, key, 4<<20)
	w.Startup(audit.StartupInfo{Version: "test"})
	const workers = 8
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := g; i < n; i += workers {
				w.Request(request(i))
			}
		})
	}
	wg.Wait()
	// No Flush: Close must write everything still buffered.
	if err := w.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	if w.Dropped() != 0 {
		t.Errorf("Dropped() = %d, want 0", w.Dropped())
	}
	files := logFiles(t, path)
	if len(files) < 3 {
		t.Fatalf("files = %v, want several rotations", files)
	}
	res := mustVerify(t, key, files)
	if want := n + 1 + len(files) - 1; res.Records != want {
		t.Errorf("Verify() Records = %d, want %d (requests, startup, one audit_rotated per rotation)", res.Records, want)
	}
	if uint64(res.Records) != w.Written() {
		t.Errorf("Verify() Records = %d, Writer.Written() = %d", res.Records, w.Written())
	}
	seen := make([]bool, n)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for l := range bytes.Lines(data) {
			_, after, ok := bytes.Cut(l, []byte(`"request_id":"req-`))
			if !ok {
				continue
			}
			var i int
			if _, err := fmt.Sscanf(string(after), "%d", &i); err != nil || i < 0 || i >= n || seen[i] {
				t.Fatalf("%s: request id %q unexpected or repeated", f, after[:min(len(after), 12)])
			}
			seen[i] = true
		}
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("req-%d missing", i)
		}
	}
}

// TestRecordsFlushedOnCloseAndRotation pins "records are flushed on
// shutdown and on rotation": records handed in just before Close are on
// disk after it without any Flush, and at every rotation boundary the
// older file ends with a complete line and the newer one begins with its
// audit_rotated record, so nothing is held back or split.
func TestRecordsFlushedOnCloseAndRotation(t *testing.T) {
	key := chainKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	w := openWriter(t, path, key, 4<<10)
	for i := range 100 {
		w.Request(request(i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files := logFiles(t, path)
	if len(files) < 3 {
		t.Fatalf("files = %v, want rotations", files)
	}
	requests := 0
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 || data[len(data)-1] != '\n' {
			t.Errorf("%s does not end with a complete line", f)
		}
		lines := fileLines(t, f)
		if i > 0 && member(t, lines[0], "event") != "audit_rotated" {
			t.Errorf("%s starts with %v, want audit_rotated", f, member(t, lines[0], "event"))
		}
		for _, l := range lines {
			if member(t, l, "event") == "request" {
				requests++
			}
		}
	}
	if requests != 100 {
		t.Errorf("request records on disk = %d, want 100", requests)
	}
	mustVerify(t, key, files)
}

// TestVerifyCommandOnWriterOutput pins the CLI contract on real Writer
// output: exit 0 with the record count and the full last chain on an
// intact trail; with --anchor set to a chain saved earlier, exit 0 while
// that record is present and exit 1 once the newest records (including it)
// were removed — the one tampering a chain alone cannot show; exit 1 with
// FILE:LINE on stdout when a line was edited.
func TestVerifyCommandOnWriterOutput(t *testing.T) {
	key := chainKey(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "chain.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	runProcess(t, path, key, 0, 0, 5)
	verify := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := auditlog.VerifyCommand(t.Context(), append([]string{"--key-file", keyFile}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	lines := fileLines(t, path)
	last := member(t, lines[len(lines)-1], "chain").(string)
	code, out, errOut := verify(path)
	if want := fmt.Sprintf("ok: 7 records in 1 files, chain intact, last chain %s (seq 7)\n", last); code != 0 || out != want {
		t.Fatalf("verify = %d %q (stderr %q), want 0 %q", code, out, errOut, want)
	}

	// The operator keeps the chain of the last record off the host.
	anchor := last
	if code, out, _ := verify("--anchor", anchor, path); code != 0 || !strings.Contains(out, "anchor "+anchor+" found") {
		t.Errorf("verify --anchor (present) = %d %q, want 0 and found", code, out)
	}
	cut := filepath.Join(dir, "cut.log")
	if err := os.WriteFile(cut, []byte(strings.Join(lines[:len(lines)-2], "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := verify(cut); code != 0 {
		t.Errorf("verify of a trail missing its newest records = %d, want 0: a chain alone cannot see it", code)
	}
	if code, out, _ := verify("--anchor", anchor, cut); code != 1 || !strings.Contains(out, "anchor "+anchor+" not found") {
		t.Errorf("verify --anchor (newest records removed) = %d %q, want 1 and not found", code, out)
	}
	if code, _, _ := verify("--anchor", "not-a-chain", path); code != 2 {
		t.Errorf("verify --anchor not-a-chain = %d, want 2", code)
	}

	lines[1] = strings.Replace(lines[1], `"status":401`, `"status":200`, 1)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = verify(path)
	if want := path + ":2: "; code != 1 || !strings.HasPrefix(out, want) {
		t.Errorf("verify of an edited file = %d %q, want 1 and a line starting with %q", code, out, want)
	}
}

var _ io.Writer = (*failOnce)(nil)
