package audit

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/config"
)

// TestRequestRecordFieldsMatchSpec pins SPEC §5: every request field's
// name and JSON type, the time format, and time, level, event first.
func TestRequestRecordFieldsMatchSpec(t *testing.T) {
	w, sink := stdoutWriter(t, config.Audit{Claims: []string{"azp", "tenant"}}, Options{})
	w.Request(fullRecord(1))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := splitLines(t, sink.bytes())
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1", len(lines))
	}
	m, order := decode(t, lines[0])
	if got := order[:3]; !slices.Equal(got, []string{"time", "level", "event"}) {
		t.Errorf("first members = %v, want [time level event]", got)
	}
	type kind int
	const (
		str kind = iota
		num
		boolean
	)
	want := map[string]kind{
		"time": str, "level": str, "event": str, "request_id": str, "route": str,
		"method": str, "host": str, "path": str, "query": str, "client_ip": str,
		"status": num, "grpc_status": num, "decision": str, "dry_run": boolean,
		"reason": str, "suspicious": boolean, "provider": str, "iss": str,
		"sub": str, "kid": str, "alg": str, "jti": str, "token_id": str,
		"key_thumbprint": str, "config_version": str, "azp": str, "tenant": str,
		"upstream": str, "duration_ms": num, "bytes_in": num, "bytes_out": num,
		"user_agent": str,
	}
	for k, v := range m {
		wk, ok := want[k]
		if !ok {
			t.Errorf("unexpected field %q", k)
			continue
		}
		switch wk {
		case str:
			if _, ok := v.(string); !ok {
				t.Errorf("field %q = %#v, want a string", k, v)
			}
		case num:
			if _, ok := v.(json.Number); !ok {
				t.Errorf("field %q = %#v, want a number", k, v)
			}
		case boolean:
			if _, ok := v.(bool); !ok {
				t.Errorf("field %q = %#v, want a bool", k, v)
			}
		}
	}
	for k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("field %q missing", k)
		}
	}
	checks := map[string]any{
		"time": "2025-03-04T04:06:07.891Z", "level": "info", "event": "request",
		"status": json.Number("403"), "grpc_status": json.Number("7"),
		"decision": "deny", "reason": "scope_missing", "dry_run": true,
		"duration_ms": json.Number("12.345"), "bytes_in": json.Number("10"),
		"config_version": "fedcba9876543210",
	}
	for k, v := range checks {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
}

// TestRequestRecordOmitsEmptyFields pins the omission rules: empty strings,
// false dry_run/suspicious and an unset grpc_status are left out, while
// request_id, route, decision and config_version are always present.
func TestRequestRecordOmitsEmptyFields(t *testing.T) {
	w, sink := stdoutWriter(t, config.Audit{}, Options{ConfigVersion: "aaaabbbbccccdddd"})
	w.Request(&Record{Decision: DecisionPublic, Status: 200})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	m, order := decode(t, splitLines(t, sink.bytes())[0])
	wantOrder := []string{"time", "level", "event", "request_id", "route", "status",
		"decision", "config_version", "duration_ms", "bytes_in", "bytes_out"}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("members = %v, want %v", order, wantOrder)
	}
	if m["request_id"] != "" || m["route"] != "" {
		t.Errorf("request_id, route = %#v, %#v, want empty strings", m["request_id"], m["route"])
	}
	if m["config_version"] != "aaaabbbbccccdddd" {
		t.Errorf("config_version = %#v, want the writer's version", m["config_version"])
	}
	if m["duration_ms"] != json.Number("0") {
		t.Errorf("duration_ms = %#v, want 0", m["duration_ms"])
	}
	if _, err := time.Parse(time.RFC3339, m["time"].(string)); err != nil {
		t.Errorf("time (defaulted to now) = %q: %v", m["time"], err)
	}
}

// TestDurationMillisecondsWithMicroseconds pins duration_ms: milliseconds
// as a JSON number with microsecond precision.
func TestDurationMillisecondsWithMicroseconds(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{name: "zero", d: 0, want: "0"},
		{name: "whole-ms", d: 3 * time.Millisecond, want: "3"},
		{name: "micro", d: 7 * time.Microsecond, want: "0.007"},
		{name: "trailing-zeros-trimmed", d: 1500 * time.Microsecond, want: "1.5"},
		{name: "sub-microsecond-truncated", d: 12345678 * time.Nanosecond, want: "12.345"},
		{name: "negative-is-zero", d: -time.Second, want: "0"},
		{name: "long", d: 90 * time.Second, want: "90000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(appendMillis(nil, tc.d)); got != tc.want {
				t.Errorf("appendMillis(%v) = %q, want %q", tc.d, got, tc.want)
			}
		})
	}
}

