package config

import (
	"path/filepath"
	"slices"
	"strings"
)

// applyDefaults fills every field left unset with its Default* value. A
// zero value means "unset" for each defaulted field. auth.providers is left
// empty on purpose: empty means every provider.
func (c *Config) applyDefaults() {
	s := &c.Server
	setDefault(&s.Address, DefaultAddress)
	setDefault(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&s.IdleTimeout, DefaultIdleTimeout)
	setDefault(&s.BodyIdleTimeout, DefaultBodyIdleTimeout)
	setDefault(&s.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&s.ShutdownGrace, DefaultShutdownGrace)

	setDefault(&c.Admin.Address, DefaultAdminAddress)

	for i := range c.Providers {
		p := &c.Providers[i]
		if len(p.Algorithms) == 0 {
			p.Algorithms = slices.Clone(DefaultAlgorithms)
		}
		setDefault(&p.RefreshInterval, DefaultRefreshInterval)
		setDefault(&p.UnknownKIDMinInterval, DefaultUnknownKIDMinInterval)
		setDefault(&p.FetchTimeout, DefaultFetchTimeout)
		setDefault(&p.MaxTokenBytes, DefaultMaxTokenBytes)
		setDefault(&p.ClockSkew, DefaultClockSkew)
		setDefault(&p.MaxStale, DefaultMaxStale)
		if len(p.RequiredClaims) == 0 {
			p.RequiredClaims = slices.Clone(DefaultRequiredClaims)
		}
		if len(p.TokenSources) == 0 {
			p.TokenSources = []TokenSource{{Header: "Authorization", Prefix: "Bearer "}}
		}
	}

	for i := range c.Routes {
		r := &c.Routes[i]
		setDefault(&r.Auth.Mode, ModeRequired)
		setDefault(&r.Auth.CORSPreflight, CORSPreflightCheck)
		setDefault(&r.Upstream.Timeout, DefaultUpstreamTimeout)
	}

	a := &c.Audit
	setDefault(&a.Output, DefaultAuditOutput)
	setDefault(&a.OnWriteError, DefaultAuditOnWriteError)
	setDefault(&a.Rotate.MaxSizeMB, DefaultAuditMaxSizeMB)
	setDefault(&a.Rotate.MaxBackups, DefaultAuditMaxBackups)
}

// setDefault sets *v to def when *v is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// normalize puts values that compare case-insensitively into one case:
// route hosts in lowercase (DNS names are case-insensitive) and methods in
// uppercase (the form clients send), so matching is a plain comparison.
func (c *Config) normalize() {
	for i := range c.Routes {
		m := &c.Routes[i].Match
		m.Host = strings.ToLower(m.Host)
		for j, meth := range m.Methods {
			m.Methods[j] = strings.ToUpper(meth)
		}
	}
}

// resolvePaths makes every relative file path in the config relative to
// dir, the config file's directory, so the config means the same whatever
// the working directory of the process.
func (c *Config) resolvePaths(dir string) {
	if dir == "" {
		return
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if c.Server.TLS != nil {
		abs(&c.Server.TLS.CertFile)
		abs(&c.Server.TLS.KeyFile)
	}
	for i := range c.Providers {
		p := &c.Providers[i]
		abs(&p.JWKSFile)
		for j := range p.Keys {
			abs(&p.Keys[j].SecretFile)
			abs(&p.Keys[j].PublicKeyFile)
		}
	}
	abs(&c.Audit.File)
	if c.Audit.Chain != nil {
		abs(&c.Audit.Chain.KeyFile)
	}
}
