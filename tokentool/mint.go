package tokentool

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// defaultTokenLifetime is the exp added to claims that have none.
const defaultTokenLifetime = time.Hour

const mintAbout = `
Sign a test token and print ONLY the token and a newline on stdout, so scripts
can do TOKEN=$(jwtgate token mint ...). Messages go to stderr.

Key (exactly one):
  --key FILE          PEM private key (PKCS#8, PKCS#1 or SEC1 EC), or a JWK /
                      JWK Set JSON file with private members (--kid picks one
                      key of a set that holds several)
  --secret-env VAR    HMAC secret from an environment variable
  --secret-file FILE  HMAC secret from a file
Secrets are used as their bytes as they are, or decoded as base64 when they
start with "base64:"; at least 32 bytes (as for the gateway's static keys).

The alg defaults to the key's: RSA → RS256, P-256 → ES256, P-384 → ES384,
P-521 → ES512, Ed25519 → EdDSA, HMAC → HS256, or the JWK's own alg. The kid
header defaults to the JWK's kid; --kid sets it (PEM keys have none).

Claims are a JSON object (or @FILE to read it from a file); numbers are kept
exactly as written. iat is added (now) when absent, and exp = iat + --exp
when absent (--exp 0 adds none; a negative --exp mints an expired token).

Examples:
  jwtgate token mint --key keys/k1.key.pem --kid k1 \
      --claims '{"iss":"https://idp.example.com/","aud":"orders-api","sub":"alice","scope":"orders:read"}'
  JWTGATE_HMAC=base64:... jwtgate token mint --secret-env JWTGATE_HMAC --kid h1 --claims '{"sub":"svc"}'`

// Mint implements `jwtgate token mint`: it signs the --claims object with
// the key from --key (PEM or JWK) or the HMAC secret from --secret-env /
// --secret-file, using golang-jwt, and prints only the token and a newline
// on stdout. It returns 0 on success, 1 on a reported failure and 2 on bad
// usage.
func Mint(args []string, stdout, stderr io.Writer) int {
	return mint(args, mintEnv{stdout: stdout, stderr: stderr, now: time.Now, lookupEnv: os.LookupEnv})
}

// mintEnv is what mint takes from the process, injectable for tests.
type mintEnv struct {
	stdout, stderr io.Writer
	now            func() time.Time
	lookupEnv      func(string) (string, bool)
}

func mint(args []string, env mintEnv) int {
	c := newCommand("jwtgate token mint", "jwtgate token mint (--key FILE | --secret-env VAR | --secret-file FILE) [--claims JSON] [flags]", mintAbout, env.stdout, env.stderr)
	keyFile := c.fs.String("key", "", "private key `file`: PEM, JWK or JWK Set")
	secretEnv := c.fs.String("secret-env", "", "environment `variable` holding an HMAC secret")
	secretFile := c.fs.String("secret-file", "", "`file` holding an HMAC secret")
	claimsArg := c.fs.String("claims", "{}", "claims as a JSON `object`, or @FILE")
	algName := c.fs.String("alg", "", "signing `algorithm` (default: from the key): "+algNames(func(algInfo) bool { return true }))
	kid := c.fs.String("kid", "", "kid header (default: the JWK's kid); selects the key of a multi-key JWK Set")
	typ := c.fs.String("typ", "JWT", `typ header, e.g. at+jwt (RFC 9068); "" omits it`)
	lifetime := c.fs.Duration("exp", defaultTokenLifetime, "lifetime added as exp = iat + `duration` when the claims have no exp; 0 adds none")
	headerArg := c.fs.String("header", "", "extra header members as a JSON `object` (merged last; alg cannot be set)")
	positional, code, done := c.parse(args)
	if done {
		return code
	}
	if len(positional) > 0 {
		return c.usageErr("unexpected argument (claims go in --claims)")
	}
	sources := 0
	for _, s := range []string{*keyFile, *secretEnv, *secretFile} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return c.usageErr("give exactly one of --key, --secret-env and --secret-file")
	}
	var alg algInfo
	if *algName != "" {
		var ok bool
		if alg, ok = lookupAlg(*algName); !ok {
			return c.usageErr("--alg %q is not supported; use one of %s", *algName, algNames(func(algInfo) bool { return true }))
		}
	}
	claims, err := parseClaims(*claimsArg)
	if err != nil {
		return c.usageErr("--claims: %v", err)
	}
	var extraHeader map[string]any
	if *headerArg != "" {
		if extraHeader, err = parseJSONObject(*headerArg); err != nil {
			return c.usageErr("--header: %v", err)
		}
		if _, ok := extraHeader["alg"]; ok {
			return c.usageErr("--header cannot set alg; use --alg")
		}
	}

	var key *signingKey
	if *keyFile != "" {
		key, err = loadKeyFile(*keyFile, *kid)
	} else {
		key, err = loadSecret(*secretEnv, *secretFile, env.lookupEnv)
	}
	if err != nil {
		return c.fail(err)
	}
	alg, err = resolveAlg(alg, key)
	if err != nil {
		return c.fail(err)
	}
	if rk, ok := key.key.(*rsa.PrivateKey); ok && rk.N.BitLen() < minRSABits {
		fmt.Fprintf(env.stderr, "warning: the RSA key has %d bits; jwtgate never uses RSA keys under %d bits\n", rk.N.BitLen(), minRSABits)
	}
	if err := addTimeClaims(claims, env.now(), *lifetime); err != nil {
		return c.fail(err)
	}

	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg.name), claims)
	delete(tok.Header, "typ")
	if *typ != "" {
		tok.Header["typ"] = *typ
	}
	headerKID := key.kid
	if *kid != "" {
		headerKID = *kid
	}
	if headerKID != "" {
		tok.Header["kid"] = headerKID
	}
	for name, v := range extraHeader {
		tok.Header[name] = v
	}
	signed, err := tok.SignedString(key.key)
	if err != nil {
		return c.fail(fmt.Errorf("sign %s: %w", alg.name, err))
	}
	if _, hasKID := tok.Header["kid"]; !hasKID {
		fmt.Fprintln(env.stderr, "note: the token has no kid header; jwtgate accepts that only from a provider with exactly one key (set --kid)")
	}
	fmt.Fprintln(env.stdout, signed)
	return exitOK
}

