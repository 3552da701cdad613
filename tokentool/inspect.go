package tokentool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtgate/jwtgate/audit"
)

// maxInspectBytes bounds the token read from stdin.
const maxInspectBytes = 1 << 20

// errMalformed is wrapped when inspect cannot decode a token's header or
// claims.
var errMalformed = errors.New("cannot decode token")

const inspectAbout = `
Decode a token's header and claims WITHOUT verifying it: expired, badly signed
and unknown-kid tokens are shown too (exit 0); only input that is not a JWT
fails (exit 1). Prints the header and claims as JSON, each time claim in
UTC with how long ago or ahead it is, and the token_id that audit records
carry for it (first 16 hex of the SHA-256 of the token). The token itself is
never printed.

The token is the argument, or read from stdin when it is "-" or absent
(stdin keeps it out of shell history and the process list). A leading
"Bearer " is ignored.

Examples:
  jwtgate token inspect eyJhbGciOi...
  pbpaste | jwtgate token inspect
  jwtgate token inspect --json - <token.txt | jq .claims.sub`

// Inspect implements `jwtgate token inspect`: it decodes the token given as
// the argument (or on stdin for "-" or no argument) with golang-jwt's
// ParseUnverified and prints its header, claims, time claims and token_id,
// marked as not verified; --json prints {"header","claims","token_id"}. It
// returns 0 for any decodable token, 1 for malformed input and 2 on bad
// usage.
func Inspect(args []string, stdout, stderr io.Writer) int {
	return inspect(args, inspectEnv{
		stdin:         os.Stdin,
		stdinTerminal: isCharDevice(os.Stdin),
		stdout:        stdout,
		stderr:        stderr,
		now:           time.Now,
	})
}

// isCharDevice reports whether f is a terminal (or /dev/null): reading a
// token from it would block or find nothing.
func isCharDevice(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// inspectEnv is what inspect takes from the process, injectable for tests.
type inspectEnv struct {
	stdin         io.Reader
	stdinTerminal bool
	stdout        io.Writer
	stderr        io.Writer
	now           func() time.Time
}

func inspect(args []string, env inspectEnv) int {
	c := newCommand("jwtgate token inspect", "jwtgate token inspect [--json] [TOKEN | -]", inspectAbout, env.stdout, env.stderr)
	asJSON := c.fs.Bool("json", false, `print {"header":…,"claims":…,"token_id":…} instead of text`)
	positional, code, done := c.parse(args)
	if done {
		return code
	}
	if len(positional) > 1 {
		return c.usageErr("takes one token, got %d arguments", len(positional))
	}
	var raw string
	if len(positional) == 1 && positional[0] != "-" {
		raw = positional[0]
	} else {
		if env.stdinTerminal {
			return c.usageErr("no token: give TOKEN, or pipe one on stdin")
		}
		b, err := io.ReadAll(io.LimitReader(env.stdin, maxInspectBytes+1))
		if err != nil {
			return c.fail(fmt.Errorf("read stdin: %w", err))
		}
		if len(b) > maxInspectBytes {
			return c.fail(fmt.Errorf("%w: input is larger than %d bytes", errMalformed, maxInspectBytes))
		}
		raw = string(b)
	}
	raw = cleanToken(raw)
	if raw == "" {
		return c.fail(fmt.Errorf("%w: empty input", errMalformed))
	}

	d, err := decodeToken(raw)
	if err != nil {
		return c.fail(err)
	}
	var buf bytes.Buffer
	if *asJSON {
		err = d.writeJSON(&buf)
	} else {
		d.writeText(&buf, env.now())
	}
	if err != nil {
		return c.fail(err)
	}
	if _, err := env.stdout.Write(buf.Bytes()); err != nil {
		return c.fail(fmt.Errorf("write output: %w", err))
	}
	return exitOK
}

// cleanToken trims whitespace and a leading "Bearer " (any case), so a
// pasted Authorization header value works.
func cleanToken(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > len("bearer ") && strings.EqualFold(s[:len("bearer ")], "bearer ") {
		s = strings.TrimSpace(s[len("bearer "):])
	}
	return s
}

// decodedToken is what inspect shows about a token.
type decodedToken struct {
	header     map[string]any
	claims     jwt.MapClaims
	headerJSON []byte // the decoded header segment, as the issuer wrote it
	claimsJSON []byte // the decoded claims segment
	tokenID    string
	notes      []string // remarks about the header or signature
}

// decodeToken decodes header and claims with golang-jwt's ParseUnverified;
// no key is used and no claim is checked. Only an undecodable header or
// claims segment is an error: an unknown alg or a signature that is not
// base64url becomes a note.
func decodeToken(raw string) (*decodedToken, error) {
	p := jwt.NewParser(jwt.WithJSONNumber())
	claims := jwt.MapClaims{}
	tok, parts, err := p.ParseUnverified(raw, claims)
	if err != nil {
		switch {
		case tok == nil:
			// Wrong number of segments: nothing was decoded.
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		case errors.Is(err, jwt.ErrTokenUnverifiable):
			// Header and claims decoded; the alg is unknown or absent.
		case errors.Is(err, jwt.ErrTokenMalformed) && tok.Method != nil:
			// ParseUnverified sets Method only after decoding header
			// and claims, so this is the signature segment.
		default:
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		}
	}
	d := &decodedToken{header: tok.Header, claims: claims, tokenID: audit.TokenID(raw)}
	// The segments decoded once already; decode again to show them in the
	// issuer's member order and number formatting.
	if d.headerJSON, err = p.DecodeSegment(parts[0]); err != nil {
		return nil, fmt.Errorf("%w: header: %w", errMalformed, err)
	}
	if d.claimsJSON, err = p.DecodeSegment(parts[1]); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", errMalformed, err)
	}
	d.notes = headerNotes(tok)
	if _, sigErr := p.DecodeSegment(parts[2]); sigErr != nil {
		d.notes = append(d.notes, "the signature segment is not valid base64url")
	} else if parts[2] == "" {
		d.notes = append(d.notes, "the token has no signature")
	}
	return d, nil
}

