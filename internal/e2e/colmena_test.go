package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// colmenaHive is a colmena hive of the lab's hosts, as a colmena user
// has it: a and b reached by their names (colmena's default targetHost;
// the lab's ssh_config knows them), b with a key, c only deployed by
// colmena apply-local. Its nixpkgs cannot be fetched here: runs replace
// it with --override-input.
const colmenaHive = `{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
  outputs = { self, nixpkgs }: {
    colmena = {
      meta.nixpkgs = nixpkgs.legacyPackages.x86_64-linux;
      defaults = { name, ... }: {
        deployment.tags = [ "lab" ];
        environment.etc.colmena-node.text = name + "\n";
      };
      a = { };
      b = { deployment.keys.token = { text = "t0ken\n"; permissions = "0400"; }; };
      c = { deployment.targetHost = null; };
    };
  };
}
`

// TestColmenaHive: fleet init --from-colmena writes the three-line
// colmena_hive fleet.star of a hive, and fleet run of it deploys the
// hive's nodes to the lab as colmena apply would: the nodes' systems,
// b's key, c (targetHost = null) left alone.
func TestColmenaHive(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c"}})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(colmenaHive), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "fleet.star")
	mini := "nixpkgs=" + filepath.Join(root, "testdata/mini-nixpkgs")
	if r := fleet(t, "init", "--from-colmena", "--override-input", mini, "-o", file, dir); r.code != 0 {
		t.Fatalf("init: exit %d\n%s", r.code, r.stderr)
	}
	text, _ := os.ReadFile(file)
	if n := strings.Count(string(text), "\n"); n != 3 || !strings.Contains(string(text), "\ncolmena_hive(flake = \".\")\n") {
		t.Fatalf("fleet.star:\n%s", text)
	}
	r := fleet(t, runArgs(l, file)...)
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	built := closures(events(t, r.stdout))
	for _, name := range []string{"a", "b"} {
		h := l.Host(name)
		if got := current(t, h); got == "" || got != built[name] {
			t.Errorf("%s runs %q, want %q", name, got, built[name])
		}
		if got := exec(t, h, "cat /run/current-system/etc/colmena-node"); got != name {
			t.Errorf("%s: /etc/colmena-node is %q", name, got)
		}
	}
	if got := exec(t, l.Host("b"), "stat -c '%U %a' /run/keys/token && cat /run/keys/token"); got != "root 400\nt0ken" {
		t.Errorf("b's key: %q", got)
	}
	if _, ok := built["c"]; ok {
		t.Errorf("c (targetHost = null) was built: %v", built)
	}
	if got := current(t, l.Host("c")); got != "" {
		t.Errorf("c runs %s, want nothing deployed", got)
	}
}
