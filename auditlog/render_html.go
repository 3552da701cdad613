package auditlog

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var reportHTMLSource string

// reportHTML is the HTML report template. html/template escapes every value
// by context, so subjects, routes and paths from the log cannot inject
// markup; the page also carries a Content-Security-Policy that forbids
// scripts and every external load, as a second line of defence.
var reportHTML = template.Must(template.New("report").Funcs(template.FuncMap{
	"time":       reportTime,
	"chain":      chainText,
	"alt":        or,
	"join":       strings.Join,
	"counts":     sortedCounts,
	"inline":     countsInline,
	"pct":        percent,
	"bucketName": bucketLabel,
}).Parse(reportHTMLSource))

// svgBar is one bar of an inline SVG chart, in viewBox units.
type svgBar struct {
	Label      string
	N          int
	X, Y, W, H float64
	Class      string
	TextX      float64
	TextY      float64
}

// htmlView is what the template renders.
type htmlView struct {
	S         *Summary
	Generated time.Time
	Decisions []Count
	// NonRequests counts lifecycle (and other non-request) records.
	NonRequests int

	DecisionBars   []svgBar
	DecisionHeight int

	DenialBars   []svgBar
	DenialFirst  string
	DenialLast   string
	DenialMax    int
	DenialsTotal int
}

// Chart geometry, in SVG user units.
const (
	decLabelW = 100
	decBarMax = 300
	decRowH   = 24
	timeW     = 720.0
	timeH     = 140.0
)

// newHTMLView precomputes the charts.
func newHTMLView(s *Summary, now time.Time) *htmlView {
	v := &htmlView{S: s, Generated: now, Decisions: decisionCounts(s.ByDecision), NonRequests: s.Records - s.Requests}
	maxN := 1
	for _, c := range v.Decisions {
		maxN = max(maxN, c.N)
	}
	for i, c := range v.Decisions {
		w := round2(float64(c.N) / float64(maxN) * decBarMax)
		y := float64(i*decRowH) + 2
		v.DecisionBars = append(v.DecisionBars, svgBar{
			Label: or(c.Key, "(none)"), N: c.N,
			X: decLabelW, Y: y, W: w, H: decRowH - 6,
			Class: "d-" + classFor(c.Key), TextX: decLabelW + w + 6, TextY: y + decRowH/2 + 2,
		})
	}
	v.DecisionHeight = len(v.Decisions)*decRowH + 4

	for _, b := range s.DenialBuckets {
		v.DenialMax = max(v.DenialMax, b.N)
		v.DenialsTotal += b.N
	}
	if n := len(s.DenialBuckets); n > 0 {
		bw := timeW / float64(n)
		top := max(v.DenialMax, 1)
		for i, b := range s.DenialBuckets {
			if b.N == 0 {
				continue // empty buckets are the gaps between bars
			}
			h := float64(b.N) / float64(top) * timeH
			v.DenialBars = append(v.DenialBars, svgBar{
				Label: reportTime(b.Start), N: b.N,
				X: round2(float64(i) * bw), Y: round2(timeH - h), W: round2(max(bw*0.85, 0.5)), H: round2(h),
			})
		}
		v.DenialFirst = reportTime(s.DenialBuckets[0].Start)
		v.DenialLast = reportTime(s.DenialBuckets[n-1].Start)
	}
	return v
}

// TopN exposes the package constant to the template.
func (v *htmlView) TopN() int { return TopN }

// BurstDenials exposes the package constant to the template.
func (v *htmlView) BurstDenials() int { return BurstDenials }

// SharedTokenIPs exposes the package constant to the template.
func (v *htmlView) SharedTokenIPs() int { return SharedTokenIPs }

// RepeatDenials exposes the package constant to the template.
func (v *htmlView) RepeatDenials() int { return RepeatDenials }

// round2 rounds to two decimals, enough for SVG coordinates.
func round2(f float64) float64 { return math.Round(f*100) / 100 }

// classFor maps a decision to its CSS class suffix (known decisions only,
// so no log value reaches a class name).
func classFor(d string) string {
	if isKnownDecision(d) {
		return d
	}
	return "other"
}

// writeHTML renders the summary as one self-contained HTML page.
func writeHTML(w io.Writer, s *Summary, now time.Time) error {
	if err := reportHTML.Execute(w, newHTMLView(s, now)); err != nil {
		return fmt.Errorf("report: render html: %w", err)
	}
	return nil
}
