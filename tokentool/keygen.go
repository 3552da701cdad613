package tokentool

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/MicahParks/jwkset"
)

// RSA key sizes keygen accepts. 3072 bits is the default: NIST SP 800-57
// rates it good past 2030, where 2048 is the floor jwtgate accepts at all.
const (
	defaultRSABits = 3072
	minRSABits     = 2048
	maxRSABits     = 4096
)

// jwksFileName is the JWK Set keygen writes or updates in the output dir.
const jwksFileName = "jwks.json"

// kidPattern restricts kids to characters safe in a file name (kid is part
// of DIR/<kid>.key.pem) and in a JSON string, so a kid cannot climb out of
// DIR ("../x") or smuggle control characters. RFC 7638 thumbprints fit.
var kidPattern = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

// errExists is wrapped when keygen refuses to overwrite a key file.
var errExists = errors.New("already exists")

const keygenAbout = `
Generate a signing key pair for a service that signs its own tokens, and the
public JWK Set a jwtgate provider verifies them with. Writes:

  DIR/<kid>.key.pem   private key, PKCS#8 PEM, mode 0600 (never overwritten without --force)
  DIR/<kid>.pub.pem   public key, PKIX PEM
  DIR/jwks.json       JWK Set with the public key only; an existing set keeps its
                      other keys and gets this kid added or replaced

DIR is created (mode 0700) if missing. Algorithms: RS256 RS384 RS512 PS256
PS384 PS512 (RSA, --bits, default 3072), ES256 ES384 ES512 (P-256, P-384,
P-521), EdDSA (Ed25519). The kid defaults to the key's RFC 7638 thumbprint.

Examples:
  jwtgate token keygen --alg ES256 --kid orders-2026 --out keys/
  jwtgate token keygen --alg RS256 --bits 4096 --out keys/`

// Keygen implements `jwtgate token keygen`: it generates a key pair for
// --alg, writes DIR/<kid>.key.pem (mode 0600, created exclusively unless
// --force), DIR/<kid>.pub.pem and DIR/jwks.json (public members only), and
// prints the paths and how to point a provider at the JWK Set. It returns
// 0 on success, 1 on a reported failure and 2 on bad usage.
func Keygen(args []string, stdout, stderr io.Writer) int {
	c := newCommand("jwtgate token keygen", "jwtgate token keygen [--alg ALG] [--kid KID] --out DIR [--bits N] [--force]", keygenAbout, stdout, stderr)
	algName := c.fs.String("alg", "ES256", "signing `algorithm`: "+algNames(asymmetric))
	kid := c.fs.String("kid", "", "key id: names the files and the JWK (default: RFC 7638 thumbprint)")
	out := c.fs.String("out", "", "output `directory` (required)")
	bits := c.fs.Int("bits", defaultRSABits, fmt.Sprintf("RSA key size in bits, %d..%d (RSA algorithms only)", minRSABits, maxRSABits))
	force := c.fs.Bool("force", false, "overwrite existing key files for this kid")
	positional, code, done := c.parse(args)
	if done {
		return code
	}
	if len(positional) > 0 {
		return c.usageErr("unexpected argument %q", positional[0])
	}
	alg, ok := lookupAlg(*algName)
	if !ok || !asymmetric(alg) {
		return c.usageErr("--alg %q is not supported; use one of %s", *algName, algNames(asymmetric))
	}
	if *out == "" {
		return c.usageErr("--out DIR is required")
	}
	if c.isSet("bits") && alg.kind != kindRSA {
		return c.usageErr("--bits applies to RSA algorithms only, not %s", alg.name)
	}
	if *bits < minRSABits || *bits > maxRSABits {
		return c.usageErr("--bits %d is out of range %d..%d", *bits, minRSABits, maxRSABits)
	}
	if *kid != "" && !kidPattern.MatchString(*kid) {
		return c.usageErr("--kid %q: use 1-128 letters, digits, '.', '_' or '-', not starting with '.'", *kid)
	}

	res, err := keygen(keygenRequest{alg: alg, kid: *kid, dir: *out, bits: *bits, force: *force}, stderr)
	if err != nil {
		return c.fail(err)
	}
	absJWKS, err := filepath.Abs(res.jwksPath)
	if err != nil {
		absJWKS = res.jwksPath
	}
	fmt.Fprintf(stdout, "private key: %s (PKCS#8, mode 0600: keep it secret)\n", res.keyPath)
	fmt.Fprintf(stdout, "public key:  %s\n", res.pubPath)
	fmt.Fprintf(stdout, "JWK Set:     %s (kid %q, alg %s; %d key(s) in the set)\n", res.jwksPath, res.kid, alg.name, res.jwksKeys)
	fmt.Fprintf(stdout, "hint: point a provider at it with `jwks_file: %s` and `algorithms: [%s]` (or serve the file and use `jwks_url:`)\n", absJWKS, alg.name)
	fmt.Fprintf(stdout, "hint: mint a test token with `jwtgate token mint --key %s --kid %s --claims '{\"sub\":\"test\"}'`\n", res.keyPath, res.kid)
	return exitOK
}

