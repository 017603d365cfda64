// The cost of single operations, one at a time on host h1: the building
// blocks of a fleet push/activate and of the baseline (an SSH connection, a
// session, check-validity, import, nix-env --set, switch, fleet's
// activation script, local nix-store queries), each in host and deployer
// CPU time and wall time, means of 5; there is no baseline, the
// operations are compared with each other.

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleet-deploy/fleet/internal/executor"
	"github.com/fleet-deploy/fleet/internal/shell"
)

// opsActivateScript is fleet's own activation script, measured on its own.
const opsActivateScript = executor.ActivateScript

// opsWrapper is how internal/remote runs every command (wrapperScript).
const opsWrapper = `printf 'fleet-remote-pid %d\n' "$$" >&2 && exec "$@"`

type opResult struct {
	name            string
	k               int
	host, dep, wall float64 // ms per operation (means)
}

// ops measures what single operations cost, in CPU time on the host and
// on the deployer, one at a time on host h1: the building blocks of a
// fleet push/activate and of the baseline. Sessions run over an OpenSSH
// ControlMaster connection (one connection, many sessions: what fleet
// does with its Go client); commands are wrapped as internal/remote
// wraps them.
func (b *bench) ops(ctx context.Context) error {
	const k = 5
	h := "h1"
	closure := b.closures[h]
	if closure == "" {
		return fmt.Errorf("no closure for %s", h)
	}
	out, err := exec.CommandContext(ctx, "nix-store", "-qR", closure).Output()
	if err != nil {
		return err
	}
	paths := strings.Fields(string(out))
	if err := b.resetHosts([]string{h}); err != nil {
		return err
	}
	ctl := filepath.Join(cfg.work, "ops.ctl")
	os.Remove(ctl)
	master := exec.CommandContext(ctx, "ssh", "-F", b.lab.SSHConfig, "-o", "ControlMaster=yes", "-o", "ControlPath="+ctl, "-N", "root@"+h)
	if err := master.Start(); err != nil {
		return err
	}
	defer func() { master.Process.Kill(); master.Wait() }()
	for i := 0; ; i++ {
		if _, err := os.Stat(ctl); err == nil {
			break
		}
		if i > 300 {
			return fmt.Errorf("ssh ControlMaster did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// wrapped is argv as internal/remote sends it. A NUL byte cannot be
	// quoted (none of these arguments has one): the first such error is
	// kept in quoteErr and checked once the list is built.
	var quoteErr error
	join := func(argv ...string) string {
		s, err := shell.Join(argv...)
		if quoteErr == nil {
			quoteErr = err
		}
		return s
	}
	wrapped := func(argv ...string) string {
		return join(append([]string{"/bin/sh", "-c", opsWrapper, "sh"}, argv...)...)
	}
	session := func(argv ...string) command {
		return command{argv: []string{"ssh", "-F", b.lab.SSHConfig, "-o", "ControlPath=" + ctl, "root@" + h, wrapped(argv...)}}
	}
	reset := func() error { return b.resetHosts([]string{h}) }
	seed := func() error { // the closure present, as before an activation
		if err := reset(); err != nil {
			return err
		}
		r := command{env: []string{"NIX_SSHOPTS=-F " + b.lab.SSHConfig}, argv: []string{"nix-copy-closure", "--to", "root@" + h, closure}}.run(ctx)
		return r.failed()
	}
	export := join(append([]string{"nix-store", "--export"}, paths...)...)
	pipe := export + " | " + join("ssh", "-F", b.lab.SSHConfig, "-o", "ControlPath="+ctl, "root@"+h, wrapped("nix-store", "--import"))
	type op struct {
		name  string
		setup func() error
		cmd   command
	}
	list := []op{
		{"new SSH connection + `true` (OpenSSH client, as each baseline step)", nil,
			command{argv: []string{"ssh", "-F", b.lab.SSHConfig, "-o", "ControlPath=none", "root@" + h, "true"}}},
		{"session on an open connection: true", nil, session("true")},
		{fmt.Sprintf("session: nix-store --check-validity --print-invalid (%d paths, empty store)", len(paths)), reset,
			session(append([]string{"nix-store", "--check-validity", "--print-invalid"}, paths...)...)},
		{fmt.Sprintf("push %d paths (%d KiB each): nix-store --export | session nix-store --import", len(paths), smallPayloadSizeKB), reset,
			command{argv: []string{"sh", "-c", pipe}}},
		{fmt.Sprintf("push %d paths: nix-copy-closure --to (new connection, nix-store --serve)", len(paths)), reset,
			command{env: []string{"NIX_SSHOPTS=-F " + b.lab.SSHConfig}, argv: []string{"nix-copy-closure", "--to", "root@" + h, closure}}},
		{"session: nix-env -p /nix/var/nix/profiles/system --set CLOSURE", seed,
			session("nix-env", "-p", "/nix/var/nix/profiles/system", "--set", closure)},
		{"session: CLOSURE/bin/switch-to-configuration switch (as the baseline)", nil, session(closure+"/bin/switch-to-configuration", "switch")},
		{"session: fleet's ActivateScript (host lock, detached switch, one result line)", nil,
			session("sh", "-c", opsActivateScript, "fleet-activate", "/run/fleet/bench-ops", closure, "switch", "0", "fleet-switch-bench-ops", "bench ops", "0", "0", "")},
		{"session: readlink /run/current-system", nil, session("readlink", "/run/current-system")},
		{"local: nix-store --query --requisites CLOSURE", nil, command{argv: []string{"nix-store", "--query", "--requisites", closure}}},
		{fmt.Sprintf("local: nix-store --query --size (%d paths)", len(paths)), nil, command{argv: append([]string{"nix-store", "--query", "--size"}, paths...)}},
		{fmt.Sprintf("local: nix-store --export (%d paths) > /dev/null", len(paths)), nil, command{argv: []string{"sh", "-c", export + " >/dev/null"}}},
	}
	if quoteErr != nil {
		return quoteErr
	}
	for _, o := range list {
		res := opResult{name: o.name, k: k}
		for i := 0; i < k; i++ {
			if o.setup != nil {
				if err := o.setup(); err != nil {
					return fmt.Errorf("%s: setup: %w", o.name, err)
				}
			}
			var r result
			m, err := b.measure(func() (time.Duration, error) {
				r = o.cmd.run(ctx)
				return r.wall, r.failed()
			})
			if err != nil {
				return fmt.Errorf("%s: %w", o.name, err)
			}
			res.host += float64(m.hosts.Microseconds()) / 1000 / k
			res.dep += float64(m.dep.Microseconds()) / 1000 / k
			res.wall += float64(m.wall.Microseconds()) / 1000 / k
		}
		logf("op %-75s host %6.1f ms  deployer %6.1f ms  wall %6.1f ms", o.name, res.host, res.dep, res.wall)
		b.opsResults = append(b.opsResults, res)
	}
	return nil
}
