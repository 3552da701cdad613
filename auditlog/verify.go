package auditlog

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MinKeyBytes is the shortest chain key accepted (SPEC §6: at least 32 bytes).
const MinKeyBytes = 32

// ErrKeyTooShort is returned by Verify for a chain key shorter than MinKeyBytes.
var ErrKeyTooShort = errors.New("chain key shorter than 32 bytes")

// zeroChain is P for the first record of a chain with no predecessor.
var zeroChain = strings.Repeat("0", 64)

// chainMember is the text that starts the chain member; it is always the
// record's last member (SPEC §6).
const chainMember = `,"chain":"`

// Result is the outcome of Verify.
type Result struct {
	// Records is the number of records checked and found intact, in all files
	// (when Broken is set, the records before the break).
	Records int
	// Files is the number of files read.
	Files int
	// Broken is the first record that breaks the chain, or nil when the chain
	// is intact.
	Broken *Break
	// LastChain is the chain value of the last intact record ("" when there
	// was none).
	LastChain string
	// ContinuesFrom is set when the first record of the first file continues
	// a chain from an earlier file that was not given: it is that record's
	// prev_chain. The records before it were not checked.
	ContinuesFrom string
}

// Break locates the first record that breaks the chain.
type Break struct {
	// File is the path as given to Verify.
	File string
	// Line is the 1-based line number within File.
	Line int
	// Reason says what is wrong, for example "chain mismatch (record edited,
	// inserted, or a record before it removed)".
	Reason string
}

// String formats the break as FILE:LINE: reason.
func (b *Break) String() string { return fmt.Sprintf("%s:%d: %s", b.File, b.Line, b.Reason) }

// chainState carries the verification across lines and files.
type chainState struct {
	key      []byte
	prev     string // chain of the previous intact record; "" before the first
	prevSeq  int64
	records  int
	contFrom string
}

// Verify checks the tamper-evident chain of SPEC §6 over files, given oldest
// first. It stops at the first record that breaks the chain and reports it in
// Result.Broken. The returned error is only for problems that prevent the
// check: a short key (ErrKeyTooShort) or a file that cannot be read.
func Verify(key []byte, files []string) (Result, error) {
	return verify(context.Background(), key, files)
}

// verify is Verify, interruptible through ctx.
func verify(ctx context.Context, key []byte, files []string) (Result, error) {
	var res Result
	if len(key) < MinKeyBytes {
		return res, fmt.Errorf("verify: %d-byte key: %w", len(key), ErrKeyTooShort)
	}
	st := &chainState{key: key}
	for i, name := range files {
		brk, err := st.verifyFile(ctx, name, i == 0)
		res.Files++
		res.Records = st.records
		res.LastChain = st.prev
		res.ContinuesFrom = st.contFrom
		if err != nil {
			return res, err
		}
		if brk != nil {
			res.Broken = brk
			return res, nil
		}
	}
	return res, nil
}

