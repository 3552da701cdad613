package config

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// schemaKeywords are the JSON Schema keywords the test validator below
// implements (or, for annotations, knows to ignore). The generator must use
// no other, so the validator can never pass a document by skipping a rule.
var schemaKeywords = map[string]bool{
	"$schema": true, "title": true, "description": true, "default": true,
	"type": true, "properties": true, "additionalProperties": true, "required": true,
	"items": true, "enum": true, "pattern": true, "minimum": true,
}

// schemaErrors validates v (as decoded from YAML or JSON into any) against
// s, for the subset of JSON Schema that JSONSchema generates, and returns
// one "path: problem" line per violation.
func schemaErrors(s map[string]any, v any, path string) []string {
	var errs []string
	fail := func(format string, args ...any) {
		p := path
		if p == "" {
			p = "(root)"
		}
		errs = append(errs, p+": "+fmt.Sprintf(format, args...))
	}
	for k := range s {
		if !schemaKeywords[k] {
			fail("unsupported schema keyword %q", k)
		}
	}
	if t, ok := s["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return jsonTypeIs(t, v) }) {
			fail("%T value %v is not of type %v", v, v, types)
			return errs // the other keywords assume the type
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		fail("%v is not one of %v", v, enum)
	}
	if p, ok := s["pattern"].(string); ok {
		if str, isStr := v.(string); isStr && !regexp.MustCompile(p).MatchString(str) {
			fail("%q does not match %s", str, p)
		}
	}
	if m, ok := s["minimum"].(float64); ok {
		if n, isNum := jsonNumber(v); isNum && n < m {
			fail("%v is less than %v", v, m)
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, present := obj[r.(string)]; !present {
				fail("required key %q is missing", r)
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub := joinPath(path, k)
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, schemaErrors(ps, obj[k], sub)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = append(errs, sub+": unknown key")
				}
			case map[string]any:
				errs = append(errs, schemaErrors(ap, obj[k], sub)...)
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range arr {
				errs = append(errs, schemaErrors(items, x, path+"["+strconv.Itoa(i)+"]")...)
			}
		}
	}
	return errs
}

func asList(v any) []any { l, _ := v.([]any); return l }

// jsonTypeIs reports whether v, decoded from YAML or JSON, is of JSON
// Schema type t.
func jsonTypeIs(t string, v any) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := jsonNumber(v)
		return ok
	case "integer":
		n, ok := jsonNumber(v)
		return ok && n == math.Trunc(n)
	}
	return false
}

func jsonNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// loadSchema returns the generated schema decoded from JSON.
func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	data, err := JSONSchema()
	if err != nil {
		t.Fatalf("JSONSchema() error = %v", err)
	}
	var s map[string]any
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("JSONSchema() is not valid JSON: %v", err)
	}
	return s
}

// yamlAny decodes YAML text into plain values, as an editor sees the file.
func yamlAny(t *testing.T, text string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("yaml.Unmarshal: %v", err)
	}
	return v
}

