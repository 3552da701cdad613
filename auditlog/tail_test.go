package auditlog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSynthetic writes the kit-shaped records (plus one three hours old, for
// --since) and returns the path and the lines.
func writeSynthetic(t *testing.T) (string, []string) {
	t.Helper()
	now := time.Now()
	old := line(t, kv{"time", now.Add(-3 * time.Hour).UTC().Format("2006-01-02T15:04:05.000Z07:00")}, kv{"level", "info"},
		kv{"event", "request"}, kv{"route", "orders"}, kv{"decision", "deny"}, kv{"sub", "old"}, kv{"status", 401},
		kv{"reason", "token_missing"})
	lines := append([]string{old}, syntheticAudit(t, now)...)
	p := filepath.Join(t.TempDir(), "audit.log")
	writeLines(t, p, lines)
	return p, lines
}

// runCmd runs a subcommand and returns its exit code, stdout and stderr.
func runCmd(cmd func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cmd(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func tailCmd(ctx context.Context, args []string, out, errb *bytes.Buffer) int {
	return TailCommand(ctx, args, out, errb)
}

// TestTailJSONFilters pins `audit tail --json` filtering (conformance H20 and
// the brief): each filter keeps exactly the matching records, output is the
// raw matching lines byte for byte, and flags may follow the file.
func TestTailJSONFilters(t *testing.T) {
	p, lines := writeSynthetic(t)
	for _, tc := range []struct {
		name string
		args []string
		want []int // indexes into lines
	}{
		{"decision-deny", []string{"--json", "--decision", "deny", p}, []int{0, 3, 5}},
		{"route-docs", []string{"--json", "--route", "docs", p}, []int{6}},
		{"sub-alice", []string{"--json", "--sub", "alice", p}, []int{1, 2, 4}},
		{"reason-token-expired", []string{"--json", "--reason", "token_expired", p}, []int{3, 5}},
		{"since-1h", []string{"--json", "--since", "1h", "--decision", "deny", p}, []int{3, 5}},
		{"since-rfc3339", []string{"--json", "--since", time.Now().Add(-time.Hour).Format(time.RFC3339), p}, []int{1, 2, 3, 4, 5, 6}},
		{"flags-after-file", []string{p, "--json", "--sub", "bob"}, []int{3, 5}},
		{"last-n", []string{"--json", "-n", "2", "--decision", "allow", p}, []int{2, 4}},
		{"no-match", []string{"--json", "--decision", "anonymous", p}, nil},
		{"all", []string{p, "--json"}, []int{0, 1, 2, 3, 4, 5, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCmd(tailCmd, tc.args...)
			var want strings.Builder
			for _, i := range tc.want {
				want.WriteString(lines[i] + "\n")
			}
			if code != 0 || out != want.String() {
				t.Errorf("tail %q = %d, stderr %q\ngot:\n%s\nwant:\n%s", tc.args, code, errs, out, want.String())
			}
		})
	}
}

// TestTailJSONKeepsRawBytes pins that --json prints the line exactly as
// written (escapes, spacing, member order), not a re-encoding.
func TestTailJSONKeepsRawBytes(t *testing.T) {
	raw := `{"time":"2025-01-01T00:00:00.000Z", "event":"request","decision":"deny","sub":"caf\u00e9","path":"/a\u003cb"}`
	p := filepath.Join(t.TempDir(), "a.log")
	writeLines(t, p, []string{raw})
	code, out, _ := runCmd(tailCmd, "--json", "--sub", "café", p)
	if code != 0 || out != raw+"\n" {
		t.Errorf("tail --json = %d %q, want %q", code, out, raw+"\n")
	}
}

// TestTailSurvivesGarbageAndTruncation pins that a foreign line, an
// over-long line and a truncated last line never stop tail: human mode
// shows them as unparseable, --json skips them with a note on stderr.
func TestTailSurvivesGarbageAndTruncation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.log")
	good := syntheticAudit(t, time.Now())
	content := "not json at all\n" + good[0] + "\n[1,2]\n" + strings.Repeat("x", maxLineBytes+10) + "\n" + good[2] + "\n" + good[3][:30]
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCmd(tailCmd, p)
	if code != 0 {
		t.Fatalf("tail exit %d", code)
	}
	for _, want := range []string{"?? unparseable line (15 bytes)", "?? unparseable line (5 bytes)",
		fmt.Sprintf("?? unparseable line (%d bytes)", maxLineBytes+10), "?? unparseable line (30 bytes)", "alice", "token_expired"} {
		if !strings.Contains(out, want) {
			t.Errorf("tail output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs := runCmd(tailCmd, "--json", p)
	if code != 0 || out != good[0]+"\n"+good[2]+"\n" {
		t.Errorf("tail --json = %d\n%s\nwant the two good lines", code, out)
	}
	if n := strings.Count(errs, "skipped unparseable line"); n != 4 {
		t.Errorf("tail --json stderr has %d skip notes, want 4:\n%s", n, errs)
	}
}

// TestTailHumanLine pins the human view: aligned columns with time,
// decision, status, method, host+path, route, reason, sub, client_ip,
// duration, flags; lifecycle events with their fields.
func TestTailHumanLine(t *testing.T) {
	h := humanFormatter{loc: time.UTC}
	for _, tc := range []struct {
		name, line, want string
	}{
		{
			"deny-request",
			`{"time":"2025-03-01T10:00:01.234Z","event":"request","route":"orders","method":"GET","host":"api.example.com","path":"/orders/1","client_ip":"192.0.2.1","status":401,"decision":"deny","reason":"token_expired","sub":"bob","duration_ms":1.5}`,
			"10:00:01.234  deny      401 GET     api.example.com/orders/1             orders         token_expired          bob              192.0.2.1       1.5ms",
		},
		{
			"dry-run-suspicious-grpc",
			`{"time":"2025-03-01T10:00:01.000Z","event":"request","method":"POST","status":401,"decision":"allow","dry_run":true,"reason":"signature_invalid","suspicious":true,"duration_ms":1234,"grpc_status":16}`,
			"10:00:01.000  allow     401 POST    -                                    -              signature_invalid      -                -               1.23s [dry-run] [suspicious] grpc_status=16",
		},
		{
			"startup",
			`{"level":"info","event":"startup","time":"2025-03-01T10:00:00.000Z","config_version":"abcd","address":":8080","seq":1,"prev_chain":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff","chain":"x"}`,
			"10:00:00.000  startup   config_version=abcd address=:8080 prev_chain=0011223344556677…",
		},
		{
			"jwks-refresh-failed",
			`{"level":"warn","event":"jwks_refresh","time":"2025-03-01T10:00:00.000Z","provider":"corp","result":"failed","error":"fetch: timeout","added":["k1"]}`,
			`10:00:00.000  jwks_refresh level=warn provider=corp result=failed error="fetch: timeout" added=["k1"]`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseRecord([]byte(tc.line))
			if err != nil {
				t.Fatal(err)
			}
			if got := h.format(r); got != tc.want {
				t.Errorf("format() =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestTailEscapesTerminalControlSequences pins that values from requests
// and claims (path, sub, user agent) cannot drive the terminal: ESC, other
// control characters and bidi overrides are shown escaped, never raw.
func TestTailEscapesTerminalControlSequences(t *testing.T) {
	evil := line(t, kv{"time", "2025-03-01T10:00:01.000Z"}, kv{"event", "request"}, kv{"decision", "deny"},
		kv{"path", "/x\x1b]0;pwned\x07\x1b[2J"}, kv{"sub", "adm\u202enimda"}, kv{"route", "r\r\nFAKE"})
	life := line(t, kv{"time", "2025-03-01T10:00:01.000Z"}, kv{"event", "config_reload"}, kv{"error", "bad\x1b[31m"})
	p := filepath.Join(t.TempDir(), "a.log")
	writeLines(t, p, []string{evil, life})
	code, out, _ := runCmd(tailCmd, p)
	if code != 0 {
		t.Fatalf("tail exit %d", code)
	}
	if strings.ContainsAny(out, "\x1b\x07\r\u202e") || strings.Count(out, "\n") != 2 {
		t.Errorf("tail printed raw control characters: %q", out)
	}
	if !strings.Contains(out, `\x1b]0;pwned`) || !strings.Contains(out, `adm\u202enimda`) {
		t.Errorf("tail output does not show the escaped values: %q", out)
	}
}

// TestTailColor pins colouring: allow green, deny red, anonymous/public
// dim, only for a terminal and never with NO_COLOR or into a file or pipe.
func TestTailColor(t *testing.T) {
	h := humanFormatter{color: true, loc: time.UTC}
	for d, code := range map[string]string{"allow": ansiGreen, "deny": ansiRed, "anonymous": ansiDim, "public": ansiDim} {
		r, err := parseRecord([]byte(`{"event":"request","decision":"` + d + `"}`))
		if err != nil {
			t.Fatal(err)
		}
		if got := h.format(r); !strings.Contains(got, code+d) {
			t.Errorf("format(%s) = %q, want colour %q", d, got, code)
		}
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if useColor(f, "") {
		t.Error("useColor(regular file) = true, want false")
	}
	if useColor(&bytes.Buffer{}, "") {
		t.Error("useColor(buffer) = true, want false")
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !useColor(tty, "") || useColor(tty, "1") {
			t.Error("useColor(tty) must be true, and false with NO_COLOR=1")
		}
	}
}

// TestTailFollow pins `tail -f`: appended lines appear, a line written in
// two parts appears once complete, a rotation (rename + new file) is
// followed including lines written to the old file just before it, a
// truncation rewinds, and cancelling ctx ends it with exit 0.
func TestTailFollow(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "audit.log")
	recs := syntheticAudit(t, time.Now())
	writeLines(t, p, recs[:1])

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errb syncBuffer
	opts := tailOptions{follow: true, json: true, last: -1, poll: 10 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- runTail(ctx, p, opts, &out, &errb) }()

	lines := func() int { return strings.Count(out.String(), "\n") }
	waitFor(t, "the existing line", 3*time.Second, func() bool { return lines() == 1 })

	appendTo := func(path, s string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	appendTo(p, recs[1]+"\n")
	waitFor(t, "an appended line", 3*time.Second, func() bool { return lines() == 2 })

	// A record written in two parts is printed once, whole.
	appendTo(p, recs[2][:20])
	time.Sleep(50 * time.Millisecond)
	if lines() != 2 {
		t.Fatalf("a partial line was printed: %q", out.String())
	}
	appendTo(p, recs[2][20:]+"\n")
	waitFor(t, "the completed line", 3*time.Second, func() bool { return lines() == 3 })

	// Rotation: a last line lands in the old file, it is renamed, and a new
	// file takes its place.
	appendTo(p, recs[3]+"\n")
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	writeLines(t, p, recs[4:5])
	waitFor(t, "lines across the rotation", 3*time.Second, func() bool { return lines() == 5 })

	// Truncation in place (copytruncate): read again from the start.
	if err := os.WriteFile(p, []byte(recs[5]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the line after truncation", 3*time.Second, func() bool { return lines() == 6 })

	want := strings.Join(recs, "\n") + "\n"
	if out.String() != want {
		t.Errorf("followed output =\n%s\nwant\n%s", out.String(), want)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runTail() after cancel = %v, want nil", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("runTail did not return after ctx was cancelled")
	}
}

// TestTailCommandFollowExitsZeroOnCancel pins that `audit tail -f` through
// the command entry point prints the last N records, keeps following, and
// exits 0 when ctx is cancelled (SIGINT).
func TestTailCommandFollowExitsZeroOnCancel(t *testing.T) {
	p, lines := writeSynthetic(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- TailCommand(ctx, []string{"-f", "-n", "1", "--json", p}, &out, &errb) }()
	waitFor(t, "the last record", 3*time.Second, func() bool { return out.String() == lines[len(lines)-1]+"\n" })
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, lines[1])
	f.Close()
	waitFor(t, "the appended record", 3*time.Second, func() bool { return strings.Count(out.String(), "\n") == 2 })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("TailCommand -f after cancel = %d, want 0 (stderr %s)", code, errb.String())
		}
	case <-time.After(3 * time.Second):
		t.Fatal("TailCommand -f did not return after cancel")
	}
}

// TestTailUsage pins the exit codes of `audit tail`: -h 0, bad usage 2, an
// unreadable file 1.
func TestTailUsage(t *testing.T) {
	p, _ := writeSynthetic(t)
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"-h"}, 0},
		{"no-file", []string{"--json"}, 2},
		{"two-files", []string{p, p}, 2},
		{"bad-since", []string{"--since", "yesterday", p}, 2},
		{"bad-n", []string{"-n", "x", p}, 2},
		{"missing-file", []string{filepath.Join(t.TempDir(), "nope")}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, errs := runCmd(tailCmd, tc.args...); code != tc.want {
				t.Errorf("tail %q = %d, want %d (stderr %s)", tc.args, code, tc.want, errs)
			}
		})
	}
}

// TestParseArgsInterleaved pins that flags and files may be mixed and that
// "--" ends flag parsing.
func TestParseArgsInterleaved(t *testing.T) {
	fs := newFlagSet("x", "x", &bytes.Buffer{})
	j := fs.Bool("json", false, "")
	d := fs.String("decision", "", "")
	pos, err := parseArgs(fs, []string{"a", "--json", "b", "--decision", "deny", "--", "--c"})
	if err != nil || !*j || *d != "deny" || strings.Join(pos, " ") != "a b --c" {
		t.Errorf("parseArgs() = %q, %v (json %v, decision %q)", pos, err, *j, *d)
	}
}

// TestParseWhen pins --since/--until: durations before now (with days) and
// RFC 3339 times.
func TestParseWhen(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"1h", now.Add(-time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"2025-03-01T00:00:00Z", time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)},
	} {
		got, err := parseWhen(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if _, err := parseWhen("soon", now); err == nil {
		t.Error(`parseWhen("soon") succeeded, want an error`)
	}
}

// jsonValid reports whether s is one JSON value (used by the fuzz target).
func jsonValid(s []byte) bool { return json.Valid(s) }

// TestTailRecoversRecordAfterCutLine pins the crash case: a writer died
// mid-record (no newline) and after a restart appended the next record to
// the same line. tail shows the cut part as unparseable and still shows the
// record; report counts both.
func TestTailRecoversRecordAfterCutLine(t *testing.T) {
	recs := syntheticAudit(t, time.Now())
	p := filepath.Join(t.TempDir(), "a.log")
	cut := recs[0][:25]
	if err := os.WriteFile(p, []byte(cut+recs[2]+"\n"+recs[3]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCmd(tailCmd, p)
	if code != 0 || !strings.HasPrefix(out, "?? unparseable line (25 bytes)\n") || strings.Count(out, "token_expired") != 1 || strings.Count(out, "\n") != 3 {
		t.Errorf("tail = %d\n%s\nwant the cut part, then the deny and allow records", code, out)
	}
	code, out, errs := runCmd(tailCmd, "--json", "--decision", "deny", p)
	if code != 0 || out != recs[2]+"\n" || !strings.Contains(errs, "(25 bytes)") {
		t.Errorf("tail --json = %d %q (stderr %q), want the deny record's raw bytes", code, out, errs)
	}
	s, err := Summarize([]string{p}, time.Time{}, time.Time{})
	if err != nil || s.Unparseable != 1 || s.Requests != 2 || s.ByDecision["deny"] != 1 {
		t.Errorf("Summarize() = %+v, %v; want 1 unparseable and 2 requests", s, err)
	}
}
