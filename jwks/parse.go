package jwks

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/MicahParks/jwkset"
)

// maxKeysPerSet bounds how many JWKs of one set are examined. A real issuer
// publishes a handful; the rest of a (≤ 1 MiB) body is reported as skipped.
const maxKeysPerSet = 256

// parsedSet is the outcome of parsing one JWK Set: the usable keys in set
// order, and every key that was skipped with the reason.
type parsedSet struct {
	entries []*entry
	skipped []SkippedKey
	// private counts JWKs that carried private members (d, p, q, ...);
	// only their public parts are used.
	private int
}

// parseSet parses a JWK Set from a remote endpoint or a file. The body must
// be a JSON object with a "keys" array, or the whole set is an error. Each
// JWK is then checked on its own; one that jwtgate must not or cannot use
// is skipped and reported, never fatal to the rest. Symmetric (oct) keys are
// always skipped: a JWK Set never supplies an HMAC secret.
func parseSet(body []byte) (parsedSet, error) {
	var doc struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return parsedSet{}, fmt.Errorf("%w: %v", ErrInvalidJWKS, err)
	}
	if doc.Keys == nil {
		return parsedSet{}, fmt.Errorf(`%w: no "keys" array`, ErrInvalidJWKS)
	}
	raws := *doc.Keys
	var out parsedSet
	seen := make(map[string]bool, len(raws))
	for i, raw := range raws {
		if i == maxKeysPerSet {
			out.skipped = append(out.skipped, SkippedKey{
				Reason: fmt.Sprintf("%d more keys beyond the limit of %d per set", len(raws)-maxKeysPerSet, maxKeysPerSet),
			})
			break
		}
		e, kid, hadPrivate, err := parseJWK(raw)
		if hadPrivate {
			out.private++
		}
		if err != nil {
			out.skipped = append(out.skipped, SkippedKey{KID: oneLine(kid), Reason: err.Error()})
			continue
		}
		if kid != "" {
			if seen[kid] {
				out.skipped = append(out.skipped, SkippedKey{KID: oneLine(kid), Reason: "duplicate kid; the first key with this kid is kept"})
				continue
			}
			seen[kid] = true
		}
		out.entries = append(out.entries, e)
	}
	return out, nil
}

// parseJWK parses and checks one JWK from a set. It returns the kid (when
// readable) for reporting, and whether private members were present.
func parseJWK(raw json.RawMessage) (e *entry, kid string, hadPrivate bool, err error) {
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, "", false, fmt.Errorf("invalid jwk json: %v", err)
	}
	kid = m.KID
	hadPrivate = m.D != "" || m.P != "" || m.Q != "" || m.DP != "" || m.DQ != "" || m.QI != "" || len(m.OTH) > 0

	switch m.KTY {
	case jwkset.KtyOct:
		return nil, kid, false, errors.New("symmetric (oct) key in a jwk set is never used")
	case jwkset.KtyRSA:
	case jwkset.KtyEC:
		switch m.CRV {
		case jwkset.CrvP256, jwkset.CrvP384, jwkset.CrvP521:
		default:
			return nil, kid, hadPrivate, fmt.Errorf("unsupported crv %q for kty EC", oneLine(string(m.CRV)))
		}
	case jwkset.KtyOKP:
		if m.CRV != jwkset.CrvEd25519 {
			return nil, kid, hadPrivate, fmt.Errorf("unsupported crv %q for kty OKP", oneLine(string(m.CRV)))
		}
	default:
		return nil, kid, hadPrivate, fmt.Errorf("unsupported kty %q", oneLine(string(m.KTY)))
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, kid, hadPrivate, fmt.Errorf("use %q is not sig", oneLine(string(m.USE)))
	}
	if len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify) {
		return nil, kid, hadPrivate, errors.New(`key_ops does not include "verify"`)
	}

	// Use only the public parts, whatever the set publishes.
	m.D, m.P, m.Q, m.DP, m.DQ, m.QI, m.OTH, m.K = "", "", "", "", "", "", nil, ""

	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return nil, kid, hadPrivate, fmt.Errorf("invalid key: %s", oneLine(err.Error()))
	}
	e, err = newEntry(jwk.Key(), kid, string(m.ALG), string(m.USE), false)
	if err != nil {
		return nil, kid, hadPrivate, err
	}
	return e, kid, hadPrivate, nil
}

// oneLine flattens multi-line error text (jwkset joins errors with "\n")
// and bounds its length, for reasons that end up in logs and events.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", "; ")
	const max = 200
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
