// Package labtest connects internal/lab to `go test`: a TestMain that runs
// a package's tests in a private network namespace with the project's
// nix.conf, and the one switch that decides whether a test that needs the
// lab, a private network namespace or Nix may skip.
//
// That switch is FLEET_REQUIRE_LAB. `make test` sets it to 1 when it runs
// as root; then every Require* that would skip fails the test instead, so
// that a green run means every end-to-end test ran. Without it a skip is
// loud (on stderr, not only in -v output), never silent.
//
// It is a package of its own so that binaries linking internal/lab (such as
// fleet-lab) do not link package testing.
package labtest

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/nixconf"
)

// EnvRequire is the environment variable that turns every skip of this
// package into a failure. `make test` sets FLEET_REQUIRE_LAB=1 as root.
const EnvRequire = "FLEET_REQUIRE_LAB"

// Main is what a TestMain of a package with end-to-end lab tests, or with
// tests that open sockets, calls:
//
//	func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }
//
// It re-executes the test binary in a new, private network namespace (only
// a loopback interface, brought up; see lab.RunInPrivateNetns) and runs the
// tests there, returning their exit code. As root the lab can run there;
// anyone else gets a user namespace of their own, where sockets work but
// the lab does not (Require skips, loudly). If no namespace can be made it
// says so loudly and runs the tests directly; those that need one skip.
// Either way every Nix command the tests start reads the project's nix.conf
// (internal/nixconf), not the machine's.
func Main(m *testing.M) int {
	return nixconf.Isolated(func() int {
		ran := false
		code, err := lab.RunInPrivateNetns(func() int {
			ran = true
			if reason := lab.Unavailable(); reason != "" {
				loud("SKIPPING end-to-end lab tests: " + reason + " (they start sshd in private network/mount namespaces)")
			}
			return m.Run()
		})
		if err != nil {
			loud(fmt.Sprintf("SKIPPING end-to-end lab tests: cannot enter a private network namespace: %v", err))
			return m.Run()
		}
		if !ran {
			// The tests ran in the child; this process has nothing left to
			// do. Exit right away: under -race, os.Exit would sleep a second
			// first (GORACE atexit_sleep_ms), once per process.
			syscall.Exit(code)
		}
		return code
	})
}

// Skip skips the test, loudly, saying why; with FLEET_REQUIRE_LAB=1 it
// fails the test instead. Every skip for a missing lab, namespace or Nix
// goes through it.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("required (%s=1) but unavailable: %s", EnvRequire, reason)
		return
	}
	msg := fmt.Sprintf("SKIPPING: %s (set %s=1 to make this a failure)", reason, EnvRequire)
	loud(msg)
	t.Skip(msg)
}

// Require skips the test (see Skip) when the lab cannot run here: not root,
// not inside a private network namespace (TestMain must call Main), or a
// needed program (sshd, ssh, nix-store, sudo, nsenter, mount) is missing.
func Require(t testing.TB) {
	t.Helper()
	if reason := lab.Unavailable(); reason != "" {
		Skip(t, "end-to-end lab test: "+reason)
	}
}

// RequireNetns skips the test (see Skip) unless it runs in a private
// network namespace (TestMain must call Main), as every test that opens a
// socket must.
func RequireNetns(t testing.TB) {
	t.Helper()
	if !lab.InPrivateNetns() {
		Skip(t, "this test opens sockets and runs only inside a private network namespace (needs root, or unprivileged user namespaces; TestMain must call labtest.Main)")
	}
}

// nixPrograms are what the tests that run Nix call; Debian's nix-bin has
// them all.
var nixPrograms = []string{"nix", "nix-store", "nix-instantiate", "nix-build"}

// RequireNix skips the test (see Skip) unless Nix (nix, nix-store,
// nix-instantiate, nix-build) is on PATH.
func RequireNix(t testing.TB) {
	t.Helper()
	var missing []string
	for _, p := range nixPrograms {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		Skip(t, fmt.Sprintf("this test runs Nix, and %s is not on PATH (apt-get install nix-bin)", strings.Join(missing, ", ")))
	}
}

func loud(msg string) {
	bar := strings.Repeat("*", 78)
	fmt.Fprintf(os.Stderr, "%s\n*** %s\n%s\n", bar, msg, bar)
}

// CopyDir copies the regular files below src into dst (created as
// needed), for tests that edit a copy of a fixture.
func CopyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
