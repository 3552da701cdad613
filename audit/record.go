package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"time"
)

// Decision is the outcome of a request (SPEC §5 `decision`).
type Decision string

// Decisions. DecisionPublic is a route with auth mode off; DecisionAnonymous
// is a request forwarded without a verified identity: an optional or
// dry_run route reached without a (valid) token, or a tokenless CORS
// preflight passed by cors_preflight: pass.
const (
	DecisionAllow     Decision = "allow"
	DecisionDeny      Decision = "deny"
	DecisionAnonymous Decision = "anonymous"
	DecisionPublic    Decision = "public"
)

// Reason is a stable SPEC §5 reason code. It is empty when a request was
// allowed and the upstream answered.
type Reason string

// Reason codes (SPEC §5), exact.
const (
	ReasonTokenMissing        Reason = "token_missing"
	ReasonTokenMalformed      Reason = "token_malformed"
	ReasonTokenTooLarge       Reason = "token_too_large"
	ReasonAlgorithmNotAllowed Reason = "algorithm_not_allowed"
	ReasonUnknownIssuer       Reason = "unknown_issuer"
	ReasonIssuerNotAllowed    Reason = "issuer_not_allowed"
	ReasonKeyNotFound         Reason = "key_not_found"
	ReasonKeysUnavailable     Reason = "keys_unavailable"
	ReasonSignatureInvalid    Reason = "signature_invalid"
	ReasonTokenExpired        Reason = "token_expired"
	ReasonTokenNotYetValid    Reason = "token_not_yet_valid"
	ReasonTokenIssuedInFuture Reason = "token_issued_in_future"
	ReasonLifetimeExceeded    Reason = "lifetime_exceeded"
	ReasonAudienceMismatch    Reason = "audience_mismatch"
	ReasonClaimMissing        Reason = "claim_missing"
	ReasonTokenTypeNotAllowed Reason = "token_type_not_allowed"
	ReasonPathRejected        Reason = "path_rejected"
	ReasonMethodNotAllowed    Reason = "method_not_allowed"
	ReasonScopeMissing        Reason = "scope_missing"
	ReasonRequirementFailed   Reason = "requirement_failed"
	ReasonUpstreamUnreachable Reason = "upstream_unreachable"
	ReasonUpstreamTimeout     Reason = "upstream_timeout"
	ReasonClientClosed        Reason = "client_closed"
	ReasonNoRoute             Reason = "no_route"
)

// Reasons lists every reason code in SPEC §5 order.
var Reasons = []Reason{
	ReasonTokenMissing, ReasonTokenMalformed, ReasonTokenTooLarge,
	ReasonAlgorithmNotAllowed, ReasonUnknownIssuer, ReasonIssuerNotAllowed,
	ReasonKeyNotFound, ReasonKeysUnavailable, ReasonSignatureInvalid,
	ReasonTokenExpired, ReasonTokenNotYetValid, ReasonTokenIssuedInFuture,
	ReasonLifetimeExceeded, ReasonAudienceMismatch, ReasonClaimMissing,
	ReasonTokenTypeNotAllowed, ReasonPathRejected, ReasonMethodNotAllowed,
	ReasonScopeMissing, ReasonRequirementFailed, ReasonUpstreamUnreachable,
	ReasonUpstreamTimeout, ReasonClientClosed, ReasonNoRoute,
}

// Suspicious reports whether the reason itself points at an attack rather
// than a mistake (SPEC §5): algorithm_not_allowed, signature_invalid,
// key_not_found, token_malformed, token_too_large and path_rejected. A
// request is also suspicious when it carried a gateway-set identity header;
// the caller knows that and sets Record.Suspicious itself.
func (r Reason) Suspicious() bool {
	switch r {
	case ReasonAlgorithmNotAllowed, ReasonSignatureInvalid, ReasonKeyNotFound,
		ReasonTokenMalformed, ReasonTokenTooLarge, ReasonPathRejected:
		return true
	}
	return false
}

// Claim is one configured audit claim (audit.claims) copied from a verified
// token. Value is what the JSON decoder produced: string, float64 or
// json.Number, bool, nil, []any or map[string]any (int, int64 and []string
// are accepted too).
type Claim struct {
	// Name is the claim name as configured; it becomes the field name, or
	// "claim_" + Name when it collides with a reserved field name.
	Name string
	// Value is the claim's value.
	Value any
}

