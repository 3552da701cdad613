package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/jwtgate/jwtgate/config"
)

// demoConfigTemplate is the gateway config the demo runs, with {{.X}}
// placeholders for the addresses chosen at start (see demoConfigData).
//
//go:embed demo.yaml
var demoConfigTemplate string

const (
	demoAudience    = "demo-api"
	demoTokenTTL    = time.Hour
	demoFirstKID    = "demo-1"
	demoRotatedKID  = "demo-2"
	demoDefaultAddr = "127.0.0.1:8080"
)

// demoOptions are the demo's flags.
type demoOptions struct {
	Listen      string        // gateway public address; a busy port falls back to a random one
	RotateAfter time.Duration // when the issuer publishes and starts signing with demo-2
	Smoke       bool          // run the example calls, report, and exit
}

func demoCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "jwtgate demo [--listen 127.0.0.1:8080] [--rotate-after 30s] [--smoke]", stderr)
	var o demoOptions
	fs.StringVar(&o.Listen, "listen", demoDefaultAddr, "gateway listen address (a random port is used if this one is busy)")
	fs.DurationVar(&o.RotateAfter, "rotate-after", 30*time.Second, "rotate the issuer's signing key (demo-1 → demo-2) after this long")
	fs.BoolVar(&o.Smoke, "smoke", false, "make the example calls, print whether each matched, exit 0 if all did, else 1")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if o.RotateAfter <= 0 {
		fmt.Fprintf(stderr, "demo: --rotate-after must be positive, got %s\n", o.RotateAfter)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runDemo(ctx, o, stdout, stderr)
}

// runDemo starts the issuer, the echo backend and the gateway on loopback,
// prints the banner (or runs the smoke checks), and serves until ctx ends.
// Every goroutine it starts has ended when it returns.
func runDemo(ctx context.Context, o demoOptions, stdout, stderr io.Writer) int {
	errw := &lockedWriter{w: stderr}
	var wg sync.WaitGroup
	dctx, cancel := context.WithCancel(ctx)
	defer wg.Wait() // runs after cancel and the servers' shutdown below
	defer cancel()

	iss, err := newDemoIssuer(dctx)
	if err != nil {
		fmt.Fprintf(errw, "demo: issuer: %v\n", err)
		return 1
	}
	issSrv, err := serveLoopback(&wg, func(addr string) http.Handler {
		iss.url = "http://" + addr // before the server starts
		return iss.handler()
	})
	if err != nil {
		fmt.Fprintf(errw, "demo: issuer: %v\n", err)
		return 1
	}
	defer shutdownQuietly(issSrv)

	backSrv, err := serveLoopback(&wg, func(string) http.Handler { return http.HandlerFunc(echoHandler) })
	if err != nil {
		fmt.Fprintf(errw, "demo: backend: %v\n", err)
		return 1
	}
	defer shutdownQuietly(backSrv)

	pubLn, fellBack, err := listenDemo(o.Listen)
	if err != nil {
		fmt.Fprintf(errw, "demo: %v\n", err)
		return 1
	}
	defer pubLn.Close() // harmless after the gateway closed it
	if fellBack {
		fmt.Fprintf(errw, "demo: %s is in use; the gateway listens on %s instead\n", o.Listen, pubLn.Addr())
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(errw, "demo: admin listener: %v\n", err)
		return 1
	}
	defer adminLn.Close()

	data := demoConfigData{
		Listen:  pubLn.Addr().String(),
		Admin:   adminLn.Addr().String(),
		Issuer:  iss.url,
		JWKSURL: iss.url + "/.well-known/jwks.json",
		Backend: "http://" + backSrv.addr,
	}
	cfg, err := demoConfig(data)
	if err != nil {
		fmt.Fprintf(errw, "demo: %v\n", err)
		return 1
	}

	toks, err := iss.mintExamples(time.Now())
	if err != nil {
		fmt.Fprintf(errw, "demo: mint: %v\n", err)
		return 1
	}

	// Audit records wait until the banner is out, so the two do not mix.
	audit := &gatedWriter{w: stdout}
	defer audit.release()
	logger := zerolog.New(zerolog.ConsoleWriter{Out: errw, NoColor: true, TimeFormat: "15:04:05"}).
		Level(zerolog.InfoLevel).With().Timestamp().Str("service", "jwtgate").Logger()
	s, err := startServer(dctx, cfg, serverOptions{Logger: logger, Stdout: audit, Public: pubLn, Admin: adminLn, NoSignals: true})
	if err != nil {
		fmt.Fprintf(errw, "demo: start gateway: %v\n", err)
		return 1
	}

	urls := demoURLs{
		Gateway: "http://" + loopbackDisplay(pubLn.Addr()),
		Admin:   "http://" + adminLn.Addr().String(),
		Issuer:  iss.url,
		Backend: data.Backend,
	}
	if o.Smoke {
		fmt.Fprintf(errw, "jwtgate demo --smoke: gateway %s, issuer %s, backend %s\n", urls.Gateway, urls.Issuer, urls.Backend)
	} else {
		printBanner(errw, urls, toks, o.RotateAfter)
	}
	audit.release()

	wg.Go(func() {
		t := time.NewTimer(o.RotateAfter)
		defer t.Stop()
		select {
		case <-dctx.Done():
		case <-t.C:
			iss.rotateAndAnnounce(dctx, errw, urls.Gateway, o.Smoke)
		}
	})

	if !o.Smoke {
		code := s.run(dctx)
		fmt.Fprintln(errw, "demo: stopped")
		return code
	}

	runCtx, stopRun := context.WithCancel(dctx)
	done := make(chan int, 1)
	go func() { done <- s.run(runCtx) }()
	ok := runSmoke(dctx, errw, urls.Gateway, iss, toks)
	stopRun()
	code := <-done
	if code != 0 {
		return code
	}
	if !ok {
		fmt.Fprintln(errw, "smoke: FAILED: some calls did not answer as expected")
		return 1
	}
	fmt.Fprintln(errw, "smoke: all calls answered as expected")
	return 0
}

