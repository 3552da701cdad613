package auditlog

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"time"
)

// Thresholds of the "Suspicious activity" section of the report.
const (
	// BurstDenials denials from one client_ip within BurstWindow make a burst.
	BurstDenials = 10
	// BurstWindow is the span in which BurstDenials denials make a burst.
	BurstWindow = time.Minute
	// SharedTokenIPs distinct client_ips presenting one token_id mark a
	// possibly stolen token.
	SharedTokenIPs = 3
	// RepeatDenials denials of one subject mark it in the report.
	RepeatDenials = 5
	// TopN is the length of the top-subjects lists.
	TopN = 10
)

// Chain states reported in Summary.Chain.State.
const (
	// ChainNotChecked means the records carry a chain but no key was given.
	ChainNotChecked = "not checked"
	// ChainNone means no record carries a chain member.
	ChainNone = "no chain"
	// ChainVerified means Verify found the chain intact.
	ChainVerified = "verified"
	// ChainBroken means Verify found a break (see ChainStatus.Break).
	ChainBroken = "broken"
	// ChainError means Verify could not run (see ChainStatus.Detail).
	ChainError = "error"
)

// Summary is the content of an access-review report over audit files.
// Counts cover the records whose time lies in [Since, Until); with neither
// set, every record.
type Summary struct {
	// Files are the files read, in order.
	Files []string
	// Since and Until are the requested window; zero means open.
	Since, Until time.Time
	// First and Last are the earliest and latest record times in the window
	// (zero when no record had a time).
	First, Last time.Time

	// Records counts every record in the window, lifecycle events included.
	Records int
	// Requests counts request records (event "request").
	Requests int
	// Unparseable counts lines that are not a JSON object (any window).
	Unparseable int
	// Untimed counts records without a valid time; they are left out when a
	// window is set and counted otherwise.
	Untimed int
	// ChainedRecords counts records that carry a chain member.
	ChainedRecords int

	// ByDecision counts request records per decision ("" when absent).
	ByDecision map[string]int
	// ByReason counts request records per non-empty reason.
	ByReason map[string]int
	// Routes holds per-route decision counts, by route name.
	Routes []RouteCount
	// TopAllowed and TopDenied are the TopN subjects with the most allowed
	// and denied requests, most first (ties by name).
	TopAllowed, TopDenied []Count
	// DenialBuckets counts denials per Bucket, from the first to the last
	// record's bucket, empty buckets included.
	DenialBuckets []Bucket
	// Bucket is the width of DenialBuckets: a minute when the records span
	// less than 2 hours, an hour up to 31 days, a day beyond.
	Bucket time.Duration
	// ConfigVersions lists each config_version with when it was first and
	// last seen, in order of first appearance.
	ConfigVersions []Seen
	// Keys lists each (kid, key_thumbprint, alg) that verified a request:
	// records with a key_thumbprint, and records without one that were not
	// denied. A denied token's kid without a thumbprint is not a key use.
	Keys []KeyUse
	// Lifecycle counts the lifecycle events.
	Lifecycle Lifecycle
	// Chain is the chain status. Summarize sets ChainNotChecked or
	// ChainNone; ReportCommand with --key-file replaces it with the result of
	// Verify.
	Chain ChainStatus
	// Suspicious is the suspicious-activity analysis.
	Suspicious Suspicious
}

// Count is a key with its number of records.
type Count struct {
	Key string
	N   int
}

// RouteCount holds one route's requests by decision. Other counts
// anonymous, public and any other decision.
type RouteCount struct {
	Route              string
	Allow, Deny, Other int
}

// Bucket is one interval of the denials-over-time series.
type Bucket struct {
	Start time.Time
	N     int
}

// Seen is a config version and the span it was seen in.
type Seen struct {
	Version     string
	First, Last time.Time
	N           int
}

// KeyUse is a verification key seen in request records.
type KeyUse struct {
	KID, Thumbprint, Alg string
	N                    int
}

// Lifecycle counts lifecycle events. A config_reload or jwks_refresh counts
// as failed when its result member says so (failed, error, rejected, …), or
// it carries an error member or an error/warn level.
type Lifecycle struct {
	Startups, Shutdowns                  int
	ReloadsOK, ReloadsFailed             int
	JWKSRefreshesOK, JWKSRefreshesFailed int
	Rotations                            int
	// Dropped counts audit_dropped records (the writer lost records under
	// on_write_error: drop).
	Dropped int
}

