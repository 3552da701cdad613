package proxy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/c2sp/wycheproof"
	"github.com/rs/zerolog"

	"github.com/jwtgate/jwtgate/config"
)

// wpFile is a Wycheproof vector file of schema json_web_signature_schema_v1
// or json_web_key_schema_v1 (both: testGroups of tests with tcId,
// comment, jws, result, flags).
type wpFile struct {
	Schema        string    `json:"schema"`
	NumberOfTests int       `json:"numberOfTests"`
	TestGroups    []wpGroup `json:"testGroups"`
}

// wpGroup holds the keys of its vectors: in the JSON Web Signature file
// "public" and "private" are single JWKs, in the JSON Web Key file they are
// JWK Sets. Either may be absent.
type wpGroup struct {
	Comment string          `json:"comment"`
	Public  json.RawMessage `json:"public"`
	Private json.RawMessage `json:"private"`
	Tests   []wpVector      `json:"tests"`
}

type wpVector struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	JWS     string   `json:"jws"`
	Result  string   `json:"result"` // valid, invalid or acceptable
	Flags   []string `json:"flags"`
}

// wpTally counts outcomes for one file.
type wpTally struct {
	total, validAccepted, validRejected, invalidRejected, invalidAccepted, acceptable, skipped int
	loadRefused                                                                                int // rejections because jwtgate refused to load the group's keys
	conflicts                                                                                  int // invalid vectors byte-identical to a valid one of the same group
}

// TestWycheproofJWSAndJWKVectors runs the Wycheproof JSON Web Signature
// and JSON Web Key vectors (github.com/c2sp/wycheproof, testvectors_v1)
// against jwtgate's signature layer: for each group a provider is built
// from the group's keys the way an operator would configure it — a JWK
// Set with asymmetric keys as jwks_file (its oct members are skipped, as
// for any JWKS), a set of only oct keys as static keys with secrets — and
// each vector's JWS goes through providerRT.verifySignature, the code
// verify uses minus payload decoding and claims validation (the vectors'
// payloads are not claims objects). Every vector marked invalid must be
// rejected; a valid one that jwtgate rejects is logged with its tcId,
// comment and jwtgate's reason. Valid vectors whose algorithm or key type
// jwtgate does not implement are skipped and counted. An invalid vector
// byte-identical to a valid one of its group (tcId 367 and 370 repeat
// valid tcId 357) is reported as an inconsistent label, not failed.
func TestWycheproofJWSAndJWKVectors(t *testing.T) {
	for _, name := range []string{"json_web_signature_test.json", "json_web_key_test.json"} {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			raw, err := fs.ReadFile(wycheproof.TestVectors, name)
			if err != nil {
				t.Fatalf("read %s: %v", name, err)
			}
			var f wpFile
			if err := json.Unmarshal(raw, &f); err != nil {
				t.Fatalf("decode %s: %v", name, err)
			}
			setFile := f.Schema == "json_web_key_schema_v1.json"
			var tally wpTally
			for gi, g := range f.TestGroups {
				runWycheproofGroup(t, gi, g, setFile, &tally)
			}
			if tally.total != f.NumberOfTests {
				t.Errorf("ran %d vectors, file declares %d", tally.total, f.NumberOfTests)
			}
			t.Logf("%s: %d vectors: invalid rejected %d, invalid ACCEPTED %d, invalid identical to a valid vector %d; valid accepted %d, valid rejected %d; acceptable %d; skipped (unsupported) %d; rejections at key loading %d",
				name, tally.total, tally.invalidRejected, tally.invalidAccepted, tally.conflicts, tally.validAccepted, tally.validRejected, tally.acceptable, tally.skipped, tally.loadRefused)
		})
	}
}

