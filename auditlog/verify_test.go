package auditlog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// threeFiles writes a chained log of three files (rotations continue the
// chain) and returns the writer and the files, oldest first: file 0 holds a
// startup and 5 requests, files 1 and 2 an audit_rotated record and 4
// requests each.
func threeFiles(t *testing.T, key []byte) (*chainWriter, []string) {
	t.Helper()
	w := newChainWriter(t, key)
	w.startup()
	for _, s := range []string{"alice", "bob", "alice", "carol", "alice"} {
		w.request(s, "allow")
	}
	for range 2 {
		w.rotate(false)
		for _, s := range []string{"dave", "erin", "frank", "grace"} {
			w.request(s, "deny")
		}
	}
	return w, w.done()
}

// edit rewrites file's lines with fn.
func edit(t *testing.T, file string, fn func([]string) []string) {
	t.Helper()
	writeLines(t, file, fn(readLines(t, file)))
}

// TestVerifyIntactChain pins that an untouched multi-file chain verifies,
// with the record and file counts and the last chain value reported.
func TestVerifyIntactChain(t *testing.T) {
	key := newKey(t)
	w, files := threeFiles(t, key)
	res, err := Verify(key, files)
	if err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	if res.Broken != nil {
		t.Fatalf("Verify() broken at %v, want intact", res.Broken)
	}
	if res.Records != 16 || res.Files != 3 || res.LastChain != w.prev || res.ContinuesFrom != "" {
		t.Errorf("Verify() = %+v, want 16 records, 3 files, last chain %s", res, w.prev)
	}
}

// TestVerifyRestartedChainAcrossFiles pins the second rotation form of SPEC
// §6: a later file may start a new chain from 64 zeros with a startup record
// whose prev_chain names the previous file's last chain.
func TestVerifyRestartedChainAcrossFiles(t *testing.T) {
	key := newKey(t)
	w := newChainWriter(t, key)
	w.startup()
	w.request("alice", "allow")
	w.rotate(true)
	w.request("bob", "deny")
	files := w.done()
	res, err := Verify(key, files)
	if err != nil || res.Broken != nil || res.Records != 4 {
		t.Fatalf("Verify() = %+v, %v; want 4 intact records", res, err)
	}
}