// walkSchema calls f for every subschema of s with its JSON pointer-ish path.
func walkSchema(s map[string]any, path string, f func(s map[string]any, path string)) {
	f(s, path)
	if props, ok := s["properties"].(map[string]any); ok {
		for k, p := range props {
			walkSchema(p.(map[string]any), path+"/properties/"+k, f)
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		walkSchema(items, path+"/items", f)
	}
	if ap, ok := s["additionalProperties"].(map[string]any); ok {
		walkSchema(ap, path+"/additionalProperties", f)
	}
}

// TestSchemaIsStrictDocumentedJSON pins the schema's shape: valid JSON in
// the 2020-12 dialect, only keywords the validator implements, every
// mapping closed with additionalProperties (strict decoding, so an editor
// flags the typo the loader would refuse), every property described from
// its doc comment, and every default valid against its own schema.
func TestSchemaIsStrictDocumentedJSON(t *testing.T) {
	s := loadSchema(t)
	if s["$schema"] != schemaDialect {
		t.Errorf("$schema = %v, want %s", s["$schema"], schemaDialect)
	}
	objects := 0
	walkSchema(s, "#", func(n map[string]any, path string) {
		for k := range n {
			if !schemaKeywords[k] {
				t.Errorf("%s: keyword %q is not implemented by the test validator", path, k)
			}
		}
		if n["type"] == "object" {
			objects++
			if _, ok := n["additionalProperties"]; !ok {
				t.Errorf("%s: object without additionalProperties; strict decoding refuses unknown keys", path)
			}
		}
		if strings.Contains(path, "/properties/") && !strings.HasSuffix(path, "/items") && !strings.HasSuffix(path, "/additionalProperties") {
			if d, _ := n["description"].(string); len(d) < 10 {
				t.Errorf("%s: description %q, want the field's doc comment", path, d)
			}
		}
		if def, ok := n["default"]; ok {
			for _, e := range schemaErrors(n, def, path) {
				t.Errorf("default %v does not validate: %s", def, e)
			}
		}
	})
	if objects < 15 {
		t.Errorf("found %d object schemas, want one per config struct", objects)
	}
}

// TestSchemaCoversEveryYAMLKey pins that the schema is generated from the
// Go types: at every place, its properties are exactly the yaml keys of
// the struct decoded there, so a field added to config.go appears in the
// schema without anyone editing it.
func TestSchemaCoversEveryYAMLKey(t *testing.T) {
	s := loadSchema(t)
	var check func(rt reflect.Type, n map[string]any, path string)
	check = func(rt reflect.Type, n map[string]any, path string) {
		if rt == durationType {
			if n["type"] != "string" || n["pattern"] == nil {
				t.Errorf("%s: duration schema %v, want a string with a pattern", path, n)
			}
			return
		}
		switch rt.Kind() {
		case reflect.Pointer:
			check(rt.Elem(), n, path)
		case reflect.Slice:
			items, ok := n["items"].(map[string]any)
			if n["type"] != "array" || !ok {
				t.Errorf("%s: schema %v, want an array with items", path, n)
				return
			}
			check(rt.Elem(), items, path+"[]")
		case reflect.Map:
			ap, ok := n["additionalProperties"].(map[string]any)
			if n["type"] != "object" || !ok {
				t.Errorf("%s: schema %v, want an object with typed values", path, n)
				return
			}
			check(rt.Elem(), ap, path+".*")
		case reflect.Struct:
			props, _ := n["properties"].(map[string]any)
			if n["type"] != "object" || n["additionalProperties"] != false {
				t.Errorf("%s: schema type %v additionalProperties %v, want a closed object", path, n["type"], n["additionalProperties"])
			}
			fields := yamlFields(rt)
			for key, ft := range fields {
				p, ok := props[key].(map[string]any)
				if !ok {
					t.Errorf("%s: yaml key %q (%s) missing from the schema", path, key, rt.Name())
					continue
				}
				check(ft, p, joinPath(path, key))
			}
			for key := range props {
				if _, ok := fields[key]; !ok {
					t.Errorf("%s: schema property %q is not a yaml key of %s", path, key, rt.Name())
				}
			}
		case reflect.String:
			if n["type"] != "string" {
				t.Errorf("%s: type %v, want string", path, n["type"])
			}
		case reflect.Bool:
			if n["type"] != "boolean" {
				t.Errorf("%s: type %v, want boolean", path, n["type"])
			}
		case reflect.Int, reflect.Int64:
			if n["type"] != "integer" {
				t.Errorf("%s: type %v, want integer", path, n["type"])
			}
		case reflect.Interface:
			if !reflect.DeepEqual(n["type"], []any{"string", "number", "boolean"}) {
				t.Errorf("%s: type %v, want string, number or boolean (claim values)", path, n["type"])
			}
		default:
			t.Errorf("%s: Go kind %s not covered by this test", path, rt.Kind())
		}
	}
	check(reflect.TypeFor[Config](), s, "")
}

// TestExampleConfigValidatesAgainstSchema pins that gateway.example.yaml,
// the documented reference, raises no editor complaint: it validates
// against the generated schema.
func TestExampleConfigValidatesAgainstSchema(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	s := loadSchema(t)
	for _, e := range schemaErrors(s, yamlAny(t, string(data)), "") {
		t.Errorf("%s: %s", examplePath, e)
	}
}

// schemaTestBase is a valid config touching every required key; KEYFILE
// is replaced with a chain key file.
const schemaTestBase = `
server:
  tls: {cert_file: tls.crt, key_file: tls.key}
  read_header_timeout: 1h30m
  idle_timeout: "0"
  shutdown_grace: 1.5s
providers:
  - name: corp
    issuer: https://idp.example.com/
    audiences: [api]
    jwks_url: https://idp.example.com/jwks.json
    fetch_timeout: 500ms
routes:
  - name: r
    match: {path_prefix: /r}
    upstream: {url: "http://127.0.0.1:9001"}
    auth:
      require:
        claims:
          - {claim: sub, equals: alice}
          - {claim: level, one_of: [1, 2.5, true]}
          - {claim: act, exists: false}
audit:
  chain: {key_file: KEYFILE}
`

// schemaBase returns schemaTestBase with a real chain key file.
func schemaBase(t *testing.T) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, t.TempDir(), "chain.key", key)
	return strings.Replace(schemaTestBase, "KEYFILE", p, 1)
}

