package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const limitsConfigYAML = `
server: {address: "127.0.0.1:0", read_header_timeout: 300ms, idle_timeout: 400ms, max_header_bytes: 4096, shutdown_grace: 5s}
admin: {address: "127.0.0.1:0"%s}
providers:
  - {name: main, issuer: "https://idp.test/", audiences: [api], jwks_url: "{{JWKS}}", algorithms: [ES256], refresh_interval: 2s}
routes:
  - {name: open, match: {path_prefix: /open}, upstream: {url: "{{BACKEND}}"}, auth: {mode: "off"}}
  - {name: upload, match: {path_prefix: /upload}, upstream: {url: "{{BACKEND}}"}, auth: {mode: "off"}, max_body_bytes: 1024}
  - {name: api, match: {path_prefix: /api}, upstream: {url: "{{BACKEND}}"}, auth: {providers: [main]}}
audit: {output: file, file: "{{AUDIT}}"}
`

func startLimitsGateway(t *testing.T, adminExtra string) (*testGateway, *issuerEnv, *countingBackend) {
	t.Helper()
	dir := t.TempDir()
	is, be := newIssuer(t, "k1"), newBackend(t)
	path := writeGatewayConfig(t, dir, "gateway.yaml", fmt.Sprintf(limitsConfigYAML, adminExtra), map[string]string{"JWKS": is.srv.URL, "BACKEND": be.srv.URL})
	return startGateway(t, path, false, false), is, be
}

// waitClosed reads from conn until the server closes it and returns how
// long that took; it fails the test if the connection is still open after
// limit.
func waitClosed(t *testing.T, conn net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", limit)
	}
	return time.Since(start)
}

// TestSlowHeadersClientIsDisconnected pins issue 3 item 5 (Slowloris): a
// client that sends part of a request and stalls, or trickles its headers
// a byte at a time, is disconnected once read_header_timeout (300ms here)
// has passed since the connection opened; it cannot hold it forever.
func TestSlowHeadersClientIsDisconnected(t *testing.T) {
	g, _, be := startLimitsGateway(t, "")
	cases := []struct {
		name  string
		trick func(conn net.Conn)
	}{
		{"partial-request-line", func(c net.Conn) { _, _ = io.WriteString(c, "GET /open/x HT") }},
		{"headers-never-finished", func(c net.Conn) { _, _ = io.WriteString(c, "GET /open/x HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n") }},
		{"headers-trickled", func(c net.Conn) {
			go func() {
				for _, b := range []byte("GET /open/x HTTP/1.1\r\nHost: gw\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n") {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(40 * time.Millisecond)
				}
			}()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", g.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			tc.trick(conn)
			if d := waitClosed(t, conn, 3*time.Second); d < 200*time.Millisecond {
				t.Errorf("closed after %v, sooner than read_header_timeout", d)
			}
		})
	}
	if n := be.requests.Load(); n != 0 {
		t.Errorf("%d incomplete requests reached the backend", n)
	}
}

// TestIdleKeepAliveConnectionIsClosed pins issue 3 item 5: a keep-alive
// connection with no further request is closed after idle_timeout (400ms).
func TestIdleKeepAliveConnectionIsClosed(t *testing.T) {
	g, _, _ := startLimitsGateway(t, "")
	conn, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /open/x HTTP/1.1\r\nHost: gw\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("status %d, close %v: want a kept-alive 200", resp.StatusCode, resp.Close)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(3 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the server sent bytes on an idle connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("idle connection still open after 3s, idle_timeout is 400ms")
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("idle connection closed after %v, before idle_timeout", d)
	}
}

// TestRequestSizeLimits pins issue 3 item 5: headers over max_header_bytes
// get 431; a body over the route's max_body_bytes gets 413 before anything
// is forwarded when Content-Length says so, and a chunked body over the
// cap never reaches the backend beyond the cap. Bodies within the cap and
// routes without one pass.
func TestRequestSizeLimits(t *testing.T) {
	g, _, be := startLimitsGateway(t, "")
	client := &http.Client{Timeout: 5 * time.Second}
	cases := []struct {
		name      string
		path      string
		header    int       // size of an extra header value
		body      io.Reader // nil: no body
		chunked   bool
		wantCodes []int
		// maxBackendBytes bounds what the backend may receive; -1: no bound.
		maxBackendBytes int64
	}{
		{"header-within-limit", "/open/h1", 1000, nil, false, []int{200}, -1},
		{"header-over-limit", "/open/h2", 16 << 10, nil, false, []int{431}, 0},
		{"body-within-cap", "/upload/b1", 0, bytes.NewReader(make([]byte, 1024)), false, []int{200}, 1024},
		{"content-length-over-cap", "/upload/b2", 0, bytes.NewReader(make([]byte, 2048)), false, []int{413}, 0},
		{"chunked-over-cap", "/upload/b3", 0, io.MultiReader(bytes.NewReader(make([]byte, 8192))), true, []int{413}, 1024},
		{"no-cap-on-route", "/open/b4", 0, bytes.NewReader(make([]byte, 64<<10)), false, []int{200}, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if tc.body != nil {
				method = "POST"
			}
			req, _ := http.NewRequest(method, g.base+tc.path, tc.body)
			if tc.chunked {
				req.ContentLength = -1
			}
			if tc.header > 0 {
				req.Header.Set("X-Pad", strings.Repeat("a", tc.header))
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok := false
			for _, c := range tc.wantCodes {
				ok = ok || resp.StatusCode == c
			}
			if !ok {
				t.Errorf("status %d, want one of %v", resp.StatusCode, tc.wantCodes)
			}
			time.Sleep(50 * time.Millisecond) // let an aborted backend read finish counting
			if n := be.bodyBytesFor(tc.path); tc.maxBackendBytes >= 0 && n > tc.maxBackendBytes {
				t.Errorf("backend received %d body bytes, cap %d", n, tc.maxBackendBytes)
			}
		})
	}
}