// TestVerifyDetectsTampering pins SPEC §6: any edited, removed, reordered or
// inserted line, a truncated line, a missing or reordered file, is reported
// at the right file and line.
func TestVerifyDetectsTampering(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tamper   func(t *testing.T, files []string) []string // returns the files to verify
		wantFile int                                         // index into the original files
		wantLine int
		want     string
	}{
		{
			name: "edited-value",
			tamper: func(t *testing.T, f []string) []string {
				edit(t, f[0], func(l []string) []string { l[2] = strings.Replace(l[2], `"bob"`, `"mallory"`, 1); return l })
				return f
			},
			wantFile: 0, wantLine: 3, want: "chain mismatch",
		},
		{
			name: "edited-decision-in-later-file",
			tamper: func(t *testing.T, f []string) []string {
				edit(t, f[1], func(l []string) []string { l[1] = strings.Replace(l[1], `"deny"`, `"allow"`, 1); return l })
				return f
			},
			wantFile: 1, wantLine: 2, want: "chain mismatch",
		},
		{
			name: "deleted-line",
			tamper: func(t *testing.T, f []string) []string {
				edit(t, f[0], func(l []string) []string { return slices.Delete(l, 2, 3) })
				return f
			},
			wantFile: 0, wantLine: 3, want: "seq 4 after 2 (record removed",
		},
		{
			name: "deleted-first-line",
			tamper: func(t *testing.T, f []string) []string {
				edit(t, f[0], func(l []string) []string { return l[1:] })
				return f
			},
			wantFile: 0, wantLine: 1, want: "chain mismatch",
		},
		{
			name: "inserted-copy-of-earlier-line",
			tamper: func(t *testing.T, f []string) []string {
				edit(t, f[0], func(l []string) []string { return slices.Insert(l, 4, l[1]) })
				return f
			},
			wantFile: 0, wantLine: 5, want: "seq 2 after 4 (duplicate or reordered)",
		},
		{
			name: "inserted-forged-line",
			tamper: func(t *testing.T, f []string) []string {
				// A well-formed record with the right seq, chained with a
				// key the attacker made up.
				forger := newChainWriter(t, newKey(t))
				for range 4 {
					forger.request("x", "allow")
				}
				forger.request("mallory", "allow")
				edit(t, f[0], func(l []string) []string { return slices.Insert(l, 4, forger.lines[4]) })
				return f
			},
			wantFile: 0, wantLine: 5, want: "chain mismatch",
		},
		{
			name: "two-lines-swapped",
			tamper: func(t *testing.T, f []string) []string {
				edit(t, f[0], func(l []string) []string { l[2], l[3] = l[3], l[2]; return l })
				return f
			},
			wantFile: 0, wantLine: 3, want: "seq 4 after 2",
		},
		{
			name: "truncated-last-line",
			tamper: func(t *testing.T, f []string) []string {
				b, err := os.ReadFile(f[2])
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f[2], b[:len(b)-40], 0o600); err != nil {
					t.Fatal(err)
				}
				return f
			},
			wantFile: 2, wantLine: 5, want: "not JSON (truncated or foreign line)",
		},
		{
			name: "blank-line-inserted",
			tamper: func(t *testing.T, f []string) []string {
				edit(t, f[1], func(l []string) []string { return slices.Insert(l, 2, "") })
				return f
			},
			wantFile: 1, wantLine: 3, want: "not JSON",
		},
		{
			name: "chain-member-removed",
			tamper: func(t *testing.T, f []string) []string {
				edit(t, f[0], func(l []string) []string {
					i := strings.LastIndex(l[1], `,"chain":`)
					l[1] = l[1][:i] + "}"
					return l
				})
				return f
			},
			wantFile: 0, wantLine: 2, want: "missing chain",
		},
		{
			name: "chain-member-not-last",
			tamper: func(t *testing.T, f []string) []string {
				edit(t, f[0], func(l []string) []string { l[1] = strings.TrimSuffix(l[1], "}") + `,"x":1}`; return l })
				return f
			},
			wantFile: 0, wantLine: 2, want: "malformed chain",
		},
		{
			name:     "file-missing-in-the-middle",
			tamper:   func(t *testing.T, f []string) []string { return []string{f[0], f[2]} },
			wantFile: 2, wantLine: 1, want: "does not continue from the previous file",
		},
		{
			name:     "files-reordered",
			tamper:   func(t *testing.T, f []string) []string { return []string{f[1], f[0], f[2]} },
			wantFile: 0, wantLine: 1, want: "does not continue from the previous file",
		},
		{
			name:     "last-two-files-swapped",
			tamper:   func(t *testing.T, f []string) []string { return []string{f[0], f[2], f[1]} },
			wantFile: 2, wantLine: 1, want: "does not continue from the previous file",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := newKey(t)
			_, files := threeFiles(t, key)
			res, err := Verify(key, tc.tamper(t, slices.Clone(files)))
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if res.Broken == nil {
				t.Fatalf("Verify() found the chain intact (%d records), want a break at %s:%d", res.Records, files[tc.wantFile], tc.wantLine)
			}
			b := res.Broken
			if b.File != files[tc.wantFile] || b.Line != tc.wantLine || !strings.Contains(b.Reason, tc.want) {
				t.Errorf("Verify() broken at %v, want %s:%d: …%s…", b, files[tc.wantFile], tc.wantLine, tc.want)
			}
		})
	}
}

// TestVerifyWrongKeyFails pins that a chain only verifies with its own key
// (an attacker without the key cannot re-chain an edited log).
func TestVerifyWrongKeyFails(t *testing.T) {
	_, files := threeFiles(t, newKey(t))
	res, err := Verify(newKey(t), files)
	if err != nil {
		t.Fatal(err)
	}
	if res.Broken == nil || res.Broken.File != files[0] || res.Broken.Line != 1 {
		t.Fatalf("Verify(other key) = %+v, want a break at %s:1", res, files[0])
	}
}