// ChainStatus is the state of the tamper-evident chain over the files.
type ChainStatus struct {
	// State is one of ChainNotChecked, ChainNone, ChainVerified, ChainBroken
	// or ChainError.
	State string
	// Records is the number of records Verify found intact.
	Records int
	// Break is the first broken record when State is ChainBroken.
	Break *Break
	// Detail explains ChainError.
	Detail string
	// Skipped counts partial lines from interrupted writes that Verify
	// skipped (see Result.Skipped).
	Skipped int
}

// Suspicious is the report's suspicious-activity analysis.
type Suspicious struct {
	// Total counts records marked suspicious: true.
	Total int
	// ByReason counts them per reason ("" for an allowed request that sent
	// an identity header).
	ByReason map[string]int
	// Bursts are episodes of at least BurstDenials denials from one
	// client_ip within BurstWindow.
	Bursts []Burst
	// SharedTokens are token_ids presented from at least SharedTokenIPs
	// distinct client_ips: possibly stolen tokens.
	SharedTokens []SharedToken
	// RepeatDenied are subjects denied at least RepeatDenials times, most
	// first.
	RepeatDenied []Count
}

// Burst is one episode of rapid denials from one client address: the
// denials spanned by overlapping BurstWindow windows that each hold at least
// BurstDenials of them.
type Burst struct {
	ClientIP   string
	Start, End time.Time
	// Denials counts the denials in the episode.
	Denials int
	// PeakPerMin is the most denials within any BurstWindow of it.
	PeakPerMin int
	// Reasons counts the episode's denials per reason.
	Reasons map[string]int
}

// SharedToken is one token_id seen from several client addresses.
type SharedToken struct {
	TokenID   string
	ClientIPs []string
	Subjects  []string
	Requests  int
}

// summarizer accumulates a Summary.
type summarizer struct {
	s          *Summary
	routes     map[string]*RouteCount
	allowed    map[string]int
	denied     map[string]int
	denyTimes  []time.Time
	configs    map[string]*Seen
	configList []string
	keys       map[KeyUse]int
	ipDenials  map[string][]denial
	tokenIPs   map[string]map[string]bool
	tokenSubs  map[string]map[string]bool
	tokenN     map[string]int
}

// denial is one denied request, for burst detection.
type denial struct {
	at     time.Time
	reason string
}

// Summarize reads files (oldest first) and summarises the records whose time
// lies in [since, until); a zero since or until leaves that side open. Lines
// that are not JSON objects are counted, not fatal. The error is for files
// that cannot be read.
func Summarize(files []string, since, until time.Time) (*Summary, error) {
	return summarize(context.Background(), files, since, until)
}

// summarize is Summarize, interruptible through ctx.
func summarize(ctx context.Context, files []string, since, until time.Time) (*Summary, error) {
	z := &summarizer{
		s: &Summary{
			Files: slices.Clone(files), Since: since, Until: until,
			ByDecision: map[string]int{}, ByReason: map[string]int{},
			Suspicious: Suspicious{ByReason: map[string]int{}},
		},
		routes: map[string]*RouteCount{}, allowed: map[string]int{}, denied: map[string]int{},
		configs: map[string]*Seen{}, keys: map[KeyUse]int{},
		ipDenials: map[string][]denial{}, tokenIPs: map[string]map[string]bool{},
		tokenSubs: map[string]map[string]bool{}, tokenN: map[string]int{},
	}
	for _, name := range files {
		if err := z.file(ctx, name); err != nil {
			return nil, err
		}
	}
	z.finish()
	return z.s, nil
}

func (z *summarizer) file(ctx context.Context, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	err = forEachLine(ctx, f, func(line []byte, _ int, tooLong, _ bool) error {
		if tooLong {
			z.s.Unparseable++
			return nil
		}
		rec, err := parseRecord(line)
		if err != nil {
			z.s.Unparseable++
			// A record cut short, then a whole one appended after it.
			_, r, ok := recoverRecord(line)
			if !ok {
				return nil
			}
			rec = r
		}
		z.add(rec)
		return nil
	})
	if err != nil {
		return fmt.Errorf("report: read %s: %w", name, err)
	}
	return nil
}

// inWindow applies the since/until window to a record.
func (z *summarizer) inWindow(t time.Time, ok bool) bool {
	windowed := !z.s.Since.IsZero() || !z.s.Until.IsZero()
	if !ok {
		z.s.Untimed++
		return !windowed
	}
	if !z.s.Since.IsZero() && t.Before(z.s.Since) {
		return false
	}
	if !z.s.Until.IsZero() && !t.Before(z.s.Until) {
		return false
	}
	return true
}

