package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// GenesisChain is P for the first record of a chain with no predecessor:
// 64 zeros.
const GenesisChain = "0000000000000000000000000000000000000000000000000000000000000000"

// MinChainKeyBytes is the shortest chain key accepted (SPEC §6).
const MinChainKeyBytes = 32

// ErrChainKeyTooShort is returned for a chain key under MinChainKeyBytes.
var ErrChainKeyTooShort = errors.New("audit chain key shorter than 32 bytes")

// chainSuffixLen is len(`,"chain":"`) + 64 hex digits + len(`"}`).
const chainSuffixLen = len(`,"chain":"`) + 64 + len(`"}`)

// ChainMAC returns the SPEC §6 `chain` value of one record.
//
// The algorithm, exactly: chain = lower-case hex of
// HMAC-SHA256(key, prev ‖ "\n" ‖ line), where
//
//   - prev is the previous record's chain as 64 lower-case hex characters,
//     or GenesisChain (64 "0") for the first record of a chain with no
//     predecessor. The first record of a rotated file (event
//     "audit_rotated", seq 1) and the first record appended after a restart
//     use the previous file's last chain, which they also name in
//     `prev_chain`.
//   - line is the record's line exactly as written, without its trailing
//     "\n", with the final `,"chain":"<64 hex>"` member removed: the bytes
//     up to (not including) `,"chain":"`, followed by "}". The `seq` member
//     is the last member of that text and is covered by the MAC.
//
// A written chained line therefore always ends with
// `,"seq":<n>,"chain":"<64 hex>"}` and a newline; SplitChain recovers line
// and chain from it. key is the raw bytes of audit.chain.key_file (see
// ReadChainKey).
func ChainMAC(key []byte, prev string, line []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(prev))
	m.Write([]byte{'\n'})
	m.Write(line)
	return hex.EncodeToString(m.Sum(nil))
}

// SplitChain splits one written line (with or without its trailing
// newline) into the text the chain MAC covers (see ChainMAC) and the chain
// value. ok is false when the line does not end with a well-formed chain
// member.
func SplitChain(line []byte) (unchained []byte, chain string, ok bool) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	if len(line) < chainSuffixLen+1 {
		return nil, "", false
	}
	suffix := line[len(line)-chainSuffixLen:]
	if !bytes.HasPrefix(suffix, []byte(`,"chain":"`)) || !bytes.HasSuffix(suffix, []byte(`"}`)) {
		return nil, "", false
	}
	hexPart := suffix[len(`,"chain":"`) : len(suffix)-2]
	for _, c := range hexPart {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, "", false
		}
	}
	body := line[:len(line)-chainSuffixLen]
	out := make([]byte, 0, len(body)+1)
	out = append(append(out, body...), '}')
	return out, string(hexPart), true
}

// ReadChainKey reads a chain key file: its raw bytes, used as they are (no
// trimming, no decoding), at least MinChainKeyBytes long.
func ReadChainKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit chain key %s: %w", path, err)
	}
	if len(key) < MinChainKeyBytes {
		return nil, fmt.Errorf("audit chain key %s: %d bytes: %w", path, len(key), ErrChainKeyTooShort)
	}
	return key, nil
}

// tailInfo describes the end of an existing audit file.
type tailInfo struct {
	size    int64  // file size in bytes
	partial bool   // the file does not end with "\n" (a crash mid-line)
	chained bool   // the last complete line is a chained record
	seq     uint64 // its seq
	chain   string // its chain
	// body is the last record's text covered by the MAC, and preds the
	// chain values it may have been computed from: the chain of the line
	// before it, its own prev_chain, GenesisChain.
	body  []byte
	preds []string
}

// keyMatches reports whether key produced the last record's chain, that
// is whether the chain can be continued with key. It is false when the
// chain key was changed since the record was written (or the record was
// edited).
func (t tailInfo) keyMatches(key []byte) bool {
	for _, p := range t.preds {
		if hmac.Equal([]byte(ChainMAC(key, p, t.body)), []byte(t.chain)) {
			return true
		}
	}
	return false
}

// maxTailLine bounds how far back readTail looks for the last line.
const maxTailLine = 16 << 20

// readTail reads the last complete line of the file at path. A missing file
// is an empty tail.
func readTail(path string) (tailInfo, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return tailInfo{}, nil
	}
	if err != nil {
		return tailInfo{}, fmt.Errorf("audit file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return tailInfo{}, fmt.Errorf("audit file %s: %w", path, err)
	}
	t := tailInfo{size: st.Size()}
	if t.size == 0 {
		return t, nil
	}
	// Read backwards in growing chunks until the last complete line is
	// bounded by a newline (or the file start).
	chunk := int64(64 << 10)
	for {
		n := min(chunk, t.size)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, t.size-n); err != nil && !errors.Is(err, io.EOF) {
			return tailInfo{}, fmt.Errorf("audit file %s: read tail: %w", path, err)
		}
		t.partial = buf[len(buf)-1] != '\n'
		end := bytes.LastIndexByte(buf, '\n') // end of the last complete line
		if end < 0 {
			if n == t.size || n >= maxTailLine {
				return t, nil // no complete line
			}
			chunk *= 4
			continue
		}
		start := bytes.LastIndexByte(buf[:end], '\n') + 1
		if start == 0 && n < t.size {
			if n >= maxTailLine {
				return t, nil
			}
			chunk *= 4
			continue
		}
		line := buf[start:end]
		var last struct {
			Seq       *uint64 `json:"seq"`
			Chain     *string `json:"chain"`
			PrevChain string  `json:"prev_chain"`
		}
		if json.Unmarshal(line, &last) != nil || last.Seq == nil || last.Chain == nil {
			return t, nil
		}
		body, c, ok := SplitChain(line)
		if !ok || c != *last.Chain {
			return t, nil
		}
		t.chained, t.seq, t.chain, t.body = true, *last.Seq, c, body
		if start > 0 {
			// The line before: read further back until it is whole.
			pEnd := start - 1 // its "\n"
			pStart := bytes.LastIndexByte(buf[:pEnd], '\n') + 1
			if pStart == 0 && n < t.size && n < maxTailLine {
				chunk *= 4
				continue
			}
			if _, pc, ok := SplitChain(buf[pStart:pEnd]); ok {
				t.preds = append(t.preds, pc)
			}
		}
		if last.PrevChain != "" {
			t.preds = append(t.preds, last.PrevChain)
		}
		t.preds = append(t.preds, GenesisChain)
		return t, nil
	}
}