// TestVerifyShortKeyRejected pins SPEC §6: a chain key has at least 32 bytes.
func TestVerifyShortKeyRejected(t *testing.T) {
	_, err := Verify(make([]byte, 31), nil)
	if !errors.Is(err, ErrKeyTooShort) {
		t.Fatalf("Verify(31-byte key) error = %v, want ErrKeyTooShort", err)
	}
}

// TestVerifyLaterFileAloneContinues pins that a rotated file can be checked
// on its own: its first record names the earlier chain in prev_chain, which
// Verify reports in ContinuesFrom.
func TestVerifyLaterFileAloneContinues(t *testing.T) {
	key := newKey(t)
	_, files := threeFiles(t, key)
	res, err := Verify(key, files[2:])
	if err != nil || res.Broken != nil {
		t.Fatalf("Verify(last file) = %+v, %v; want intact", res, err)
	}
	if res.ContinuesFrom == "" || res.Records != 5 {
		t.Errorf("Verify(last file) = %+v, want 5 records continuing an earlier chain", res)
	}
}

// TestVerifyRemovedTailNeedsAnchor documents the limit of any hash chain:
// removing the newest records leaves an intact shorter chain, which shows
// only as a different last chain value — the value verify prints so it can
// be compared with one kept elsewhere.
func TestVerifyRemovedTailNeedsAnchor(t *testing.T) {
	key := newKey(t)
	w, files := threeFiles(t, key)
	edit(t, files[2], func(l []string) []string { return l[:len(l)-1] })
	res, err := Verify(key, files)
	if err != nil || res.Broken != nil {
		t.Fatalf("Verify() = %+v, %v", res, err)
	}
	if res.LastChain == w.prev || res.Records != 15 {
		t.Errorf("Verify() last chain %s records %d, want a different last chain and 15 records", res.LastChain, res.Records)
	}
}

// TestVerifyCommand pins the CLI contract of `audit verify`: the ok line,
// FILE:LINE on a break with exit 1, flags after files, and usage errors.
func TestVerifyCommand(t *testing.T) {
	key := newKey(t)
	w, files := threeFiles(t, key)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "chain.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	shortKey := filepath.Join(dir, "short.key")
	if err := os.WriteFile(shortKey, []byte("too short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(dir, "tampered.log")
	lines := readLines(t, files[0])
	lines[4] = strings.Replace(lines[4], `"carol"`, `"carl"`, 1)
	writeLines(t, tampered, lines)

	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // substring
		wantStderr string // substring
	}{
		{"intact", append([]string{"--key-file", keyFile}, files...), 0,
			"ok: 16 records in 3 files, chain intact, last chain " + w.prev + " (seq 5)\n", ""},
		{"flags-after-files", append(slices.Clone(files), "--key-file", keyFile), 0, "ok: 16 records", ""},
		{"broken", []string{"--key-file", keyFile, tampered}, 1, tampered + ":5: chain mismatch", "4 records before it are intact"},
		{"short-key", []string{"--key-file", shortKey, files[0]}, 1, "", "need at least 32"},
		{"no-key-file", files, 2, "", "need --key-file"},
		{"no-files", []string{"--key-file", keyFile}, 2, "", "need --key-file and at least one FILE"},
		{"unknown-flag", []string{"--bogus", files[0]}, 2, "", "flag provided but not defined"},
		{"help", []string{"-h"}, 0, "", "Usage: jwtgate audit verify"},
		{"missing-file", []string{"--key-file", keyFile, filepath.Join(dir, "nope.log")}, 1, "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := VerifyCommand(context.Background(), tc.args, &out, &errb)
			if code != tc.wantCode || !strings.Contains(out.String(), tc.wantStdout) || !strings.Contains(errb.String(), tc.wantStderr) {
				t.Errorf("VerifyCommand(%q) = %d\nstdout: %s\nstderr: %s\nwant %d, stdout ⊇ %q, stderr ⊇ %q",
					tc.args, code, out.String(), errb.String(), tc.wantCode, tc.wantStdout, tc.wantStderr)
			}
		})
	}
}
