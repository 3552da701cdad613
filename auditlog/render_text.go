package auditlog

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// knownDecisions are the SPEC §5 decisions, in display order.
var knownDecisions = []string{"allow", "deny", "anonymous", "public"}

// decisionCounts returns the decisions in display order: the known ones
// (also when zero), then any others by count.
func decisionCounts(m map[string]int) []Count {
	out := make([]Count, 0, len(m)+len(knownDecisions))
	for _, d := range knownDecisions {
		out = append(out, Count{Key: d, N: m[d]})
	}
	for _, c := range sortedCounts(m) {
		if !isKnownDecision(c.Key) {
			out = append(out, c)
		}
	}
	return out
}

func isKnownDecision(d string) bool {
	for _, k := range knownDecisions {
		if d == k {
			return true
		}
	}
	return false
}

// reportTime formats a time for the report: UTC, RFC 3339 to the second.
func reportTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// bucketLabel names the bucket width.
func bucketLabel(d time.Duration) string {
	switch d {
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "day"
	}
	return d.String()
}

// chainText renders the chain status for text and HTML.
func chainText(c ChainStatus) string {
	switch c.State {
	case ChainVerified:
		if c.Skipped > 0 {
			return fmt.Sprintf("verified: %d records, chain intact; %d partial lines from interrupted writes skipped (see audit verify)", c.Records, c.Skipped)
		}
		return fmt.Sprintf("verified: %d records, chain intact", c.Records)
	case ChainBroken:
		if c.Break != nil {
			return fmt.Sprintf("BROKEN at %s (%d records before it intact)", c.Break, c.Records)
		}
		return "BROKEN"
	case ChainError:
		return "could not be checked: " + c.Detail
	case ChainNotChecked:
		return "not checked (give --key-file to verify)"
	}
	return c.State
}

// textBar draws a bar of at most width cells for n out of maxN.
func textBar(n, maxN, width int) string {
	if n <= 0 || maxN <= 0 {
		return ""
	}
	w := n * width / maxN
	if w == 0 {
		w = 1
	}
	return strings.Repeat("█", w)
}