// TestClaimsWrittenAsTopLevelFields pins how configured audit claims are
// written: one top-level field per claim with JSON-typed values, and a
// claim_ prefix for names that collide with record fields.
func TestClaimsWrittenAsTopLevelFields(t *testing.T) {
	tests := []struct {
		name  string
		claim Claim
		field string
		want  string // the member's raw JSON value
	}{
		{name: "string", claim: Claim{"azp", "cli"}, field: "azp", want: `"cli"`},
		{name: "float", claim: Claim{"n", 1.5}, field: "n", want: `1.5`},
		{name: "float-integer-no-exponent", claim: Claim{"iat", 1700000000.0}, field: "iat", want: `1700000000`},
		{name: "json-number", claim: Claim{"n", json.Number("12345678901234567890")}, field: "n", want: `12345678901234567890`},
		{name: "bad-json-number-is-string", claim: Claim{"n", json.Number("1}")}, field: "n", want: `"1}"`},
		{name: "json-number-exponent", claim: Claim{"n", json.Number("-1.5e3")}, field: "n", want: `-1.5e3`},
		{name: "bad-json-number-leading-zero", claim: Claim{"n", json.Number("01")}, field: "n", want: `"01"`},
		{name: "bad-json-number-trailing-space", claim: Claim{"n", json.Number("1 ")}, field: "n", want: `"1 "`},
		{name: "bad-json-number-open-exponent", claim: Claim{"n", json.Number("1e")}, field: "n", want: `"1e"`},
		{name: "bad-json-number-array", claim: Claim{"n", json.Number("[1]")}, field: "n", want: `"[1]"`},
		{name: "int", claim: Claim{"n", 42}, field: "n", want: `42`},
		{name: "int64", claim: Claim{"n", int64(-7)}, field: "n", want: `-7`},
		{name: "bool", claim: Claim{"email_verified", true}, field: "email_verified", want: `true`},
		{name: "null", claim: Claim{"x", nil}, field: "x", want: `null`},
		{name: "strings", claim: Claim{"groups", []string{"a", "b"}}, field: "groups", want: `["a","b"]`},
		{name: "array", claim: Claim{"roles", []any{"admin", 1.0}}, field: "roles", want: `["admin",1]`},
		{name: "object", claim: Claim{"act", map[string]any{"sub": "svc", "n": 1.0}}, field: "act", want: `{"n":1,"sub":"svc"}`},
		{name: "collides-with-sub", claim: Claim{"sub", "alice"}, field: "claim_sub", want: `"alice"`},
		{name: "collides-with-chain", claim: Claim{"chain", "x"}, field: "claim_chain", want: `"x"`},
		{name: "already-prefixed", claim: Claim{"claim_sub", "y"}, field: "claim_claim_sub", want: `"y"`},
		{name: "url-name", claim: Claim{"https://example.com/groups", []any{"g"}}, field: "https://example.com/groups", want: `["g"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, sink := stdoutWriter(t, config.Audit{}, Options{})
			w.Request(&Record{Sub: "alice", Claims: []Claim{tc.claim, tc.claim}})
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			line := splitLines(t, sink.bytes())[0]
			decode(t, line) // valid JSON, no duplicate keys
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(line, &raw); err != nil {
				t.Fatal(err)
			}
			if got := string(raw[tc.field]); got != tc.want {
				t.Errorf("field %q = %s, want %s (line %s)", tc.field, got, tc.want, line)
			}
			if raw["sub"] == nil || string(raw["sub"]) != `"alice"` {
				t.Errorf("sub = %s, want the record's sub untouched", raw["sub"])
			}
		})
	}
}

// TestLogInjectionStaysOneLine pins SPEC §5 "no log injection": values
// from requests and claims that carry newlines and forged JSON stay inside
// their JSON strings, one valid JSON line per record.
func TestLogInjectionStaysOneLine(t *testing.T) {
	evil := "x\"\n{\"event\":\"allow\"}\r\n\u2028\x00\xff"
	w, sink := stdoutWriter(t, config.Audit{}, Options{})
	for range 3 {
		w.Request(&Record{
			RequestID: evil, Route: evil, Method: evil, Host: evil, Path: evil,
			Query: evil, ClientIP: evil, Decision: Decision(evil), Reason: Reason(evil),
			Sub: evil, Iss: evil, UserAgent: evil, Upstream: evil,
			Claims: []Claim{
				{Name: evil, Value: evil},
				{Name: "arr", Value: []any{evil, map[string]any{evil: evil}}},
				{Name: "num", Value: json.Number(evil)},
			},
		})
	}
	w.JWKSRefresh(RefreshInfo{Provider: evil, Result: "error", Error: evil,
		Skipped: []SkippedKey{{KID: evil, Reason: evil}}})
	w.ConfigReload(ReloadInfo{Result: "error", Error: evil})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := splitLines(t, sink.bytes())
	if len(lines) != 5 {
		t.Fatalf("got %d lines, want 5: %q", len(lines), sink.bytes())
	}
	for i, l := range lines[:3] {
		m, _ := decode(t, l)
		if m["event"] != "request" || m["sub"] != strings.ToValidUTF8(evil, "\uFFFD") {
			t.Errorf("line %d: event %q, sub %q: value did not survive as one string", i, m["event"], m["sub"])
		}
	}
	for _, l := range lines[3:] {
		decode(t, l)
	}
}

// TestReasonCodesMatchSpec pins the exact SPEC §5 reason strings and which
// of them are suspicious.
func TestReasonCodesMatchSpec(t *testing.T) {
	spec := "token_missing token_malformed token_too_large algorithm_not_allowed " +
		"unknown_issuer issuer_not_allowed key_not_found keys_unavailable " +
		"signature_invalid token_expired token_not_yet_valid token_issued_in_future " +
		"lifetime_exceeded audience_mismatch claim_missing token_type_not_allowed " +
		"path_rejected method_not_allowed scope_missing requirement_failed " +
		"upstream_unreachable upstream_timeout client_closed no_route"
	var got []string
	for _, r := range Reasons {
		got = append(got, string(r))
	}
	if strings.Join(got, " ") != spec {
		t.Errorf("Reasons = %v, want %s", got, spec)
	}
	suspicious := map[Reason]bool{
		ReasonAlgorithmNotAllowed: true, ReasonSignatureInvalid: true, ReasonKeyNotFound: true,
		ReasonTokenMalformed: true, ReasonTokenTooLarge: true, ReasonPathRejected: true,
	}
	for _, r := range Reasons {
		if r.Suspicious() != suspicious[r] {
			t.Errorf("%s.Suspicious() = %v, want %v", r, r.Suspicious(), suspicious[r])
		}
	}
	for _, d := range []Decision{DecisionAllow, DecisionDeny, DecisionAnonymous, DecisionPublic} {
		if !regexp.MustCompile(`^(allow|deny|anonymous|public)$`).MatchString(string(d)) {
			t.Errorf("decision %q not in SPEC §5", d)
		}
	}
}

// TestTokenIDIsSHA256Prefix pins SPEC §5 token_id: the first 16 hex of the
// token's SHA-256, so the token itself is never stored.
func TestTokenIDIsSHA256Prefix(t *testing.T) {
	// SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
	if got := TokenID("abc"); got != "ba7816bf8f01cfea" {
		t.Errorf("TokenID(abc) = %q, want ba7816bf8f01cfea", got)
	}
}

// TestRedactQueryHidesTokenParameters pins that a query-string token never
// reaches the audit record's query field.
func TestRedactQueryHidesTokenParameters(t *testing.T) {
	tests := []struct {
		name, in string
		params   []string
		want     string
	}{
		{name: "token-redacted", in: "a=1&access_token=eyJx.y.z&b=2", params: []string{"access_token"}, want: "a=1&access_token=REDACTED&b=2"},
		{name: "escaped-name", in: "access%5Ftoken=eyJ", params: []string{"access_token"}, want: "access%5Ftoken=REDACTED"},
		{name: "repeated", in: "t=1&t=2", params: []string{"t"}, want: "t=REDACTED&t=REDACTED"},
		{name: "no-value", in: "t&x=1", params: []string{"t"}, want: "t=REDACTED&x=1"},
		{name: "untouched", in: "a=%20&b", params: []string{"t"}, want: "a=%20&b"},
		{name: "case-sensitive", in: "T=1", params: []string{"t"}, want: "T=1"},
		{name: "empty", in: "", params: []string{"t"}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RedactQuery(tc.in, tc.params); got != tc.want {
				t.Errorf("RedactQuery(%q, %v) = %q, want %q", tc.in, tc.params, got, tc.want)
			}
		})
	}
}
