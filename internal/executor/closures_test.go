package executor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/runtime"
)

// TestNewClosuresRevision: the revision is the commit of the file's
// repository, null outside one; only built hosts are in the file.
func TestNewClosuresRevision(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.star")
	os.WriteFile(file, []byte("\n"), 0o644)
	hosts := []*runtime.Host{{Name: "a", System: "x86_64-linux"}, {Name: "b", System: "aarch64-linux"}}
	built := map[string]string{"a": "/nix/store/" + strings.Repeat("a", 32) + "-nixos-system-a"}
	if c := NewClosures(context.Background(), file, hosts, built); c.Revision != nil || len(c.Hosts) != 1 || c.Hosts["a"].System != "x86_64-linux" {
		t.Errorf("outside a repository: %+v", c)
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "fleet.star")
	git("commit", "-qm", "x")
	if c := NewClosures(context.Background(), file, hosts, built); c.Revision == nil || *c.Revision != git("rev-parse", "HEAD") {
		t.Errorf("revision %v", c.Revision)
	}
}
