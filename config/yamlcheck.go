package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodeVisits bounds the YAML tree walk of a small file. Aliases are
// followed, so a small file of nested aliases ("billion laughs") could
// otherwise expand to an enormous tree. Larger files (10,000 routes) get a
// budget proportional to their size: visitsPerByte nodes per byte, which a
// file without aliases never reaches.
const (
	maxNodeVisits = 100_000
	visitsPerByte = 4
)

// position is where a YAML path starts in the file (1-based).
type position struct{ line, col int }

// checker walks a decoded yaml.Node tree alongside the Go config types and
// reports unknown keys, duplicate keys and type mismatches by YAML path,
// which yaml v3's own TypeError (line numbers only) cannot do.
type checker struct {
	problems []FieldError
	// pos maps each YAML path present in the file to its position, used to
	// sort problems into document order.
	pos     map[string]position
	visits  int
	limit   int
	tooDeep bool
}

var durationType = reflect.TypeFor[time.Duration]()

func newChecker(size int) *checker {
	return &checker{pos: map[string]position{}, limit: max(maxNodeVisits, visitsPerByte*size)}
}

func (c *checker) errorf(path, format string, args ...any) {
	c.problems = append(c.problems, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) mark(path string, n *yaml.Node) {
	if _, ok := c.pos[path]; !ok {
		c.pos[path] = position{n.Line, n.Column}
	}
}

// walk checks node n against Go type t at YAML path path.
func (c *checker) walk(n *yaml.Node, t reflect.Type, path string) {
	c.visits++
	if c.visits > c.limit {
		if !c.tooDeep {
			c.tooDeep = true
			c.errorf(path, "the document expands to too many nodes (more than %d, through aliases); write the config without deeply nested aliases", c.limit)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // null leaves the zero value, which is valid for every type
	}
	switch t.Kind() {
	case reflect.Interface:
		return // any YAML value is accepted (claim rule values)
	case reflect.Pointer:
		c.walk(n, t.Elem(), path)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.errorf(path, "cannot use %s as %s", describeNode(n), describeType(t))
			return
		}
		c.walkStruct(n, t, path, map[string]int{})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.errorf(path, "cannot use %s as %s", describeNode(n), describeType(t))
			return
		}
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			c.mark(p, item)
			c.walk(item, t.Elem(), p)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.errorf(path, "cannot use %s as %s", describeNode(n), describeType(t))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				c.errorf(path, "cannot use %s as a key (line %d); keys must be strings", describeNode(k), k.Line)
				continue
			}
			p := path + mapKeyPath(k.Value)
			if line, dup := seen[k.Value]; dup {
				c.errorf(p, "duplicate key; it is already set at line %d, remove one", line)
				continue
			}
			seen[k.Value] = k.Line
			c.mark(p, k)
			c.walk(v, t.Elem(), p)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			c.errorf(path, "cannot use %s as %s", describeNode(n), describeType(t))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			c.errorf(path, "cannot use %s as %s", describeNode(n), describeType(t))
		}
	}
}

// walkStruct checks a mapping against struct type t. seen holds the keys
// already set explicitly in this mapping; merged mappings ("<<") may
// repeat keys, as YAML merge semantics allow.
func (c *checker) walkStruct(n *yaml.Node, t reflect.Type, path string, seen map[string]int) {
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			c.walkMerge(v, t, path)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			c.errorf(path, "cannot use %s as a key (line %d); keys must be strings", describeNode(k), k.Line)
			continue
		}
		p := joinPath(path, k.Value)
		ft, ok := fields[k.Value]
		if !ok {
			c.mark(p, k)
			c.errorf(p, "unknown field; %s", suggestField(k.Value, fields))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			c.errorf(p, "duplicate key; it is already set at line %d, remove one", line)
			continue
		}
		seen[k.Value] = k.Line
		c.mark(p, k)
		c.walk(v, ft, p)
	}
}

// walkMerge checks the value of a "<<" merge key: a mapping, or a list of
// mappings, each checked against t.
func (c *checker) walkMerge(v *yaml.Node, t reflect.Type, path string) {
	c.visits++
	if c.visits > c.limit {
		c.walk(v, t, path) // reports the limit once
		return
	}
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		c.walkStruct(v, t, path, map[string]int{})
	case yaml.SequenceNode:
		for _, item := range v.Content {
			if item.Kind == yaml.AliasNode && item.Alias != nil {
				item = item.Alias
			}
			if item.Kind != yaml.MappingNode {
				c.errorf(path, "cannot merge %s (line %d); \"<<\" takes a mapping or a list of mappings", describeNode(item), item.Line)
				continue
			}
			c.walkStruct(item, t, path, map[string]int{})
		}
	default:
		c.errorf(path, "cannot merge %s (line %d); \"<<\" takes a mapping or a list of mappings", describeNode(v), v.Line)
	}
}

// yamlFields maps the yaml key of every decodable field of struct t to the
// field's type. Fields tagged "-" are not keys.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

// suggestField says which key was probably meant, or lists the keys allowed.
func suggestField(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	norm := strings.ToLower(strings.ReplaceAll(key, "-", "_"))
	best, bestDist := "", 3
	for _, name := range names {
		if name == norm {
			return fmt.Sprintf("did you mean %q?", name)
		}
		if d := editDistance(norm, name); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "the keys allowed here are " + strings.Join(names, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describeNode names a YAML value for a message. Scalars are quoted and
// shortened: a type error must not print a whole pasted blob.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	v := n.Value
	if r := []rune(v); len(r) > 40 {
		v = string(r[:40]) + "…"
	}
	if n.ShortTag() == "!!str" || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return strconv.Quote(v)
	}
	return v
}

// describeType names a Go config type in YAML terms, with the form to use.
func describeType(t reflect.Type) string {
	if t == durationType {
		return `a duration; write a number with a unit, such as "30s" or "15m"`
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean; write true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice:
		return "a list"
	}
	return t.String()
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var simpleKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// mapKeyPath is the path suffix for a map key: ".key" when unambiguous,
// otherwise a quoted index such as ["realm_access.roles"].
func mapKeyPath(key string) string {
	if simpleKey.MatchString(key) {
		return "." + key
	}
	return "[" + strconv.Quote(key) + "]"
}

// parentPath drops the last element of a YAML path.
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// sortByDocument orders problems by where their path (or its nearest
// ancestor present in the file) appears. The sort is stable, so problems at
// one place keep the order the rules found them in.
func sortByDocument(ps []FieldError, pos map[string]position) {
	at := func(path string) position {
		for p := path; p != ""; p = parentPath(p) {
			if q, ok := pos[p]; ok {
				return q
			}
		}
		return position{}
	}
	slices.SortStableFunc(ps, func(a, b FieldError) int {
		pa, pb := at(a.Path), at(b.Path)
		if pa.line != pb.line {
			return pa.line - pb.line
		}
		return pa.col - pb.col
	})
}
