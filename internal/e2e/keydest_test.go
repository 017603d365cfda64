package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// TestKeyDest: a key lands exactly at dest. Missing parents are made
// 0755 root, so an owner other than root reads its key; a symlink at
// dest (here, to a directory) is replaced by the key, the directory it
// pointed to untouched; a dest that is a directory is refused, naming
// host, step and dest, with nothing changed on that host.
func TestKeyDest(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	a, b := l.Host("a"), l.Host("b")
	exec(t, a, "mkdir -p /run/fleet-test/target && echo keep > /run/fleet-test/target/orig && ln -s target /run/fleet-test/link")
	exec(t, b, "mkdir -p /run/keys && echo other > /run/keys/other")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(`{ inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11"; outputs = { self, nixpkgs }: { }; }`), 0o644)
	file := filepath.Join(dir, "fleet.star")
	os.WriteFile(file, []byte(`
def node(name, keys):
    return host(name = name, target_host = name, keys = keys, nixos = nixos_system(modules = []))

node("a", [
    secret("/run/fleet-test/deep/er/owned.key", command = ["printf", "OWNED-MARK"], owner = "nobody", group = "nogroup", mode = "0400"),
    secret("/run/fleet-test/link", command = ["printf", "LINK-MARK"]),
])
node("b", [secret("/run/keys", command = ["printf", "DIR-MARK"])])
`), 0o644)
	before := exec(t, b, "ls -la --time-style=+ /run/keys; stat -c '%F %a' /run/keys")

	r := fleet(t, "upload-keys", "--ssh-config", l.SSHConfig, file)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (b's dest is a directory)\n%s", r.code, r.stderr)
	}
	if want := "b: upload-key failed: key /run/keys: "; !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "/run/keys is a directory") {
		t.Errorf("stderr does not name host, step and dest (%q, %q):\n%s", want, "/run/keys is a directory", r.stderr)
	}
	if after := exec(t, b, "ls -la --time-style=+ /run/keys; stat -c '%F %a' /run/keys"); after != before {
		t.Errorf("b's /run/keys changed:\n%s\nwas\n%s", after, before)
	}

	// The owner reads its key through the parents fleet made.
	if got := exec(t, a, "stat -c '%a %U' /run/fleet-test/deep /run/fleet-test/deep/er; stat -c '%a %U %G' /run/fleet-test/deep/er/owned.key"); got != "755 root\n755 root\n400 nobody nogroup" {
		t.Errorf("parents and key:\n%s", got)
	}
	if got := exec(t, a, "setpriv --reuid=nobody --regid=nogroup --clear-groups cat /run/fleet-test/deep/er/owned.key"); got != "OWNED-MARK" {
		t.Errorf("nobody reads %q", got)
	}
	// The symlink is replaced by the key; the directory is untouched.
	if got := exec(t, a, "stat -c '%F %a' /run/fleet-test/link; cat /run/fleet-test/link"); got != "regular file 600\nLINK-MARK" {
		t.Errorf("dest that was a symlink: %q", got)
	}
	if got := exec(t, a, "ls -A /run/fleet-test/target; cat /run/fleet-test/target/orig"); got != "orig\nkeep" {
		t.Errorf("the symlink's directory changed: %q", got)
	}
	if out := exec(t, a, "find /run/fleet-test -name '.fleet-key.*'"); out != "" {
		t.Errorf("temporary files left: %s", out)
	}
}