// resolveAlg checks the requested alg against the key, or picks the key's
// own: the JWK's alg when it has one, else the default for its type.
func resolveAlg(requested algInfo, key *signingKey) (algInfo, error) {
	var jwkAlg algInfo
	if key.alg != "" {
		a, ok := lookupAlg(key.alg)
		if !ok {
			return algInfo{}, fmt.Errorf("the JWK's alg %q is not a supported signing algorithm", key.alg)
		}
		jwkAlg = a
	}
	alg := requested
	switch {
	case alg.name == "" && jwkAlg.name != "":
		alg = jwkAlg
	case alg.name == "":
		a, err := defaultAlg(key)
		if err != nil {
			return algInfo{}, err
		}
		alg = a
	case jwkAlg.name != "" && jwkAlg.name != alg.name:
		return algInfo{}, fmt.Errorf("--alg %s conflicts with the JWK's alg %s (a verifier rejects the mismatch)", alg.name, jwkAlg.name)
	}
	if err := checkAlgFitsKey(alg, key); err != nil {
		return algInfo{}, err
	}
	return alg, nil
}

// parseClaims decodes the --claims value (a JSON object, or @FILE) with
// UseNumber, so numbers such as large ids survive byte for byte.
func parseClaims(arg string) (jwt.MapClaims, error) {
	if name, ok := strings.CutPrefix(arg, "@"); ok {
		b, err := readLimited(name)
		if err != nil {
			return nil, err
		}
		arg = string(b)
	}
	m, err := parseJSONObject(arg)
	if err != nil {
		return nil, err
	}
	return jwt.MapClaims(m), nil
}

// errNotObject is returned by parseJSONObject for valid JSON that is not an
// object.
var errNotObject = errors.New("not a JSON object")

// parseJSONObject decodes exactly one JSON object, numbers as json.Number.
func parseJSONObject(s string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: data after the object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w (want {...})", errNotObject)
	}
	return m, nil
}

// addTimeClaims sets iat to now when absent, and exp to iat + lifetime when
// absent and lifetime is not 0.
func addTimeClaims(claims jwt.MapClaims, now time.Time, lifetime time.Duration) error {
	if _, ok := claims["iat"]; !ok {
		// json.Number, like every decoded number: MapClaims reads
		// NumericDates from json.Number and float64 only.
		claims["iat"] = json.Number(strconv.FormatInt(now.Unix(), 10))
	}
	if _, ok := claims["exp"]; ok || lifetime == 0 {
		return nil
	}
	iat, err := claims.GetIssuedAt()
	if err == nil && iat == nil {
		err = jwt.ErrInvalidType
	}
	if err != nil {
		return fmt.Errorf("claims: cannot add exp to iat %v: %w", claims["iat"], err)
	}
	claims["exp"] = json.Number(strconv.FormatInt(iat.Add(lifetime).Unix(), 10))
	return nil
}