// add accounts for one record.
func (z *summarizer) add(r *record) {
	t, timed := r.time()
	if !z.inWindow(t, timed) {
		return
	}
	s := z.s
	s.Records++
	if timed {
		if s.First.IsZero() || t.Before(s.First) {
			s.First = t
		}
		if t.After(s.Last) {
			s.Last = t
		}
	}
	if r.has("chain") {
		s.ChainedRecords++
	}
	if cv := r.str("config_version"); cv != "" {
		seen := z.configs[cv]
		if seen == nil {
			seen = &Seen{Version: cv}
			z.configs[cv] = seen
			z.configList = append(z.configList, cv)
		}
		seen.N++
		if timed {
			if seen.First.IsZero() || t.Before(seen.First) {
				seen.First = t
			}
			if t.After(seen.Last) {
				seen.Last = t
			}
		}
	}
	switch r.event() {
	case "request":
		z.request(r, t, timed)
	case "startup":
		s.Lifecycle.Startups++
	case "shutdown":
		s.Lifecycle.Shutdowns++
	case "config_reload":
		if isFailure(r) {
			s.Lifecycle.ReloadsFailed++
		} else {
			s.Lifecycle.ReloadsOK++
		}
	case "jwks_refresh":
		if isFailure(r) {
			s.Lifecycle.JWKSRefreshesFailed++
		} else {
			s.Lifecycle.JWKSRefreshesOK++
		}
	case "audit_rotated":
		s.Lifecycle.Rotations++
	case "audit_dropped":
		s.Lifecycle.Dropped++
	}
}

// request accounts for one request record.
func (z *summarizer) request(r *record, t time.Time, timed bool) {
	s := z.s
	s.Requests++
	decision, reason, sub, ip := r.str("decision"), r.str("reason"), r.str("sub"), r.str("client_ip")
	s.ByDecision[decision]++
	if reason != "" {
		s.ByReason[reason]++
	}
	route := r.str("route")
	rc := z.routes[route]
	if rc == nil {
		rc = &RouteCount{Route: route}
		z.routes[route] = rc
	}
	switch decision {
	case "allow":
		rc.Allow++
		if sub != "" {
			z.allowed[sub]++
		}
	case "deny":
		rc.Deny++
		if sub != "" {
			z.denied[sub]++
		}
		if timed {
			z.denyTimes = append(z.denyTimes, t)
			if ip != "" {
				z.ipDenials[ip] = append(z.ipDenials[ip], denial{at: t, reason: reason})
			}
		}
	default:
		rc.Other++
	}
	// A key counts when it verified the token: the record names its
	// thumbprint, or (records without thumbprints) the request was not
	// denied. The kid of a denied token without a thumbprint is only what
	// the token claimed — a forged token names a real kid too.
	if kid, tp, alg := r.str("kid"), r.str("key_thumbprint"), r.str("alg"); tp != "" || (kid != "" && decision != "deny") {
		z.keys[KeyUse{KID: kid, Thumbprint: tp, Alg: alg}]++
	}
	if r.flag("suspicious") {
		s.Suspicious.Total++
		s.Suspicious.ByReason[reason]++
	}
	if tid := r.str("token_id"); tid != "" {
		if z.tokenIPs[tid] == nil {
			z.tokenIPs[tid] = map[string]bool{}
			z.tokenSubs[tid] = map[string]bool{}
		}
		if ip != "" {
			z.tokenIPs[tid][ip] = true
		}
		if sub != "" {
			z.tokenSubs[tid][sub] = true
		}
		z.tokenN[tid]++
	}
}