// headerNotes explains header members that matter to how jwtgate would
// treat the token (SPEC §3.3 and §3.5).
func headerNotes(tok *jwt.Token) []string {
	var notes []string
	alg, isString := tok.Header["alg"].(string)
	switch {
	case !isString:
		notes = append(notes, "the header has no alg (string): jwtgate rejects it")
	case alg == "none":
		notes = append(notes, `alg "none": jwtgate never accepts unsigned tokens`)
	case tok.Method == nil:
		notes = append(notes, fmt.Sprintf("alg %q is not a signing algorithm jwtgate knows", alg))
	case strings.HasPrefix(alg, "HS"):
		notes = append(notes, "HMAC alg: jwtgate accepts it only from a provider's static secret keys")
	}
	if _, ok := tok.Header["kid"]; !ok {
		notes = append(notes, "no kid: jwtgate accepts that only from a provider with exactly one key")
	}
	if crit, ok := tok.Header["crit"]; ok {
		notes = append(notes, fmt.Sprintf("crit %v: jwtgate rejects crit names it does not understand", crit))
	}
	for _, m := range []string{"jku", "x5u", "jwk", "x5c"} {
		if _, ok := tok.Header[m]; ok {
			notes = append(notes, fmt.Sprintf("%s in the header: jwtgate ignores it as a key source", m))
		}
	}
	return notes
}

// writeText prints the human-readable view.
func (d *decodedToken) writeText(w io.Writer, now time.Time) {
	fmt.Fprintln(w, "header:")
	w.Write(indentJSON(d.headerJSON, d.header))
	fmt.Fprintln(w, "claims:")
	w.Write(indentJSON(d.claimsJSON, d.claims))
	fmt.Fprintln(w, "times:")
	for _, line := range timeLines(d.claims, now) {
		fmt.Fprintf(w, "  %s\n", line)
	}
	fmt.Fprintf(w, "token_id: %s\n", d.tokenID)
	for _, n := range d.notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintln(w, "signature: NOT verified (inspect never trusts a token)")
}

// writeJSON prints {"header":…,"claims":…,"token_id":…}.
func (d *decodedToken) writeJSON(w io.Writer) error {
	out := struct {
		Header  json.RawMessage `json:"header"`
		Claims  json.RawMessage `json:"claims"`
		TokenID string          `json:"token_id"`
	}{compactJSON(d.headerJSON, d.header), compactJSON(d.claimsJSON, d.claims), d.tokenID}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	return nil
}

// indentJSON indents the segment as written; if it has trailing data that
// the decoder ignored, the decoded value is shown instead.
func indentJSON(raw []byte, decoded any) []byte {
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") == nil {
		buf.WriteByte('\n')
		return buf.Bytes()
	}
	b, err := json.MarshalIndent(decoded, "", "  ")
	if err != nil {
		return []byte("(undisplayable)\n")
	}
	return append(b, '\n')
}

// compactJSON is indentJSON's counterpart for --json.
func compactJSON(raw []byte, decoded any) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return buf.Bytes()
	}
	b, err := json.Marshal(decoded)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// timeLines describes exp, nbf and iat relative to now, and the lifetime
// (exp - iat) that a provider's max_lifetime limits.
func timeLines(claims jwt.MapClaims, now time.Time) []string {
	var lines []string
	describe := func(name string, get func() (*jwt.NumericDate, error), past, future func(string) string) *jwt.NumericDate {
		if _, present := claims[name]; !present {
			lines = append(lines, name+": absent")
			return nil
		}
		t, err := get()
		if err != nil || t == nil {
			lines = append(lines, fmt.Sprintf("%s: invalid (not a NumericDate)", name))
			return nil
		}
		rel := ""
		if d := t.Sub(now); d > 0 {
			rel = future(humanDuration(d))
		} else {
			rel = past(humanDuration(-d))
		}
		lines = append(lines, fmt.Sprintf("%s: %s (%s)", name, t.UTC().Format(time.RFC3339), rel))
		return t
	}
	exp := describe("exp", claims.GetExpirationTime,
		func(d string) string { return "expired " + d + " ago" },
		func(d string) string { return "in " + d })
	describe("nbf", claims.GetNotBefore,
		func(d string) string { return d + " ago" },
		func(d string) string { return "in " + d + ": not valid yet" })
	iat := describe("iat", claims.GetIssuedAt,
		func(d string) string { return d + " ago" },
		func(d string) string { return "in " + d + ": issued in the future" })
	if exp != nil && iat != nil {
		lines = append(lines, fmt.Sprintf("lifetime: %s (exp - iat)", humanDuration(exp.Sub(iat.Time))))
	}
	return lines
}

// humanDuration formats d compactly: 45s, 3m, 5h12m, 3d, 12y.
func humanDuration(d time.Duration) string {
	if d < 0 {
		if d == math.MinInt64 { // time.Sub saturates; -MinInt64 overflows
			d = math.MaxInt64
		} else {
			d = -d
		}
		return "-" + humanDuration(d)
	}
	const day = 24 * time.Hour
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int64(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int64(d/time.Minute))
	case d < 48*time.Hour:
		h, m := int64(d/time.Hour), int64(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	case d < 2*365*day:
		return fmt.Sprintf("%dd", int64(d/day))
	}
	return fmt.Sprintf("%dy", int64(d/(365*day)))
}
