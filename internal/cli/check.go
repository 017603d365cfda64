package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "evaluate fleet.star and report errors",
		ArgsUsage: "[FILE]",
		Description: `Loads fleet.star and everything it loads, declares the inventory and
applies --on, without running deploy(ctx). Exits 0 when all is well,
2 with the error (file:line:col) otherwise.

Examples:
  fleet check && git commit`,
		Flags: []cli.Flag{onFlag, colorFlag},
		Action: func(c *cli.Context) error {
			prog, err := setup(c)
			if err != nil {
				return err
			}
			sel, err := prog.Select(c.String("on"))
			if err != nil {
				return err
			}
			if err := preflight(c.Context, deployable(sel.Selected), nil, false); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: ok, %d hosts (%d deployable)\n", prog.File, len(prog.Hosts()), sel.Deployable)
			return nil
		},
	}
}
