package auditlog

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
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
	// LastSeq is the seq of the last intact record (0 when there was none).
	LastSeq int64
	// Skipped lists lines left by an interrupted write that the chain never
	// covered: a line that is not JSON, cut short by a crash or a failed
	// write (the writer then ends it with a newline or starts a new file),
	// immediately followed by a record that continues the chain from the
	// record before it. Such a line hides nothing — the chain proves no
	// record is missing around it — but it is listed so that it is seen. A
	// line that is not JSON anywhere else is a break.
	Skipped []Break
	// AnchorFound reports whether a record's chain equals the anchor given
	// to the command (see VerifyCommand's --anchor); false without one.
	AnchorFound bool
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
	anchor   string    // chain value to look for; "" for none
	anchored bool      // a record's chain equals anchor
	hm       hash.Hash // HMAC-SHA256 with key, reused
	sum      [sha256.Size]byte
	// chainedFromPrev is set by check when the record's MAC commits to
	// the previous intact record's chain.
	chainedFromPrev bool
	// held is a line that is not JSON, kept until the next record shows
	// whether it is an interrupted write (the next record continues from
	// the record before it) or a break.
	held    *Break
	skipped []Break
}

// Verify checks the tamper-evident chain of SPEC §6 over files, given oldest
// first. It stops at the first record that breaks the chain and reports it in
// Result.Broken. The returned error is only for problems that prevent the
// check: a short key (ErrKeyTooShort) or a file that cannot be read.
func Verify(key []byte, files []string) (Result, error) {
	return verify(context.Background(), key, files, "")
}

// reasonNotJSON is the break reason of a line that is not a JSON object.
const reasonNotJSON = "not JSON (truncated or foreign line)"

