package proxy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/jwtgate/jwtgate/config"
)

// TestReloadPicksUpChangedJWKSFile: a jwks_file provider whose file
// changed gets a new key source on reload even though its config did not,
// and an unchanged one keeps its key source.
func TestReloadPicksUpChangedJWKSFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	pc := &config.Provider{Name: "f", Issuer: "https://f/", JWKSFile: p}
	before := fingerprint(pc)
	if again := fingerprint(pc); again != before {
		t.Fatalf("fingerprint not stable: %s vs %s", before, again)
	}
	if err := os.WriteFile(p, []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"new"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if after := fingerprint(pc); after == before {
		t.Error("fingerprint unchanged after the jwks_file changed: a reload would keep the old keys")
	}
}
