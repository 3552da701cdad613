package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/jwtgate/jwtgate/config"
)

// auditEnv is a gateway environment for the audit trail end-to-end test: an
// issuer whose JWKS holds a good ES256 key and a weak RSA-1024 key, a
// backend, a chain key and a config file writing a chained audit file.
type auditEnv struct {
	key      *ecdsa.PrivateKey // signs valid tokens, kid k1
	attacker *ecdsa.PrivateKey // signs tokens that claim kid k1
	jwks     *httptest.Server
	backend  *httptest.Server
	dir      string
	cfgPath  string
	keyFile  string
	audit    string
}

// b64 is base64url without padding.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// ecThumbprint is the RFC 7638 thumbprint of a P-256 public key, computed
// here independently of the jwks package.
func ecThumbprint(t *testing.T, k *ecdsa.PublicKey) string {
	t.Helper()
	raw, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	canon := fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, b64(raw[1:33]), b64(raw[33:]))
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:])
}

func newAuditEnv(t *testing.T) *auditEnv {
	t.Helper()
	e := &auditEnv{dir: t.TempDir()}
	var err error
	if e.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if e.attacker, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := e.key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]any{"keys": []any{
		map[string]any{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
			"x": b64(raw[1:33]), "y": b64(raw[33:])},
		map[string]any{"kty": "RSA", "kid": "weak", "alg": "RS256", "use": "sig",
			"n": b64(weak.N.Bytes()), "e": b64(big.NewInt(int64(weak.E)).Bytes())},
	}}
	e.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(e.jwks.Close)
	e.backend = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(e.backend.Close)
	e.cfgPath = filepath.Join(e.dir, "gateway.yaml")
	e.keyFile = filepath.Join(e.dir, "audit-chain.key")
	e.audit = filepath.Join(e.dir, "log", "audit.log")
	chainKey := make([]byte, 32)
	if _, err := rand.Read(chainKey); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.keyFile, chainKey, 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// writeConfig writes the gateway config; extra is appended to routes.
