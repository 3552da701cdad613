package jwks

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"strings"
	"testing"
)

// TestExportedNamesHaveDocs pins STYLE R17: the package has a doc comment,
// and every exported name carries a doc comment that starts with the name.
func TestExportedNamesHaveDocs(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	pkg := pkgs["jwks"]
	if pkg == nil {
		t.Fatal("package jwks not found")
	}
	hasPkgDoc := false
	check := func(name string, doc *ast.CommentGroup, pos token.Pos) {
		if !ast.IsExported(name) {
			return
		}
		if doc == nil || !strings.HasPrefix(doc.Text(), name+" ") {
			t.Errorf("%s: exported %s has no doc comment starting with its name", fset.Position(pos), name)
		}
	}
	for _, f := range pkg.Files {
		if f.Doc != nil {
			hasPkgDoc = true
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil {
					recv := d.Recv.List[0].Type
					if st, ok := recv.(*ast.StarExpr); ok {
						recv = st.X
					}
					if id, ok := recv.(*ast.Ident); !ok || !ast.IsExported(id.Name) {
						continue
					}
				}
				check(d.Name.Name, d.Doc, d.Pos())
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						doc := s.Doc
						if doc == nil && len(d.Specs) == 1 {
							doc = d.Doc
						}
						check(s.Name.Name, doc, s.Pos())
					case *ast.ValueSpec:
						for _, n := range s.Names {
							doc := s.Doc
							if doc == nil && len(d.Specs) == 1 {
								doc = d.Doc
							}
							check(n.Name, doc, n.Pos())
						}
					}
				}
			}
		}
	}
	if !hasPkgDoc {
		t.Error("package jwks has no package doc comment")
	}
}