// demoConfigData fills the placeholders of demo.yaml.
type demoConfigData struct {
	Listen, Admin, Issuer, JWKSURL, Backend string
}

// demoConfig renders demo.yaml with d and parses it like a config file.
func demoConfig(d demoConfigData) (*config.Config, error) {
	t, err := template.New("demo.yaml").Option("missingkey=error").Parse(demoConfigTemplate)
	if err != nil {
		return nil, fmt.Errorf("demo config template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("demo config template: %w", err)
	}
	cfg, err := config.Parse(buf.Bytes(), "")
	if err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	return cfg, nil
}

// listenDemo listens on addr; when that port is in use it listens on a
// random port of the same host instead and reports fellBack.
func listenDemo(addr string) (ln net.Listener, fellBack bool, err error) {
	ln, err = net.Listen("tcp", addr)
	if err == nil {
		return ln, false, nil
	}
	host, _, serr := net.SplitHostPort(addr)
	if !errors.Is(err, syscall.EADDRINUSE) || serr != nil {
		return nil, false, fmt.Errorf("--listen %s: %w", addr, err)
	}
	ln, err2 := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err2 != nil {
		return nil, false, fmt.Errorf("--listen %s: %w (and a random port failed: %v)", addr, err, err2)
	}
	return ln, true, nil
}

// loopbackDisplay is addr as a URL host a local curl can reach: an
// unspecified address (0.0.0.0, ::) is shown as 127.0.0.1.
func loopbackDisplay(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if ok && tcp.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
	}
	return addr.String()
}

// loopbackServer is a demo HTTP server on 127.0.0.1 and a random port.
type loopbackServer struct {
	srv  *http.Server
	addr string
}

// serveLoopback listens on 127.0.0.1:0, builds the handler from the
// address, and serves it in a goroutine owned by wg that ends when the
// server is shut down.
func serveLoopback(wg *sync.WaitGroup, handler func(addr string) http.Handler) (*loopbackServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: handler(ln.Addr().String()), ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	wg.Go(func() { _ = srv.Serve(ln) })
	return &loopbackServer{srv: srv, addr: ln.Addr().String()}, nil
}

func shutdownQuietly(s *loopbackServer) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
}

// demoIssuer is the demo's token issuer: ES256 keys, a JWKS endpoint,
// OpenID discovery, a token endpoint, and one key rotation.
type demoIssuer struct {
	url  string // http://127.0.0.1:PORT; also the iss claim
	keys *jwkset.MemoryJWKSet

	mu      sync.Mutex
	signer  *ecdsa.PrivateKey
	kid     string
	rotated bool
}

func newDemoIssuer(ctx context.Context) (*demoIssuer, error) {
	i := &demoIssuer{keys: jwkset.NewMemoryStorage()}
	if err := i.addKey(ctx, demoFirstKID); err != nil {
		return nil, err
	}
	return i, nil
}

