package cli

import (
	"fmt"

	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

var toFlag = &cli.IntFlag{Name: "to", Usage: "switch to system generation `N` (fleet generations lists them) instead of the previous one"}

// rollbackCommand rolls hosts back: the same run as fleet run, with
// @fleet//rollback.star as its strategy, so that its steps are shown,
// summarised and journaled (fleet history) as a deploy's are.
func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "switch the selected hosts back to their previous (or --to N) system generation",
		ArgsUsage: "[FILE]",
		Description: `Every host --on selects (required: name the hosts, or --on '*' for all)
switches, in parallel (-p at a time), to its previous system generation:
the system profile steps back one generation and that system's
switch-to-configuration switch runs. With --to N each host switches to
its generation N instead (fleet generations lists them). Nothing is
evaluated or built; the hosts only need the generation.

The run is shown and journaled as fleet run's is: fleet history lists
each host as rolled-back (or failed), with the system before and after.
Exit status 0 when every host rolled back, 1 if one failed, 130 when
interrupted.

Examples:
  fleet rollback --on web1
  fleet rollback --on web1 --to 41
  fleet rollback --on @server --json`,
		Flags: []cli.Flag{onFlag, parallelFlag, colorFlag, verboseFlag, jsonFlag, sshConfigFlag, acceptNewFlag, askSudoFlag, logDirFlag, stateDirFlag, noWaitFlag, toFlag},
		Action: func(c *cli.Context) error {
			if c.String("on") == "" {
				return &runtime.UsageError{Msg: "fleet rollback: say which hosts with --on (--on '*' for every host)"}
			}
			if n := c.Int("to"); n < 0 {
				return &runtime.UsageError{Msg: fmt.Sprintf("--to %d: must be a generation number", n)}
			}
			return deploy(c, "@fleet//rollback.star")
		},
	}
}