// runWycheproofGroup builds the group's provider and runs its vectors.
func runWycheproofGroup(t *testing.T, gi int, g wpGroup, setFile bool, tally *wpTally) {
	t.Helper()
	keys, err := wpKeys(g, setFile)
	if err != nil {
		t.Fatalf("group %d (%s): %v", gi, g.Comment, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, loadErr := wpProvider(ctx, t, keys)
	if loadErr == nil {
		defer p.keys.Close()
	}
	// A vector labelled invalid whose JWS is byte-identical to a valid
	// one of the same group (same keys) cannot be decided both ways; the
	// label is inconsistent, so it is reported, not failed.
	validJWS := map[string]int{}
	for _, v := range g.Tests {
		if v.Result == "valid" {
			validJWS[v.JWS] = v.TcID
		}
	}
	for _, v := range g.Tests {
		tally.total++
		if v.Result == "valid" && !wpSupported(v.JWS, keys) {
			tally.skipped++
			t.Logf("skipped tcId %d (%s): algorithm or key type not implemented by jwtgate", v.TcID, v.Comment)
			continue
		}
		var reason string
		switch {
		case loadErr != nil:
			reason = "keys refused at load: " + firstLine(loadErr.Error())
			tally.loadRefused++
		default:
			if _, te := p.verifySignature(ctx, v.JWS); te != nil {
				reason = string(te.reason) + ": " + firstLine(te.err.Error())
			}
		}
		accepted := reason == ""
		switch {
		case v.Result == "invalid" && accepted && validJWS[v.JWS] != 0:
			tally.conflicts++
			t.Logf("inconsistent label: tcId %d (%s) is marked invalid but its JWS is identical to valid tcId %d; accepted", v.TcID, v.Comment, validJWS[v.JWS])
		case v.Result == "invalid" && accepted:
			tally.invalidAccepted++
			t.Errorf("tcId %d (%s, group %q, flags %v): invalid vector ACCEPTED", v.TcID, v.Comment, g.Comment, v.Flags)
		case v.Result == "invalid":
			tally.invalidRejected++
		case v.Result == "valid" && accepted:
			tally.validAccepted++
		case v.Result == "valid":
			tally.validRejected++
			t.Logf("valid vector rejected: tcId %d (%s, group %q, flags %v): %s", v.TcID, v.Comment, g.Comment, v.Flags, reason)
		default:
			tally.acceptable++
			t.Logf("acceptable vector tcId %d (%s): accepted=%v %s", v.TcID, v.Comment, accepted, reason)
		}
	}
}

// wpKeys returns the group's keys as a list of JWK objects: the public
// key(s) when given, the private ones otherwise.
func wpKeys(g wpGroup, setFile bool) ([]map[string]any, error) {
	src := g.Public
	if len(src) == 0 || string(src) == "null" {
		src = g.Private
	}
	if len(src) == 0 || string(src) == "null" {
		return nil, nil
	}
	if setFile {
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(src, &set); err != nil {
			return nil, err
		}
		return set.Keys, nil
	}
	var k map[string]any
	if err := json.Unmarshal(src, &k); err != nil {
		return nil, err
	}
	return []map[string]any{k}, nil
}

// wpProvider builds a one-provider gateway from keys and returns the
// provider. A set of only oct keys becomes static secrets (the one way
// jwtgate accepts HMAC keys); anything else is a jwks_file.
func wpProvider(ctx context.Context, t *testing.T, keys []map[string]any) (*providerRT, error) {
	t.Helper()
	dir := t.TempDir()
	allOct := len(keys) > 0
	for _, k := range keys {
		if k["kty"] != "oct" {
			allOct = false
		}
	}
	var source string
	algs := strings.Join(config.DefaultAlgorithms, ", ")
	if allOct {
		var b strings.Builder
		b.WriteString("keys:\n")
		for i, k := range keys {
			kb, _ := k["k"].(string)
			secret, err := base64.RawURLEncoding.DecodeString(kb)
			if err != nil {
				return nil, fmt.Errorf("oct key %d: %w", i, err)
			}
			path := filepath.Join(dir, fmt.Sprintf("secret-%d", i))
			if err := os.WriteFile(path, []byte("base64:"+base64.StdEncoding.EncodeToString(secret)), 0o600); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "      - {kid: %q, alg: %q, secret_file: %q}\n", k["kid"], k["alg"], path)
		}
		source = b.String()
		algs = "HS256, HS384, HS512"
	} else {
		path := filepath.Join(dir, "jwks.json")
		body, err := json.Marshal(map[string]any{"keys": keys})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		source = fmt.Sprintf("jwks_file: %q\n", path)
	}
	text := fmt.Sprintf(`
server: {address: "127.0.0.1:0"}
admin: {address: "127.0.0.1:0"}
providers:
  - name: wp
    issuer: https://wycheproof.test/
    audiences: [wycheproof]
    algorithms: [%s]
    %s
routes:
  - name: wp
    match: {path_prefix: /}
    upstream: {url: "http://127.0.0.1:1"}
    auth: {providers: [wp]}
audit: {output: stdout}
`, algs, source)
	cfg, err := config.Parse([]byte(text), dir)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	g, err := Build(ctx, cfg, Deps{Logger: zerolog.Nop()}, nil)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	return g.providers["wp"], nil
}

// wpSupported reports whether jwtgate implements the vector's alg (read
// leniently from its header) and every key's type and curve. Only valid
// vectors are ever skipped: an invalid one must be rejected whatever it
// uses.
func wpSupported(jws string, keys []map[string]any) bool {
	head, _, _ := strings.Cut(jws, ".")
	hb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(head, "="))
	if err != nil {
		return true // not decodable: jwtgate's rejection is the answer
	}
	var h map[string]any
	if json.Unmarshal(hb, &h) != nil {
		return true
	}
	alg, _ := h["alg"].(string)
	if !slices.Contains(append(slices.Clone(config.DefaultAlgorithms), "HS256", "HS384", "HS512"), alg) {
		return false
	}
	for _, k := range keys {
		switch k["crv"] {
		case nil, "P-256", "P-384", "P-521", "Ed25519":
		default:
			return false
		}
		switch k["kty"] {
		case "RSA", "EC", "OKP", "oct":
		default:
			return false
		}
	}
	return true
}
