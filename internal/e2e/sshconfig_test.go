package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// TestSSHConfigUser: a host whose fleet.star gives no target_user logs in
// as ssh_config's User (issue 16, case 1), one that gives it logs in as
// that, and `fleet hosts` and the plan show each endpoint as resolved,
// route included, with "(sudo)" for the resolved non-root users.
func TestSSHConfigUser(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}, NoNixDaemon: true})
	a, b := l.Host("a"), l.Host("b")
	cfg := filepath.Join(t.TempDir(), "config")
	text := hostBlock(l, "asnixos", a, "User nixos") + hostBlock(l, "viaa", b, "ProxyJump jumpa") + hostBlock(l, "jumpa", a)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }\n"), 0o644)
	file := filepath.Join(dir, "fleet.star")
	os.WriteFile(file, []byte(`
host(name = "h0", target_host = "asnixos", attr = ".#nixosConfigurations.h0")
host(name = "h1", target_host = "viaa", attr = ".#nixosConfigurations.h1")
host(name = "h2", target_host = "asnixos", target_user = "ops", attr = ".#nixosConfigurations.h2")
`), 0o644)

	r := fleet(t, "exec", "--ssh-config", cfg, file, "--", "id", "-un")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for host, user := range map[string]string{"h0": "nixos", "h1": "root", "h2": "ops"} {
		if !strings.Contains(r.stdout, host+" | "+user+"\n") {
			t.Errorf("%s did not log in as %s:\n%s", host, user, r.stdout)
		}
	}

	r = fleet(t, "hosts", "--ssh-config", cfg, file)
	if r.code != 0 {
		t.Fatalf("hosts: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"nixos@" + a.Addr + ":22", "root@" + b.Addr + ":22 via jumpa", "ops@" + a.Addr + ":22"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("fleet hosts does not show %q:\n%s", want, r.stdout)
		}
	}

	// The plan's "(sudo)" follows the resolved user.
	r = fleet(t, "plan", "--ssh-config", cfg, file)
	for _, want := range []string{
		"h0  activate  switch <closure:h0> on nixos@" + a.Addr + ":22 (sudo,",
		"h1  activate  switch <closure:h1> on root@" + b.Addr + ":22 via jumpa (confirm",
		"h2  activate  switch <closure:h2> on ops@" + a.Addr + ":22 (sudo,",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
}
