package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/cli"
)

// TestReadmePlan runs the README's first fleet.star through `fleet plan
// --on envy,lenovo` and requires exactly the output the README shows
// after it, so the front page cannot drift from what fleet prints.
func TestReadmePlan(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	star := block(t, string(readme), "```python\n")
	shown := block(t, string(readme), "```\n$ fleet plan --on envy,lenovo\n")

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(star), 0o644)
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }\n"), 0o644)
	for _, d := range []string{"hosts/envy", "hosts/lenovo", "hosts/clawfinger", "common"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	t.Setenv("NO_COLOR", "1")
	var out, errb bytes.Buffer
	if code := cli.Main([]string{"fleet", "plan", "--on", "envy,lenovo", filepath.Join(dir, "fleet.star")}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if out.String() != shown {
		t.Errorf("README shows:\n%s\nfleet plan prints:\n%s", shown, out.String())
	}
}

// block returns the text after start up to the closing ``` line.
func block(t *testing.T, doc, start string) string {
	t.Helper()
	i := strings.Index(doc, start)
	if i < 0 {
		t.Fatalf("README has no block starting %q", start)
	}
	rest := doc[i+len(start):]
	j := strings.Index(rest, "```\n")
	if j < 0 {
		t.Fatalf("block %q not closed", start)
	}
	return rest[:j]
}
