// Command benchkit drives jwtgate's load benchmark (bench/run.sh): it
// starts a minimal backend, a bare httputil.ReverseProxy baseline and
// jwtgate with a realistic config, mints the tokens, runs wrk against each
// scenario in alternating rounds, and reports requests/s, latency
// percentiles, gateway CPU µs per request (from /proc/PID/stat) and the
// ratios to the baseline, plus an SVG chart.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchkit run|backend|rproxy|idle ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runBench(os.Args[2:])
	case "backend":
		err = backendCmd(os.Args[2:])
	case "rproxy":
		err = rproxyCmd(os.Args[2:])
	case "idle":
		err = idleCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchkit:", err)
		os.Exit(1)
	}
}

// backendCmd is the minimal backend: 200 with a short body, and the JWKS
// of the second provider at /jwks.json.
func backendCmd(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	jwks := fs.String("jwks", "", "JWKS file served at /jwks.json")
	_ = fs.Parse(args)
	var set []byte
	if *jwks != "" {
		var err error
		if set, err = os.ReadFile(*jwks); err != nil {
			return err
		}
	}
	body := []byte("hello from the backend\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/jwks.json" && set != nil {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(set)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})
	return serveOn(*addr, h)
}

// bufferPool is the 32 KiB buffer pool a well-configured Go proxy uses.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(v []byte) { b.p.Put(&v) }

// rproxyCmd is the baseline: a bare httputil.ReverseProxy with a
// BufferPool and a keep-alive transport, no auth — the floor for any Go
// proxy of this design.
func rproxyCmd(args []string) error {
	fs := flag.NewFlagSet("rproxy", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	up := fs.String("upstream", "", "upstream URL")
	_ = fs.Parse(args)
	target, err := url.Parse(*up)
	if err != nil {
		return err
	}
	rp := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		BufferPool: &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	return serveOn(*addr, rp)
}

func serveOn(addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
		<-ch
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// idleCmd opens n keep-alive connections, sends one request on each, and
// holds them open until killed.
func idleCmd(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	addr := fs.String("addr", "", "gateway address")
	n := fs.Int("n", 1000, "connections")
	path := fs.String("path", "/public/x", "request path")
	_ = fs.Parse(args)
	conns := make([]net.Conn, 0, *n)
	for i := 0; i < *n; i++ {
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", *path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		conns = append(conns, c)
	}
	fmt.Println("ready")
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	<-ch
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// ---------------------------------------------------------------- keys and tokens

type keyset struct {
	rsa  *rsa.PrivateKey
	ec   *ecdsa.PrivateKey
	ed   ed25519.PrivateKey
	rsa2 *rsa.PrivateKey
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func writeJWKS(path string, keys ...map[string]any) error {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func mint(m jwt.SigningMethod, key any, kid, iss string, sub string, jti string) string {
	now := time.Now()
	t := jwt.NewWithClaims(m, jwt.MapClaims{
		"iss": iss, "aud": "bench-api", "sub": sub, "jti": jti, "iat": now.Unix(), "exp": now.Add(2 * time.Hour).Unix(),
		"scope": "orders:read orders:write", "tenant": "acme", "realm_access": map[string]any{"roles": []string{"ops"}},
	})
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		panic(err)
	}
	return s
}

// ---------------------------------------------------------------- the run

type scenario struct {
	name    string
	target  string // "backend", "rproxy", "gateway", "gateway-1000", "gateway-10000", "haproxy"
	path    string
	tokens  string // file of tokens, one per line; "" none
	wantKey string // expected status class for sanity: "2xx" or "401"
}

type result struct {
	Scenario  string  `json:"scenario"`
	Target    string  `json:"target"`
	Requests  int64   `json:"requests"`
	RPS       float64 `json:"rps"`
	P50       float64 `json:"p50_us"`
	P99       float64 `json:"p99_us"`
	P999      float64 `json:"p999_us"`
	CPUPerReq float64 `json:"cpu_us_per_req"`
	Non2xx    int64   `json:"non_2xx"`
	RSSMiB    float64 `json:"rss_mib,omitempty"`
}

type proc struct {
	cmd  *exec.Cmd
	addr string
}

func start(ctx context.Context, name string, args ...string) (*proc, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s: no address printed: %w", name, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return &proc{cmd: cmd, addr: strings.TrimSpace(line)}, nil
}

func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// cpuTicks reads utime+stime of pid from /proc (clock ticks, 100 Hz).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	s = s[strings.LastIndexByte(s, ')')+2:]
	f := strings.Fields(s)
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st, nil
}

func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func waitHTTP(addr, path string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + path)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer", addr)
}

const luaScript = `
local tokens = {}
local idx = 0
local n = 0
local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local file = os.getenv("BENCH_TOKENS")
  if file and file ~= "" then
    for line in io.lines(file) do
      n = n + 1
      tokens[n] = line
    end
  end
  idx = (id or 1) * 7919
end

function request()
  if n == 0 then
    return wrk.format(nil)
  end
  idx = idx + 1
  local t = tokens[(idx % n) + 1]
  return wrk.format(nil, nil, {["Authorization"] = "Bearer " .. t})
end

function done(summary, latency, requests)
  io.write(string.format("JSON {\"requests\":%d,\"duration_us\":%d,\"p50\":%d,\"p99\":%d,\"p999\":%d,\"non2xx\":%d,\"errors\":%d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
`

type wrkOut struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	P50        int64 `json:"p50"`
	P99        int64 `json:"p99"`
	P999       int64 `json:"p999"`
	Non2xx     int64 `json:"non2xx"`
	Errors     int64 `json:"errors"`
}

func runWrk(script, url, tokens string, dur time.Duration, conns int) (wrkOut, error) {
	cmd := exec.Command("wrk", "-t2", fmt.Sprintf("-c%d", conns), "-d"+dur.String(), "--latency", "-s", script, url)
	cmd.Env = append(os.Environ(), "BENCH_TOKENS="+tokens)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkOut{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "JSON ") {
			var w wrkOut
			if err := json.Unmarshal([]byte(l[5:]), &w); err != nil {
				return wrkOut{}, err
			}
			return w, nil
		}
	}
	return wrkOut{}, fmt.Errorf("wrk printed no result: %s", out)
}

