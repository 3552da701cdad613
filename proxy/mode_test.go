package proxy

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

var jwtRS256 = jwt.SigningMethodRS256

// TestOptionalModeForwardsAnonymousOrVerified pins auth.mode optional
// (SPEC §2): no token passes anonymously with no identity headers (and a
// client's own X-User-Id is still removed); a valid token is allowed with
// its claim headers; an invalid one is refused.
func TestOptionalModeForwardsAnonymousOrVerified(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name     string
		token    string
		hdr      map[string]string
		status   int
		decision string
		reason   string
		userID   string
	}{
		{name: "no-token-anonymous", status: 200, decision: "anonymous"},
		{name: "no-token-spoofed-identity", hdr: map[string]string{"X-User-Id": "root"}, status: 200, decision: "anonymous"},
		{name: "valid-token", token: e.rs256(nil), status: 200, decision: "allow", userID: "alice"},
		{name: "tampered-token", token: sign(t, jwtRS256, rsaKey2, "rsa1", claims(nil)), status: 401, decision: "deny", reason: "signature_invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.backend.count()
			rec := e.wantDecision(t, e.do("GET", "/opt/x", tc.token, tc.hdr), before, tc.status, tc.decision, tc.reason)
			if tc.status != 200 {
				return
			}
			got := e.backend.last(t)
			if v := got.Header.Get("X-User-Id"); v != tc.userID {
				t.Errorf("backend X-User-Id = %q, want %q", v, tc.userID)
			}
			if tc.decision == "anonymous" {
				for _, f := range []string{"sub", "iss", "token_id", "provider"} {
					if _, ok := rec[f]; ok {
						t.Errorf("anonymous record has %s=%v", f, rec[f])
					}
				}
			} else if rec["sub"] != "alice" {
				t.Errorf("record sub = %v", rec["sub"])
			}
			if _, ok := rec["dry_run"]; ok {
				t.Error("optional record has dry_run")
			}
		})
	}
}

// TestDryRunRecordsWouldBeDenial pins auth.mode dry_run (SPEC §2): every
// request is forwarded; the record carries dry_run: true, the decision
// that actually happened, and in reason the denial that would have been
// made; an attack (tampered signature) stays suspicious.
func TestDryRunRecordsWouldBeDenial(t *testing.T) {
	e := newEnv(t)
	good := e.rs256(map[string]any{"scope": "dry:run"})
	cases := []struct {
		name       string
		token      string
		decision   string
		reason     string
		suspicious bool
		identity   bool
	}{
		{name: "no-token", decision: "anonymous", reason: "token_missing"},
		{name: "valid-with-scope", token: good, decision: "allow", identity: true},
		{name: "valid-without-scope", token: e.rs256(nil), decision: "allow", reason: "scope_missing", identity: true},
		{name: "tampered-signature", token: sign(t, jwtRS256, rsaKey2, "rsa1", claims(nil)), decision: "anonymous", reason: "signature_invalid", suspicious: true},
		{name: "expired", token: e.rs256(map[string]any{"exp": int64(1), "iat": int64(0)}), decision: "anonymous", reason: "token_expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.backend.count()
			rec := e.wantDecision(t, e.do("GET", "/dry/x", tc.token, nil), before, 200, tc.decision, tc.reason)
			if rec["dry_run"] != true {
				t.Errorf("dry_run = %v, want true", rec["dry_run"])
			}
			if s, _ := rec["suspicious"].(bool); s != tc.suspicious {
				t.Errorf("suspicious = %v, want %v", rec["suspicious"], tc.suspicious)
			}
			// A refused token's record may name its unverified sub for
			// forensics; a verified one must name it.
			if tc.identity && rec["sub"] != "alice" || tc.token == "" && rec["sub"] != nil {
				t.Errorf("record sub = %v (verified identity expected: %v)", rec["sub"], tc.identity)
			}
			if got := e.backend.last(t).Header.Get("Authorization"); tc.token != "" && got != "Bearer "+tc.token {
				t.Errorf("dry_run changed the forwarded Authorization")
			}
		})
	}
	if n := len(e.requestRecords()); n != len(cases) {
		t.Errorf("%d request records for %d requests", n, len(cases))
	}
}
