package audit

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// TimeFormat is the layout of every record's `time` field: RFC 3339 with
// milliseconds, always in UTC ("2025-01-02T15:04:05.000Z").
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Event names (the `event` field).
const (
	EventRequest      = "request"
	EventStartup      = "startup"
	EventShutdown     = "shutdown"
	EventConfigReload = "config_reload"
	EventJWKSRefresh  = "jwks_refresh"
	// EventAuditDropped reports records lost under on_write_error "drop".
	EventAuditDropped = "audit_dropped"
	// EventAuditRotated is the first record of a new audit file.
	EventAuditRotated = "audit_rotated"
)

// Levels written in the `level` field.
const (
	levelInfo = "info"
	levelWarn = "warn"
)

// ClaimPrefix is put before a configured claim's name when the name
// collides with a reserved field name (or already starts with the prefix,
// which keeps the mapping one-to-one).
const ClaimPrefix = "claim_"

// reservedFields are the field names of request records plus the chain
// members; a configured claim with one of these names is written as
// ClaimPrefix + name.
var reservedFields = map[string]bool{
	"time": true, "level": true, "event": true, "message": true,
	"request_id": true, "route": true, "method": true, "host": true,
	"path": true, "query": true, "client_ip": true, "status": true,
	"grpc_status": true, "decision": true, "dry_run": true, "reason": true,
	"suspicious": true, "provider": true, "iss": true, "sub": true,
	"kid": true, "alg": true, "jti": true, "token_id": true,
	"key_thumbprint": true, "config_version": true, "upstream": true,
	"duration_ms": true, "bytes_in": true, "bytes_out": true,
	"user_agent": true, "seq": true, "chain": true, "prev_chain": true,
}

// ClaimField returns the field name a configured claim is written under:
// the claim's name, or ClaimPrefix + name when the name is reserved or
// already starts with ClaimPrefix.
func ClaimField(name string) string {
	if reservedFields[name] || strings.HasPrefix(name, ClaimPrefix) {
		return ClaimPrefix + name
	}
	return name
}

// appendTime appends t in TimeFormat, in UTC.
func appendTime(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, TimeFormat)
}

// appendMillis appends d as a JSON number of milliseconds with microsecond
// precision ("12.345", "3", "0.007"). Negative durations are written as 0.
func appendMillis(dst []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	dst = strconv.AppendInt(dst, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return dst
	}
	digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for digits[n-1] == '0' {
		n--
	}
	dst = append(dst, '.')
	return append(dst, digits[:n]...)
}

// appendFloat appends a finite float64 the way encoding/json writes it
// (1700000000 rather than 1.7e+09).
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// isJSONNumber reports whether s is exactly one JSON number: valid JSON
// (encoding/json's own grammar check) whose first byte starts a number and
// whose last byte is a digit, so no whitespace or other value slips in.
func isJSONNumber(s string) bool {
	if s == "" || !(s[0] == '-' || s[0] >= '0' && s[0] <= '9') || s[len(s)-1] < '0' || s[len(s)-1] > '9' {
		return false
	}
	return json.Valid([]byte(s))
}

