package cli

import (
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
)

// resolveEndpoints resolves every deployable host's target through
// ssh_config (--ssh-config, else ssh's default files) so that `fleet
// hosts`, plans and messages show where fleet really logs in
// ("alice@10.0.0.5:2222 via bastion") and the plan's "(sudo)" follows the
// resolved user. It reads config files only, never connects. A host whose
// config does not resolve keeps fleet.star's target: connecting to it
// reports the error.
//
// Only commands that reach or show hosts (those with --ssh-config) do it.
func resolveEndpoints(c *cli.Context, prog *runtime.Program) {
	if c.Command == nil || !hasFlag(c, "ssh-config") {
		return
	}
	var o remote.Options
	if files := c.StringSlice("ssh-config"); len(files) > 0 {
		o.ConfigFiles = files
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, h := range prog.Hosts() {
		if !h.Deployable() {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ep, err := remote.Resolve(o, remote.Target{Host: h.TargetHost, User: h.TargetUser, Port: h.TargetPort})
			if err == nil {
				h.SetEndpoint(ep.User, ep.Port, ep.Route())
			}
		}()
	}
	wg.Wait()
}