// finish turns the accumulators into the Summary's sorted lists.
func (z *summarizer) finish() {
	s := z.s
	for _, rc := range z.routes {
		s.Routes = append(s.Routes, *rc)
	}
	slices.SortFunc(s.Routes, func(a, b RouteCount) int { return cmp.Compare(a.Route, b.Route) })
	s.TopAllowed = top(z.allowed, TopN, 1)
	s.TopDenied = top(z.denied, TopN, 1)
	s.Suspicious.RepeatDenied = top(z.denied, 0, RepeatDenials)
	for _, v := range z.configList {
		s.ConfigVersions = append(s.ConfigVersions, *z.configs[v])
	}
	for k, n := range z.keys {
		k.N = n
		s.Keys = append(s.Keys, k)
	}
	slices.SortFunc(s.Keys, func(a, b KeyUse) int {
		return cmp.Or(cmp.Compare(b.N, a.N), cmp.Compare(a.KID, b.KID), cmp.Compare(a.Thumbprint, b.Thumbprint), cmp.Compare(a.Alg, b.Alg))
	})
	s.Bucket, s.DenialBuckets = buckets(s.First, s.Last, z.denyTimes)
	s.Suspicious.Bursts = findBursts(z.ipDenials)
	for tid, ips := range z.tokenIPs {
		if len(ips) < SharedTokenIPs {
			continue
		}
		s.Suspicious.SharedTokens = append(s.Suspicious.SharedTokens, SharedToken{
			TokenID: tid, ClientIPs: sortedKeys(ips), Subjects: sortedKeys(z.tokenSubs[tid]), Requests: z.tokenN[tid],
		})
	}
	slices.SortFunc(s.Suspicious.SharedTokens, func(a, b SharedToken) int {
		return cmp.Or(cmp.Compare(len(b.ClientIPs), len(a.ClientIPs)), cmp.Compare(a.TokenID, b.TokenID))
	})
	s.Chain.State = ChainNone
	if s.ChainedRecords > 0 {
		s.Chain.State = ChainNotChecked
	}
}

// top returns the keys of m with at least min records, most first, ties by
// key; at most n of them when n > 0.
func top(m map[string]int, n, min int) []Count {
	var out []Count
	for k, v := range m {
		if v >= min {
			out = append(out, Count{Key: k, N: v})
		}
	}
	slices.SortFunc(out, func(a, b Count) int { return cmp.Or(cmp.Compare(b.N, a.N), cmp.Compare(a.Key, b.Key)) })
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// sortedCounts returns m's entries sorted by count, most first, ties by key.
func sortedCounts(m map[string]int) []Count { return top(m, 0, 0) }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// maxBuckets bounds the denials-over-time series whatever the span.
const maxBuckets = 1000

// buckets chooses the bucket width for the span first..last (a minute below
// 2 hours, an hour up to 31 days, a day beyond) and counts times per bucket,
// empty buckets included.
func buckets(first, last time.Time, times []time.Time) (time.Duration, []Bucket) {
	if first.IsZero() {
		return 0, nil
	}
	span := last.Sub(first)
	width := time.Hour
	switch {
	case span < 2*time.Hour:
		width = time.Minute
	case span > 31*24*time.Hour:
		width = 24 * time.Hour
	}
	for last.Truncate(width).Sub(first.Truncate(width))/width+1 > maxBuckets {
		width *= 2
	}
	start := first.Truncate(width)
	n := int(last.Truncate(width).Sub(start)/width) + 1
	out := make([]Bucket, n)
	for i := range out {
		out[i].Start = start.Add(time.Duration(i) * width).UTC()
	}
	for _, t := range times {
		i := int(t.Truncate(width).Sub(start) / width)
		if i >= 0 && i < n {
			out[i].N++
		}
	}
	return width, out
}

// findBursts finds, per client address, the episodes where BurstDenials
// denials fall within BurstWindow. Overlapping qualifying windows merge
// into one episode.
func findBursts(byIP map[string][]denial) []Burst {
	var out []Burst
	for ip, ds := range byIP {
		if len(ds) < BurstDenials {
			continue
		}
		slices.SortStableFunc(ds, func(a, b denial) int { return a.at.Compare(b.at) })
		first, last := -1, -1 // the current episode is ds[first..last]
		for j := BurstDenials - 1; j < len(ds); j++ {
			i := j - (BurstDenials - 1)
			if ds[j].at.Sub(ds[i].at) >= BurstWindow {
				continue
			}
			// ds[i..j] is a qualifying window.
			if first >= 0 && i > last {
				out = append(out, newBurst(ip, ds[first:last+1]))
				first = -1
			}
			if first < 0 {
				first = i
			}
			last = j
		}
		if first >= 0 {
			out = append(out, newBurst(ip, ds[first:last+1]))
		}
	}
	slices.SortFunc(out, func(a, b Burst) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.ClientIP, b.ClientIP))
	})
	return out
}

// newBurst describes the episode span (sorted by time).
func newBurst(ip string, span []denial) Burst {
	b := Burst{ClientIP: ip, Start: span[0].at, End: span[len(span)-1].at, Denials: len(span), Reasons: map[string]int{}}
	lo := 0
	for hi := range span {
		for span[hi].at.Sub(span[lo].at) >= BurstWindow {
			lo++
		}
		b.PeakPerMin = max(b.PeakPerMin, hi-lo+1)
		b.Reasons[span[hi].reason]++
	}
	return b
}
