package auditlog

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"strconv"
	"strings"
	"testing"
)

// TestPackageIndependentAndDocumented pins two structural rules: the read
// side imports no jwtgate package (in particular not the audit writer, so
// that the chain is checked by an independent implementation of SPEC §6),
// and every exported name has a doc comment that starts with its name.
func TestPackageIndependentAndDocumented(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	pkg := pkgs["auditlog"]
	if pkg == nil {
		t.Fatal("package auditlog not found")
	}
	for name, f := range pkg.Files {
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/jwtgate/jwtgate") {
				t.Errorf("%s imports %s: auditlog must not depend on other jwtgate packages", name, p)
			}
		}
		if name == "doc.go" && (f.Doc == nil || !strings.HasPrefix(f.Doc.Text(), "Package auditlog ")) {
			t.Error("doc.go lacks the package comment")
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Name.IsExported() && d.Recv == nil {
					checkDoc(t, d.Name.Name, d.Doc)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							doc := s.Doc
							if doc == nil {
								doc = d.Doc
							}
							checkDoc(t, s.Name.Name, doc)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() && s.Doc == nil && d.Doc == nil {
								t.Errorf("exported %s has no doc comment", n.Name)
							}
						}
					}
				}
			}
		}
	}
}

func checkDoc(t *testing.T, name string, doc *ast.CommentGroup) {
	t.Helper()
	if doc == nil || !strings.HasPrefix(doc.Text(), name+" ") {
		t.Errorf("exported %s has no doc comment starting with its name", name)
	}
}