// or returns s, or alt when s is empty.
func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// writeText renders the summary for a terminal. Every value from the log is
// passed through clean, so the report cannot carry terminal escapes.
func writeText(w io.Writer, s *Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }
	section := func(title string) { p("\n%s\n", title) }

	p("jwtgate audit report (times in UTC)\n")
	files := make([]string, len(s.Files))
	for i, f := range s.Files {
		files[i] = clean(f)
	}
	p("Files:\t%s\n", strings.Join(files, ", "))
	p("Period covered:\t%s … %s\n", reportTime(s.First), reportTime(s.Last))
	if !s.Since.IsZero() || !s.Until.IsZero() {
		p("Window:\t%s … %s\n", or(reportTimeOpen(s.Since), "start"), or(reportTimeOpen(s.Until), "now"))
	}
	p("Records:\t%d (%d requests, %d lifecycle)\n", s.Records, s.Requests, s.Records-s.Requests)
	if s.Unparseable > 0 {
		p("Unparseable lines:\t%d (not JSON: truncated or foreign)\n", s.Unparseable)
	}
	if s.Untimed > 0 {
		p("Records without a valid time:\t%d\n", s.Untimed)
	}
	p("Chain:\t%s\n", clean(chainText(s.Chain)))

	section("Decisions")
	dc := decisionCounts(s.ByDecision)
	maxN := 0
	for _, c := range dc {
		maxN = max(maxN, c.N)
	}
	for _, c := range dc {
		p("  %s\t%d\t%s\t%s\n", clean(or(c.Key, "(none)")), c.N, percent(c.N, s.Requests), textBar(c.N, maxN, 30))
	}

	section("Reasons")
	if len(s.ByReason) == 0 {
		p("  none\n")
	}
	for _, c := range sortedCounts(s.ByReason) {
		p("  %s\t%d\n", clean(c.Key), c.N)
	}

	section("Routes")
	if len(s.Routes) == 0 {
		p("  none\n")
	} else {
		p("  ROUTE\tALLOW\tDENY\tOTHER\n")
	}
	for _, r := range s.Routes {
		p("  %s\t%d\t%d\t%d\n", clean(or(r.Route, "(no route)")), r.Allow, r.Deny, r.Other)
	}

	for _, l := range []struct {
		title string
		list  []Count
	}{{"Top subjects allowed", s.TopAllowed}, {"Top subjects denied", s.TopDenied}} {
		section(l.title)
		if len(l.list) == 0 {
			p("  none\n")
		}
		for _, c := range l.list {
			p("  %s\t%d\n", clean(c.Key), c.N)
		}
	}

	section(fmt.Sprintf("Denials over time (per %s; buckets without denials omitted)", bucketLabel(s.Bucket)))
	maxB, total := 0, 0
	for _, b := range s.DenialBuckets {
		maxB = max(maxB, b.N)
		total += b.N
	}
	if total == 0 {
		p("  none\n")
	}
	for _, b := range s.DenialBuckets {
		if b.N > 0 {
			p("  %s\t%d\t%s\n", reportTime(b.Start), b.N, textBar(b.N, maxB, 40))
		}
	}

	section("Config versions")
	if len(s.ConfigVersions) == 0 {
		p("  none recorded\n")
	} else {
		p("  VERSION\tFIRST SEEN\tLAST SEEN\tRECORDS\n")
	}
	for _, v := range s.ConfigVersions {
		p("  %s\t%s\t%s\t%d\n", clean(v.Version), reportTime(v.First), reportTime(v.Last), v.N)
	}

	section("Keys")
	if len(s.Keys) == 0 {
		p("  none recorded\n")
	} else {
		p("  KID\tTHUMBPRINT\tALG\tREQUESTS\n")
	}
	for _, k := range s.Keys {
		p("  %s\t%s\t%s\t%d\n", clean(or(k.KID, "-")), clean(or(k.Thumbprint, "-")), clean(or(k.Alg, "-")), k.N)
	}

	section("Lifecycle")
	l := s.Lifecycle
	p("  startups\t%d\n  shutdowns\t%d\n", l.Startups, l.Shutdowns)
	p("  config reloads\t%d ok, %d failed\n", l.ReloadsOK, l.ReloadsFailed)
	p("  jwks refreshes\t%d ok, %d failed\n", l.JWKSRefreshesOK, l.JWKSRefreshesFailed)
	p("  audit rotations\t%d\n", l.Rotations)
	if l.Dropped > 0 {
		p("  AUDIT RECORDS DROPPED\t%d audit_dropped record(s): the trail has gaps\n", l.Dropped)
	}

	writeSuspiciousText(p, &s.Suspicious)
	return tw.Flush()
}

// writeSuspiciousText renders the "Suspicious activity" section.
func writeSuspiciousText(p func(string, ...any), sp *Suspicious) {
	p("\nSuspicious activity\n")
	p("  records marked suspicious\t%d\n", sp.Total)
	for _, c := range sortedCounts(sp.ByReason) {
		p("    %s\t%d\n", clean(or(c.Key, "(no reason: identity header sent)")), c.N)
	}
	p("  bursts (≥ %d denials from one client_ip within 1 minute)\t%d\n", BurstDenials, len(sp.Bursts))
	for _, b := range sp.Bursts {
		p("    %s\t%s … %s\t%d denials, peak %d/min\t%s\n", clean(b.ClientIP), reportTime(b.Start), reportTime(b.End), b.Denials, b.PeakPerMin, countsInline(b.Reasons))
	}
	p("  possibly stolen tokens (one token_id from ≥ %d client_ips)\t%d\n", SharedTokenIPs, len(sp.SharedTokens))
	for _, t := range sp.SharedTokens {
		p("    token_id %s\t%d requests from %s\tsub %s\n", clean(t.TokenID), t.Requests, clean(strings.Join(t.ClientIPs, ", ")), clean(or(strings.Join(t.Subjects, ", "), "-")))
	}
	p("  subjects denied ≥ %d times\t%d\n", RepeatDenials, len(sp.RepeatDenied))
	for _, c := range sp.RepeatDenied {
		p("    %s\t%d denials\n", clean(c.Key), c.N)
	}
}

// countsInline renders a small count map as "a 3, b 1".
func countsInline(m map[string]int) string {
	var parts []string
	for _, c := range sortedCounts(m) {
		parts = append(parts, fmt.Sprintf("%s %d", clean(or(c.Key, "(none)")), c.N))
	}
	return strings.Join(parts, ", ")
}

// percent renders n/total as a percentage.
func percent(n, total int) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", float64(n)*100/float64(total))
}

// reportTimeOpen is reportTime with "" for the zero time.
func reportTimeOpen(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return reportTime(t)
}
