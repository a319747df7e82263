package bearer

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

func TestMatches(t *testing.T) {
	tok := New("s3cret")
	if !tok.Required() {
		t.Error("a set token is not required")
	}
	for cred, want := range map[string]bool{"s3cret": true, "": false, "s3cre": false, "s3cret2": false, "S3cret": false} {
		if got := tok.Matches(cred); got != want {
			t.Errorf("Matches(%q) = %v, want %v", cred, got, want)
		}
	}
	if New("").Required() {
		t.Error("an empty token is required")
	}
}

// TestComparedInConstantTime checks the source: timing cannot be asserted
// reliably, but the token must only ever be compared by crypto/subtle,
// never with == (which leaks, through timing, how much of it matched).
func TestComparedInConstantTime(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "bearer.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if d, ok := d.(*ast.FuncDecl); ok && d.Name.Name == "Matches" {
			fn = d
		}
	}
	if fn == nil {
		t.Fatal("bearer.go has no Matches method")
	}
	usesSubtle, comparesDirectly := false, false
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && id.Name == "subtle" && n.Sel.Name == "ConstantTimeCompare" {
				usesSubtle = true
			}
		case *ast.BinaryExpr:
			if n.Op == token.EQL || n.Op == token.NEQ {
				// Comparing with a literal (1) is fine; comparing two
				// computed values is what would leak timing.
				if _, ok := n.Y.(*ast.BasicLit); !ok {
					comparesDirectly = true
				}
			}
		}
		return true
	})
	if !usesSubtle {
		t.Error("Matches does not call subtle.ConstantTimeCompare")
	}
	if comparesDirectly {
		t.Error("Matches compares something with == or != (other than with a literal)")
	}
}
