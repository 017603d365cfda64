package executor

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
)

// TestUnreachableWithoutKey: with no key to log in with, nothing is
// dialled and the host is not called unreachable (on a new machine, with
// no ~/.ssh yet, the deploy goes on to say what is wrong, as it always
// did).
func TestUnreachableWithoutKey(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ssh_config")
	// 192.0.2.1 is TEST-NET-1: never dialled here, since no key is found first.
	text := "Host a\n  HostName 192.0.2.1\n  IdentityFile " + filepath.Join(dir, "none") + "\n  IdentityAgent none\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	e := New(Options{SSH: remote.Options{ConfigFiles: []string{cfg}, SSHBinary: "none", KnownHostsFiles: []string{filepath.Join(dir, "known_hosts")}}})
	defer e.Close()
	down := e.Unreachable(context.Background(), []*runtime.Host{{Name: "a", TargetHost: "a"}})
	if len(down) != 0 {
		t.Errorf("unreachable: %v, want none (no key: the deploy reports it)", down)
	}
}
