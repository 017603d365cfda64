package builtins_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/runtime"
)

// TestColmenaArgs: colmena_hive and colmena_node check their arguments
// before any Nix runs (internal/colmena's tests read real hives).
func TestColmenaArgs(t *testing.T) {
	for _, tc := range []struct{ src, err string }{
		{`colmena_hive(flake = ".", hive = "./hive.nix")`, `colmena_hive(): give flake or hive, not both`},
		{`colmena_hive(hive = 1)`, `colmena_hive(): hive must be the path of a hive.nix`},
		{`colmena_hive(flake = "./nope")`, `colmena_hive(): flake: "./nope": no flake.nix in`},
		{`colmena_hive(hive = "./hive.nix")`, `colmena hive /`},
		{`colmena_node()`, `missing argument for node`},
		{`colmena_node("a", note = 1)`, `colmena_node(): note must be a string or None`},
	} {
		t.Run(tc.src, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{}"), 0o644)
			file := filepath.Join(dir, "fleet.star")
			os.WriteFile(file, []byte(tc.src+"\n"), 0o644)
			_, err := runtime.Load(context.Background(), file, builtins.Universe())
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

// TestColmenaNode: a host built by colmena_node says so in plans and
// shows its note; nothing is evaluated at load.
func TestColmenaNode(t *testing.T) {
	prog := load(t, `
host(name = "web", target_host = "10.0.0.1", nixos = colmena_node("web"))
host(name = "pc", nixos = colmena_node("pc", hive = "./hive.nix", note = "deployment.targetHost = null"))
`)
	hosts := prog.Hosts()
	web, pc := hosts[len(hosts)-2], hosts[len(hosts)-1]
	if got := web.BuildDescription(); got != `colmena_node("web", flake=".")` || web.Note() != "" {
		t.Errorf("web: %s, note %q", got, web.Note())
	}
	if got := pc.BuildDescription(); !strings.HasPrefix(got, `colmena_node("pc", hive="/`) || !strings.HasSuffix(got, `/hive.nix")`) || pc.Note() != "deployment.targetHost = null" || pc.Deployable() {
		t.Errorf("pc: %s, note %q", got, pc.Note())
	}
	if pc.NixOS.Flake != "" || pc.NixOS.Colmena.File == "" {
		t.Errorf("pc: flake %q, file %q", pc.NixOS.Flake, pc.NixOS.Colmena.File)
	}
}