// claimValue writes one claim value under key: strings as JSON strings,
// numbers as JSON numbers, booleans, null, and arrays and objects as the
// compact JSON encoding/json produces. A value encoding/json cannot encode
// is left out.
func claimValue(e *zerolog.Event, key string, v any) {
	switch x := v.(type) {
	case string:
		e.Str(key, x)
	case bool:
		e.Bool(key, x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		var buf [32]byte
		e.RawJSON(key, appendFloat(buf[:0], x))
	case json.Number:
		if isJSONNumber(string(x)) {
			e.RawJSON(key, []byte(x))
		} else {
			e.Str(key, string(x))
		}
	case int:
		e.Int(key, x)
	case int64:
		e.Int64(key, x)
	case nil:
		e.RawJSON(key, []byte("null"))
	case []string:
		e.Strs(key, x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return
		}
		e.RawJSON(key, b)
	}
}

// optStr writes key only when val is not empty.
func optStr(e *zerolog.Event, key, val string) {
	if val != "" {
		e.Str(key, val)
	}
}

// optStrs writes key only when vals is not empty.
func optStrs(e *zerolog.Event, key string, vals []string) {
	if len(vals) > 0 {
		e.Strs(key, vals)
	}
}

// head starts a record: time, level, event.
func head(e *zerolog.Event, t time.Time, level, event string) *zerolog.Event {
	var tb [40]byte
	return e.Bytes("time", appendTime(tb[:0], t)).Str("level", level).Str("event", event)
}

// encodeRequest writes a request record's fields, in SPEC §5 order.
func (w *Writer) encodeRequest(e *zerolog.Event, r *Record) {
	t := r.Time
	if t.IsZero() {
		t = w.now()
	}
	head(e, t, levelInfo, EventRequest)
	e.Str("request_id", r.RequestID).Str("route", r.Route)
	optStr(e, "method", r.Method)
	optStr(e, "host", r.Host)
	optStr(e, "path", r.Path)
	optStr(e, "query", r.Query)
	optStr(e, "client_ip", r.ClientIP)
	e.Int("status", r.Status)
	if r.HasGRPCStatus {
		e.Int("grpc_status", r.GRPCStatus)
	}
	e.Str("decision", string(r.Decision))
	if r.DryRun {
		e.Bool("dry_run", true)
	}
	optStr(e, "reason", string(r.Reason))
	if r.Suspicious {
		e.Bool("suspicious", true)
	}
	optStr(e, "provider", r.Provider)
	optStr(e, "iss", r.Iss)
	optStr(e, "sub", r.Sub)
	optStr(e, "kid", r.Kid)
	optStr(e, "alg", r.Alg)
	optStr(e, "jti", r.JTI)
	optStr(e, "token_id", r.TokenID)
	optStr(e, "key_thumbprint", r.KeyThumbprint)
	cv := r.ConfigVersion
	if cv == "" {
		cv = w.ConfigVersion()
	}
	e.Str("config_version", cv)
	for i, c := range r.Claims {
		if c.Name == "" || claimSeen(r.Claims[:i], c.Name) {
			continue
		}
		key, ok := w.claimKeys[c.Name]
		if !ok {
			key = ClaimField(c.Name)
		}
		claimValue(e, key, c.Value)
	}
	optStr(e, "upstream", r.Upstream)
	var db [24]byte
	e.RawJSON("duration_ms", appendMillis(db[:0], r.Duration))
	e.Int64("bytes_in", r.BytesIn).Int64("bytes_out", r.BytesOut)
	optStr(e, "user_agent", r.UserAgent)
}

// claimSeen reports whether name occurs in claims (duplicates are written
// once, so no field name repeats).
func claimSeen(claims []Claim, name string) bool {
	for _, c := range claims {
		if c.Name == name {
			return true
		}
	}
	return false
}

// StartupInfo describes the process and configuration at startup.
type StartupInfo struct {
	// Version is jwtgate's version (`version`).
	Version string
	// ConfigVersion is the loaded config's version; when set it also
	// becomes the Writer's current config version.
	ConfigVersion string
	// GoVersion is the Go runtime version (`go_version`); runtime.Version()
	// when empty.
	GoVersion string
	// PID is the process id (`pid`); os.Getpid() when zero.
	PID int
	// Routes is the route inventory (`routes`).
	Routes []RouteInfo
	// Providers is the provider inventory (`providers`).
	Providers []ProviderInfo
}

// RouteInfo is one route in the startup inventory. Empty fields are omitted.
type RouteInfo struct {
	Name       string   // `name`
	Host       string   // `host`
	Path       string   // `path`
	PathPrefix string   // `path_prefix`
	Methods    []string // `methods`
	Upstream   string   // `upstream`
	Mode       string   // `mode`
	Providers  []string // `providers`
	Scopes     []string // `scopes`
	// Claims are human-readable requirement summaries (`claims`), such as
	// `tenant equals "acme"`.
	Claims []string
	// AnyOf is the number of any_of blocks (`any_of`, omitted when zero).
	AnyOf int
	// TokenSources are summaries such as `header Authorization "Bearer "`
	// (`token_sources`).
	TokenSources []string
	// StripToken is `strip_token` (always written).
	StripToken bool
	// ClaimsToHeaders maps claim path to header (`claims_to_headers`,
	// an object with sorted keys).
	ClaimsToHeaders map[string]string
}

// MarshalZerologObject writes the route as a JSON object.
func (r RouteInfo) MarshalZerologObject(e *zerolog.Event) {
	e.Str("name", r.Name)
	optStr(e, "host", r.Host)
	optStr(e, "path", r.Path)
	optStr(e, "path_prefix", r.PathPrefix)
	optStrs(e, "methods", r.Methods)
	optStr(e, "upstream", r.Upstream)
	optStr(e, "mode", r.Mode)
	optStrs(e, "providers", r.Providers)
	optStrs(e, "scopes", r.Scopes)
	optStrs(e, "claims", r.Claims)
	if r.AnyOf > 0 {
		e.Int("any_of", r.AnyOf)
	}
	optStrs(e, "token_sources", r.TokenSources)
	e.Bool("strip_token", r.StripToken)
	if len(r.ClaimsToHeaders) > 0 {
		keys := make([]string, 0, len(r.ClaimsToHeaders))
		for k := range r.ClaimsToHeaders {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		d := zerolog.Dict()
		for _, k := range keys {
			d.Str(k, r.ClaimsToHeaders[k])
		}
		e.Dict("claims_to_headers", d)
	}
}

// ProviderInfo is one provider in the startup inventory.
type ProviderInfo struct {
	Name   string // `name`
	Issuer string // `issuer`
	// KeySource is the kind of key source (`key_source`): "jwks_url",
	// "discovery", "jwks_file" or "keys".
	KeySource  string
	Algorithms []string // `algorithms`
	Audiences  []string // `audiences`, omitted when empty
}

// MarshalZerologObject writes the provider as a JSON object.
func (p ProviderInfo) MarshalZerologObject(e *zerolog.Event) {
	e.Str("name", p.Name).Str("issuer", p.Issuer)
	optStr(e, "key_source", p.KeySource)
	optStrs(e, "algorithms", p.Algorithms)
	optStrs(e, "audiences", p.Audiences)
}

// ShutdownInfo describes a clean shutdown.
type ShutdownInfo struct {
	// Reason says why (`reason`), e.g. "SIGTERM".
	Reason string
	// Uptime is the process's run time (`uptime_ms`, integer milliseconds).
	Uptime time.Duration
	// Records is the number of audit records written (`records`); pass
	// Writer.Written().
	Records uint64
	// Dropped is the number of audit records dropped (`dropped`); pass
	// Writer.Dropped().
	Dropped uint64
}

// ReloadInfo describes one config reload attempt.
type ReloadInfo struct {
	// Result is "ok" or "error" (`result`).
	Result string
	// OldVersion is the version in force before (`old_config_version`).
	OldVersion string
	// NewVersion is the version of the file tried (`new_config_version`).
	NewVersion string
	// Error says why the reload failed (`error`, omitted when empty).
	Error string
}

// Results of config reloads and JWKS refreshes (`result`).
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// KeyInfo is one JWK added or removed by a JWKS refresh.
type KeyInfo struct {
	KID        string // `kid`
	Kty        string // `kty`
	Alg        string // `alg`
	Crv        string // `crv`, omitted when empty
	Bits       int    // `bits` (key size), omitted when zero
	Thumbprint string // `thumbprint`, RFC 7638, base64url without padding
}

// MarshalZerologObject writes the key as a JSON object.
func (k KeyInfo) MarshalZerologObject(e *zerolog.Event) {
	e.Str("kid", k.KID).Str("thumbprint", k.Thumbprint)
	optStr(e, "alg", k.Alg)
	optStr(e, "kty", k.Kty)
	optStr(e, "crv", k.Crv)
	if k.Bits > 0 {
		e.Int("bits", k.Bits)
	}
}

// SkippedKey is a JWK a refresh did not use (weak or unusable).
type SkippedKey struct {
	KID    string // `kid`
	Reason string // `reason`, e.g. "rsa key under 2048 bits"
}

// MarshalZerologObject writes the skipped key as a JSON object.
func (k SkippedKey) MarshalZerologObject(e *zerolog.Event) {
	e.Str("kid", k.KID).Str("reason", k.Reason)
}

// RefreshInfo describes one JWKS refresh of a provider.
type RefreshInfo struct {
	Provider string // `provider`
	// Source is where the keys came from (`source`): a URL or file path.
	Source string
	// Trigger is what caused it (`trigger`): "startup", "interval",
	// "unknown_kid", "file_change".
	Trigger string
	// Result is "ok" or "error" (`result`).
	Result string
	// Error says why the refresh failed (`error`, omitted when empty).
	Error   string
	Added   []KeyInfo    // `kids_added`, omitted when empty
	Removed []KeyInfo    // `kids_removed`, omitted when empty
	Skipped []SkippedKey // `keys_skipped`, omitted when empty
	// Keys is the number of usable keys after the refresh (`keys`).
	Keys int
}

func keyArray[T zerolog.LogObjectMarshaler](items []T) *zerolog.Array {
	a := zerolog.Arr()
	for _, it := range items {
		a.Object(it)
	}
	return a
}