// addKey generates a P-256 key, publishes its public half under kid and
// makes it the signing key.
func (i *demoIssuer) addKey(ctx context.Context, kid string) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate %s: %w", kid, err)
	}
	jwk, err := jwkset.NewJWKFromKey(&priv.PublicKey, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgES256, KID: kid, USE: jwkset.UseSig},
	})
	if err != nil {
		return fmt.Errorf("jwk %s: %w", kid, err)
	}
	if err := i.keys.KeyWrite(ctx, jwk); err != nil {
		return fmt.Errorf("publish %s: %w", kid, err)
	}
	i.mu.Lock()
	i.signer, i.kid = priv, kid
	i.mu.Unlock()
	return nil
}

// rotate publishes demo-2 next to demo-1 and signs new tokens with it. It
// does so once; later calls report rotated false.
func (i *demoIssuer) rotate(ctx context.Context) (rotated bool, err error) {
	i.mu.Lock()
	if i.rotated {
		i.mu.Unlock()
		return false, nil
	}
	i.rotated = true
	i.mu.Unlock()
	if err := i.addKey(ctx, demoRotatedKID); err != nil {
		return false, err
	}
	return true, nil
}

// rotateAndAnnounce rotates the key and says so on w, with a curl line
// for gateway unless smoke.
func (i *demoIssuer) rotateAndAnnounce(ctx context.Context, w io.Writer, gateway string, smoke bool) {
	rotated, err := i.rotate(ctx)
	switch {
	case err != nil:
		fmt.Fprintf(w, "issuer: key rotation failed: %v\n", err)
	case rotated && smoke:
		fmt.Fprintf(w, "issuer: rotated: %s now signs new tokens; %s stays in the JWKS\n", demoRotatedKID, demoFirstKID)
	case rotated:
		fmt.Fprintf(w, "\nissuer: rotated at %s: new tokens are signed with %s; %s stays in the JWKS, so tokens already issued keep working.\n"+
			"        The gateway fetches the new key the first time it sees kid %s. Try it:\n"+
			"        curl -s -H \"Authorization: Bearer $(curl -s %s/token)\" %s/api/orders\n\n",
			time.Now().Format("15:04:05"), demoRotatedKID, demoFirstKID, demoRotatedKID, i.url, gateway)
	}
}

// currentKID is the kid new tokens are signed with.
func (i *demoIssuer) currentKID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.kid
}

// mint signs claims with the current key, naming it in the kid header.
func (i *demoIssuer) mint(claims jwt.MapClaims) (string, error) {
	i.mu.Lock()
	priv, kid := i.signer, i.kid
	i.mu.Unlock()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(priv)
	if err != nil {
		return "", fmt.Errorf("sign with %s: %w", kid, err)
	}
	return s, nil
}

// demoPersona is one of the demo's users.
type demoPersona string

const (
	personaReader  demoPersona = "reader"  // alice: scope api:read
	personaNoScope demoPersona = "noscope" // bob: no api:read
	personaAdmin   demoPersona = "admin"   // carol: roles [admin]
)

// claims are the persona's claims for a token issued at now that expires
// at exp.
func (i *demoIssuer) claims(p demoPersona, now, exp time.Time) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": i.url,
		"aud": demoAudience,
		"iat": now.Unix(),
		"exp": exp.Unix(),
		"jti": rand.Text(),
	}
	switch p {
	case personaNoScope:
		c["sub"], c["email"], c["scope"] = "bob", "bob@example.com", "profile"
	case personaAdmin:
		c["sub"], c["email"], c["scope"], c["roles"] = "carol", "carol@example.com", "api:read", []string{"admin"}
	default:
		c["sub"], c["email"], c["scope"] = "alice", "alice@example.com", "api:read"
	}
	return c
}

// demoTokens are the example tokens minted at start.
type demoTokens struct {
	Reader, Expired, NoScope, Admin string
}

func (i *demoIssuer) mintExamples(now time.Time) (demoTokens, error) {
	var t demoTokens
	var err error
	mint := func(dst *string, p demoPersona, iat, exp time.Time) {
		if err == nil {
			*dst, err = i.mint(i.claims(p, iat, exp))
		}
	}
	mint(&t.Reader, personaReader, now, now.Add(demoTokenTTL))
	mint(&t.Expired, personaReader, now.Add(-2*demoTokenTTL), now.Add(-demoTokenTTL))
	mint(&t.NoScope, personaNoScope, now, now.Add(demoTokenTTL))
	mint(&t.Admin, personaAdmin, now, now.Add(demoTokenTTL))
	return t, err
}

