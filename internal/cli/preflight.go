package cli

import (
	"context"

	"github.com/fleet-deploy/fleet/internal/localnix"
	"github.com/fleet-deploy/fleet/runtime"
)

// preflight checks, before any host is touched, that this machine's Nix
// can evaluate and build the selected hosts (localnix.Preflight): a
// missing Nix, missing build users, no daemon or an unlocked flake is
// reported in two lines and exits 2, not as a build failure of each host.
// Without hosts to build there is nothing to check. With locks, local
// flakes must be locked too (check has no --override-input, so it leaves
// that to run and status).
func preflight(ctx context.Context, hosts []*runtime.Host, overrides map[string]string, locks bool) error {
	if len(hosts) == 0 {
		return nil
	}
	o := localnix.Options{Overrides: overrides}
	if locks {
		o.Flakes = hostFlakes(hosts)
	}
	return localnix.Preflight(ctx, o)
}

// hostFlakes are the flakes hosts are evaluated from, in order.
func hostFlakes(hosts []*runtime.Host) []string {
	var flakes []string
	for _, h := range hosts {
		switch {
		case h.NixOS != nil:
			if h.NixOS.Flake != "" { // "": a non-flake colmena hive
				flakes = append(flakes, h.NixOS.Flake)
			}
		case h.Flake != "":
			flakes = append(flakes, h.Flake)
		}
	}
	return flakes
}

// deployable are the hosts of hosts that a run deploys.
func deployable(hosts []*runtime.Host) []*runtime.Host {
	var out []*runtime.Host
	for _, h := range hosts {
		if h.Deployable() {
			out = append(out, h)
		}
	}
	return out
}
