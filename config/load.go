package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes, resolves and validates the config file at path.
// Relative file paths in it (secret_file, public_key_file, jwks_file, tls
// files, audit.file, audit.chain.key_file) are resolved against the file's
// directory. A missing file gives an error wrapping ErrNotFound; a file with
// problems gives an *Error listing all of them.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("config %s: %w", path, ErrNotFound)
		}
		return nil, fmt.Errorf("config %s: read: %w", path, err)
	}
	cfg, err := Parse(data, filepath.Dir(path))
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = path
		}
		return nil, err
	}
	cfg.Path = path
	return cfg, nil
}

// Parse decodes, resolves and validates a config from data. Relative file
// paths in it are resolved against dir (the working directory when dir is
// empty). Resolution reads HMAC secrets from the environment or files, PEM
// public keys and the audit chain key; nothing else is read. Problems are
// returned as an *Error: first all YAML problems (syntax, unknown keys, types),
// or, when the YAML decodes, all semantic errors, each naming its YAML path,
// in document order. Warnings go to Config.Warnings.
func Parse(data []byte, dir string) (*Config, error) {
	pos, problems := decodeTree(data)
	if len(problems) > 0 {
		sortByDocument(problems, pos)
		return nil, &Error{Problems: problems}
	}

	cfg := new(Config)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		// The tree walk accepts only what decodes; this is a safety net.
		return nil, &Error{Problems: yamlErrorProblems(err)}
	}
	cfg.applyDefaults()
	cfg.normalize()
	cfg.resolvePaths(dir)

	v := &validator{cfg: cfg, apply: true, lookupEnv: os.LookupEnv}
	v.run()
	var errs, warns []FieldError
	for _, p := range v.problems {
		if p.Warning {
			warns = append(warns, p)
		} else {
			errs = append(errs, p)
		}
	}
	sortByDocument(errs, pos)
	sortByDocument(warns, pos)
	if len(errs) > 0 {
		return nil, &Error{Problems: errs, Warnings: warns}
	}
	cfg.Warnings = warns
	cfg.Version = versionOf(data)
	return cfg, nil
}

// versionOf is the config_version of a file: the first 16 lowercase hex
// digits of the SHA-256 of its bytes (SPEC §5).
func versionOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:16]
}

// decodeTree parses data into a node tree and checks it against the config
// types: exactly one non-empty document, a mapping at the top, no unknown
// or duplicate keys, every value of the right type.
func decodeTree(data []byte) (map[string]position, []FieldError) {
	c := newChecker(len(data))
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c.pos, []FieldError{{Msg: "the file is empty; start from gateway.example.yaml"}}
		}
		return c.pos, yamlErrorProblems(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return c.pos, yamlErrorProblems(err)
	default:
		line := next.Line
		if len(next.Content) > 0 {
			line = next.Content[0].Line
		}
		return c.pos, []FieldError{{Msg: fmt.Sprintf("line %d: a second YAML document starts here; the config must be a single document (remove the extra \"---\")", line)}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind == yaml.DocumentNode || (root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null") {
		return c.pos, []FieldError{{Msg: "the document is empty; start from gateway.example.yaml"}}
	}
	if root.Kind == yaml.AliasNode && root.Alias != nil {
		root = root.Alias
	}
	if root.Kind != yaml.MappingNode {
		return c.pos, []FieldError{{Msg: fmt.Sprintf("line %d: the document is %s; it must be a mapping with the keys server, admin, providers, routes and audit", root.Line, describeNode(root))}}
	}
	c.walk(root, reflect.TypeFor[Config](), "")
	return c.pos, c.problems
}

// yamlErrorProblems turns a yaml package error into problems without paths.
func yamlErrorProblems(err error) []FieldError {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		ps := make([]FieldError, 0, len(te.Errors))
		for _, e := range te.Errors {
			ps = append(ps, FieldError{Msg: e})
		}
		return ps
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return []FieldError{{Msg: "invalid YAML: " + msg}}
}
