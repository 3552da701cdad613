package tokentool

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cmdFunc is the shape of Keygen, Mint and Inspect.
type cmdFunc func(args []string, stdout, stderr io.Writer) int

// result is one command run.
type result struct {
	code           int
	stdout, stderr string
}

// run calls fn with args and captures its output.
func run(fn cmdFunc, args ...string) result {
	var out, errb bytes.Buffer
	code := fn(args, &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// testKeys are real keys from crypto/rand, one per family. RSA uses 2048
// bits to keep the tests fast.
type testKeys struct {
	rsa  *rsa.PrivateKey
	p256 *ecdsa.PrivateKey
	p384 *ecdsa.PrivateKey
	p521 *ecdsa.PrivateKey
	ed   ed25519.PrivateKey
}

// newTestKeys generates a fresh set of keys.
func newTestKeys(t testing.TB) testKeys {
	t.Helper()
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec := func(c elliptic.Curve) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{rsa: r, p256: ec(elliptic.P256()), p384: ec(elliptic.P384()), p521: ec(elliptic.P521()), ed: ed}
}

// pkcs8PEM encodes key as a "PRIVATE KEY" PEM block.
func pkcs8PEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// writeFile writes data under dir with mode 0600 and returns the path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenFrom returns the single token line mint printed, failing the test
// if stdout holds anything else.
func tokenFrom(t testing.TB, r result) string {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("mint exit %d, stderr: %s", r.code, r.stderr)
	}
	tok, ok := strings.CutSuffix(r.stdout, "\n")
	if !ok || strings.ContainsAny(tok, "\n \t") || strings.Count(tok, ".") != 2 {
		t.Fatalf("mint stdout = %q, want exactly one token and a newline", r.stdout)
	}
	return tok
}
