// Package nixconf is the Nix configuration that fleet's own tests, demo,
// bench and lab hosts run with.
//
// Nix reads /etc/nix/nix.conf, ~/.config/nix/nix.conf and $NIX_CONFIG, and
// its compiled-in defaults depend on the machine: as root it wants the
// build users of group nixbld and, once they exist, a sandbox in which the
// test fixtures' /bin/sh builders cannot run; it asks cache.nixos.org for
// every path it builds. None of that may decide whether a test passes. So
// everything the project starts reads one file this package writes, and
// nothing else: [Env] points NIX_CONF_DIR at it, names no user
// configuration files and clears NIX_CONFIG, and [Settings] sets every
// setting that matters explicitly.
//
// fleet itself (the product) does not use this package: a user's fleet
// runs with the user's Nix configuration.
package nixconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Settings is the nix.conf of the deploying machine and of every lab host.
//
//   - build-users-group is empty: builds run as the calling user (root in
//     CI), so no nixbld group or users are needed, and with no build users
//     Nix does not turn the sandbox on by itself; sandbox = false says so
//     explicitly (the fixtures' builders are the machine's /bin/sh).
//   - no substituters and no flake registry: nothing is fetched, and no
//     test waits on an unreachable cache; connect-timeout bounds anything
//     that tries anyway.
//   - flakes and nix-command are on; aarch64-linux is an extra platform so
//     the homelab's rpi4-a builds natively (its /bin/sh builders run on
//     any machine), standing in for the seed's binfmt emulation.
const Settings = `# Written by fleet (internal/nixconf) for its tests, demo, bench and lab.
build-users-group =
sandbox = false
substituters =
trusted-substituters =
flake-registry =
experimental-features = nix-command flakes
extra-platforms = aarch64-linux
accept-flake-config = false
warn-dirty = false
connect-timeout = 2
trusted-users = root
`

// Write writes Settings to dir/nix.conf, creating dir.
func Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("nixconf: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nix.conf"), []byte(Settings), 0o644); err != nil {
		return fmt.Errorf("nixconf: %w", err)
	}
	return nil
}

// Env writes Settings to dir/nix.conf and returns the environment
// variables that make every Nix command read that file and no other:
// NIX_CONF_DIR=dir, no user configuration files, and an empty NIX_CONFIG.
func Env(dir string) ([]string, error) {
	if err := Write(dir); err != nil {
		return nil, err
	}
	return []string{"NIX_CONF_DIR=" + dir, "NIX_USER_CONF_FILES=", "NIX_CONFIG="}, nil
}

// Setenv is Env applied to this process (for TestMain and the bench):
// every Nix command it and its children start reads dir/nix.conf only.
func Setenv(dir string) error {
	env, err := Env(dir)
	if err != nil {
		return err
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Apply returns environ with the variables of Env(dir) replacing any it
// had: for a child process's exec.Cmd.Env.
func Apply(environ []string, dir string) ([]string, error) {
	env, err := Env(dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(environ)+len(env))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "NIX_CONF_DIR", "NIX_USER_CONF_FILES", "NIX_CONFIG":
			continue
		}
		out = append(out, kv)
	}
	return append(out, env...), nil
}

// Isolated runs run (a TestMain's m.Run) with Setenv applied to a fresh
// temporary directory, removed afterwards, and returns run's result.
//
//	func TestMain(m *testing.M) { os.Exit(nixconf.Isolated(m.Run)) }
func Isolated(run func() int) int {
	dir, err := os.MkdirTemp("", "fleet-nixconf-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	if err := Setenv(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return run()
}