func (st *chainState) verifyFile(ctx context.Context, name string, firstFile bool) (*Break, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	var brk *Break
	lineNo := 0
	errStop := errors.New("stop")
	err = forEachLine(ctx, f, func(line []byte, size int, tooLong, _ bool) error {
		lineNo++
		reason := st.check(line, tooLong, lineNo == 1, firstFile)
		if reason != "" {
			brk = &Break{File: name, Line: lineNo, Reason: reason}
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("verify: read %s: %w", name, err)
	}
	return brk, nil
}

// check verifies one line against the state and advances it. It returns ""
// when the record is intact, else what is wrong.
func (st *chainState) check(line []byte, tooLong, firstInFile, firstFile bool) string {
	if tooLong {
		return fmt.Sprintf("line longer than %d bytes (foreign line)", maxLineBytes)
	}
	rec, err := parseRecord(line)
	if err != nil {
		return "not JSON (truncated or foreign line)"
	}
	if !rec.has("chain") {
		return "missing chain"
	}
	body, got, ok := splitChain(line)
	if !ok {
		return `malformed chain (want "chain":"<64 lower-case hex>" as the last member)`
	}
	seq, ok := rec.int("seq")
	if !ok || seq < 1 {
		if !rec.has("seq") {
			return "missing seq"
		}
		return fmt.Sprintf("invalid seq %s", clean(rec.text("seq")))
	}
	prevField, hasPrevField := rec.strOK("prev_chain")

	// Which predecessor does this record's chain commit to?
	switch {
	case st.prev == "":
		// The very first record: a fresh chain, or one continuing from a
		// file that was not given (it then names that chain in prev_chain).
		switch {
		case st.mac(zeroChain, body) == got:
			if seq != 1 {
				return fmt.Sprintf("seq %d at the start of a chain, want 1 (records before it removed)", seq)
			}
			if hasPrevField && prevField != zeroChain {
				st.contFrom = prevField
			}
		case hasPrevField && isChainHex(prevField) && st.mac(prevField, body) == got:
			st.contFrom = prevField
		default:
			return "chain mismatch (wrong key, record edited, or the file does not start a chain: give the earlier files too)"
		}
	case st.mac(st.prev, body) == got:
		// Continues the previous record, possibly across a file boundary.
		if hasPrevField && prevField != st.prev {
			return "prev_chain does not name the previous record's chain"
		}
		if r := seqProblem(seq, st.prevSeq, firstInFile || hasPrevField); r != "" {
			return r
		}
	case st.mac(zeroChain, body) == got:
		// A new chain: allowed only for a startup or rotation record that
		// names the previous record's chain, so nothing can be cut out
		// between them.
		ev := rec.event()
		switch {
		case (ev == "startup" || ev == "audit_rotated") && prevField == st.prev:
			if r := seqProblem(seq, st.prevSeq, true); r != "" {
				return r
			}
		case firstInFile && !firstFile:
			return "chain does not continue from the previous file's last record (a file is missing, or the files are out of order)"
		default:
			return "new chain that does not name the previous record's chain in prev_chain (records before it removed)"
		}
	default:
		if r := seqProblem(seq, st.prevSeq, firstInFile); r != "" {
			return r
		}
		if firstInFile && !firstFile {
			return "chain does not continue from the previous file's last record (a file is missing, the files are out of order, or the record was edited)"
		}
		return "chain mismatch (record edited, inserted, or a record before it removed)"
	}
	st.prev = got
	st.prevSeq = seq
	st.records++
	return ""
}

// seqProblem checks that seq follows prev. At a restart point (the first
// record of a file, or a record naming prev_chain) seq may also start over
// at 1.
func seqProblem(seq, prev int64, restart bool) string {
	switch {
	case seq == prev+1:
		return ""
	case restart && seq == 1:
		return ""
	case seq > prev+1:
		return fmt.Sprintf("seq %d after %d (record removed or reordered)", seq, prev)
	default:
		return fmt.Sprintf("seq %d after %d (duplicate or reordered)", seq, prev)
	}
}

// mac computes the chain value for a record: lower-hex
// HMAC-SHA256(key, P + "\n" + body), P being the previous chain's hex text.
func (st *chainState) mac(p string, body []byte) string {
	m := hmac.New(sha256.New, st.key)
	m.Write([]byte(p))
	m.Write([]byte{'\n'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// splitChain cuts the chain member off line. It returns the line without it
// (what the HMAC covers) and the chain's hex value; ok is false unless the
// line ends with `,"chain":"<64 lower-case hex>"}`.
func splitChain(line []byte) (body []byte, chain string, ok bool) {
	i := bytes.LastIndex(line, []byte(chainMember))
	if i < 0 {
		return nil, "", false
	}
	tail := line[i+len(chainMember):]
	if len(tail) != 64+2 || tail[64] != '"' || tail[65] != '}' {
		return nil, "", false
	}
	chain = string(tail[:64])
	if !isChainHex(chain) {
		return nil, "", false
	}
	body = make([]byte, 0, i+1)
	body = append(body, line[:i]...)
	body = append(body, '}')
	return body, chain, true
}

// isChainHex reports whether s is 64 lower-case hex digits.
func isChainHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// readKeyFile reads a chain key: the file's raw bytes, at least MinKeyBytes.
func readKeyFile(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("key file %s: %d bytes, need at least %d: %w", path, len(key), MinKeyBytes, ErrKeyTooShort)
	}
	return key, nil
}

const verifyUsage = `Usage: jwtgate audit verify --key-file K FILE...

Checks the tamper-evident HMAC chain of audit log files (SPEC §6). Give the
files oldest first (rotated files, then the current one). Prints the first
broken record as FILE:LINE: what, and exits 1 if the chain is broken.`

// VerifyCommand runs `jwtgate audit verify`. It returns the exit code: 0 when
// the chain is intact, 1 when it is broken or cannot be checked, 2 for bad
// usage.
func VerifyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("audit verify", verifyUsage, stderr)
	keyFile := fs.String("key-file", "", "`file` holding the chain key's raw bytes (at least 32)")
	files, err := parseArgs(fs, args)
	if err != nil {
		return usageExit(err)
	}
	if *keyFile == "" || len(files) == 0 {
		fmt.Fprintln(stderr, "jwtgate audit verify: need --key-file and at least one FILE")
		fs.Usage()
		return exitUsage
	}
	key, err := readKeyFile(*keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "jwtgate audit verify: %v\n", err)
		return exitFailure
	}
	res, err := verify(ctx, key, files)
	if err != nil {
		fmt.Fprintf(stderr, "jwtgate audit verify: %v\n", err)
		return exitFailure
	}
	if res.Broken != nil {
		fmt.Fprintln(stdout, res.Broken.String())
		fmt.Fprintf(stderr, "chain broken: %d records before it are intact\n", res.Records)
		return exitFailure
	}
	if res.Records == 0 {
		fmt.Fprintln(stderr, "warning: the files hold no records; there is no chain to check")
	}
	if res.ContinuesFrom != "" && isChainHex(res.ContinuesFrom) {
		fmt.Fprintf(stderr, "note: %s starts by continuing an earlier chain (prev_chain %s…) that was not given; records before it were not checked\n",
			files[0], res.ContinuesFrom[:16])
	}
	last := "(none)"
	if res.LastChain != "" {
		last = res.LastChain[:16] + "…"
	}
	fmt.Fprintf(stdout, "ok: %d records in %d files, chain intact, last chain %s\n", res.Records, res.Files, last)
	return exitOK
}