func (e *auditEnv) writeConfig(t *testing.T, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
server: {address: "127.0.0.1:0", shutdown_grace: 5s}
admin: {address: "127.0.0.1:0"}
providers:
  - {name: main, issuer: "https://idp.test/", audiences: [api], jwks_url: %q, algorithms: [ES256, RS256]}
routes:
  - name: api
    match: {path_prefix: /api}
    upstream: {url: %q}
    auth:
      providers: [main]
      require: {scopes: [read]}
      forward: {claims_to_headers: {sub: X-User-Id}, strip_token: true}
  - {name: docs, match: {path_prefix: /docs}, upstream: {url: %q}, auth: {mode: "off"}}
%s
audit:
  output: file
  file: %q
  claims: [sub, jti]
  chain: {key_file: %q}
`, e.jwks.URL, e.backend.URL, e.backend.URL, extra, e.audit, e.keyFile)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(cfg))
	return hex.EncodeToString(sum[:8])
}

// mint signs a token with k under kid k1.
func (e *auditEnv) mint(t *testing.T, k *ecdsa.PrivateKey, sub, scope string, exp time.Duration) string {
	t.Helper()
	c := jwt.MapClaims{"iss": "https://idp.test/", "aud": "api", "sub": sub,
		"iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(exp).Unix(), "jti": "jti-" + sub}
	if scope != "" {
		c["scope"] = scope
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// gateway is one running gateway process.
type gateway struct {
	base   string
	s      *server
	cancel context.CancelFunc
	done   chan int
}

// start runs the gateway on the current config file until stop.
func (e *auditEnv) start(t *testing.T) *gateway {
	t.Helper()
	cfg, err := config.Load(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := startServer(ctx, cfg, serverOptions{Logger: zerolog.Nop(), Stdout: io.Discard, Public: pub, Admin: adm, NoSignals: true})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	g := &gateway{base: "http://" + pub.Addr().String(), s: s, cancel: cancel, done: make(chan int)}
	go func() { g.done <- s.run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st, _ := httpGet(t, "http://"+adm.Addr().String()+"/readyz", ""); st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway not ready within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return g
}

// stop shuts the gateway down like SIGTERM and checks it exits 0.
func (g *gateway) stop(t *testing.T) {
	t.Helper()
	g.cancel()
	if code := <-g.done; code != 0 {
		t.Fatalf("run exit code %d, want 0", code)
	}
}

// send makes one request and checks the status.
func (g *gateway) send(t *testing.T, path, token string, hdr map[string]string, want int) {
	t.Helper()
	req, err := http.NewRequest("GET", g.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("GET %s = %d, want %d", path, resp.StatusCode, want)
	}
}

// auditLine is one audit line, raw and decoded.
type auditLine struct {
	raw string
	m   map[string]any
}

func (l auditLine) str(k string) string { s, _ := l.m[k].(string); return s }

func (l auditLine) num(t *testing.T, k string) int {
	t.Helper()
	n, ok := l.m[k].(json.Number)
	if !ok {
		t.Fatalf("record %s: %s = %v, want a number", l.raw, k, l.m[k])
	}
	i, err := strconv.Atoi(n.String())
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func readAuditLines(t *testing.T, path string) []auditLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		d := json.NewDecoder(strings.NewReader(sc.Text()))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatalf("audit line not JSON: %q", sc.Text())
		}
		out = append(out, auditLine{raw: sc.Text(), m: m})
	}
	return out
}

// objects returns member k as a list of JSON objects.
func objects(t *testing.T, l auditLine, k string) []map[string]any {
	t.Helper()
	arr, _ := l.m[k].([]any)
	out := make([]map[string]any, 0, len(arr))
	for _, a := range arr {
		o, ok := a.(map[string]any)
		if !ok {
			t.Fatalf("%s: %s holds %v, want objects", l.str("event"), k, a)
		}
		out = append(out, o)
	}
	return out
}

// runCLI runs the jwtgate command line in-process.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// htmlCount reads the number in a data attribute such as
// data-total-deny="12" from the HTML report.
func htmlCount(t *testing.T, html, attr string) int {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(attr) + `="(\d+)"`).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("report has no %s", attr)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestAuditTrailEndToEnd pins issue 4 through the binary's own code: a
// gateway with a chained audit file serves allowed, denied and suspicious
// requests (a burst of bad signatures, a spoofed identity header), reloads
// once, shuts down, restarts on the same file and shuts down again. Then
// the trail must hold correct lifecycle records (startup route inventory,
// config_reload versions, jwks_refresh with thumbprints and the weak
// RSA-1024 key skipped, shutdown counts), `audit verify` must pass and then
// name an edited line, `audit tail --json --decision deny` must print
// exactly the denials, and the HTML report's numbers — including the
// suspicious burst — must match what was sent.
func TestAuditTrailEndToEnd(t *testing.T) {
	e := newAuditEnv(t)
	v1 := e.writeConfig(t, "")
	good := e.mint(t, e.key, "alice", "read", time.Hour)
	noScope := e.mint(t, e.key, "bob", "", time.Hour)
	forged := e.mint(t, e.attacker, "mallory", "read", time.Hour)
	expired := e.mint(t, e.key, "carol", "read", -time.Hour)

	// Process 1.
	g := e.start(t)
	const burst = 12
	for range 3 {
		g.send(t, "/api/orders", good, nil, 200)
	}
	g.send(t, "/api/orders", noScope, nil, 403)
	g.send(t, "/api/orders", "", nil, 401)
	for range burst {
		g.send(t, "/api/orders", forged, nil, 401)
	}
	g.send(t, "/api/orders", good, map[string]string{"X-User-Id": "admin"}, 200)
	g.send(t, "/docs/intro", "", nil, 200)
	v2 := e.writeConfig(t, `  - {name: health, match: {path: /health}, upstream: {url: "`+e.backend.URL+`"}, auth: {mode: "off"}}`)
	g.s.reload("test")
	g.send(t, "/api/after-reload", good, nil, 200)
	g.stop(t)

	// Process 2, appending to the same file.
	g = e.start(t)
	g.send(t, "/api/again", good, nil, 200)
	g.send(t, "/api/again", expired, nil, 401)
	g.stop(t)

	const (
		wantAllow  = 3 + 1 + 1 + 1 // good, spoofed (still allowed), after reload, process 2
		wantDeny   = 1 + 1 + burst + 1
		wantPublic = 1
	)
	lines := readAuditLines(t, e.audit)

	t.Run("chain-continues-across-restart", func(t *testing.T) {
		var starts []int
		for i, l := range lines {
			if l.str("event") == "startup" {
				starts = append(starts, i)
			}
			if l.num(t, "seq") != i+1 {
				t.Fatalf("line %d: seq %d, want %d (one file, seq continues across the restart)", i+1, l.num(t, "seq"), i+1)
			}
		}
		if len(starts) != 2 || starts[0] != 0 {
			t.Fatalf("startup records at %v, want the first line and one more", starts)
		}
		if _, ok := lines[0].m["prev_chain"]; ok {
			t.Errorf("first startup has prev_chain, want none")
		}
		if got, want := lines[starts[1]].str("prev_chain"), lines[starts[1]-1].str("chain"); got != want {
			t.Errorf("second startup prev_chain = %q, want the previous record's chain %q", got, want)
		}
	})

	t.Run("startup-route-inventory", func(t *testing.T) {
		st := lines[0]
		if st.str("version") != version || st.str("config_version") != v1 {
			t.Errorf("startup version %q config_version %q, want %q %q", st.str("version"), st.str("config_version"), version, v1)
		}
		routes := map[string]map[string]any{}
		for _, r := range objects(t, st, "routes") {
			routes[r["name"].(string)] = r
		}
		api, docs := routes["api"], routes["docs"]
		if api == nil || docs == nil {
			t.Fatalf("routes = %v, want api and docs", routes)
		}
		if fmt.Sprint(api["providers"]) != "[main]" || api["mode"] != "required" || fmt.Sprint(api["scopes"]) != "[read]" || api["strip_token"] != true {
			t.Errorf("api route inventory = %v, want providers [main], mode required, scopes [read], strip_token true", api)
		}
		if src := fmt.Sprint(api["token_sources"]); !strings.Contains(src, "Authorization") {
			t.Errorf("api token_sources = %v, want the Authorization header", src)
		}
		if docs["mode"] != "off" || docs["strip_token"] != false {
			t.Errorf("docs route inventory = %v, want mode off, strip_token false", docs)
		}
	})

	t.Run("config-reload-record", func(t *testing.T) {
		var reloads []auditLine
		for _, l := range lines {
			if l.str("event") == "config_reload" {
				reloads = append(reloads, l)
			}
		}
		if len(reloads) != 1 {
			t.Fatalf("%d config_reload records, want 1", len(reloads))
		}
		r := reloads[0]
		if r.str("result") != "ok" || r.str("old_config_version") != v1 || r.str("new_config_version") != v2 || r.str("config_version") != v2 {
			t.Errorf("config_reload = %s, want ok from %s to %s", r.raw, v1, v2)
		}
		if v1 == v2 {
			t.Fatal("config versions equal; the reload changed nothing")
		}
	})

	t.Run("jwks-refresh-record", func(t *testing.T) {
		var first *auditLine
		for i, l := range lines {
			if l.str("event") == "jwks_refresh" && l.str("provider") == "main" {
				first = &lines[i]
				break
			}
		}
		if first == nil {
			t.Fatal("no jwks_refresh record for provider main")
		}
		if first.str("result") != "ok" {
			t.Errorf("jwks_refresh result = %q, want ok", first.str("result"))
		}
		added := objects(t, *first, "kids_added")
		if len(added) != 1 || added[0]["kid"] != "k1" || added[0]["alg"] != "ES256" || added[0]["thumbprint"] != ecThumbprint(t, &e.key.PublicKey) {
			t.Errorf("kids_added = %v, want k1 ES256 with thumbprint %s", added, ecThumbprint(t, &e.key.PublicKey))
		}
		if len(added) == 1 && fmt.Sprint(added[0]["bits"]) != "256" {
			t.Errorf("kids_added[0].bits = %v, want 256", added[0]["bits"])
		}
		skipped := objects(t, *first, "keys_skipped")
		if len(skipped) != 1 || skipped[0]["kid"] != "weak" || !strings.Contains(fmt.Sprint(skipped[0]["reason"]), "1024") {
			t.Errorf("keys_skipped = %v, want the RSA-1024 key 'weak' with a reason naming its size", skipped)
		}
	})

	t.Run("shutdown-records-count", func(t *testing.T) {
		start := 0
		n := 0
		for i, l := range lines {
			switch l.str("event") {
			case "startup":
				start = i
			case "shutdown":
				n++
				if got, want := l.num(t, "records"), i-start; got != want {
					t.Errorf("shutdown %d: records = %d, want %d (lines since its startup)", n, got, want)
				}
				if l.num(t, "dropped") != 0 {
					t.Errorf("shutdown %d: dropped = %d", n, l.num(t, "dropped"))
				}
			}
		}
		if n != 2 || lines[len(lines)-1].str("event") != "shutdown" {
			t.Errorf("%d shutdown records, last event %q; want 2 and shutdown last", n, lines[len(lines)-1].str("event"))
		}
	})

	t.Run("request-records", func(t *testing.T) {
		got := map[string]int{}
		suspicious := map[string]int{}
		for _, l := range lines {
			if l.str("event") != "request" {
				continue
			}
			got[l.str("decision")]++
			if l.m["suspicious"] == true {
				suspicious[l.str("reason")]++
			}
			if strings.Contains(l.raw, good) || strings.Contains(l.raw, forged) {
				t.Fatalf("a raw token is in the audit log: %s", l.raw)
			}
		}
		if got["allow"] != wantAllow || got["deny"] != wantDeny || got["public"] != wantPublic {
			t.Errorf("decisions = %v, want allow %d deny %d public %d", got, wantAllow, wantDeny, wantPublic)
		}
		if suspicious["signature_invalid"] != burst || suspicious[""] != 1 {
			t.Errorf("suspicious records by reason = %v, want %d signature_invalid and 1 spoofed header", suspicious, burst)
		}
	})

	t.Run("tail-json-deny", func(t *testing.T) {
		code, out, errOut := runCLI(t, "audit", "tail", "--json", "--decision", "deny", e.audit)
		if code != 0 {
			t.Fatalf("audit tail exit %d: %s", code, errOut)
		}
		outLines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(outLines) != wantDeny {
			t.Fatalf("audit tail --decision deny printed %d lines, want %d", len(outLines), wantDeny)
		}
		raw := map[string]bool{}
		for _, l := range lines {
			raw[l.raw] = true
		}
		for _, ol := range outLines {
			if !raw[ol] || !strings.Contains(ol, `"decision":"deny"`) {
				t.Errorf("tail line is not a deny line of the file byte for byte: %s", ol)
			}
		}
	})

	t.Run("report-html", func(t *testing.T) {
		out := filepath.Join(e.dir, "review.html")
		code, _, errOut := runCLI(t, "audit", "report", "--format", "html", "--key-file", e.keyFile, "-o", out, e.audit)
		if code != 0 {
			t.Fatalf("audit report exit %d: %s", code, errOut)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		html := string(b)
		for attr, want := range map[string]int{
			"data-total-records": len(lines), "data-total-requests": wantAllow + wantDeny + wantPublic,
			"data-total-allow": wantAllow, "data-total-deny": wantDeny, "data-total-public": wantPublic,
			"data-startups": 2, "data-shutdowns": 2, "data-reloads-ok": 1, "data-reloads-failed": 0,
			"data-suspicious-total": burst + 1, "data-bursts": 1,
			`data-reason="signature_invalid"><td><code>signature_invalid</code></td><td class="n" data-count`:            burst,
			`data-suspicious-reason="signature_invalid"><td><code>signature_invalid</code></td><td class="n" data-count`: burst,
			`data-burst-ip="127.0.0.1" data-denials`: wantDeny,
		} {
			if got := htmlCount(t, html, attr); got != want {
				t.Errorf("report %s = %d, want %d", attr, got, want)
			}
		}
		if !strings.Contains(html, `data-chain-state="verified"`) {
			t.Error("report does not show the chain as verified")
		}
		for _, v := range []string{v1, v2} {
			if !strings.Contains(html, `data-config-version="`+v+`"`) {
				t.Errorf("report lacks config version %s", v)
			}
		}
		// Keys: only the key that verified tokens, counted once per
		// verified request; the forged tokens' claimed kid is not a use.
		verified := 0
		for _, l := range lines {
			if l.str("event") == "request" && l.str("key_thumbprint") == ecThumbprint(t, &e.key.PublicKey) {
				verified++
			}
		}
		keyRows := regexp.MustCompile(`data-kid="k1">.*?data-count="(\d+)"`).FindAllStringSubmatch(html, -1)
		if len(keyRows) != 1 || keyRows[0][1] != strconv.Itoa(verified) {
			t.Errorf("report key rows for k1 = %v, want one with %d requests", keyRows, verified)
		}
		if strings.Contains(html, "data-unparseable") {
			t.Error("report counts unparseable lines in a trail the gateway wrote")
		}
		for _, external := range []string{"<script", "<link", ` src="`, ` href="http`, "url("} {
			if strings.Contains(html, external) {
				t.Errorf("report is not self-contained: it holds %q", external)
			}
		}
	})

	t.Run("verify-then-edit", func(t *testing.T) {
		code, out, errOut := runCLI(t, "audit", "verify", "--key-file", e.keyFile, e.audit)
		if code != 0 || !strings.HasPrefix(out, fmt.Sprintf("ok: %d records in 1 files, chain intact", len(lines))) {
			t.Fatalf("audit verify = %d %q %q, want 0 and ok with %d records", code, out, errOut, len(lines))
		}
		// Turn the first bad-signature denial into an allow.
		idx := slices.IndexFunc(lines, func(l auditLine) bool { return l.str("reason") == "signature_invalid" })
		edited := filepath.Join(e.dir, "edited.log")
		var sb strings.Builder
		for i, l := range lines {
			s := l.raw
			if i == idx {
				s = strings.Replace(s, `"decision":"deny"`, `"decision":"allow"`, 1)
			}
			sb.WriteString(s + "\n")
		}
		if err := os.WriteFile(edited, []byte(sb.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, _ = runCLI(t, "audit", "verify", "--key-file", e.keyFile, edited)
		if want := fmt.Sprintf("%s:%d: ", edited, idx+1); code != 1 || !strings.HasPrefix(out, want) {
			t.Errorf("audit verify of an edited line = %d %q, want 1 and %q", code, out, want)
		}
	})
}