// handler serves the issuer's JWKS, its OpenID discovery document, and
// GET /token?as=reader|noscope|admin, a fresh token from the current key.
func (i *demoIssuer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		raw, err := i.keys.JSONPublic(r.Context())
		if err != nil {
			http.Error(w, "jwks unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(raw)
	})
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		demoWriteJSON(w, http.StatusOK, map[string]any{
			"issuer":                                i.url,
			"jwks_uri":                              i.url + "/.well-known/jwks.json",
			"token_endpoint":                        i.url + "/token",
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
		p := demoPersona(r.URL.Query().Get("as"))
		switch p {
		case "":
			p = personaReader
		case personaReader, personaNoScope, personaAdmin:
		default:
			http.Error(w, "as must be reader, noscope or admin", http.StatusBadRequest)
			return
		}
		now := time.Now()
		tok, err := i.mint(i.claims(p, now, now.Add(demoTokenTTL)))
		if err != nil {
			http.Error(w, "mint failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, tok)
	})
	return mux
}

// echoReply is what the echo backend answers: the request as it arrived.
type echoReply struct {
	Backend string            `json:"backend"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
}

// echoHandler answers every request with the method, path and headers it
// received. Authorization and Cookie values are shown redacted: whether
// they arrived is the point, and terminals and CI logs should not hold
// tokens.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	rep := echoReply{Backend: "echo", Method: r.Method, Path: r.URL.EscapedPath(), Headers: map[string]string{}}
	for k, v := range r.Header {
		val := strings.Join(v, ", ")
		switch k {
		case "Authorization":
			scheme, _, _ := strings.Cut(val, " ")
			val = scheme + " [redacted]"
		case "Cookie":
			val = "[redacted]"
		}
		rep.Headers[k] = val
	}
	demoWriteJSON(w, http.StatusOK, rep)
}

func demoWriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// demoURLs are the base URLs the banner and the smoke checks use.
type demoURLs struct {
	Gateway, Admin, Issuer, Backend string
}

func printBanner(w io.Writer, u demoURLs, t demoTokens, rotateAfter time.Duration) {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("\njwtgate demo: a local issuer, an echo backend and the gateway, all on loopback\n\n")
	p("  gateway  %s   routes /public (no auth), /api (scope api:read), /admin (role admin)\n", u.Gateway)
	p("  issuer   %s   JWKS %s/.well-known/jwks.json; signs with %s, rotates to %s in %s\n", u.Issuer, u.Issuer, demoFirstKID, demoRotatedKID, rotateAfter)
	p("  backend  %s   echoes the method, path and headers it received\n", u.Backend)
	p("  admin    %s/readyz  %s/metrics\n\n", u.Admin, u.Admin)
	p("Try these (tokens are valid for 1h):\n\n")
	p("# public route, no token needed: 200\n")
	p("curl -s %s/public/hello\n\n", u.Gateway)
	p("# allowed: alice's token has scope api:read: 200; the backend shows X-User-Id, X-User-Email, X-Request-Id, X-Forwarded-For\n")
	p("curl -s -H 'Authorization: Bearer %s' %s/api/orders\n\n", t.Reader, u.Gateway)
	p("# no token: 401 (audit reason token_missing)\n")
	p("curl -si %s/api/orders\n\n", u.Gateway)
	p("# expired token: 401 invalid_token (audit reason token_expired)\n")
	p("curl -si -H 'Authorization: Bearer %s' %s/api/orders\n\n", t.Expired, u.Gateway)
	p("# bob's token lacks scope api:read: 403 insufficient_scope (audit reason scope_missing)\n")
	p("curl -si -H 'Authorization: Bearer %s' %s/api/orders\n\n", t.NoScope, u.Gateway)
	p("# admin route with carol's admin token: 200; the token is stripped before the backend\n")
	p("curl -s -H 'Authorization: Bearer %s' %s/admin/users\n\n", t.Admin, u.Gateway)
	p("# a fresh token from the issuer's current key (?as=reader|noscope|admin)\n")
	p("curl -s -H \"Authorization: Bearer $(curl -s %s/token)\" %s/api/orders\n\n", u.Issuer, u.Gateway)
	p("# gateway readiness and metrics\n")
	p("curl -s %s/readyz\n", u.Admin)
	p("curl -s %s/metrics | grep '^jwtgate_'\n\n", u.Admin)
	p("Audit records (one JSON object per line) stream to stdout. Ctrl-C to stop.\n\n")
	_, _ = io.WriteString(w, b.String())
}

// smokeCheck is one example call and the answer it must get.
type smokeCheck struct {
	name       string
	path       string
	token      func() (string, error) // nil: no token
	wantStatus int
	wantError  string            // the error code of a refusal body
	wantHeader map[string]string // echoed headers that must be present ("*": any value)
	noHeader   []string          // echoed headers that must be absent
	before     func() error
}

// runSmoke makes the example calls through the gateway and prints one line
// per call. It reports whether every call matched. Tokens are never printed.
func runSmoke(ctx context.Context, w io.Writer, gateway string, iss *demoIssuer, t demoTokens) bool {
	fixed := func(s string) func() (string, error) { return func() (string, error) { return s, nil } }
	fresh := func() (string, error) {
		now := time.Now()
		return iss.mint(iss.claims(personaReader, now, now.Add(demoTokenTTL)))
	}
	checks := []smokeCheck{
		{name: "public route, no token", path: "/public/hello", wantStatus: 200},
		{name: "allowed: scope api:read", path: "/api/orders", token: fixed(t.Reader), wantStatus: 200,
			wantHeader: map[string]string{"X-User-Id": "alice", "X-User-Email": "alice@example.com", "X-Request-Id": "*", "X-Forwarded-For": "*", "Authorization": "Bearer [redacted]"}},
		{name: "missing token", path: "/api/orders", wantStatus: 401, wantError: "unauthorized"},
		{name: "expired token", path: "/api/orders", token: fixed(t.Expired), wantStatus: 401, wantError: "invalid_token"},
		{name: "missing scope", path: "/api/orders", token: fixed(t.NoScope), wantStatus: 403, wantError: "insufficient_scope"},
		{name: "admin route, admin token", path: "/admin/users", token: fixed(t.Admin), wantStatus: 200,
			wantHeader: map[string]string{"X-User-Id": "carol"}, noHeader: []string{"Authorization"}},
		{name: "after key rotation (" + demoRotatedKID + ")", path: "/api/orders", token: fresh, wantStatus: 200,
			wantHeader: map[string]string{"X-User-Id": "alice"},
			before: func() error {
				iss.rotateAndAnnounce(ctx, w, gateway, true)
				if k := iss.currentKID(); k != demoRotatedKID {
					return fmt.Errorf("issuer signs with %s, want %s", k, demoRotatedKID)
				}
				return nil
			}},
	}
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	all := true
	for i, c := range checks {
		got, err := c.run(ctx, client, gateway)
		mark := "ok  "
		if err != nil {
			mark, all = "FAIL", false
		}
		fmt.Fprintf(w, "smoke: %s %d. %-30s GET %-13s -> %s", mark, i+1, c.name, c.path, got)
		if err != nil {
			fmt.Fprintf(w, ": %v", err)
		}
		fmt.Fprintln(w)
	}
	return all
}

// run makes the call and compares the answer; got describes the answer.
func (c smokeCheck) run(ctx context.Context, client *http.Client, gateway string) (got string, err error) {
	if c.before != nil {
		if err := c.before(); err != nil {
			return "not sent", err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gateway+c.path, nil)
	if err != nil {
		return "not sent", err
	}
	if c.token != nil {
		tok, err := c.token()
		if err != nil {
			return "not sent", err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "no answer", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Sprint(resp.StatusCode), fmt.Errorf("read body: %w", err)
	}
	got = fmt.Sprint(resp.StatusCode)
	if resp.StatusCode != c.wantStatus {
		return got, fmt.Errorf("want %d", c.wantStatus)
	}
	if c.wantError != "" {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		got += " " + e.Error
		if e.Error != c.wantError {
			return got, fmt.Errorf("want error %q", c.wantError)
		}
		return got, nil
	}
	if len(c.wantHeader) == 0 && len(c.noHeader) == 0 {
		return got, nil
	}
	var rep echoReply
	if err := json.Unmarshal(body, &rep); err != nil {
		return got, fmt.Errorf("backend reply: %w", err)
	}
	for k, want := range c.wantHeader {
		v, ok := rep.Headers[k]
		if !ok || (want != "*" && v != want) {
			return got, fmt.Errorf("backend saw %s = %q, want %q", k, v, want)
		}
	}
	for _, k := range c.noHeader {
		if _, ok := rep.Headers[k]; ok {
			return got, fmt.Errorf("backend received %s, want it stripped", k)
		}
	}
	got += " (backend headers as expected)"
	return got, nil
}

// lockedWriter serialises writes from the demo's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// gatedWriter holds what is written to it until release, then passes
// everything through: the audit stream starts after the banner.
type gatedWriter struct {
	mu   sync.Mutex
	w    io.Writer
	open bool
	buf  bytes.Buffer
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		return g.buf.Write(p)
	}
	return g.w.Write(p)
}

// release writes what was held and opens the gate. Later calls do nothing.
func (g *gatedWriter) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open {
		return
	}
	g.open = true
	_, _ = g.w.Write(g.buf.Bytes())
	g.buf.Reset()
}
