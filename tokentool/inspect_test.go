package tokentool

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// runInspect calls inspect with stdin and a fixed clock.
func runInspect(args []string, stdin string, terminal bool, now time.Time) result {
	var out, errb strings.Builder
	code := inspect(args, inspectEnv{
		stdin:         strings.NewReader(stdin),
		stdinTerminal: terminal,
		stdout:        &out,
		stderr:        &errb,
		now:           func() time.Time { return now },
	})
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// signRS256 signs claims with a fresh RSA key, the way an issuer would.
func signRS256(t *testing.T, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// b64 is base64url without padding, as in a JWS.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestInspectDecodesUntrustedTokens pins SPEC §1: inspect decodes expired,
// tampered and unknown-kid tokens without verifying them (exit 0), shows
// header, claims, time claims and token_id, says the signature was not
// verified, and never prints the token.
func TestInspectDecodesUntrustedTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	expired := signRS256(t, map[string]any{"kid": "k1"}, jwt.MapClaims{"sub": "expired-sub", "iat": now.Unix() - 3600, "exp": now.Unix() - 180})
	valid := signRS256(t, map[string]any{"kid": "k1"}, jwt.MapClaims{"sub": "valid-sub", "iat": now.Unix() - 240, "exp": now.Unix() + 56*60 + 30})
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + b64(`{"sub":"tampered-sub","admin":true}`) + "." + parts[2]
	unknownKID := signRS256(t, map[string]any{"kid": "nobody-knows"}, jwt.MapClaims{"sub": "ukid-sub"})
	badSig := parts[0] + "." + parts[1] + ".!!!notbase64!!!"
	unknownAlg := b64(`{"alg":"XS999","typ":"JWT"}`) + "." + b64(`{"sub":"xs-sub"}`) + ".c2ln"
	tests := []struct {
		name, token string
		want        []string
	}{
		{name: "expired", token: expired, want: []string{`"expired-sub"`, `"kid": "k1"`, "exp: 2027-01-15T07:57:00Z (expired 3m ago)", "iat: ", "lifetime: 57m"}},
		{name: "valid", token: valid, want: []string{`"valid-sub"`, "(in 56m)", "iat: 2027-01-15T07:56:00Z (4m ago)"}},
		{name: "tampered", token: tampered, want: []string{`"tampered-sub"`, `"admin": true`, "exp: absent"}},
		{name: "unknown-kid", token: unknownKID, want: []string{`"ukid-sub"`, `"nobody-knows"`}},
		{name: "bearer-prefix", token: "Bearer " + valid, want: []string{`"valid-sub"`}},
		{name: "signature-not-base64", token: badSig, want: []string{`"valid-sub"`, "not valid base64url"}},
		{name: "unknown-alg", token: unknownAlg, want: []string{`"xs-sub"`, `alg "XS999" is not a signing algorithm`, "no kid"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runInspect([]string{tc.token}, "", true, now)
			if r.code != 0 {
				t.Fatalf("inspect = %d, want 0; stderr %q", r.code, r.stderr)
			}
			raw := cleanToken(tc.token)
			sum := sha256.Sum256([]byte(raw))
			want := append(tc.want,
				"header:\n{", "claims:\n{",
				"token_id: "+hex.EncodeToString(sum[:8]),
				"signature: NOT verified (inspect never trusts a token)")
			for _, w := range want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
			for _, p := range strings.Split(raw, ".") {
				if len(p) > 8 && strings.Contains(r.stdout+r.stderr, p) {
					t.Errorf("output contains a raw token segment %q", p)
				}
			}
		})
	}
}

// TestInspectMalformedExitsOne pins SPEC §1: input that is not a JWT exits
// 1 with a reason on stderr, nothing on stdout, and the input not echoed.
func TestInspectMalformedExitsOne(t *testing.T) {
	tests := []struct{ name, token string }{
		{name: "one-segment", token: "notatokenatall"},
		{name: "two-segments", token: "eyJhbGciOiJIUzI1NiJ9.e30"},
		{name: "four-segments", token: "a.b.c.d"},
		{name: "header-not-base64", token: "!!!!.e30.c2ln"},
		{name: "header-not-json", token: b64("nojson") + ".e30.c2ln"},
		{name: "header-array", token: b64(`[1,2]`) + ".e30.c2ln"},
		{name: "claims-not-json", token: b64(`{"alg":"RS256"}`) + "." + b64("claims?") + ".c2ln"},
		{name: "claims-array", token: b64(`{"alg":"RS256"}`) + "." + b64(`["a"]`) + ".c2ln"},
		{name: "whitespace-only", token: "   "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runInspect([]string{tc.token}, "", true, time.Now())
			if r.code != 1 {
				t.Fatalf("inspect(%q) = %d, want 1; stdout %q", tc.token, r.code, r.stdout)
			}
			if r.stdout != "" || r.stderr == "" {
				t.Errorf("stdout %q, stderr %q; want nothing on stdout and a reason on stderr", r.stdout, r.stderr)
			}
			if len(strings.TrimSpace(tc.token)) > 6 && strings.Contains(r.stderr, strings.TrimSpace(tc.token)) {
				t.Errorf("stderr echoes the input: %q", r.stderr)
			}
			if raw := cleanToken(tc.token); raw != "" {
				if _, err := decodeToken(raw); !errors.Is(err, errMalformed) {
					t.Errorf("decodeToken(%q) error = %v, want errMalformed", raw, err)
				}
			}
		})
	}
}

