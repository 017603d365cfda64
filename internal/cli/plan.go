package cli

import (
	"fmt"

	"github.com/fatih/color"
	"github.com/fleet-deploy/fleet/internal/executor"
	"github.com/fleet-deploy/fleet/internal/journal"
	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

var eventsFlag = &cli.BoolFlag{Name: "events", Usage: "print the JSON events a run would print (docs/events.md), from the dry run"}

func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "print what `fleet run` would do, touching nothing",
		ArgsUsage: "[FILE]",
		Description: `Runs fleet.star's deploy(ctx) (or the default strategy) on a recording
executor: no Nix, no network, no machine touched (--diff aside). Prints the selected
hosts, why the others are skipped, and every step in order. --json prints
the plan as one JSON document; --events prints the stream of JSON events
that fleet run --json would print if every step succeeded. --closures
shows the closures of a closures file (fleet build --out) instead of
<closure:NAME>. --diff then builds the selected hosts and prints what
would change on each, as fleet diff does (it reads each host's current
system: the only part of a plan that reaches hosts).

Examples:
  fleet plan --on envy,lenovo examples/homelab/fleet.star
  fleet plan --json | jq '.steps[] | select(.action == "activate")'
  fleet plan --events | jq -c 'select(.event == "step_start") | .step'
  fleet plan --diff --on @server`,
		Flags: commonFlags(jsonFlag, eventsFlag, stateDirFlag, closuresFlag, diffFlag, rebootFlag, sshConfigFlag, acceptNewFlag, askSudoFlag, overrideFlag, buildersFlag, evalLimitFlag, substFlag),
		Action: func(c *cli.Context) error {
			prog, err := setup(c)
			if err != nil {
				return err
			}
			if c.Bool("json") && c.Bool("events") {
				return &runtime.UsageError{Msg: "fleet plan: --json and --events are exclusive"}
			}
			if c.Bool("diff") && (c.Bool("json") || c.Bool("events")) {
				return &runtime.UsageError{Msg: "fleet plan: --diff prints text; for JSON use fleet diff --json"}
			}
			var opts executor.Options
			if c.Bool("diff") {
				if opts, err = executorOptions(c); err != nil {
					return err
				}
			}
			sel, err := prog.Select(c.String("on"))
			if err != nil {
				return err
			}
			given, err := givenClosures(c, deployable(sel.Selected))
			if err != nil {
				return err
			}
			dry := runtime.DryExecutor{Closures: given}
			// The tags of secrets are keyed by the state directory, as a
			// run's are; without its key a plan shows none. Without
			// secrets, a plan does not touch the state directory.
			var key []byte
			for _, h := range sel.Selected {
				if len(h.Keys) == 0 {
					continue
				}
				if key, err = journal.SecretKey(stateDir(c)); err != nil {
					fmt.Fprintf(c.App.ErrWriter, "fleet plan: warning: %v; the plan shows no tags of secrets\n", err)
				}
				break
			}
			if c.Bool("events") {
				r, err := ui.New(ui.Options{
					Out: c.App.Writer, Mode: ui.JSON, Verbose: c.Bool("verbose"),
					Command: "plan", Goal: c.String("goal"), Parallel: c.Int("parallel"), DryRun: true,
				}, sel)
				if err != nil {
					return err
				}
				_, err = prog.PlanWith(c.Context, sel, runtime.RunOptions{Executor: dry, Observer: r, Goal: c.String("goal"), Parallel: c.Int("parallel"), SecretKey: key, Reboot: c.String("reboot")})
				r.Finish(err, false)
				return err
			}
			plan, err := prog.PlanWith(c.Context, sel, runtime.RunOptions{Executor: dry, Observer: ui.PlanLog{W: c.App.ErrWriter}, Goal: c.String("goal"), Parallel: c.Int("parallel"), SecretKey: key, Reboot: c.String("reboot")})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, plan)
			}
			ui.PrintSelection(c.App.Writer, sel, !color.NoColor)
			ui.PrintPlan(c.App.Writer, plan, !color.NoColor)
			if !c.Bool("diff") {
				return nil
			}
			fmt.Fprintln(c.App.Writer)
			res, err := diffHosts(c, opts, sel)
			if res != nil {
				printDiffs(c.App.Writer, res, !color.NoColor)
			}
			return err
		},
	}
}