// keygenRequest is a validated keygen invocation.
type keygenRequest struct {
	alg   algInfo
	kid   string // empty: the RFC 7638 thumbprint
	dir   string
	bits  int
	force bool
}

// keygenResult says what keygen wrote.
type keygenResult struct {
	kid                        string
	keyPath, pubPath, jwksPath string
	jwksKeys                   int // keys in the JWK Set after the update
}

// keygen generates the key pair and writes the three files. Warnings (such
// as private members found in an existing jwks.json) go to warn.
func keygen(req keygenRequest, warn io.Writer) (keygenResult, error) {
	if err := os.MkdirAll(req.dir, 0o700); err != nil {
		return keygenResult{}, fmt.Errorf("create output directory: %w", err)
	}
	jwksPath := filepath.Join(req.dir, jwksFileName)
	// Read the existing set first so a broken file fails before any key
	// is generated or written.
	set, err := readJWKSFile(jwksPath, warn)
	if err != nil {
		return keygenResult{}, err
	}

	if req.kid != "" && !req.force {
		// Refuse before spending seconds on an RSA key.
		if err := refuseExisting(req.dir, req.kid); err != nil {
			return keygenResult{}, err
		}
	}
	priv, err := generateKey(req.alg, req.bits)
	if err != nil {
		return keygenResult{}, err
	}
	pubJWK, err := publicJWK(priv.Public(), req.alg, req.kid)
	if err != nil {
		return keygenResult{}, err
	}
	kid := pubJWK.KID

	res := keygenResult{
		kid:      kid,
		keyPath:  filepath.Join(req.dir, kid+".key.pem"),
		pubPath:  filepath.Join(req.dir, kid+".pub.pem"),
		jwksPath: jwksPath,
	}
	if !req.force {
		if err := refuseExisting(req.dir, kid); err != nil {
			return keygenResult{}, err
		}
	}

	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return keygenResult{}, fmt.Errorf("encode private key: %w", err)
	}
	if err := writeNewFile(res.keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600, req.force); err != nil {
		return keygenResult{}, fmt.Errorf("write private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return keygenResult{}, fmt.Errorf("encode public key: %w", err)
	}
	if err := writeNewFile(res.pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644, req.force); err != nil {
		return keygenResult{}, fmt.Errorf("write public key: %w", err)
	}

	rawJWK, err := json.Marshal(pubJWK)
	if err != nil {
		return keygenResult{}, fmt.Errorf("encode JWK: %w", err)
	}
	set.put(kid, rawJWK)
	if err := set.write(jwksPath); err != nil {
		return keygenResult{}, err
	}
	res.jwksKeys = len(set.keys)
	return res, nil
}

// refuseExisting fails when a key file for kid is already in dir.
func refuseExisting(dir, kid string) error {
	for _, name := range []string{kid + ".key.pem", kid + ".pub.pem"} {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s: %w; refusing to overwrite a key (use --force, or another --kid)", p, errExists)
		}
	}
	return nil
}

// generateKey makes a fresh key for alg from crypto/rand.
func generateKey(alg algInfo, bits int) (crypto.Signer, error) {
	switch alg.kind {
	case kindRSA:
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, fmt.Errorf("generate RSA-%d key: %w", bits, err)
		}
		return k, nil
	case kindEC:
		k, err := ecdsa.GenerateKey(alg.curve, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate EC %s key: %w", alg.curve.Params().Name, err)
		}
		return k, nil
	case kindEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate Ed25519 key: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: keygen cannot make %s keys", errUnsupportedKey, alg.kind)
}

// publicJWK builds the public JWK (kty, kid, use "sig", alg and the public
// members) with jwkset. An empty kid becomes the RFC 7638 thumbprint. It
// fails if any private member would be written.
func publicJWK(pub crypto.PublicKey, alg algInfo, kid string) (jwkset.JWKMarshal, error) {
	meta := jwkset.JWKMetadataOptions{ALG: jwkset.ALG(alg.name), KID: kid, USE: jwkset.UseSig}
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: meta})
	if err != nil {
		return jwkset.JWKMarshal{}, fmt.Errorf("build JWK: %w", err)
	}
	m := j.Marshal()
	if m.D != "" || m.P != "" || m.Q != "" || m.DP != "" || m.DQ != "" || m.QI != "" || m.K != "" || len(m.OTH) > 0 {
		return jwkset.JWKMarshal{}, errors.New("build JWK: private members present in a public JWK")
	}
	if kid == "" {
		tp, err := thumbprint(m)
		if err != nil {
			return jwkset.JWKMarshal{}, err
		}
		meta.KID = tp
		if j, err = jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: meta}); err != nil {
			return jwkset.JWKMarshal{}, fmt.Errorf("build JWK: %w", err)
		}
		m = j.Marshal()
	}
	return m, nil
}

