package jwks

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseSet pins the JWK Set parser against hostile bodies (a JWKS is
// attacker-reachable input when an IdP or the network is compromised): it
// never panics, and whatever it accepts is safe to verify with: no
// symmetric key, no HMAC alg, no RSA key under 2048 bits, unique kids, a
// thumbprint for every key, and at most maxKeysPerSet keys examined.
func FuzzParseSet(f *testing.F) {
	for _, name := range []string{"mixed.json", "rfc7638.json", "empty.json", "malformed.json"} {
		b, err := os.ReadFile(filepath.Join(fixtures, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA","alg":"HS256"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parseSet(body)
		if err != nil {
			if len(got.entries) != 0 {
				t.Fatalf("parseSet() returned keys with error %v", err)
			}
			return
		}
		if len(got.entries)+len(got.skipped) > maxKeysPerSet+1 {
			t.Fatalf("parseSet() reported %d keys, limit %d", len(got.entries)+len(got.skipped), maxKeysPerSet)
		}
		seen := map[string]bool{}
		for _, e := range got.entries {
			if _, ok := e.key.([]byte); ok || e.allowed&algsHMAC != 0 || e.info.Kty == "oct" {
				t.Fatalf("parseSet() accepted a symmetric key: %+v", e.info)
			}
			if e.info.Kty == "RSA" && e.info.Bits < minRSABits {
				t.Fatalf("parseSet() accepted a %d-bit RSA key", e.info.Bits)
			}
			if e.allowed == 0 || len(e.info.Thumbprint) != 43 {
				t.Fatalf("parseSet() entry %+v allowed %b", e.info, e.allowed)
			}
			if e.info.KID != "" {
				if seen[e.info.KID] {
					t.Fatalf("parseSet() kept duplicate kid %q", e.info.KID)
				}
				seen[e.info.KID] = true
			}
		}
	})
}