// verify is Verify, interruptible through ctx. A non-empty anchor is a
// chain value to look for (Result.AnchorFound).
func verify(ctx context.Context, key []byte, files []string, anchor string) (Result, error) {
	var res Result
	if len(key) < MinKeyBytes {
		return res, fmt.Errorf("verify: %d-byte key: %w", len(key), ErrKeyTooShort)
	}
	st := &chainState{key: key, anchor: anchor}
	fill := func() {
		res.Records = st.records
		res.LastChain = st.prev
		res.LastSeq = st.prevSeq
		res.ContinuesFrom = st.contFrom
		res.Skipped = st.skipped
		res.AnchorFound = st.anchored
	}
	for i, name := range files {
		brk, err := st.verifyFile(ctx, name, i == 0)
		res.Files++
		fill()
		if err != nil {
			return res, err
		}
		if brk != nil {
			res.Broken = brk
			return res, nil
		}
	}
	if st.held != nil {
		// A cut-short line with nothing after it: the newest record was
		// truncated (or the writer is half-way through it).
		res.Broken = &Break{File: st.held.File, Line: st.held.Line, Reason: reasonNotJSON}
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
		if brk = st.line(name, lineNo, line, tooLong, firstFile); brk != nil {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("verify: read %s: %w", name, err)
	}
	return brk, nil
}

// line checks one line and returns the break it causes, if any. A line
// that is not JSON but starts like a record is held until the next line:
// when that one continues the chain from the record before the held line,
// the held line was an interrupted write and is listed in skipped;
// otherwise the break is reported at the held line.
func (st *chainState) line(name string, lineNo int, line []byte, tooLong, firstFile bool) *Break {
	held := st.held
	st.held = nil
	reason := st.check(line, tooLong, lineNo == 1, firstFile)
	if reason == reasonNotJSON && held == nil && st.prev != "" && bytes.HasPrefix(line, []byte(`{"`)) {
		// Looks like a record cut short; check does not advance the state
		// on a failure, so the next line decides.
		st.held = &Break{File: name, Line: lineNo,
			Reason: "partial line from an interrupted write, not covered by the chain (the next record continues from the record before it)"}
		return nil
	}
	if held != nil {
		// Accept the held line only when this record verified and chains
		// from the record before it (not from the held line).
		if reason != "" || !st.chainedFromPrev {
			return &Break{File: held.File, Line: held.Line, Reason: reasonNotJSON}
		}
		st.skipped = append(st.skipped, *held)
	}
	if reason != "" {
		return &Break{File: name, Line: lineNo, Reason: reason}
	}
	if st.anchor != "" && st.prev == st.anchor {
		st.anchored = true
	}
	return nil
}

// check verifies one line against the state and advances it. It returns ""
// when the record is intact, else what is wrong.
func (st *chainState) check(line []byte, tooLong, firstInFile, firstFile bool) string {
	st.chainedFromPrev = false
	if tooLong {
		return fmt.Sprintf("line longer than %d bytes (foreign line)", maxLineBytes)
	}
	var rec chainFields
	if err := json.Unmarshal(line, &rec); err != nil {
		// Unmarshal checks the whole line is valid JSON before decoding;
		// the members read are RawMessage, so no type error is possible
		// and any error means the line is not one JSON object.
		return reasonNotJSON
	}
	if rec.Chain == nil {
		return "missing chain"
	}
	body, got, ok := splitChain(line)
	if !ok {
		return `malformed chain (want "chain":"<64 lower-case hex>" as the last member)`
	}
	seq, err := strconv.ParseInt(string(rec.Seq), 10, 64)
	if err != nil || seq < 1 {
		if rec.Seq == nil {
			return "missing seq"
		}
		return fmt.Sprintf("invalid seq %s", clean(string(rec.Seq)))
	}
	prevField, hasPrevField := rawString(rec.PrevChain)

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
		st.chainedFromPrev = true
	case st.mac(zeroChain, body) == got:
		// A new chain: allowed only for a startup or rotation record that
		// names the previous record's chain, so nothing can be cut out
		// between them.
		ev, _ := rawString(rec.Event)
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

// chainFields are the members Verify reads from a line. They are kept raw
// so that decoding never fails on a member's type: what matters is the
// HMAC over the line's bytes, which no one without the key can forge, so
// these members only choose which predecessor to check the MAC against and
// word the reason of a break.
type chainFields struct {
	Event     json.RawMessage `json:"event"`
	Seq       json.RawMessage `json:"seq"`
	PrevChain json.RawMessage `json:"prev_chain"`
	Chain     json.RawMessage `json:"chain"`
}

// rawString decodes a raw member that should be a JSON string; ok is false
// when it is absent or not a string.
func rawString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// mac computes the chain value for a record: lower-hex
// HMAC-SHA256(key, P + "\n" + body), P being the previous chain's hex text.
func (st *chainState) mac(p string, body []byte) string {
	if st.hm == nil {
		st.hm = hmac.New(sha256.New, st.key)
	}
	m := st.hm
	m.Reset()
	m.Write([]byte(p))
	m.Write([]byte{'\n'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(st.sum[:0]))
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

const verifyUsage = `Usage: jwtgate audit verify --key-file K [--anchor CHAIN] FILE...

Checks the tamper-evident HMAC chain of audit log files (SPEC §6). Give the
files oldest first (rotated files, then the current one). Prints the first
broken record as FILE:LINE: what, and exits 1 if the chain is broken.

A chain cannot show that its newest records were removed. Keep a copy of the
last chain value off the host (the "last chain" this command prints, or
the chain member of the file's last line) and pass it later as --anchor: the
check then also fails unless a record with that chain is still present.`

// VerifyCommand runs `jwtgate audit verify`. It returns the exit code: 0 when
// the chain is intact (and holds the --anchor record, when given), 1 when it
// is broken or cannot be checked, 2 for bad usage.
func VerifyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("audit verify", verifyUsage, stderr)
	keyFile := fs.String("key-file", "", "`file` holding the chain key's raw bytes (at least 32)")
	anchor := fs.String("anchor", "", "a `chain` value (64 hex) saved earlier; fail unless a record with it is still present")
	files, err := parseArgs(fs, args)
	if err != nil {
		return usageExit(err)
	}
	if *keyFile == "" || len(files) == 0 {
		fmt.Fprintln(stderr, "jwtgate audit verify: need --key-file and at least one FILE")
		fs.Usage()
		return exitUsage
	}
	if *anchor != "" && !isChainHex(*anchor) {
		fmt.Fprintln(stderr, "jwtgate audit verify: --anchor: want a chain value, 64 lower-case hex digits")
		return exitUsage
	}
	key, err := readKeyFile(*keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "jwtgate audit verify: %v\n", err)
		return exitFailure
	}
	res, err := verify(ctx, key, files, *anchor)
	if err != nil {
		fmt.Fprintf(stderr, "jwtgate audit verify: %v\n", err)
		return exitFailure
	}
	for _, sk := range res.Skipped {
		fmt.Fprintf(stderr, "warning: %s\n", sk.String())
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
	if *anchor != "" && !res.AnchorFound {
		fmt.Fprintf(stdout, "anchor %s not found: the records up to it were removed, or the files given do not reach it\n", *anchor)
		fmt.Fprintf(stderr, "chain intact but anchor missing: %d records checked\n", res.Records)
		return exitFailure
	}
	last := "(none)"
	if res.LastChain != "" {
		last = fmt.Sprintf("%s (seq %d)", res.LastChain, res.LastSeq)
	}
	fmt.Fprintf(stdout, "ok: %d records in %d files, chain intact, last chain %s\n", res.Records, res.Files, last)
	if *anchor != "" {
		fmt.Fprintf(stdout, "anchor %s found\n", *anchor)
	}
	return exitOK
}