// thumbprint is the RFC 7638 JWK thumbprint: SHA-256 over the required
// public members in lexicographic order, base64url without padding.
func thumbprint(m jwkset.JWKMarshal) (string, error) {
	var members map[string]string
	switch m.KTY {
	case jwkset.KtyRSA:
		members = map[string]string{"e": m.E, "kty": string(m.KTY), "n": m.N}
	case jwkset.KtyEC:
		members = map[string]string{"crv": string(m.CRV), "kty": string(m.KTY), "x": m.X, "y": m.Y}
	case jwkset.KtyOKP:
		members = map[string]string{"crv": string(m.CRV), "kty": string(m.KTY), "x": m.X}
	default:
		return "", fmt.Errorf("thumbprint: %w %q", errUnsupportedKey, m.KTY)
	}
	// encoding/json writes map keys sorted and without whitespace, which
	// is RFC 7638's canonical form for these ASCII members.
	b, err := json.Marshal(members)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// writeNewFile creates path with O_EXCL and mode perm. With replace, an
// existing file is removed first, so it never keeps a looser mode than perm.
// A partly written file is removed.
func writeNewFile(path string, data []byte, perm fs.FileMode, replace bool) error {
	if replace {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w (use --force)", path, errExists)
		}
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// jwksFile is a JWK Set file being updated: its other top-level members and
// keys are kept as they were.
type jwksFile struct {
	members map[string]json.RawMessage
	keys    []json.RawMessage
}

// readJWKSFile reads path, or returns an empty set when it does not exist.
// A file that is not a JWK Set is an error, so it is never overwritten.
func readJWKSFile(path string, warn io.Writer) (*jwksFile, error) {
	set := &jwksFile{members: map[string]json.RawMessage{}}
	b, err := readLimited(path)
	if errors.Is(err, fs.ErrNotExist) {
		return set, nil
	}
	if err != nil {
		return nil, fmt.Errorf("existing JWK Set: %w", err)
	}
	if err := json.Unmarshal(b, &set.members); err != nil {
		return nil, fmt.Errorf("existing JWK Set %s is not a JSON object (fix or move it): %w", path, err)
	}
	keysRaw, ok := set.members["keys"]
	if !ok {
		return nil, fmt.Errorf(`existing JWK Set %s has no "keys" member (fix or move it)`, path)
	}
	if err := json.Unmarshal(keysRaw, &set.keys); err != nil {
		return nil, fmt.Errorf(`existing JWK Set %s: "keys" is not an array (fix or move it): %w`, path, err)
	}
	for i, k := range set.keys {
		var probe struct {
			KID string          `json:"kid"`
			D   json.RawMessage `json:"d"`
			K   json.RawMessage `json:"k"`
		}
		if err := json.Unmarshal(k, &probe); err != nil {
			return nil, fmt.Errorf("existing JWK Set %s: key %d is not a JSON object (fix or move it): %w", path, i, err)
		}
		if probe.D != nil || probe.K != nil {
			fmt.Fprintf(warn, "warning: %s: key %d (kid %q) has private members; a published JWK Set must hold public keys only\n", path, i, probe.KID)
		}
	}
	return set, nil
}

// put replaces every key whose kid is kid with raw (in the first one's
// place), or appends raw when there is none.
func (s *jwksFile) put(kid string, raw json.RawMessage) {
	out := s.keys[:0:0]
	placed := false
	for _, k := range s.keys {
		var probe struct {
			KID string `json:"kid"`
		}
		if json.Unmarshal(k, &probe) == nil && probe.KID == kid {
			if !placed {
				out = append(out, raw)
				placed = true
			}
			continue
		}
		out = append(out, k)
	}
	if !placed {
		out = append(out, raw)
	}
	s.keys = out
}

// write stores the set at path atomically (temporary file, then rename), so
// a gateway reading jwks_file never sees half a file.
func (s *jwksFile) write(path string) error {
	keys, err := json.Marshal(s.keys)
	if err != nil {
		return fmt.Errorf("encode JWK Set: %w", err)
	}
	s.members["keys"] = keys
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s.members); err != nil {
		return fmt.Errorf("encode JWK Set: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+jwksFileName+".*")
	if err != nil {
		return fmt.Errorf("write JWK Set: %w", err)
	}
	_, werr := tmp.Write(buf.Bytes())
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write JWK Set: %w", err)
	}
	// CreateTemp makes 0600 files; a JWK Set is public.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write JWK Set: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write JWK Set: %w", err)
	}
	return nil
}
