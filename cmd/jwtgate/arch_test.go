package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the module root (two levels above cmd/jwtgate).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestDependencyDirection pins the layering cmd → proxy → {config, jwks,
// audit, route, policy, metrics}: no lower package imports proxy or cmd,
// and config imports nothing of jwtgate.
func TestDependencyDirection(t *testing.T) {
	const mod = "github.com/jwtgate/jwtgate/"
	forbidden := map[string][]string{
		"config":  {"proxy", "jwks", "audit", "route", "policy", "metrics", "auditlog", "tokentool", "cmd"},
		"jwks":    {"proxy", "audit", "route", "policy", "metrics", "cmd"},
		"audit":   {"proxy", "jwks", "route", "policy", "metrics", "auditlog", "cmd"},
		"route":   {"proxy", "jwks", "audit", "policy", "metrics", "auditlog", "tokentool", "cmd"},
		"policy":  {"proxy", "jwks", "audit", "route", "metrics", "cmd"},
		"metrics": {"proxy", "jwks", "audit", "route", "policy", "config", "cmd"},
		// auditlog verifies what audit writes from SPEC §6 alone: importing
		// the writer would make the check agree with itself.
		"auditlog":  {"proxy", "jwks", "route", "policy", "metrics", "audit", "config", "tokentool", "cmd"},
		"tokentool": {"proxy", "cmd"},
		"proxy":     {"cmd"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", mod+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if dep == mod+b || strings.HasPrefix(dep, mod+b+"/") {
					t.Errorf("%s imports %s, against the layering", pkg, dep)
				}
			}
		}
	}
}

// TestPackageDocs: every package has a package comment and every exported
// top-level name in non-test files has a doc comment (STYLE R17).
func TestPackageDocs(t *testing.T) {
	root := repoRoot(t)
	dirs := map[string]bool{}
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") && !strings.Contains(path, "/testdata/") && !strings.Contains(path, "/.") {
			dirs[filepath.Dir(path)] = true
		}
		return nil
	})
	for dir := range dirs {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
		if err != nil {
			t.Fatalf("parse %s: %v", dir, err)
		}
		for _, p := range pkgs {
			hasDoc := false
			for fname, f := range p.Files {
				if f.Doc != nil {
					hasDoc = true
				}
				for _, decl := range f.Decls {
					switch d := decl.(type) {
					case *ast.FuncDecl:
						if d.Name.IsExported() && d.Doc == nil && (d.Recv == nil || exportedRecv(d.Recv)) {
							t.Errorf("%s: %s has no doc comment", rel(root, fname), d.Name.Name)
						}
					case *ast.GenDecl:
						for _, s := range d.Specs {
							switch s := s.(type) {
							case *ast.TypeSpec:
								if s.Name.IsExported() && d.Doc == nil && s.Doc == nil {
									t.Errorf("%s: type %s has no doc comment", rel(root, fname), s.Name.Name)
								}
							case *ast.ValueSpec:
								for _, n := range s.Names {
									if n.IsExported() && d.Doc == nil && s.Doc == nil && s.Comment == nil {
										t.Errorf("%s: %s has no doc comment", rel(root, fname), n.Name)
									}
								}
							}
						}
					}
				}
			}
			if !hasDoc {
				t.Errorf("package %s (%s) has no package comment", p.Name, rel(root, dir))
			}
		}
	}
}

func exportedRecv(fl *ast.FieldList) bool {
	if len(fl.List) == 0 {
		return false
	}
	typ := fl.List[0].Type
	if s, ok := typ.(*ast.StarExpr); ok {
		typ = s.X
	}
	if ix, ok := typ.(*ast.IndexExpr); ok {
		typ = ix.X
	}
	id, ok := typ.(*ast.Ident)
	return ok && id.IsExported()
}

func rel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return r
}
