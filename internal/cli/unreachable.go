package cli

import (
	"fmt"

	"github.com/fleet-deploy/fleet/internal/executor"
	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

var skipUnreachableFlag = &cli.BoolFlag{Name: "skip-unreachable", Usage: "leave out the selected hosts that do not answer SSH (checked before building) and deploy the rest; without it an unreachable host stops the run before anything is built"}

// reachability checks, before anything is built, that every selected
// host answers SSH (executor.Unreachable: one connection each, one
// attempt, all at once, kept for the run). With --skip-unreachable the hosts that do not
// answer move from sel.Selected to sel.Skipped (Reason "unreachable:
// ..."), each with a line on stderr, and the run goes on with the rest.
// Without it, the unreachable hosts are the run's failure: nothing is
// built, nothing changes, exit 1.
func reachability(c *cli.Context, ex *executor.Executor, sel *runtime.Selection) error {
	down := ex.Unreachable(c.Context, sel.Selected)
	if len(down) == 0 {
		return nil
	}
	if !c.Bool(skipUnreachableFlag.Name) {
		var hf runtime.HostFailures
		for _, h := range sel.Selected {
			if err, ok := down[h.Name]; ok {
				hf.Errs = append(hf.Errs, &runtime.HostError{Host: h.Name, Step: "connect",
					Err: fmt.Errorf("unreachable, so nothing was built or changed (--skip-unreachable deploys the other hosts): %w", err)})
			}
		}
		return &hf
	}
	var keep []*runtime.Host
	for _, h := range sel.Selected {
		err, ok := down[h.Name]
		if !ok {
			keep = append(keep, h)
			continue
		}
		fmt.Fprintf(c.App.ErrWriter, "fleet: %s: unreachable, skipped: %s\n", ui.Sanitize(h.Name), ui.Sanitize(err.Error()))
		sel.Skipped = append(sel.Skipped, runtime.Skip{Host: h.Name, Reason: runtime.Unreachable + ": " + err.Error()})
	}
	sel.Selected = keep
	return nil
}