// TestSchemaAcceptsWhatTheLoaderAccepts pins that the schema is no
// stricter than the loader: a config that loads (Go durations such as
// "1h30m", "0" and "1.5s"; numeric and boolean claim values) validates.
func TestSchemaAcceptsWhatTheLoaderAccepts(t *testing.T) {
	base := schemaBase(t)
	if _, err := Parse([]byte(base), ""); err != nil {
		t.Fatalf("Parse(base) error = %v", err)
	}
	for _, e := range schemaErrors(loadSchema(t), yamlAny(t, base), "") {
		t.Errorf("valid config: %s", e)
	}
}

// TestSchemaRejectsWhatTheLoaderRejects pins that an editor using the
// schema flags the mistakes the loader refuses: unknown keys (strict
// decoding), wrong types, malformed durations, values outside fixed sets,
// missing required keys. Each case is also checked against Parse, so the
// schema never flags a config the gateway would accept.
func TestSchemaRejectsWhatTheLoaderRejects(t *testing.T) {
	base := schemaBase(t)
	tests := []struct {
		name    string
		from    string // replaced in base
		to      string
		wantErr string // substring of a schema error
	}{
		{"unknown-top-level-key", "audit:\n", "listeners: {}\naudit:\n", "listeners: unknown key"},
		{"unknown-nested-key-typo", `upstream: {url:`, `upstream: {timout: 5s, url:`, "routes[0].upstream.timout: unknown key"},
		{"integer-as-string", "shutdown_grace: 1.5s", "shutdown_grace: 1.5s\n  max_header_bytes: big", "server.max_header_bytes: string value big is not of type [integer]"},
		{"duration-as-number", "fetch_timeout: 500ms", "fetch_timeout: 30", "providers[0].fetch_timeout: int value 30 is not of type [string]"},
		{"duration-with-words", "fetch_timeout: 500ms", "fetch_timeout: 5 seconds", `providers[0].fetch_timeout: "5 seconds" does not match`},
		{"negative-size", "fetch_timeout: 500ms", "fetch_timeout: 500ms\n    max_token_bytes: -1", "providers[0].max_token_bytes: -1 is less than 0"},
		{"mode-not-in-enum", "    auth:\n", "    auth:\n      mode: sometimes\n", "routes[0].auth.mode: sometimes is not one of"},
		{"alg-none", "fetch_timeout: 500ms", "fetch_timeout: 500ms\n    algorithms: [RS256, none]", "providers[0].algorithms[1]: none is not one of"},
		{"audit-output-not-in-enum", "audit:\n", "audit:\n  output: syslog\n", "audit.output: syslog is not one of"},
		{"on-write-error-not-in-enum", "audit:\n", "audit:\n  on_write_error: retry\n", "audit.on_write_error: retry is not one of"},
		{"equals-list", "equals: alice", "equals: [alice]", "equals: []interface {} value [alice] is not of type"},
		{"list-instead-of-mapping", "match: {path_prefix: /r}", "match: [/r]", "routes[0].match: []interface {} value"},
		{"missing-issuer", "    issuer: https://idp.example.com/\n", "", `providers[0]: required key "issuer" is missing`},
		{"claims-to-headers-value-not-string", "    auth:\n", "    auth:\n      forward: {claims_to_headers: {sub: [X-User]}}\n", "claims_to_headers.sub: []interface {} value"},
	}
	s := loadSchema(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.from) {
				t.Fatalf("base config has no %q", tc.from)
			}
			text := strings.Replace(base, tc.from, tc.to, 1)
			errs := schemaErrors(s, yamlAny(t, text), "")
			if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tc.wantErr) }) {
				t.Errorf("schema errors = %q, want one containing %q", errs, tc.wantErr)
			}
			if _, err := Parse([]byte(text), ""); err == nil {
				t.Errorf("Parse() accepted a config the schema rejects:\n%s", text)
			}
		})
	}
}

