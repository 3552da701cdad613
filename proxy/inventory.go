package proxy

import (
	"fmt"

	"github.com/jwtgate/jwtgate/audit"
)

// Inventory describes every route and provider for the startup audit
// record: which providers, mode, requirements and token sources apply,
// and whether the token is stripped — the "under which rules" an auditor
// asks about.
func (g *Gateway) Inventory() ([]audit.RouteInfo, []audit.ProviderInfo) {
	routes := make([]audit.RouteInfo, 0, len(g.routes))
	for _, rt := range g.routes {
		c := rt.cfg
		ri := audit.RouteInfo{
			Name:            c.Name,
			Host:            c.Match.Host,
			Path:            c.Match.Path,
			PathPrefix:      c.Match.PathPrefix,
			Methods:         c.Match.Methods,
			Upstream:        c.Upstream.URL,
			Mode:            rt.mode,
			Scopes:          c.Auth.Require.Scopes,
			AnyOf:           len(c.Auth.Require.AnyOf),
			StripToken:      c.Auth.Forward.StripToken,
			ClaimsToHeaders: c.Auth.Forward.ClaimsToHeaders,
		}
		for _, p := range rt.allowed {
			ri.Providers = append(ri.Providers, p.name)
		}
		for _, cr := range c.Auth.Require.Claims {
			ri.Claims = append(ri.Claims, describeRule(cr.Claim, cr.Equals, cr.OneOf, cr.ContainsAny, cr.ContainsAll, cr.Matches, cr.Exists))
		}
		for _, s := range rt.sources {
			ri.TokenSources = append(ri.TokenSources, s.String())
		}
		routes = append(routes, ri)
	}
	provs := make([]audit.ProviderInfo, 0, len(g.cfg.Providers))
	for _, p := range g.cfg.Providers {
		kind := "keys"
		switch {
		case p.JWKSURL != "":
			kind = "jwks_url"
		case p.Discovery:
			kind = "discovery"
		case p.JWKSFile != "":
			kind = "jwks_file"
		}
		provs = append(provs, audit.ProviderInfo{Name: p.Name, Issuer: p.Issuer, KeySource: kind, Algorithms: p.Algorithms, Audiences: p.Audiences})
	}
	return routes, provs
}

func describeRule(claim string, equals any, oneOf, anyOf, allOf []any, matches string, exists *bool) string {
	switch {
	case equals != nil:
		return fmt.Sprintf("%s equals %v", claim, equals)
	case oneOf != nil:
		return fmt.Sprintf("%s one_of %v", claim, oneOf)
	case anyOf != nil:
		return fmt.Sprintf("%s contains_any %v", claim, anyOf)
	case allOf != nil:
		return fmt.Sprintf("%s contains_all %v", claim, allOf)
	case matches != "":
		return fmt.Sprintf("%s matches %q", claim, matches)
	case exists != nil:
		return fmt.Sprintf("%s exists %v", claim, *exists)
	}
	return claim
}
