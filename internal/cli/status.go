package cli

import (
	"fmt"
	"path"
	"text/tabwriter"

	"github.com/fleet-deploy/fleet/internal/executor"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "compare what each host runs with what fleet.star would deploy now",
		ArgsUsage: "[FILE]",
		Description: `Evaluates the selected hosts' systems (one Nix evaluation, nothing is
built) and asks every host, in parallel, what it runs: up to date,
drifted (it runs something else), never deployed, or unreachable.
Exit status 0 when every host is up to date, 1 otherwise.

Examples:
  fleet status
  fleet status --on @server --json`,
		Flags: []cli.Flag{onFlag, parallelFlag, colorFlag, jsonFlag, sshConfigFlag, acceptNewFlag, askSudoFlag, overrideFlag, evalLimitFlag},
		Action: func(c *cli.Context) error {
			t, err := reach(c, "")
			if err != nil {
				return err
			}
			sel := t.sel
			if err := preflight(c.Context, sel.Selected, t.opts.Overrides, true); err != nil {
				return err
			}
			ex := executor.New(t.opts)
			defer ex.Close()
			wanted, err := ex.Evaluate(c.Context, sel.Selected)
			if err != nil {
				return err
			}
			rows := hostStatuses(c, ex, sel.Selected, wanted)
			return printStatus(c, rows)
		},
	}
}

type statusRow struct {
	Host       string `json:"host"`
	Status     string `json:"status"` // up-to-date, drifted, never-deployed, unreachable
	Running    string `json:"running,omitempty"`
	Wanted     string `json:"wanted"`
	Booted     string `json:"booted,omitempty"`
	Generation int    `json:"generation,omitempty"`
	Note       string `json:"note,omitempty"`
	Error      string `json:"error,omitempty"`
}

func hostStatuses(c *cli.Context, ex *executor.Executor, hosts []*runtime.Host, wanted map[string]string) []statusRow {
	rows := make([]statusRow, len(hosts))
	eachHost(c.Context, c.Int("parallel"), hosts, func(i int, h *runtime.Host) {
		r := statusRow{Host: h.Name, Wanted: wanted[h.Name]}
		st, err := ex.State(c.Context, h)
		switch {
		case err != nil:
			r.Status, r.Error = "unreachable", err.Error()
		case st.Current == "":
			r.Status = "never-deployed"
		case st.Current == r.Wanted:
			r.Status = "up-to-date"
		default:
			r.Status = "drifted"
		}
		if st != nil {
			r.Running, r.Booted, r.Generation = st.Current, st.Booted, st.Generation
			switch {
			case st.Booted != "" && st.Booted != st.Current:
				r.Note = "reboot pending"
			case st.Profile != "" && st.Current != "" && st.Profile != st.Current:
				r.Note = "next boot: " + path.Base(st.Profile)
			}
		}
		rows[i] = r
	}, func(i int, h *runtime.Host) {
		rows[i] = statusRow{Host: h.Name, Wanted: wanted[h.Name], Status: "unreachable", Error: "interrupted"}
	})
	return rows
}

func printStatus(c *cli.Context, rows []statusRow) error {
	bad := 0
	for _, r := range rows {
		if r.Status != "up-to-date" {
			bad++
		}
	}
	if c.Bool("json") {
		if rows == nil {
			rows = []statusRow{}
		}
		if err := writeJSON(c.App.Writer, rows); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tSTATUS\tRUNNING\tWANTED\tGEN\tNOTE")
		for _, r := range rows {
			note := r.Note
			if r.Error != "" {
				note = r.Error
			}
			row(tw, r.Host, r.Status, short(r.Running), short(r.Wanted), gen(r.Generation), note)
		}
		tw.Flush()
	}
	if bad > 0 {
		return cli.Exit("", exitHostFailed)
	}
	return nil
}

// short shows a store path by its name part.
func short(p string) string {
	if p == "" {
		return "-"
	}
	b := path.Base(p)
	if len(b) > 33 && b[32] == '-' {
		return b[:7] + "…" + b[32:]
	}
	return b
}

func gen(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}
