package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// testCert is a self-signed certificate for 127.0.0.1 and localhost.
type testCert struct {
	certPEM, keyPEM []byte
	leaf            *x509.Certificate
}

func newTestCert(t *testing.T, cn string) testCert {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		leaf:    leaf,
	}
}

// install writes the certificate and key to dir/tls.crt and dir/tls.key.
func (c testCert) install(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), c.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), c.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

func certPool(certs ...testCert) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c.leaf)
	}
	return p
}

const tlsConfigYAML = `
server: {address: "127.0.0.1:0", tls: {cert_file: tls.crt, key_file: tls.key}, shutdown_grace: 5s}
admin: {address: "127.0.0.1:0"}
providers:
  - {name: main, issuer: "https://idp.test/", audiences: [api], jwks_url: "{{JWKS}}", algorithms: [ES256]}
routes:
  - {name: api, match: {path_prefix: /api}, upstream: {url: "{{BACKEND}}"}, auth: {providers: [main]}}
  - {name: open, match: {path_prefix: /open}, upstream: {url: "{{BACKEND}}"}, auth: {mode: "off"}}
audit: {output: file, file: "{{AUDIT}}"}
`

// TestTLSServesHTTP2AndRefusesLegacyTLS pins issue 3 item 3: server.tls
// serves HTTPS, negotiates HTTP/2 by ALPN (HTTP/1.1 still offered), and a
// client that speaks at most TLS 1.1 (a downgrade to broken protocol
// versions) is refused in the handshake.
func TestTLSServesHTTP2AndRefusesLegacyTLS(t *testing.T) {
	dir := t.TempDir()
	certA := newTestCert(t, "cert-a")
	certA.install(t, dir)
	is, be := newIssuer(t, "k1"), newBackend(t)
	path := writeGatewayConfig(t, dir, "gateway.yaml", tlsConfigYAML, map[string]string{"JWKS": is.srv.URL, "BACKEND": be.srv.URL})
	g := startGateway(t, path, false, false)
	tok := is.mint(t, nil)

	cases := []struct {
		name      string
		tr        *http.Transport
		wantProto int
	}{
		{"h2-by-alpn", &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certPool(certA)}, ForceAttemptHTTP2: true}, 2},
		{"http1-still-offered", &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certPool(certA), NextProtos: []string{"http/1.1"}}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", g.base+"/api/x", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			defer tc.tr.CloseIdleConnections() // else shutdown waits out HTTP/2's GOAWAY grace
			resp, err := (&http.Client{Transport: tc.tr, Timeout: 5 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != "ok /api/x" {
				t.Errorf("status %d body %q", resp.StatusCode, body)
			}
			if resp.ProtoMajor != tc.wantProto {
				t.Errorf("protocol %s, want HTTP/%d", resp.Proto, tc.wantProto)
			}
			if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
				t.Errorf("connection state %+v: want TLS 1.2 or newer", resp.TLS)
			}
		})
	}

	t.Run("tls-1.1-refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", g.addr, &tls.Config{RootCAs: certPool(certA), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			conn.Close()
			t.Fatal("a TLS 1.1 handshake succeeded; the minimum must be TLS 1.2")
		}
	})
}

