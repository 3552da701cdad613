package proxy

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/jwtgate/jwtgate/audit"
)

// A denial is a request the gateway refuses (or an upstream failure it
// answers for). Status, Code and Desc go to the client; Err only to the
// operational log; Reason to the audit record.
type denial struct {
	Status int          // 400, 401, 403, 404, 405, 499, 502, 503, 504
	Code   string       // SPEC §4 error code: "invalid_token", ...
	Reason audit.Reason // SPEC §5 reason code
	Desc   string       // short fixed text; never input, never err.Error()
	Scopes []string     // missing scopes, for insufficient_scope
	Allow  string       // Allow header for 405
	Err    error        // detail for the operational log
}

// Fixed client-facing texts per reason. They never echo input.
var reasonText = map[audit.Reason]string{
	audit.ReasonTokenMissing:        "a bearer token is required",
	audit.ReasonTokenMalformed:      "the token is malformed",
	audit.ReasonTokenTooLarge:       "the token is too large",
	audit.ReasonAlgorithmNotAllowed: "the token's signing algorithm is not allowed",
	audit.ReasonUnknownIssuer:       "the token's issuer is not known",
	audit.ReasonIssuerNotAllowed:    "the token's issuer is not accepted on this route",
	audit.ReasonKeyNotFound:         "the token's signing key is not known",
	audit.ReasonKeysUnavailable:     "signing keys are temporarily unavailable",
	audit.ReasonSignatureInvalid:    "the token's signature is invalid",
	audit.ReasonTokenExpired:        "the token has expired",
	audit.ReasonTokenNotYetValid:    "the token is not valid yet",
	audit.ReasonTokenIssuedInFuture: "the token was issued in the future",
	audit.ReasonLifetimeExceeded:    "the token's lifetime exceeds the allowed maximum",
	audit.ReasonAudienceMismatch:    "the token's audience is not accepted",
	audit.ReasonClaimMissing:        "the token lacks a required claim",
	audit.ReasonTokenTypeNotAllowed: "the token's type is not allowed",
	audit.ReasonPathRejected:        "the request path is not allowed",
	audit.ReasonMethodNotAllowed:    "the method is not allowed on this path",
	audit.ReasonScopeMissing:        "the token lacks a required scope",
	audit.ReasonRequirementFailed:   "the token does not meet this route's requirements",
	audit.ReasonUpstreamUnreachable: "the upstream service is unreachable",
	audit.ReasonUpstreamTimeout:     "the upstream service did not answer in time",
	audit.ReasonNoRoute:             "no route matches this request",
	audit.ReasonClientClosed:        "the client closed the request",
	ReasonBodyTooLarge:              "the request body is too large",
}

// deny builds the denial for a reason with its SPEC §4 status and code.
func deny(reason audit.Reason, err error) *denial {
	d := &denial{Reason: reason, Desc: reasonText[reason], Err: err}
	switch reason {
	case audit.ReasonTokenMissing:
		d.Status, d.Code = http.StatusUnauthorized, "unauthorized"
	case audit.ReasonScopeMissing, audit.ReasonRequirementFailed:
		d.Status, d.Code = http.StatusForbidden, "insufficient_scope"
	case audit.ReasonPathRejected:
		d.Status, d.Code = http.StatusBadRequest, "invalid_request"
	case audit.ReasonNoRoute:
		d.Status, d.Code = http.StatusNotFound, "not_found"
	case audit.ReasonMethodNotAllowed:
		d.Status, d.Code = http.StatusMethodNotAllowed, "method_not_allowed"
	case audit.ReasonKeysUnavailable:
		d.Status, d.Code = http.StatusServiceUnavailable, "temporarily_unavailable"
	case audit.ReasonUpstreamUnreachable:
		d.Status, d.Code = http.StatusBadGateway, "bad_gateway"
	case audit.ReasonUpstreamTimeout:
		d.Status, d.Code = http.StatusGatewayTimeout, "gateway_timeout"
	case audit.ReasonClientClosed:
		d.Status, d.Code = 499, "client_closed"
	case ReasonBodyTooLarge:
		d.Status, d.Code = http.StatusRequestEntityTooLarge, "request_too_large"
	default:
		d.Status, d.Code = http.StatusUnauthorized, "invalid_token"
	}
	return d
}

// isGRPC reports whether the request is a gRPC call (SPEC §4).
func isGRPC(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// grpcStatus maps an HTTP answer to the gRPC status code a gRPC client
// understands.
func grpcStatus(status int) int {
	switch status {
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusBadRequest:
		return 3 // INVALID_ARGUMENT
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return 12 // UNIMPLEMENTED
	case http.StatusGatewayTimeout:
		return 4 // DEADLINE_EXCEEDED
	default:
		return 14 // UNAVAILABLE
	}
}

// write sends the denial to the client: a JSON body (SPEC §4) with the
// RFC 6750 challenge, or, for gRPC requests, HTTP 200 with grpc-status.
// It returns the gRPC status written, or -1 for a plain HTTP answer.
func (d *denial) write(w http.ResponseWriter, r *http.Request, requestID string) int {
	if d.Status == 499 {
		return -1 // the client is gone; nothing to write
	}
	h := w.Header()
	if isGRPC(r) {
		gs := grpcStatus(d.Status)
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(gs))
		h.Set("Grpc-Message", url.PathEscape(d.Desc))
		w.WriteHeader(http.StatusOK)
		return gs
	}
	switch d.Status {
	case http.StatusUnauthorized:
		if d.Code == "unauthorized" {
			h.Set("WWW-Authenticate", `Bearer realm="jwtgate"`)
		} else {
			h.Set("WWW-Authenticate", `Bearer realm="jwtgate", error="invalid_token", error_description="`+d.Desc+`"`)
		}
	case http.StatusForbidden:
		v := `Bearer realm="jwtgate", error="insufficient_scope", error_description="` + d.Desc + `"`
		if len(d.Scopes) > 0 {
			v += `, scope="` + scopeParam(d.Scopes) + `"`
		}
		h.Set("WWW-Authenticate", v)
	case http.StatusMethodNotAllowed:
		h.Set("Allow", d.Allow)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(d.Status)
	var b strings.Builder
	b.Grow(96 + len(d.Desc) + len(requestID))
	b.WriteString(`{"error":"`)
	b.WriteString(d.Code)
	b.WriteString(`","error_description":"`)
	b.WriteString(d.Desc)
	b.WriteString(`","request_id":"`)
	b.WriteString(requestID) // generated or validated to [A-Za-z0-9._:-]
	b.WriteString("\"}\n")
	_, _ = w.Write([]byte(b.String()))
	return -1
}

// scopeParam joins scope names for the WWW-Authenticate scope parameter,
// dropping any character RFC 6750 §3 does not allow in a scope token so a
// configured name can never break the header.
func scopeParam(scopes []string) string {
	var b strings.Builder
	for i, s := range scopes {
		if i > 0 {
			b.WriteByte(' ')
		}
		for _, c := range []byte(s) {
			if c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E) {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

// ReasonBodyTooLarge is the audit reason of a body over the route's
// max_body_bytes (413). SPEC §5 has no code for it; it extends the list.
const ReasonBodyTooLarge audit.Reason = "body_too_large"
