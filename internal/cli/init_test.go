package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/internal/lab/labtest"
	"github.com/fleet-deploy/fleet/internal/nixgen"
	"github.com/fleet-deploy/fleet/runtime"
)

// TestStarterBuilds: the fleet.star `fleet init` writes evaluates to real
// systems: with mini-nixpkgs as its flake's nixpkgs, Nix instantiates
// both hosts' toplevels.
func TestStarterBuilds(t *testing.T) {
	labtest.RequireNix(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(starterFlake), 0o644)
	os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(starter), 0o644)
	prog, err := runtime.Load(context.Background(), filepath.Join(dir, "fleet.star"), builtins.Universe())
	if err != nil {
		t.Fatal(err)
	}
	mini, _ := filepath.Abs("../../testdata/mini-nixpkgs")
	expr, attrs, err := nixgen.Build(prog.Hosts(), map[string]string{"nixpkgs": mini})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "build.nix")
	os.WriteFile(f, []byte(expr), 0o644)
	out, err := exec.Command("nix-instantiate", f, "-A", attrs[0], "-A", attrs[1]).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "-nixos-system-web1-") || !strings.Contains(string(out), "-nixos-system-db1-") {
		t.Errorf("nix-instantiate: %s", out)
	}
}