// TestInspectJSONOutput pins --json: {"header","claims","token_id"} with
// the claims' numbers as written.
func TestInspectJSONOutput(t *testing.T) {
	header := b64(`{"alg":"ES256","kid":"k9","typ":"at+jwt"}`)
	claims := b64(`{"sub":"j","n":123456789012345678901234567890,"exp":1}`)
	tok := header + "." + claims + ".c2ln"
	r := runInspect([]string{"--json", tok}, "", true, time.Now())
	if r.code != 0 {
		t.Fatalf("inspect --json = %d: %s", r.code, r.stderr)
	}
	var got struct {
		Header  map[string]any  `json:"header"`
		Claims  json.RawMessage `json:"claims"`
		TokenID string          `json:"token_id"`
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("--json output %q: %v", r.stdout, err)
	}
	sum := sha256.Sum256([]byte(tok))
	if got.Header["kid"] != "k9" || got.Header["typ"] != "at+jwt" || got.TokenID != hex.EncodeToString(sum[:])[:16] {
		t.Errorf("got header %v, token_id %q", got.Header, got.TokenID)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, got.Claims); err != nil || !strings.Contains(compact.String(), `"n":123456789012345678901234567890`) {
		t.Errorf("claims %s lost the big number", got.Claims)
	}
	// Flags may follow the token.
	if r2 := runInspect([]string{tok, "--json"}, "", true, time.Now()); r2.stdout != r.stdout {
		t.Errorf("inspect TOKEN --json differs from inspect --json TOKEN")
	}
}

// TestInspectReadsStdin pins "-" or no argument: the token is read from
// stdin (which keeps it out of shell history), trimmed, Bearer-stripped.
func TestInspectReadsStdin(t *testing.T) {
	tok := signRS256(t, nil, jwt.MapClaims{"sub": "stdin-sub"})
	for _, args := range [][]string{{"-"}, {}, {"--json"}} {
		r := runInspect(args, "  Bearer "+tok+"\n", false, time.Now())
		if r.code != 0 || !strings.Contains(r.stdout, "stdin-sub") {
			t.Errorf("inspect %v with the token on stdin = %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := runInspect([]string{"-"}, "", false, time.Now()); r.code != 1 {
		t.Errorf("inspect - with empty stdin = %d, want 1", r.code)
	}
	big := strings.Repeat("a", maxInspectBytes+10)
	if r := runInspect(nil, big, false, time.Now()); r.code != 1 {
		t.Errorf("inspect with %d bytes on stdin = %d, want 1", len(big), r.code)
	}
}

// TestInspectUsage pins SPEC §1 exit codes for inspect.
func TestInspectUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		terminal bool
		wantCode int
	}{
		{name: "help", args: []string{"-h"}, wantCode: 0},
		{name: "help-long", args: []string{"--help"}, wantCode: 0},
		{name: "unknown-flag", args: []string{"--verify", "a.b.c"}, wantCode: 2},
		{name: "two-tokens", args: []string{"a.b.c", "d.e.f"}, wantCode: 2},
		{name: "no-token-on-terminal", args: nil, terminal: true, wantCode: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runInspect(tc.args, "", tc.terminal, time.Now())
			if r.code != tc.wantCode {
				t.Fatalf("inspect(%v) = %d, want %d; stderr %q", tc.args, r.code, tc.wantCode, r.stderr)
			}
			if tc.wantCode == 0 && !strings.Contains(r.stdout, "Usage: jwtgate token inspect") {
				t.Errorf("help lacks usage: %q", r.stdout)
			}
			if tc.wantCode == 2 && strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("usage error is not one line: %q", r.stderr)
			}
		})
	}
	// The exported entry point behaves the same.
	if r := run(Inspect, "-h"); r.code != 0 {
		t.Errorf("Inspect(-h) = %d, want 0", r.code)
	}
}

// TestHumanDuration pins the compact durations in the time claim lines.
func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{45 * time.Second, "45s"},
		{3*time.Minute + 59*time.Second, "3m"},
		{time.Hour, "1h"},
		{5*time.Hour + 12*time.Minute, "5h12m"},
		{72 * time.Hour, "3d"},
		{-90 * time.Second, "-1m"},
	}
	for _, tc := range tests {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// FuzzInspect pins that inspect never panics, only exits 0 or 1 for one
// argument, and never echoes its input on either stream.
func FuzzInspect(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln")
	f.Add(b64(`{"alg":"none"}`) + "." + b64(`{"exp":"soon","nbf":1e999}`) + ".")
	f.Add(b64(`{"alg":"ES256"}`) + "." + b64(`{"a":1}trailing`) + ".%%")
	f.Add("Bearer a.b.c")
	f.Add("....")
	f.Fuzz(func(t *testing.T, token string) {
		if strings.HasPrefix(token, "-") {
			return // a flag, not a token
		}
		r := runInspect([]string{token}, "", true, time.Unix(1_800_000_000, 0))
		if r.code != 0 && r.code != 1 {
			t.Fatalf("inspect(%q) = %d, want 0 or 1", token, r.code)
		}
		raw := cleanToken(token)
		if len(raw) >= 24 && strings.Contains(r.stdout+r.stderr, raw) {
			t.Fatalf("inspect(%q) echoed its input", token)
		}
		if r.code == 0 && !strings.Contains(r.stdout, "signature: NOT verified") {
			t.Fatalf("inspect(%q) output lacks the not-verified line", token)
		}
	})
}
