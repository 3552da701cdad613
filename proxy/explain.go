package proxy

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/jwtgate/jwtgate/audit"
	"github.com/jwtgate/jwtgate/config"
	"github.com/jwtgate/jwtgate/route"
)

// Explanation is what `jwtgate explain` prints: how the gateway would
// route and decide one request, step by step.
type Explanation struct {
	Method     string            `json:"method"`
	URL        string            `json:"url"`
	Path       string            `json:"path,omitempty"`
	Route      string            `json:"route,omitempty"`
	Mode       string            `json:"mode,omitempty"`
	Candidates []route.Candidate `json:"candidates"`
	Steps      []Step            `json:"steps"`
	Status     int               `json:"status"`
	Decision   string            `json:"decision"`
	Reason     string            `json:"reason,omitempty"`
	Provider   string            `json:"provider,omitempty"`
	Forward    string            `json:"forward,omitempty"`
}

// Step is one check of the decision.
type Step struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Explain evaluates routing and the auth decision for one request without
// sending anything upstream. token may be empty. Key sources are used as
// they are (a remote JWKS is fetched by Build).
func (g *Gateway) Explain(ctx context.Context, method, rawURL, token string) *Explanation {
	e := &Explanation{Method: strings.ToUpper(method), URL: rawURL}
	step := func(check string, ok bool, detail string) { e.Steps = append(e.Steps, Step{check, ok, detail}) }
	finish := func(d *denial) *Explanation {
		e.Status, e.Reason = d.Status, string(d.Reason)
		if e.Decision == "" {
			e.Decision = string(audit.DecisionDeny)
		}
		return e
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		step("url", false, "not an absolute URL (https://host/path)")
		return finish(deny(audit.ReasonPathRejected, err))
	}
	p, err := route.CleanPath(u.EscapedPath(), g.pathOpts)
	if err != nil {
		step("path", false, err.Error())
		return finish(deny(audit.ReasonPathRejected, err))
	}
	e.Path = p.Decoded
	step("path", true, "canonical path "+p.Escaped)
	e.Candidates = g.table.Explain(u.Host, e.Method, p)
	res := g.table.Match(u.Host, e.Method, p)
	switch res.Status {
	case 404:
		step("route", false, "no route matches host and path")
		return finish(deny(audit.ReasonNoRoute, nil))
	case 405:
		step("route", false, "routes match the path but not the method; allowed: "+strings.Join(res.Allow, ", "))
		return finish(deny(audit.ReasonMethodNotAllowed, nil))
	}
	rt := g.routes[res.Index]
	e.Route, e.Mode, e.Forward = rt.name, rt.mode, res.Forward
	step("route", true, fmt.Sprintf("routes[%d] %s (mode %s) → %s%s", rt.idx, rt.name, rt.mode, rt.cfg.Upstream.URL, res.Forward))
	if rt.mode == config.ModeOff {
		e.Status, e.Decision = 200, string(audit.DecisionPublic)
		step("auth", true, "mode off: no token check")
		return e
	}
	names := make([]string, len(rt.sources))
	for i, s := range rt.sources {
		names[i] = s.String()
	}
	if token == "" {
		switch rt.mode {
		case config.ModeOptional, config.ModeDryRun:
			step("token", true, "no token: forwarded anonymously (mode "+rt.mode+")")
			e.Status, e.Decision = 200, string(audit.DecisionAnonymous)
			return e
		}
		step("token", false, "no token in "+strings.Join(names, ", "))
		return finish(deny(audit.ReasonTokenMissing, nil))
	}
	step("token", true, "token given (token_id "+audit.TokenID(token)+")")
	v, terr := g.verify(ctx, rt, token, g.deps.Now())
	if terr != nil {
		if terr.p != nil {
			e.Provider = terr.p.name
		}
		step("token checks", false, string(terr.reason)+": "+firstLine(terr.err.Error()))
		if rt.mode == config.ModeDryRun {
			e.Status, e.Decision, e.Reason = 200, string(audit.DecisionAnonymous), string(terr.reason)
			return e
		}
		return finish(deny(terr.reason, terr.err))
	}
	e.Provider = v.p.name
	step("provider", true, fmt.Sprintf("%s (iss %q)", v.p.name, v.iss))
	step("signature", true, fmt.Sprintf("alg %s, kid %q, key %s", v.alg, v.kid, v.thumb))
	step("claims", true, "exp, nbf, iat, aud, max_lifetime, required_claims hold")
	if rt.req != nil {
		for _, c := range rt.req.Explain(v.claims, v.scopes) {
			step("require "+c.What, c.OK, c.Detail)
		}
		if res := rt.req.Eval(v.claims, v.scopes); !res.OK {
			if rt.mode == config.ModeDryRun {
				e.Status, e.Decision, e.Reason = 200, string(audit.DecisionAllow), res.Reason
				return e
			}
			return finish(deny(audit.Reason(res.Reason), nil))
		}
	}
	e.Status, e.Decision = 200, string(audit.DecisionAllow)
	return e
}

// WriteText prints the explanation for a terminal.
func (e *Explanation) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s %s\n", e.Method, e.URL)
	if len(e.Candidates) > 0 {
		fmt.Fprintln(w, "\nroutes:")
		for _, c := range e.Candidates {
			mark := "  "
			if c.Selected {
				mark = "→ "
			}
			fmt.Fprintf(w, "  %sroutes[%d] %-20s %s\n", mark, c.Index, c.Name, c.Reason)
		}
	}
	fmt.Fprintln(w, "\nsteps:")
	for _, s := range e.Steps {
		mark := "ok  "
		if !s.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  [%s] %-16s %s\n", mark, s.Check, s.Detail)
	}
	fmt.Fprintf(w, "\ndecision: %s, status %d", e.Decision, e.Status)
	if e.Reason != "" {
		fmt.Fprintf(w, ", reason %s", e.Reason)
	}
	if e.Route != "" {
		fmt.Fprintf(w, ", route %s", e.Route)
	}
	fmt.Fprintln(w)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