// TestSchemaRequiredMatchesValidation pins the required-key table: each
// key the schema requires is one whose absence validation reports, at
// that key's path, so the two cannot drift apart.
func TestSchemaRequiredMatchesValidation(t *testing.T) {
	base := schemaBase(t)
	tests := []struct {
		name string
		at   []any // where the key lives in the base document
		path string
	}{
		{"tls-cert-file", []any{"server", "tls", "cert_file"}, "server.tls.cert_file"},
		{"tls-key-file", []any{"server", "tls", "key_file"}, "server.tls.key_file"},
		{"provider-name", []any{"providers", 0, "name"}, "providers[0].name"},
		{"provider-issuer", []any{"providers", 0, "issuer"}, "providers[0].issuer"},
		{"route-name", []any{"routes", 0, "name"}, "routes[0].name"},
		{"route-match", []any{"routes", 0, "match"}, "routes[0].match"},
		{"route-upstream", []any{"routes", 0, "upstream"}, "routes[0].upstream"},
		{"upstream-url", []any{"routes", 0, "upstream", "url"}, "routes[0].upstream.url"},
		{"claim-rule-claim", []any{"routes", 0, "auth", "require", "claims", 0, "claim"}, "routes[0].auth.require.claims[0].claim"},
		{"chain-key-file", []any{"audit", "chain", "key_file"}, "audit.chain.key_file"},
	}
	covered := 0
	for _, keys := range schemaRequired {
		covered += len(keys)
	}
	if covered != len(tests) {
		t.Fatalf("schemaRequired lists %d keys, this test checks %d; add the new ones here", covered, len(tests))
	}
	s := loadSchema(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := yamlAny(t, base)
			node := doc
			for _, step := range tc.at[:len(tc.at)-1] {
				switch step := step.(type) {
				case string:
					node = node.(map[string]any)[step]
				case int:
					node = node.([]any)[step]
				}
			}
			m := node.(map[string]any)
			last := tc.at[len(tc.at)-1].(string)
			if _, ok := m[last]; !ok {
				t.Fatalf("base config has no %s", tc.path)
			}
			delete(m, last)

			want := fmt.Sprintf("required key %q is missing", last)
			if errs := schemaErrors(s, doc, ""); !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, want) }) {
				t.Errorf("schema errors = %q, want %q", errs, want)
			}
			text, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(text, "")
			if err == nil {
				t.Fatalf("Parse() without %s succeeded; the schema must not require it", tc.path)
			}
			if ps := problemsOf(t, err); !slices.ContainsFunc(ps, func(p FieldError) bool { return strings.HasPrefix(p.Path, tc.path) }) {
				t.Errorf("Parse() problems = %v, want one at %s", ps, tc.path)
			}
		})
	}
}

