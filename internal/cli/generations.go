package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/fleet-deploy/fleet/internal/executor"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

func generationsCommand() *cli.Command {
	return &cli.Command{
		Name:      "generations",
		Usage:     "list the selected hosts' system generations",
		ArgsUsage: "[FILE]",
		Description: `Asks every selected host, in parallel over one session each, for the
generations of its system profile (/nix/var/nix/profiles/system-N-link,
what nix-env --list-generations lists): number, date, the system
closure, and which one is current (what the next boot starts, "*") and
which one runs now. Nothing is evaluated or built. Exit status 1 if a
host could not be asked.

fleet rollback --on HOST --to N switches a host to one of them.

Examples:
  fleet generations --on envy
  fleet generations --json | jq '.[] | select(.error == null) | .generations[-1]'`,
		Flags: []cli.Flag{onFlag, parallelFlag, colorFlag, jsonFlag, sshConfigFlag, acceptNewFlag, askSudoFlag},
		Action: func(c *cli.Context) error {
			t, err := reach(c, "")
			if err != nil {
				return err
			}
			ex := executor.New(t.opts)
			defer ex.Close()
			rows := hostGenerations(c, ex, t.sel.Selected)
			return printGenerations(c, rows)
		},
	}
}

// generationsRow is one host of fleet generations --json.
type generationsRow struct {
	Host        string                `json:"host"`
	Generations []executor.Generation `json:"generations"`
	Error       string                `json:"error,omitempty"`
}

func hostGenerations(c *cli.Context, ex *executor.Executor, hosts []*runtime.Host) []generationsRow {
	rows := make([]generationsRow, len(hosts))
	eachHost(c.Context, c.Int("parallel"), hosts, func(i int, h *runtime.Host) {
		gens, err := ex.Generations(c.Context, h)
		rows[i] = generationsRow{Host: h.Name, Generations: gens}
		if err != nil {
			rows[i].Error = err.Error()
		}
		if rows[i].Generations == nil {
			rows[i].Generations = []executor.Generation{}
		}
	}, func(i int, h *runtime.Host) {
		rows[i] = generationsRow{Host: h.Name, Generations: []executor.Generation{}, Error: "interrupted"}
	})
	return rows
}

func printGenerations(c *cli.Context, rows []generationsRow) error {
	failed := 0
	for _, r := range rows {
		if r.Error != "" {
			failed++
		}
	}
	if c.Bool("json") {
		if rows == nil {
			rows = []generationsRow{}
		}
		if err := writeJSON(c.App.Writer, rows); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tGEN\tDATE\tSYSTEM\tNOTE")
		for _, r := range rows {
			if r.Error != "" {
				row(tw, r.Host, "-", "-", "-", r.Error)
				continue
			}
			if len(r.Generations) == 0 {
				row(tw, r.Host, "-", "-", "-", "no system generations")
			}
			for _, g := range r.Generations {
				n, note := fmt.Sprint(g.Number), ""
				if g.Current {
					n += "*"
					note = "current"
				}
				if g.Running {
					note = join(note, "running")
				}
				row(tw, r.Host, n, g.Date.Local().Format("2006-01-02 15:04:05"), short(g.Closure), note)
			}
		}
		tw.Flush()
	}
	if failed > 0 {
		return cli.Exit("", exitHostFailed)
	}
	return nil
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}