// TestTLSCertificateReloadsOnSIGHUP pins issue 3 item 3: the certificate
// and key are read again on a real SIGHUP without a restart, whether or
// not the YAML changed, and also when the YAML is now invalid (the old
// config keeps serving, the renewed certificate is still taken); a broken
// key pair keeps the certificate in use.
func TestTLSCertificateReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certA, certB, certC := newTestCert(t, "cert-a"), newTestCert(t, "cert-b"), newTestCert(t, "cert-c")
	certA.install(t, dir)
	is, be := newIssuer(t, "k1"), newBackend(t)
	vars := map[string]string{"JWKS": is.srv.URL, "BACKEND": be.srv.URL}
	path := writeGatewayConfig(t, dir, "gateway.yaml", tlsConfigYAML, vars)
	g := startGateway(t, path, false, true)
	startVersion := g.configVersion(t)

	// Every request on a new connection, so each sees the certificate
	// that is current when it connects.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: certPool(certA, certB, certC)}, ForceAttemptHTTP2: true, DisableKeepAlives: true}}
	servedCN := func() string {
		t.Helper()
		resp, err := client.Get(g.base + "/open/x")
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	sighup := func() {
		t.Helper()
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	// A long-lived connection opened on cert A stays up across the swap.
	old, err := tls.Dial("tcp", g.addr, &tls.Config{RootCAs: certPool(certA), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if cn := servedCN(); cn != "cert-a" {
		t.Fatalf("served %q before any reload, want cert-a", cn)
	}

	certB.install(t, dir) // YAML unchanged
	sighup()
	if !eventually(3*time.Second, func() bool { return servedCN() == "cert-b" }) {
		t.Fatal("after SIGHUP with the YAML unchanged, new connections still get the old certificate")
	}
	if v := g.configVersion(t); v != startVersion {
		t.Errorf("config_version %s after a certificate-only reload, want %s", v, startVersion)
	}
	fmt.Fprintf(old, "GET /open/old HTTP/1.1\r\nHost: gw\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(old), nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("connection opened before the reload: %v %v", resp, err)
	}

	// The YAML is broken and the certificate renewed: the old config keeps
	// serving and the new certificate is still taken.
	if err := os.WriteFile(path, []byte("server: {tls: [broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certC.install(t, dir)
	sighup()
	if !eventually(3*time.Second, func() bool { return servedCN() == "cert-c" }) {
		t.Fatal("a renewed certificate was not taken when the YAML reload failed")
	}
	if v := g.configVersion(t); v != startVersion {
		t.Errorf("config_version %s after a rejected reload, want %s", v, startVersion)
	}
	if !eventually(2*time.Second, func() bool { return g.scrape(t, `jwtgate_config_reloads_total{result="error"}`) == 1 }) {
		t.Error("the rejected YAML reload was not counted")
	}

	// A key that does not match the certificate: the old pair stays.
	writeGatewayConfig(t, dir, "gateway.yaml", tlsConfigYAML, vars)
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certA.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	before := g.scrape(t, `jwtgate_config_reloads_total{result="ok"}`)
	sighup()
	if !eventually(3*time.Second, func() bool { return g.scrape(t, `jwtgate_config_reloads_total{result="ok"}`) > before }) {
		t.Fatal("SIGHUP did not reload")
	}
	if cn := servedCN(); cn != "cert-c" {
		t.Errorf("after a mismatched key pair the gateway serves %q, want cert-c kept", cn)
	}
}

// TestH2CRefusedUnlessConfigured pins issue 3 item 3: without server.h2c
// the public port does not speak cleartext HTTP/2 (prior knowledge); with
// it, it does. An "Upgrade: h2c" offer is never honoured and never
// forwarded, in either setting: a backend that accepts it would otherwise
// get a tunnelled HTTP/2 connection whose later requests bypass every
// route check (h2c smuggling).
func TestH2CRefusedUnlessConfigured(t *testing.T) {
	for _, h2c := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2c-%v", h2c), func(t *testing.T) {
			dir := t.TempDir()
			is, be := newIssuer(t, "k1"), newBackend(t)
			cfg := strings.Replace(tlsConfigYAML, "tls: {cert_file: tls.crt, key_file: tls.key}", fmt.Sprintf("h2c: %v", h2c), 1)
			path := writeGatewayConfig(t, dir, "gateway.yaml", cfg, map[string]string{"JWKS": is.srv.URL, "BACKEND": be.srv.URL})
			g := startGateway(t, path, false, false)

			prior := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}}
			defer prior.CloseIdleConnections()
			resp, err := (&http.Client{Transport: prior, Timeout: 3 * time.Second}).Get(g.base + "/open/prior")
			served := err == nil && resp.ProtoMajor == 2 && resp.StatusCode == 200
			if resp != nil {
				resp.Body.Close()
			}
			if served != h2c {
				t.Errorf("prior-knowledge h2c served = %v (err %v), want %v", served, err, h2c)
			}

			conn, err := net.Dial("tcp", g.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
			fmt.Fprintf(conn, "GET /open/upgrade HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
			up, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("upgrade request: %v", err)
			}
			up.Body.Close()
			if up.StatusCode == http.StatusSwitchingProtocols {
				t.Error("an Upgrade: h2c request was switched to HTTP/2")
			} else if up.StatusCode != 200 {
				t.Errorf("Upgrade: h2c request answered %d, want 200 as plain HTTP/1.1", up.StatusCode)
			}
			if u := be.seenUpgrades(); len(u) != 0 {
				t.Errorf("the backend was offered an upgrade: %q", u)
			}
		})
	}
}

// TestTLSCertificateReloadsOnWatch: with --watch, renewed certificate and
// key files (cert-manager, certbot) are taken for new connections without
// a signal, and without a config reload when the YAML did not change.
func TestTLSCertificateReloadsOnWatch(t *testing.T) {
	dir := t.TempDir()
	certA, certB := newTestCert(t, "cert-a"), newTestCert(t, "cert-b")
	certA.install(t, dir)
	is, be := newIssuer(t, "k1"), newBackend(t)
	path := writeGatewayConfig(t, dir, "gateway.yaml", tlsConfigYAML, map[string]string{"JWKS": is.srv.URL, "BACKEND": be.srv.URL})
	g := startGateway(t, path, true, false)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: certPool(certA, certB)}, DisableKeepAlives: true}}
	servedCN := func() string {
		resp, err := client.Get(g.base + "/open/x")
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if cn := servedCN(); cn != "cert-a" {
		t.Fatalf("served %q, want cert-a", cn)
	}
	certB.install(t, dir)
	if !eventually(3*time.Second, func() bool { return servedCN() == "cert-b" }) {
		t.Fatal("renewed certificate files were not picked up by --watch")
	}
	if n := g.scrape(t, `jwtgate_config_reloads_total{result="ok"}`) + g.scrape(t, `jwtgate_config_reloads_total{result="error"}`); n != 0 {
		t.Errorf("a certificate-only change caused %v config reloads, want 0", n)
	}
}
