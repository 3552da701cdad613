package jwks

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/config"
)

// maxRedirects is how many redirects one fetch may follow.
const maxRedirects = 3

// discoveryPath is appended to the issuer for OpenID Connect discovery.
const discoveryPath = "/.well-known/openid-configuration"

// checkURL parses a JWKS or discovery URL and applies SPEC §8: https, or
// plain http on a loopback host, or plain http anywhere with
// allow_insecure_http.
func checkURL(raw string, allowInsecure bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid url: %w", err)
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("invalid url %q: no host", u.Redacted())
	}
	switch u.Scheme {
	case "https":
		return u, nil
	case "http":
		if allowInsecure || isLoopbackHost(u.Hostname()) {
			return u, nil
		}
		return nil, fmt.Errorf("%q: %w", u.Redacted(), ErrInsecureURL)
	}
	return nil, fmt.Errorf("%q: scheme %q: %w", u.Redacted(), u.Scheme, ErrInsecureURL)
}

// isLoopbackHost reports whether host is "localhost" or a loopback address
// (127.0.0.0/8, ::1, or those mapped into IPv6).
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// fetcher performs bounded GETs for one provider.
type fetcher struct {
	client  *http.Client
	timeout time.Duration
}

// newFetcher returns a fetcher using base (a copy of it, so its redirect
// policy can be enforced) or, when base is nil, a client tuned for JWKS
// fetches with timeout on every phase.
func newFetcher(base *http.Client, timeout time.Duration) *fetcher {
	var c http.Client
	if base != nil {
		c = *base
	} else {
		c.Transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          4,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
		}
	}
	if c.Timeout <= 0 || c.Timeout > timeout {
		c.Timeout = timeout
	}
	c.CheckRedirect = checkRedirect
	return &fetcher{client: &c, timeout: timeout}
}

// checkRedirect allows at most maxRedirects redirects, each to https, or to
// plain http on loopback when the original URL was plain http itself (never
// a downgrade from https, never to plain http off loopback).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrRedirectRefused, maxRedirects)
	}
	switch req.URL.Scheme {
	case "https":
		return nil
	case "http":
		if via[0].URL.Scheme == "http" && isLoopbackHost(req.URL.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("%w: to %q (only https, or loopback http from a loopback http url)", ErrRedirectRefused, req.URL.Redacted())
}

// get fetches rawURL with the fetch timeout and returns its body. A status
// other than 200 and a body over config.MaxJWKSBytes are errors.
func (f *fetcher) get(ctx context.Context, rawURL string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	req.Header.Set("User-Agent", "jwtgate")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %d", ErrUnexpectedStatus, resp.StatusCode)
	}
	if resp.ContentLength > config.MaxJWKSBytes {
		return nil, fmt.Errorf("%w: content-length %d exceeds %d bytes", ErrResponseTooLarge, resp.ContentLength, config.MaxJWKSBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, config.MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > config.MaxJWKSBytes {
		return nil, fmt.Errorf("%w: exceeds %d bytes", ErrResponseTooLarge, config.MaxJWKSBytes)
	}
	return body, nil
}

// discover fetches the issuer's OpenID Connect discovery document and
// returns its jwks_uri, which must pass the same URL rules. The document's
// issuer must equal the configured issuer exactly (OpenID Connect
// Discovery §4.3), so a document cannot point one issuer at another's keys.
func (f *fetcher) discover(ctx context.Context, discoveryURL, issuer string, allowInsecure bool) (string, error) {
	body, err := f.get(ctx, discoveryURL)
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("%w: %v", ErrDiscovery, err)
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("%w: document says %q, configured %q", ErrIssuerMismatch, oneLine(doc.Issuer), issuer)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("%w: no jwks_uri", ErrDiscovery)
	}
	u, err := checkURL(doc.JWKSURI, allowInsecure)
	if err != nil {
		return "", fmt.Errorf("%w: jwks_uri: %w", ErrDiscovery, err)
	}
	return u.String(), nil
}

// discoveryURLFor returns issuer + "/.well-known/openid-configuration",
// without doubling a trailing slash.
func discoveryURLFor(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + discoveryPath
}