// Record is one request's audit record. Field names on the wire are the
// SPEC §5 names given on each field. Empty strings are omitted, except
// request_id, route, decision and config_version, which are always written.
// There is deliberately no field for a raw token, a secret, or an
// Authorization or Cookie value.
type Record struct {
	// Time is when the request arrived (`time`). Zero means "now".
	Time time.Time
	// RequestID is the request's X-Request-Id (`request_id`, always written).
	RequestID string
	// Route is the matched route's name (`route`, always written; empty
	// when no route matched).
	Route string
	// Method is the HTTP method (`method`).
	Method string
	// Host is the request host (`host`).
	Host string
	// Path is the request path without the query string (`path`).
	Path string
	// Query is the query string with token parameters already redacted by
	// the caller (`query`, omitted when empty). See RedactQuery.
	Query string
	// ClientIP is the client address (`client_ip`).
	ClientIP string
	// Status is the HTTP status (`status`, always written): the
	// HTTP-equivalent status for gRPC, 499 when the client went away.
	Status int
	// GRPCStatus is the gRPC status code (`grpc_status`), written only when
	// HasGRPCStatus is true.
	GRPCStatus int
	// HasGRPCStatus marks GRPCStatus as set.
	HasGRPCStatus bool
	// Decision is allow, deny, anonymous or public (`decision`, always written).
	Decision Decision
	// DryRun is written as `"dry_run":true` only when true.
	DryRun bool
	// Reason is the SPEC §5 reason code (`reason`, omitted when empty).
	Reason Reason
	// Suspicious is written as `"suspicious":true` only when true.
	Suspicious bool
	// Provider is the provider's configured name (`provider`).
	Provider string
	// Iss is the token's issuer (`iss`).
	Iss string
	// Sub is the token's subject (`sub`).
	Sub string
	// Kid is the token header's key id (`kid`).
	Kid string
	// Alg is the token header's algorithm (`alg`).
	Alg string
	// JTI is the token id claim (`jti`).
	JTI string
	// TokenID is TokenID(raw token) (`token_id`): correlates without storing
	// the token.
	TokenID string
	// KeyThumbprint is the RFC 7638 thumbprint of the verifying key,
	// base64url without padding (`key_thumbprint`).
	KeyThumbprint string
	// ConfigVersion is the config that decided (`config_version`, always
	// written). Empty means the Writer's current version.
	ConfigVersion string
	// Claims are the configured audit claims, each written as a top-level
	// field (see Claim).
	Claims []Claim
	// Upstream is the upstream URL the request was sent to (`upstream`).
	Upstream string
	// Duration is the time from request arrival to the record
	// (`duration_ms`, a number of milliseconds with microsecond precision).
	Duration time.Duration
	// BytesIn is the request body size read (`bytes_in`, always written).
	BytesIn int64
	// BytesOut is the response body size written (`bytes_out`, always written).
	BytesOut int64
	// UserAgent is the request's User-Agent (`user_agent`).
	UserAgent string
}

// TokenID returns the SPEC §5 token_id of a raw token: the first 16 hex
// digits of its SHA-256. It identifies a token in the audit trail without
// storing it.
func TokenID(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:8])
}

// RedactedValue replaces a token parameter's value in a redacted query.
const RedactedValue = "REDACTED"

// RedactQuery returns rawQuery with the value of every parameter named in
// params (compared after unescaping the name, case-sensitively) replaced by
// RedactedValue. Other parameters are kept byte for byte, in order. Use it
// for Record.Query with the names of every `query` token source.
func RedactQuery(rawQuery string, params []string) string {
	if rawQuery == "" || len(params) == 0 {
		return rawQuery
	}
	parts := strings.Split(rawQuery, "&")
	changed := false
	for i, part := range parts {
		name, _, _ := strings.Cut(part, "=")
		unescaped, err := url.QueryUnescape(name)
		if err != nil {
			unescaped = name
		}
		for _, p := range params {
			if p != "" && p == unescaped {
				parts[i] = name + "=" + RedactedValue
				changed = true
				break
			}
		}
	}
	if !changed {
		return rawQuery
	}
	return strings.Join(parts, "&")
}