func runBench(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	bin := fs.String("gateway", "", "jwtgate binary")
	dir := fs.String("dir", "bench/results", "work and output directory")
	dur := fs.Duration("duration", 5*time.Second, "wrk duration per scenario and round")
	rounds := fs.Int("rounds", 3, "alternating rounds; the median is reported")
	fresh := fs.Int("fresh", 100000, "pre-minted fresh tokens per algorithm")
	conns := fs.Int("c", 32, "wrk connections")
	haproxyBin := fs.String("haproxy", "", "haproxy binary for the reference row (optional)")
	_ = fs.Parse(args)
	if *bin == "" {
		return errors.New("-gateway is required")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	abs, _ := filepath.Abs(*dir)
	*dir = abs
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	fmt.Println("# minting keys and tokens")
	ks := keyset{}
	var err error
	ks.rsa, _ = rsa.GenerateKey(rand.Reader, 2048)
	ks.rsa2, _ = rsa.GenerateKey(rand.Reader, 2048)
	ks.ec, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ks.ed, _ = ed25519.GenerateKey(rand.Reader)
	ecdh, _ := ks.ec.PublicKey.ECDH()
	raw := ecdh.Bytes()
	jwksA := filepath.Join(*dir, "jwks-a.json")
	jwksB := filepath.Join(*dir, "jwks-b.json")
	if err := writeJWKS(jwksA,
		rsaJWK("rsa-a", &ks.rsa.PublicKey),
		map[string]any{"kty": "EC", "crv": "P-256", "kid": "ec-a", "alg": "ES256", "use": "sig", "x": b64(raw[1:33]), "y": b64(raw[33:])},
		map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "ed-a", "alg": "EdDSA", "use": "sig", "x": b64(ks.ed.Public().(ed25519.PublicKey))},
	); err != nil {
		return err
	}
	if err := writeJWKS(jwksB, rsaJWK("rsa-b", &ks.rsa2.PublicKey)); err != nil {
		return err
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&ks.rsa.PublicKey)
	_ = os.WriteFile(filepath.Join(*dir, "rsa-a.pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)

	issA := "https://idp-a.bench/"
	writeTokens := func(name string, n int, f func(i int) string) (string, error) {
		p := filepath.Join(*dir, name)
		fh, err := os.Create(p)
		if err != nil {
			return "", err
		}
		w := bufio.NewWriter(fh)
		for i := 0; i < n; i++ {
			fmt.Fprintln(w, f(i))
		}
		if err := w.Flush(); err != nil {
			return "", err
		}
		return p, fh.Close()
	}
	one := mint(jwt.SigningMethodRS256, ks.rsa, "rsa-a", issA, "alice", "repeat")
	tokRepeat, _ := writeTokens("tokens-repeat.txt", 1, func(int) string { return one })
	tokFreshRS, err := writeTokens("tokens-fresh-rs256.txt", *fresh, func(i int) string {
		return mint(jwt.SigningMethodRS256, ks.rsa, "rsa-a", issA, "user-"+strconv.Itoa(i%5000), "rs-"+strconv.Itoa(i))
	})
	if err != nil {
		return err
	}
	tokFreshES, _ := writeTokens("tokens-fresh-es256.txt", *fresh, func(i int) string {
		return mint(jwt.SigningMethodES256, ks.ec, "ec-a", issA, "user-"+strconv.Itoa(i%5000), "es-"+strconv.Itoa(i))
	})
	tokFreshEd, _ := writeTokens("tokens-fresh-eddsa.txt", *fresh, func(i int) string {
		return mint(jwt.SigningMethodEdDSA, ks.ed, "ed-a", issA, "user-"+strconv.Itoa(i%5000), "ed-"+strconv.Itoa(i))
	})
	bad := mint(jwt.SigningMethodRS256, ks.rsa2, "rsa-a", issA, "mallory", "bad") // wrong key: signature_invalid
	tokInvalid, _ := writeTokens("tokens-invalid.txt", 1, func(int) string { return bad })
	script := filepath.Join(*dir, "tokens.lua")
	if err := os.WriteFile(script, []byte(luaScript), 0o644); err != nil {
		return err
	}

	self, _ := os.Executable()
	backend, err := start(ctx, self, "backend", "-addr", "127.0.0.1:0", "-jwks", jwksB)
	if err != nil {
		return err
	}
	defer backend.stop()
	rp, err := start(ctx, self, "rproxy", "-addr", "127.0.0.1:0", "-upstream", "http://"+backend.addr)
	if err != nil {
		return err
	}
	defer rp.stop()

	gws := map[string]*proc{}
	for _, n := range []int{12, 1000, 10000} {
		cfgPath := filepath.Join(*dir, fmt.Sprintf("gateway-%d.yaml", n))
		if err := os.WriteFile(cfgPath, []byte(gatewayConfig(n, backend.addr, jwksA, *dir)), 0o644); err != nil {
			return err
		}
		p, err := startGateway(ctx, *bin, cfgPath)
		if err != nil {
			return err
		}
		defer p.stop()
		name := "gateway"
		if n != 12 {
			name = fmt.Sprintf("gateway-%d", n)
		}
		gws[name] = p
	}
	var hap *proc
	if *haproxyBin != "" {
		if hap, err = startHAProxy(ctx, *haproxyBin, *dir, backend.addr); err != nil {
			fmt.Println("# haproxy reference skipped:", err)
			hap = nil
		} else {
			defer hap.stop()
		}
	}

	scenarios := []scenario{
		{"backend (no proxy)", "backend", "/x", "", "2xx"},
		{"ReverseProxy baseline", "rproxy", "/x", "", "2xx"},
		{"public route", "gateway", "/public/x", "", "2xx"},
		{"RS256 repeated (cache hit)", "gateway", "/orders/1", tokRepeat, "2xx"},
		{"RS256 fresh (cache miss)", "gateway", "/orders/1", tokFreshRS, "2xx"},
		{"ES256 fresh", "gateway", "/orders/1", tokFreshES, "2xx"},
		{"EdDSA fresh", "gateway", "/orders/1", tokFreshEd, "2xx"},
		{"invalid token (401)", "gateway", "/orders/1", tokInvalid, "401"},
		{"1,000 routes, RS256 repeated", "gateway-1000", "/svc998/x", tokRepeat, "2xx"},
		{"10,000 routes, RS256 repeated", "gateway-10000", "/svc9998/x", tokRepeat, "2xx"},
	}
	if hap != nil {
		scenarios = append(scenarios, scenario{"HAProxy jwt_verify, RS256 repeated", "haproxy", "/orders/1", tokRepeat, "2xx"},
			scenario{"HAProxy no JWT", "haproxy", "/public/x", "", "2xx"})
	}
	procs := map[string]*proc{"backend": backend, "rproxy": rp, "haproxy": hap}
	for k, v := range gws {
		procs[k] = v
	}
	all := map[string][]result{}
	for round := 1; round <= *rounds; round++ {
		fmt.Printf("# round %d/%d\n", round, *rounds)
		for _, sc := range scenarios {
			p := procs[sc.target]
			before, _ := cpuTicks(p.cmd.Process.Pid)
			w, err := runWrk(script, "http://"+p.addr+sc.path, sc.tokens, *dur, *conns)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.name, err)
			}
			after, _ := cpuTicks(p.cmd.Process.Pid)
			r := result{Scenario: sc.name, Target: sc.target, Requests: w.Requests, RPS: float64(w.Requests) / (float64(w.DurationUS) / 1e6),
				P50: float64(w.P50), P99: float64(w.P99), P999: float64(w.P999), Non2xx: w.Non2xx}
			if w.Requests > 0 {
				r.CPUPerReq = float64(after-before) * 10000 / float64(w.Requests) // ticks are 10 ms
			}
			if sc.wantKey == "2xx" && w.Non2xx > 0 {
				fmt.Printf("  WARNING %s: %d non-2xx answers\n", sc.name, w.Non2xx)
			}
			fmt.Printf("  %-36s %9.0f req/s  p99 %6.0f µs  cpu %6.1f µs/req\n", sc.name, r.RPS, r.P99, r.CPUPerReq)
			all[sc.name] = append(all[sc.name], r)
		}
	}
	var final []result
	for _, sc := range scenarios {
		final = append(final, median(all[sc.name]))
	}
	// Memory: the loaded gateway's RSS (its token cache is full), and a
	// fresh gateway's RSS before and with 1,000 idle keep-alive connections.
	final = append(final, result{Scenario: "RSS after all scenarios (cache full)", Target: "gateway", RSSMiB: rssMiB(gws["gateway"].cmd.Process.Pid)})
	idleCfg := filepath.Join(*dir, "gateway-idle.yaml")
	if err := os.WriteFile(idleCfg, []byte(gatewayConfig(12, backend.addr, jwksA, *dir)), 0o644); err != nil {
		return err
	}
	idleGW, err := startGateway(ctx, *bin, idleCfg)
	if err != nil {
		return err
	}
	defer idleGW.stop()
	time.Sleep(500 * time.Millisecond)
	final = append(final, result{Scenario: "fresh gateway, no connections", Target: "gateway", RSSMiB: rssMiB(idleGW.cmd.Process.Pid)})
	if idle, err := start(ctx, self, "idle", "-addr", idleGW.addr, "-n", "1000"); err == nil {
		time.Sleep(time.Second)
		final = append(final, result{Scenario: "fresh gateway, 1,000 idle keep-alive connections", Target: "gateway", RSSMiB: rssMiB(idleGW.cmd.Process.Pid)})
		idle.stop()
	} else {
		fmt.Println("# idle connections:", err)
	}

	report(os.Stdout, final)
	b, _ := json.MarshalIndent(final, "", "  ")
	_ = os.WriteFile(filepath.Join(*dir, "results.json"), b, 0o644)
	if err := os.WriteFile(filepath.Join(*dir, "cpu-per-request.svg"), chart(final), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s/results.json and %s/cpu-per-request.svg\n", *dir, *dir)
	return nil
}

func median(rs []result) result {
	sort.Slice(rs, func(i, j int) bool { return rs[i].CPUPerReq < rs[j].CPUPerReq })
	return rs[len(rs)/2]
}

func startGateway(ctx context.Context, bin, cfg string) (*proc, error) {
	// The gateway prints nothing on stdout but audit records when audit goes
	// to stdout; here audit goes to a file, so the address is taken from the
	// config and readiness from the admin port.
	b, _ := os.ReadFile(cfg)
	var addr, admin string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "address:") && addr == "" {
			addr = strings.Trim(strings.TrimSpace(strings.TrimPrefix(l, "address:")), `"`)
		} else if strings.HasPrefix(l, "address:") {
			admin = strings.Trim(strings.TrimSpace(strings.TrimPrefix(l, "address:")), `"`)
		}
	}
	cmd := exec.CommandContext(ctx, bin, "serve", "-c", cfg, "--log-level", "warn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, addr: addr}
	if err := waitHTTP(admin, "/readyz"); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// gatewayConfig is a realistic config: two providers (a JWKS file and a
// JWKS URL), claim requirements, claim headers, audit to a file, and n
// routes (the benchmarked ones are last in file order, so no route table
// can win by scanning from the top).
func gatewayConfig(n int, backend, jwksFile, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `server:
  address: "%s"
admin:
  address: "%s"
providers:
  - name: idp-a
    issuer: https://idp-a.bench/
    audiences: [bench-api]
    jwks_file: %s
    algorithms: [RS256, ES256, EdDSA]
    required_claims: [exp, sub]
  - name: idp-b
    issuer: https://idp-b.bench/
    audiences: [bench-api]
    jwks_url: http://%s/jwks.json
    algorithms: [RS256]
routes:
`, freeAddr(), freeAddr(), jwksFile, backend)
	for i := 0; i < n-2; i++ {
		fmt.Fprintf(&b, "  - {name: svc%d, match: {path_prefix: /svc%d}, upstream: {url: \"http://%s\"}, auth: {providers: [idp-a, idp-b], require: {scopes: [orders:read]}}}\n", i+1, i+1, backend)
	}
	fmt.Fprintf(&b, `  - name: public
    match: {path_prefix: /public}
    upstream: {url: "http://%[1]s"}
    auth: {mode: "off"}
  - name: orders
    match: {path_prefix: /orders, methods: [GET, POST]}
    upstream: {url: "http://%[1]s"}
    auth:
      providers: [idp-a, idp-b]
      require:
        scopes: [orders:read]
        claims:
          - {claim: tenant, equals: acme}
          - {claim: realm_access.roles, contains_any: [admin, ops]}
      forward:
        claims_to_headers: {sub: X-User-Id, tenant: X-Tenant}
audit:
  output: file
  file: %[2]s/audit-%[3]d.log
  claims: [sub, jti]
  rotate: {max_size_mb: 512, max_backups: 1}
`, backend, dir, n)
	return b.String()
}