// TestUpstreamConnectionsAreReused pins issue 3 item 5 (upstream pool):
// sequential requests through the gateway reuse a few keep-alive
// connections to the backend instead of dialing one per request.
func TestUpstreamConnectionsAreReused(t *testing.T) {
	g, _, be := startLimitsGateway(t, "")
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 50 {
		resp, err := client.Get(fmt.Sprintf("%s/open/%d", g.base, i))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := be.conns.Load(); n > 2 {
		t.Errorf("50 sequential requests opened %d backend connections, want at most 2 (keep-alive)", n)
	}
}

// TestReadyzWaitsForKeys pins SPEC §7 and issue 3 item 1: with the JWKS
// endpoint down at start, /readyz answers 503 with a JSON reason naming
// the provider (while /healthz is 200 and the gateway serves); once the
// endpoint comes up the provider's retry loads the keys and /readyz turns
// 200 without a restart.
func TestReadyzWaitsForKeys(t *testing.T) {
	dir := t.TempDir()
	is, be := newIssuer(t, "k1"), newBackend(t)
	is.down.Store(true)
	path := writeGatewayConfig(t, dir, "gateway.yaml", fmt.Sprintf(limitsConfigYAML, ""), map[string]string{"JWKS": is.srv.URL, "BACKEND": be.srv.URL})
	g := startGateway(t, path, false, false)

	get := func(url string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("%s: body is not JSON: %v", url, err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", url, ct)
		}
		return resp.StatusCode, body
	}
	st, body := get(g.admin + "/readyz")
	if st != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the JWKS down = %d, want 503", st)
	}
	provs, _ := body["providers"].(map[string]any)
	if why, _ := provs["main"].(string); why == "" {
		t.Errorf("/readyz body %v does not name provider main with a reason", body)
	}
	if st, _ := get(g.admin + "/healthz"); st != 200 {
		t.Errorf("/healthz = %d, want 200 while the process serves", st)
	}
	tok := is.mint(t, nil)
	if st, _ := httpGet(t, g.base+"/api/x", tok); st != http.StatusServiceUnavailable {
		t.Errorf("request needing the provider's keys = %d, want 503", st)
	}

	is.down.Store(false)
	if !eventually(5*time.Second, func() bool { st, _ := get(g.admin + "/readyz"); return st == 200 }) {
		t.Fatal("/readyz stayed 503 after the JWKS came up")
	}
	if st, _ := httpGet(t, g.base+"/api/x", tok); st != 200 {
		t.Errorf("request after the keys arrived = %d, want 200", st)
	}
}

// TestAdminEndpointsStayOffThePublicPort pins issue 3 item 1: /healthz,
// /readyz, /metrics and pprof are served on the admin listener only (404
// on the public port), and pprof exists only with admin.pprof: true.
func TestAdminEndpointsStayOffThePublicPort(t *testing.T) {
	for _, pprofOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("pprof-%v", pprofOn), func(t *testing.T) {
			extra := ""
			if pprofOn {
				extra = ", pprof: true"
			}
			g, _, be := startLimitsGateway(t, extra)
			wantPprof := http.StatusNotFound
			if pprofOn {
				wantPprof = http.StatusOK
			}
			cases := []struct {
				name, url string
				want      int
			}{
				{"admin-healthz", g.admin + "/healthz", 200},
				{"admin-readyz", g.admin + "/readyz", 200},
				{"admin-metrics", g.admin + "/metrics", 200},
				{"admin-pprof", g.admin + "/debug/pprof/", wantPprof},
				{"admin-pprof-cmdline", g.admin + "/debug/pprof/cmdline", wantPprof},
				{"public-healthz", g.base + "/healthz", 404},
				{"public-readyz", g.base + "/readyz", 404},
				{"public-metrics", g.base + "/metrics", 404},
				{"public-pprof", g.base + "/debug/pprof/", 404},
			}
			for _, tc := range cases {
				if st, _ := httpGet(t, tc.url, ""); st != tc.want {
					t.Errorf("%s: GET %s = %d, want %d", tc.name, tc.url, st, tc.want)
				}
			}
			if n := be.requests.Load(); n != 0 {
				t.Errorf("admin paths on the public port reached the backend %d times", n)
			}
			_, body := httpGet(t, g.admin+"/metrics", "")
			for _, series := range []string{"jwtgate_config_reloads_total", "jwtgate_jwks_keys", "go_goroutines"} {
				if !strings.Contains(body, series) {
					t.Errorf("/metrics lacks %s", series)
				}
			}
		})
	}
}
