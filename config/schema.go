package config

import (
	"bytes"
	_ "embed" // configSource
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// configSource is this package's config.go, embedded so that the schema's
// descriptions come from the same doc comments as the Go documentation:
// one source, no copy to keep in step.
//
//go:embed config.go
var configSource []byte

// schemaDialect is the JSON Schema dialect JSONSchema declares in $schema.
const schemaDialect = "https://json-schema.org/draft/2020-12/schema"

// durationPattern matches what time.ParseDuration accepts, a minus sign
// excepted ("0", "500ms", "1h30m", "1.5h", "+2s"): validation refuses
// negative durations anyway.
const durationPattern = `^\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

// schemaEnums lists the fixed value sets, keyed by "Type.Field". They are
// the same values validation accepts (TestSchemaEnumsMatchValidation).
var schemaEnums = map[string][]string{
	"Auth.Mode":           {ModeRequired, ModeOptional, ModeOff, ModeDryRun},
	"Auth.CORSPreflight":  {CORSPreflightCheck, CORSPreflightPass},
	"Audit.Output":        {DefaultAuditOutput, "file"},
	"Audit.OnWriteError":  {DefaultAuditOnWriteError, "drop"},
	"Provider.Algorithms": knownAlgorithms,
	"StaticKey.Alg":       knownAlgorithms,
}

// schemaRequired lists the keys a mapping must have, keyed by type name.
// Only keys that validation requires unconditionally are listed
// (TestSchemaRequiredMatchesValidation); "exactly one of" rules stay with
// validate, which explains them better than an editor can.
var schemaRequired = map[string][]string{
	"TLS":       {"cert_file", "key_file"},
	"Provider":  {"name", "issuer"},
	"Route":     {"name", "match", "upstream"},
	"Upstream":  {"url"},
	"ClaimRule": {"claim"},
	"Chain":     {"key_file"},
}

// JSONSchema returns a JSON Schema (draft 2020-12) of the config file,
// indented, for editors such as yaml-language-server. It is generated from
// the Config type by reflection: yaml tags give the property names, every
// mapping has additionalProperties false (decoding is strict), durations are
// strings with a Go duration pattern, claim values are strings, numbers or
// booleans, and descriptions are the fields' doc comments from config.go.
// Defaults are the values Load applies to fields left unset. The schema
// uses only keywords that mean the same in draft-07, which most YAML
// editors implement, and in 2020-12.
func JSONSchema() ([]byte, error) {
	docs, err := parseTypeDocs(configSource)
	if err != nil {
		return nil, fmt.Errorf("config schema: %w", err)
	}
	g := &schemaGen{docs: docs, seen: map[reflect.Type]bool{}}

	// Defaults: apply them to a config with one zero provider and route,
	// so per-provider and per-route defaults are filled too.
	sample := &Config{Providers: make([]Provider, 1), Routes: make([]Route, 1)}
	sample.applyDefaults()

	root, err := g.object(reflect.TypeFor[Config](), reflect.ValueOf(sample).Elem(), true)
	if err != nil {
		return nil, fmt.Errorf("config schema: %w", err)
	}
	root.Schema = schemaDialect
	root.Title = "jwtgate configuration"

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("config schema: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// schemaNode is one JSON Schema (sub)schema; the field order is the
// output order.
type schemaNode struct {
	Schema               string        `json:"$schema,omitempty"`
	Title                string        `json:"title,omitempty"`
	Description          string        `json:"description,omitempty"`
	Type                 any           `json:"type,omitempty"` // a string, or a list of strings
	Properties           *propertyList `json:"properties,omitempty"`
	AdditionalProperties any           `json:"additionalProperties,omitempty"` // false, or a *schemaNode
	Required             []string      `json:"required,omitempty"`
	Items                *schemaNode   `json:"items,omitempty"`
	Enum                 []string      `json:"enum,omitempty"`
	Pattern              string        `json:"pattern,omitempty"`
	Minimum              *int          `json:"minimum,omitempty"`
	Default              any           `json:"default,omitempty"`
}

// propertyList keeps properties in the Go field order (the order of
// gateway.example.yaml), which encoding/json's sorted maps would lose.
type propertyList struct {
	names []string
	nodes []*schemaNode
}

// MarshalJSON writes the properties as one JSON object, in order.
func (p *propertyList) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, name := range p.names {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshalNoEscape(name)
		if err != nil {
			return nil, err
		}
		v, err := marshalNoEscape(p.nodes[i])
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshalNoEscape is json.Marshal without HTML escaping, so descriptions
// keep "<" and ">" readable.
func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// typeDoc is the doc comment of a struct type and of each of its fields.
type typeDoc struct {
	doc    string
	fields map[string]string // Go field name → doc
}

// parseTypeDocs reads the doc comments of every struct type declared in
// src, a Go source file.
func parseTypeDocs(src []byte) (map[string]typeDoc, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "config.go", src, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("parse embedded config.go: %w", err)
	}
	docs := map[string]typeDoc{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			cg := ts.Doc
			if cg == nil && len(gd.Specs) == 1 {
				cg = gd.Doc
			}
			td := typeDoc{doc: commentText(cg), fields: map[string]string{}}
			for _, fld := range st.Fields.List {
				for _, name := range fld.Names {
					td.fields[name.Name] = commentText(fld.Doc)
				}
			}
			docs[ts.Name.Name] = td
		}
	}
	return docs, nil
}

// commentText is a comment's text as one paragraph per blank-line
// separated block, each on one line.
func commentText(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	paras := strings.Split(strings.TrimSpace(cg.Text()), "\n\n")
	for i, p := range paras {
		paras[i] = strings.Join(strings.Fields(p), " ")
	}
	return strings.Join(paras, "\n\n")
}

// schemaGen walks the config types.
type schemaGen struct {
	docs map[string]typeDoc
	seen map[reflect.Type]bool // struct types on the current path (no recursion expected)
}

var (
	identRE        = regexp.MustCompile(`[A-Za-z][A-Za-z0-9]*`)
	defaultIdentRE = regexp.MustCompile(`\bDefault[A-Z][A-Za-z0-9]*\b`)
)

// object is the schema of struct type t. def holds the defaulted sample
// value of t, or is invalid when t has no defaults at this place.
func (g *schemaGen) object(t reflect.Type, def reflect.Value, root bool) (*schemaNode, error) {
	if g.seen[t] {
		return nil, fmt.Errorf("recursive type %s", t)
	}
	g.seen[t] = true
	defer delete(g.seen, t)

	td, ok := g.docs[t.Name()]
	if !ok {
		return nil, fmt.Errorf("no doc comments for type %s in config.go", t)
	}
	n := &schemaNode{Type: "object", Properties: &propertyList{}, AdditionalProperties: false}
	n.Description = g.describe(t, td.doc, nil)
	keys := map[string]bool{}
	for f := range t.Fields() {
		key := yamlKey(f)
		if key == "" {
			continue
		}
		keys[key] = true
		var fdef reflect.Value
		if def.IsValid() {
			fdef = def.FieldByIndex(f.Index)
		}
		// Only the providers and routes the defaults sample seeded carry
		// defaults into their items; any other list's items have none.
		seeded := root && (key == "providers" || key == "routes")
		p, err := g.value(f.Type, fdef, seeded, t.Name()+"."+f.Name)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t.Name(), f.Name, err)
		}
		doc := td.fields[f.Name]
		if doc == "" {
			return nil, fmt.Errorf("%s.%s has no doc comment", t.Name(), f.Name)
		}
		p.Description = g.describe(t, doc, p.Default)
		n.Properties.names = append(n.Properties.names, key)
		n.Properties.nodes = append(n.Properties.nodes, p)
	}
	for _, k := range schemaRequired[t.Name()] {
		if !keys[k] {
			return nil, fmt.Errorf("required key %q is not a field of %s", k, t.Name())
		}
		n.Required = append(n.Required, k)
	}
	return n, nil
}

// value is the schema of a field of type t. def is its defaulted sample
// value (invalid when none); seeded says def is a list the sample seeded
// rather than a default; field is "Type.Field" for the enum table.
func (g *schemaGen) value(t reflect.Type, def reflect.Value, seeded bool, field string) (*schemaNode, error) {
	if t == durationType {
		n := &schemaNode{Type: "string", Pattern: durationPattern}
		if def.IsValid() && def.Int() != 0 {
			n.Default = formatDuration(time.Duration(def.Int()))
		}
		return n, nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		var elem reflect.Value
		if def.IsValid() && !def.IsNil() {
			elem = def.Elem()
		}
		return g.value(t.Elem(), elem, false, field)
	case reflect.Struct:
		return g.object(t, def, false)
	case reflect.Interface:
		// Claim values: equals, one_of and contains_* compare scalars.
		return &schemaNode{Type: []string{"string", "number", "boolean"}}, nil
	case reflect.Slice:
		var elem reflect.Value
		if seeded && def.IsValid() && def.Len() > 0 {
			elem = def.Index(0)
		}
		items, err := g.value(t.Elem(), elem, false, field)
		if err != nil {
			return nil, err
		}
		if enum, ok := schemaEnums[field]; ok {
			items.Enum = enum
		}
		n := &schemaNode{Type: "array", Items: items}
		if !seeded && def.IsValid() && def.Len() > 0 {
			n.Default = plainValue(def)
		}
		return n, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map key type %s is not string", t.Key())
		}
		v, err := g.value(t.Elem(), reflect.Value{}, false, field)
		if err != nil {
			return nil, err
		}
		return &schemaNode{Type: "object", AdditionalProperties: v}, nil
	case reflect.String:
		n := &schemaNode{Type: "string", Enum: schemaEnums[field]}
		if def.IsValid() && def.String() != "" {
			n.Default = def.String()
		}
		return n, nil
	case reflect.Bool:
		n := &schemaNode{Type: "boolean"}
		if def.IsValid() {
			n.Default = def.Bool()
		}
		return n, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		zero := 0 // sizes and counts; validation refuses negatives
		n := &schemaNode{Type: "integer", Minimum: &zero}
		if def.IsValid() && def.Int() != 0 {
			n.Default = def.Int()
		}
		return n, nil
	}
	return nil, fmt.Errorf("no schema for Go type %s", t)
}

// describe turns a Go doc comment into a description for YAML users: the
// Go names of t's fields become their yaml keys, and a "DefaultX" constant
// named as the default becomes its value.
func (g *schemaGen) describe(t reflect.Type, doc string, def any) string {
	keys := map[string]string{}
	for f := range t.Fields() {
		if k := yamlKey(f); k != "" {
			keys[f.Name] = k
		}
	}
	first := true
	doc = identRE.ReplaceAllStringFunc(doc, func(w string) string {
		lead := first
		first = false
		k, ok := keys[w]
		if !ok {
			return w
		}
		// Short initialisms (URL, KID, TLS) are also English words in the
		// middle of a sentence; only the leading one names the field.
		if !lead && len(w) <= 4 && strings.ToUpper(w) == w {
			return w
		}
		return k
	})
	if def != nil {
		doc = defaultIdentRE.ReplaceAllLiteralString(doc, defaultText(def))
	}
	return doc
}

// defaultText writes a default value as YAML flow text: [RS256, ES256].
func defaultText(v any) string {
	if list, ok := v.([]any); ok {
		parts := make([]string, len(list))
		for i, x := range list {
			parts[i] = defaultText(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// yamlKey is the yaml key of struct field f, or "" when f is not a key.
func yamlKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return strings.ToLower(f.Name)
	}
	return name
}

// plainValue converts a defaulted value to its YAML form: structs become
// mappings keyed by yaml key (zero fields left out), durations strings.
func plainValue(v reflect.Value) any {
	if v.Type() == durationType {
		return formatDuration(time.Duration(v.Int()))
	}
	switch v.Kind() {
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = plainValue(v.Index(i))
		}
		return out
	case reflect.Struct:
		out := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			k := yamlKey(v.Type().Field(i))
			if k == "" || v.Field(i).IsZero() {
				continue
			}
			out[k] = plainValue(v.Field(i))
		}
		return out
	}
	return v.Interface()
}

// formatDuration writes d as a user would: "15m", "24h", "1h30m", not
// time.Duration's "15m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