func startHAProxy(ctx context.Context, bin, dir, backend string) (*proc, error) {
	addr := freeAddr()
	cfg := fmt.Sprintf(`global
  maxconn 4096
  nbthread 2
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind %s
  acl public path_beg /public
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.jwt_alg) var(txn.bearer),jwt_header_query('$.alg') unless public
  http-request deny deny_status 401 if !public !{ var(txn.jwt_alg) -m str RS256 }
  http-request deny deny_status 401 if !public !{ var(txn.bearer),jwt_verify(txn.jwt_alg,"%s/rsa-a.pub.pem") -m int 1 }
  default_backend be
backend be
  http-reuse always
  server s1 %s
`, addr, dir, backend)
	p := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "-f", p)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pr := &proc{cmd: cmd, addr: addr}
	if err := waitHTTP(addr, "/public/x"); err != nil {
		pr.stop()
		return nil, err
	}
	return pr, nil
}

func report(w io.Writer, rs []result) {
	base := map[string]result{}
	for _, r := range rs {
		base[r.Target+"|"+r.Scenario] = r
	}
	var bl result
	for _, r := range rs {
		if r.Target == "rproxy" {
			bl = r
		}
	}
	fmt.Fprintln(w, "\n| scenario | req/s | p50 µs | p99 µs | p99.9 µs | CPU µs/req | CPU vs ReverseProxy | p99 vs ReverseProxy | RSS MiB |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		if r.Requests == 0 {
			fmt.Fprintf(w, "| %s | | | | | | | | %.1f |\n", r.Scenario, r.RSSMiB)
			continue
		}
		ratio, pr := "", ""
		if bl.CPUPerReq > 0 {
			ratio = fmt.Sprintf("%.2f×", r.CPUPerReq/bl.CPUPerReq)
		}
		if bl.P99 > 0 {
			pr = fmt.Sprintf("%.2f×", r.P99/bl.P99)
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f | %.0f | %.1f | %s | %s | |\n", r.Scenario, r.RPS, r.P50, r.P99, r.P999, r.CPUPerReq, ratio, pr)
	}
}

// chart draws CPU µs/request by scenario as a horizontal bar chart (SVG).
func chart(rs []result) []byte {
	var rows []result
	maxv := 0.0
	for _, r := range rs {
		if r.Requests > 0 {
			rows = append(rows, r)
			if r.CPUPerReq > maxv {
				maxv = r.CPUPerReq
			}
		}
	}
	const left, width, rowH = 300, 460, 26
	h := 50 + len(rows)*rowH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`, left+width+80, h)
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">Gateway CPU µs per request (lower is better)</text>`)
	for i, r := range rows {
		y := 36 + i*rowH
		wd := 0.0
		if maxv > 0 {
			wd = r.CPUPerReq / maxv * width
		}
		color := "#4a7fb5"
		switch r.Target {
		case "rproxy", "backend":
			color = "#999999"
		case "haproxy":
			color = "#c77c2a"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-8, y+15, htmlEscape(r.Scenario))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, left, y+2, wd, rowH-8, color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.1f</text>`, float64(left)+wd+6, y+15, r.CPUPerReq)
	}
	b.WriteString(`</svg>`)
	return []byte(b.String())
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
