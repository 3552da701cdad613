package config

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"reflect"
	"strings"
	"testing"
)

const examplePath = "../gateway.example.yaml"

// TestExampleConfigIsValid pins that gateway.example.yaml, the documented
// starting point, loads without errors or warnings when the one
// environment variable it names is set.
func TestExampleConfigIsValid(t *testing.T) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ORDERS_HMAC_SECRET", "base64:"+base64.StdEncoding.EncodeToString(secret))
	cfg, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(%s) error = %v, want none", examplePath, err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("Load(%s) warnings = %v, want none", examplePath, cfg.Warnings)
	}
	if p := cfg.ProviderByName("batch"); p == nil || string(p.Keys[0].Secret()) != string(secret) {
		t.Errorf("provider batch secret not resolved from ORDERS_HMAC_SECRET")
	}

	t.Setenv("ORDERS_HMAC_SECRET", "")
	os.Unsetenv("ORDERS_HMAC_SECRET")
	if _, err := Load(examplePath); err == nil {
		t.Errorf("Load(%s) without ORDERS_HMAC_SECRET succeeded, want an error", examplePath)
	}
}

// TestExampleDocumentsEveryKey pins that every YAML key of every config
// type appears in gateway.example.yaml on a line with a comment, so the
// example stays the complete reference when a field is added.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	keys := map[string]bool{}
	collectYAMLKeys(reflect.TypeFor[Config](), keys, map[reflect.Type]bool{})
	if len(keys) < 60 {
		t.Fatalf("found only %d yaml keys by reflection, want every key", len(keys))
	}
	// A key is documented when a line holding a comment has "key:" preceded
	// by the start of the line, a space, "{", ",", "#" or "-".
	hasKey := func(line, key string) bool {
		for i := 0; ; {
			j := strings.Index(line[i:], key+":")
			if j < 0 {
				return false
			}
			at := i + j
			if at == 0 || strings.ContainsRune(" \t{,#-", rune(line[at-1])) {
				return true
			}
			i = at + 1
		}
	}
	for key := range keys {
		documented := false
		for _, line := range lines {
			if strings.Contains(line, "#") && hasKey(line, key) {
				documented = true
				break
			}
		}
		if !documented {
			t.Errorf("key %q does not appear with a comment in %s", key, examplePath)
		}
	}
}

// collectYAMLKeys adds the yaml key of every field reachable from t.
func collectYAMLKeys(t reflect.Type, keys map[string]bool, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || t.PkgPath() != reflect.TypeFor[Config]().PkgPath() {
		return
	}
	seen[t] = true
	for name, ft := range yamlFields(t) {
		keys[name] = true
		collectYAMLKeys(ft, keys, seen)
	}
}