// TestSchemaEnumsMatchValidation pins the fixed value sets: every value the
// schema offers loads, and validation refuses a value outside the set.
func TestSchemaEnumsMatchValidation(t *testing.T) {
	secret := make([]byte, 64) // long enough for HS512 (RFC 7518 §3.2)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SCHEMA_TEST_SECRET", "base64:"+base64.StdEncoding.EncodeToString(secret))
	dir := t.TempDir()
	cfgFor := func(field, value string) string {
		mode, cors, output, onErr, alg := "required", "check", "stdout", "block", "RS256"
		switch field {
		case "Auth.Mode":
			mode = value
		case "Auth.CORSPreflight":
			cors = value
		case "Audit.Output":
			output = value
		case "Audit.OnWriteError":
			onErr = value
		case "Provider.Algorithms", "StaticKey.Alg":
			alg = value
		}
		src := "jwks_url: https://idp.example.com/jwks.json"
		if strings.HasPrefix(alg, "HS") {
			src = "keys: [{kid: k1, alg: " + alg + ", secret_env: SCHEMA_TEST_SECRET}]"
		} else if field == "StaticKey.Alg" {
			src = "keys: [{kid: k1, alg: " + alg + ", public_key_file: missing.pem}]"
		}
		return fmt.Sprintf(`
providers:
  - {name: p, issuer: https://idp.example.com/, audiences: [api], algorithms: [%s], %s}
routes:
  - {name: r, match: {path: /r}, upstream: {url: "http://127.0.0.1:9001"}, auth: {mode: %q, cors_preflight: %q}}
audit: {output: %s, file: %s, on_write_error: %s}
`, alg, src, mode, cors, output, filepath.Join(dir, "audit.log"), onErr)
	}
	paths := map[string]string{
		"Auth.Mode": "routes[0].auth.mode", "Auth.CORSPreflight": "routes[0].auth.cors_preflight", "Audit.Output": "audit.output", "Audit.OnWriteError": "audit.on_write_error",
		"Provider.Algorithms": "providers[0].algorithms[0]", "StaticKey.Alg": "providers[0].keys[0].alg",
	}
	for field, values := range schemaEnums {
		path, ok := paths[field]
		if !ok {
			t.Fatalf("enum %s has no case in this test; add one", field)
		}
		t.Run(strings.ReplaceAll(strings.ToLower(field), ".", "-"), func(t *testing.T) {
			for _, v := range values {
				_, err := Parse([]byte(cfgFor(field, v)), dir)
				if field == "StaticKey.Alg" && !strings.HasPrefix(v, "HS") {
					// A public key file is needed to load; only the
					// alg itself must not be refused as unknown.
					if ps := problemsOf(t, err); slices.ContainsFunc(ps, func(p FieldError) bool {
						return p.Path == path && strings.Contains(p.Msg, "cannot be used with a public key")
					}) {
						t.Errorf("%s: %s refused as a public key algorithm", path, v)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %s: Parse() error = %v, want none", path, v, err)
				}
			}
			_, err := Parse([]byte(cfgFor(field, "bogus")), dir)
			if err == nil {
				t.Fatalf("%s: bogus: Parse() succeeded, want an error", path)
			}
			if ps := problemsOf(t, err); !hasPath(ps, path) {
				t.Errorf("%s: bogus: Parse() problems = %v, want one at %s", path, ps, path)
			}
		})
	}
}

// TestSchemaDefaultsAreLoadDefaults pins that the defaults an editor
// offers are the ones Load applies, and that descriptions name them in
// YAML terms rather than by Go constant.
func TestSchemaDefaultsAreLoadDefaults(t *testing.T) {
	s := loadSchema(t)
	prop := func(path ...string) map[string]any {
		n := s
		for _, p := range path {
			if p == "[]" {
				n = n["items"].(map[string]any)
				continue
			}
			n = n["properties"].(map[string]any)[p].(map[string]any)
		}
		return n
	}
	tests := []struct {
		name string
		path []string
		want any
	}{
		{"server-address", []string{"server", "address"}, DefaultAddress},
		{"admin-address", []string{"admin", "address"}, DefaultAdminAddress},
		{"shutdown-grace", []string{"server", "shutdown_grace"}, "20s"},
		{"max-header-bytes", []string{"server", "max_header_bytes"}, float64(DefaultMaxHeaderBytes)},
		{"refresh-interval", []string{"providers", "[]", "refresh_interval"}, "15m"},
		{"max-stale", []string{"providers", "[]", "max_stale"}, "24h"},
		{"algorithms", []string{"providers", "[]", "algorithms"}, []any{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}},
		{"token-sources", []string{"providers", "[]", "token_sources"}, []any{map[string]any{"header": "Authorization", "prefix": "Bearer "}}},
		{"auth-mode", []string{"routes", "[]", "auth", "mode"}, ModeRequired},
		{"upstream-timeout", []string{"routes", "[]", "upstream", "timeout"}, "30s"},
		{"audit-output", []string{"audit", "output"}, DefaultAuditOutput},
		{"rotate-max-backups", []string{"audit", "rotate", "max_backups"}, float64(DefaultAuditMaxBackups)},
		{"strip-token-false", []string{"routes", "[]", "auth", "forward", "strip_token"}, false},
		{"no-default-for-max-lifetime", []string{"providers", "[]", "max_lifetime"}, nil},
		{"no-default-inside-token-sources", []string{"providers", "[]", "token_sources", "[]", "header"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := prop(tc.path...)["default"]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("default of %s = %#v, want %#v", strings.Join(tc.path, "."), got, tc.want)
			}
		})
	}
	d := prop("providers", "[]", "algorithms")["description"].(string)
	if strings.Contains(d, "DefaultAlgorithms") || !strings.Contains(d, "Defaults to [RS256, RS384") {
		t.Errorf("algorithms description = %q, want the default list instead of the Go name", d)
	}
	d = prop("providers", "[]", "audiences")["description"].(string)
	if !strings.Contains(d, "skip_audience_check") {
		t.Errorf("audiences description = %q, want Go field names replaced by yaml keys", d)
	}
}
