package main

import (
	"github.com/jwtgate/jwtgate/audit"
	"github.com/jwtgate/jwtgate/jwks"
	"github.com/jwtgate/jwtgate/proxy"
)

// startupInfo is the startup record: version, config_version and the
// route and provider inventory.
func startupInfo(g *proxy.Gateway, ver string) audit.StartupInfo {
	routes, provs := g.Inventory()
	return audit.StartupInfo{Version: ver, ConfigVersion: g.Config().Version, Routes: routes, Providers: provs}
}

// refreshInfo converts a key source event into its audit record.
func refreshInfo(ev jwks.RefreshEvent) audit.RefreshInfo {
	ri := audit.RefreshInfo{Provider: ev.Provider, Source: ev.Source, Trigger: ev.Trigger, Result: ev.Result, Keys: ev.Keys}
	if ev.Err != nil {
		ri.Error = firstLine(ev.Err.Error())
	}
	conv := func(ks []jwks.KeyInfo) []audit.KeyInfo {
		out := make([]audit.KeyInfo, len(ks))
		for i, k := range ks {
			out[i] = audit.KeyInfo{KID: k.KID, Kty: k.Kty, Alg: k.Alg, Crv: k.Crv, Bits: k.Bits, Thumbprint: k.Thumbprint}
		}
		return out
	}
	ri.Added, ri.Removed = conv(ev.Added), conv(ev.Removed)
	for _, s := range ev.Skipped {
		ri.Skipped = append(ri.Skipped, audit.SkippedKey{KID: s.KID, Reason: s.Reason})
	}
	return ri
}
