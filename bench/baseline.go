// The baseline of the deploy benchmarks: what colmena does under the hood
// for every host (nix-copy-closure, nix-env --set, switch-to-configuration)
// as a shell script, run over the hosts with xargs -P. The substitution
// benchmark gives nix-copy-closure --use-substitutes (colmena's
// --substitute-on-destination); by default it gets no extra flag.

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleet-deploy/fleet/internal/shell"
)

func (b *bench) baselineCmd(names []string, closures map[string]string, par int) (command, string, error) {
	return b.baselineCmdVia(b.lab.SSHConfig, names, closures, par)
}

// baselineCmdVia is baselineCmd with another ssh_config (the WAN's proxies).
func (b *bench) baselineCmdVia(sshConfig string, names []string, closures map[string]string, par int) (command, string, error) {
	return b.baselineCmdOpts(sshConfig, names, closures, par, "")
}

// baselineCmdOpts is baselineCmdVia with extra flags of nix-copy-closure
// (copyFlags, e.g. "--use-substitutes"; "" for none).
func (b *bench) baselineCmdOpts(sshConfig string, names []string, closures map[string]string, par int, copyFlags string) (command, string, error) {
	script := filepath.Join(cfg.work, "baseline.sh")
	if err := os.WriteFile(script, []byte(baselineScript), 0o755); err != nil {
		return command{}, "", err
	}
	var in strings.Builder
	for _, n := range names {
		fmt.Fprintf(&in, "%s %s\n", n, closures[n])
	}
	list := filepath.Join(cfg.work, fmt.Sprintf("baseline-hosts-%d.txt", len(names)))
	if err := os.WriteFile(list, []byte(in.String()), 0o644); err != nil {
		return command{}, "", err
	}
	c := command{argv: []string{"sh", "-c", `exec "$0" "$1" "$2" < "$3"`, script, sshConfig, fmt.Sprint(par), list}}
	args, copyCmd := "", "nix-copy-closure --to"
	if copyFlags != "" {
		c.argv = []string{"sh", "-c", `exec "$0" "$1" "$2" "$4" < "$3"`, script, sshConfig, fmt.Sprint(par), list, copyFlags}
		args, copyCmd = " "+shell.Quote(copyFlags), "nix-copy-closure "+copyFlags+" --to"
	}
	doc := fmt.Sprintf("%s %s %d%s < %s   # %s is bench/baseline.go's baselineScript:\n#   NIX_SSHOPTS=\"-F $cfg\" xargs -P %d -n 2 sh -c '%s root@$1 $2 && ssh -F $cfg root@$1 nix-env -p /nix/var/nix/profiles/system --set $2 && ssh -F $cfg root@$1 $2/bin/switch-to-configuration switch'   (stdin: \"HOST CLOSURE\" lines)",
		script, sshConfig, par, args, list, filepath.Base(script), par, copyCmd)
	return c, doc, nil
}

// baselineScript is what colmena does under the hood, per host: copy the
// closure, set the system profile, switch — driven by xargs -P.
// stdin: "HOST CLOSURE" lines. $1: the ssh_config. $2: parallelism. $3
// (optional): extra flags of nix-copy-closure, e.g. --use-substitutes.
const baselineScript = `#!/bin/sh
# baseline of go run ./bench: colmena's steps per host, xargs -P in parallel
cfg=$1 par=$2
export NIX_SSHOPTS="-F $cfg" COPY_FLAGS="${3-}"
exec xargs -P "$par" -n 2 sh -c '
  nix-copy-closure $COPY_FLAGS --to "root@$1" "$2" &&
  ssh -F "$0" "root@$1" nix-env -p /nix/var/nix/profiles/system --set "$2" &&
  ssh -F "$0" "root@$1" "$2/bin/switch-to-configuration" switch
' "$cfg"
`
