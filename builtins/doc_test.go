package builtins_test

import (
	"os"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/builtins"
)

// TestDocs fails when a builtin is undocumented, listed out of order
// or twice, or docs/builtins.md is stale.
func TestDocs(t *testing.T) {
	all := builtins.All()
	for i, b := range all {
		if i > 0 && all[i-1].Name >= b.Name {
			t.Errorf("builtin %s: the table must be sorted by name, without duplicates (after %s)", b.Name, all[i-1].Name)
		}
		sig, body, ok := strings.Cut(b.Doc, "\n\n")
		if !ok || !strings.HasPrefix(sig, b.Name+"(") || len(strings.TrimSpace(body)) < 40 {
			t.Errorf("builtin %s: Doc must be a signature line, a blank line and a description", b.Name)
		}
	}
	want := builtins.Markdown()
	const file = "../docs/builtins.md"
	if os.Getenv("UPDATE_DOCS") != "" {
		if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(file)
	if err != nil || string(got) != want {
		t.Fatalf("%s is stale: run UPDATE_DOCS=1 go test ./builtins -run TestDocs", file)
	}
}
