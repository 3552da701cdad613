package auditlog

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ANSI styles used by the human view.
const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
	ansiDim    = "\x1b[2m"
	ansiBold   = "\x1b[1m"
)

// useColor reports whether w is a terminal and NO_COLOR is not set
// (https://no-color.org: any non-empty value disables colour).
func useColor(w any, noColor string) bool {
	if noColor != "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return fi.Mode()&os.ModeCharDevice != 0
}

// humanFormatter renders records as aligned one-line summaries.
type humanFormatter struct {
	color bool
	loc   *time.Location
}

// Column widths of the human view: wide enough for the longest fixed values
// (decision "anonymous", method "OPTIONS", the longest reason code, an IPv4
// address). Longer values push the rest of the line right rather than being
// cut, so nothing is hidden.
const (
	wDecision = 9
	wMethod   = 7
	wTarget   = 36
	wRoute    = 14
	wReason   = 22
	wSub      = 16
	wIP       = 15
)

// style wraps s in an ANSI style when colour is on.
func (h *humanFormatter) style(code, s string) string {
	if !h.color || code == "" {
		return s
	}
	return code + s + ansiReset
}

// pad right-pads s to width w (in runes); values are cleaned first.
func pad(s string, w int) string {
	if n := utf8.RuneCountInString(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// dash shows an empty value as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clock formats a record's time as local HH:MM:SS.mmm.
func (h *humanFormatter) clock(r *record) string {
	t, ok := r.time()
	if !ok {
		return pad(dash(clean(r.str("time"))), 12)
	}
	return t.In(h.loc).Format("15:04:05.000")
}

// decisionStyle is the colour of a decision.
func decisionStyle(d string) string {
	switch d {
	case "allow":
		return ansiGreen
	case "deny":
		return ansiRed
	case "anonymous", "public":
		return ansiDim
	}
	return ""
}

// unparseable renders a line that is not a JSON object.
func (h *humanFormatter) unparseable(size int) string {
	return h.style(ansiYellow, fmt.Sprintf("?? unparseable line (%d bytes)", size))
}

// format renders one record.
func (h *humanFormatter) format(r *record) string {
	if r.isRequest() {
		return h.request(r)
	}
	return h.lifecycle(r)
}

// request renders a request record: time, decision, status, method,
// host+path, route, reason, sub, client_ip, duration, then flags.
func (h *humanFormatter) request(r *record) string {
	var b strings.Builder
	b.WriteString(h.clock(r))
	b.WriteString("  ")
	d := clean(r.str("decision"))
	b.WriteString(h.style(decisionStyle(d), pad(dash(d), wDecision)))
	b.WriteString(" ")
	status := clean(r.text("status"))
	fmt.Fprintf(&b, "%3s ", dash(status))
	b.WriteString(pad(dash(clean(r.str("method"))), wMethod))
	b.WriteString(" ")
	b.WriteString(pad(dash(clean(r.str("host")+r.str("path"))), wTarget))
	b.WriteString(" ")
	b.WriteString(pad(dash(clean(r.str("route"))), wRoute))
	b.WriteString(" ")
	reason := pad(dash(clean(r.str("reason"))), wReason)
	if r.flag("suspicious") {
		reason = h.style(ansiBold+ansiRed, reason)
	}
	b.WriteString(reason)
	b.WriteString(" ")
	b.WriteString(pad(dash(clean(r.str("sub"))), wSub))
	b.WriteString(" ")
	b.WriteString(pad(dash(clean(r.str("client_ip"))), wIP))
	b.WriteString(" ")
	b.WriteString(formatDuration(r))
	if r.flag("dry_run") {
		b.WriteString(" " + h.style(ansiYellow, "[dry-run]"))
	}
	if r.flag("suspicious") {
		b.WriteString(" " + h.style(ansiBold+ansiRed, "[suspicious]"))
	}
	if g := r.text("grpc_status"); g != "" {
		b.WriteString(" grpc_status=" + clean(g))
	}
	return b.String()
}

// formatDuration renders duration_ms compactly ("1.5ms", "12.3ms", "2.41s").
func formatDuration(r *record) string {
	ms, ok := r.num("duration_ms")
	if !ok {
		return "-"
	}
	switch {
	case ms >= 1000:
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + "s"
	case ms >= 100:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	default:
		return strconv.FormatFloat(ms, 'f', -1, 64) + "ms"
	}
}

// lifecycleSkip lists members the lifecycle view leaves out: shown
// elsewhere on the line, or chain bookkeeping.
var lifecycleSkip = map[string]bool{"time": true, "event": true, "chain": true, "seq": true}

// lifecycle renders a startup, shutdown, config_reload, jwks_refresh,
// audit_rotated, audit_dropped (or unknown) record: the event name, then its
// members as key=value in the order written.
func (h *humanFormatter) lifecycle(r *record) string {
	var b strings.Builder
	b.WriteString(h.clock(r))
	b.WriteString("  ")
	ev := clean(dash(r.str("event")))
	style := ansiCyan
	if lvl := r.str("level"); lvl == "error" || lvl == "warn" || lvl == "fatal" || isFailure(r) {
		style = ansiYellow
	}
	b.WriteString(h.style(style, pad(ev, wDecision)))
	for _, k := range r.keys {
		if lifecycleSkip[k] || (k == "level" && r.str(k) == "info") {
			continue
		}
		v := r.text(k)
		if k == "prev_chain" && len(v) > 16 {
			v = v[:16] + "…"
		}
		b.WriteString(" ")
		b.WriteString(clean(k))
		b.WriteString("=")
		if _, isStr := r.vals[k].(string); isStr {
			b.WriteString(quoteIfNeeded(v))
		} else {
			b.WriteString(clean(v)) // number, bool or compact JSON
		}
	}
	return b.String()
}

// isFailure reports whether a lifecycle record (config_reload, jwks_refresh)
// describes a failure. The writer's field names for the outcome are not fixed
// by SPEC; the metrics label them "result", so that is read first, then an
// error member or an error/warn level.
func isFailure(r *record) bool {
	switch strings.ToLower(r.str("result")) {
	case "ok", "success", "succeeded", "unchanged", "changed", "updated":
		return false
	case "fail", "failed", "failure", "error", "rejected", "invalid", "stale":
		return true
	}
	if r.text("error") != "" || r.text("err") != "" {
		return true
	}
	switch r.str("level") {
	case "error", "warn", "fatal", "panic":
		return true
	}
	return false
}
