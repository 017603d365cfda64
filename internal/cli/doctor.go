package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fatih/color"
	"github.com/fleet-deploy/fleet/internal/executor"
	"github.com/fleet-deploy/fleet/internal/localnix"
	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:      "doctor",
		Usage:     "check that this machine and the selected hosts can be deployed",
		ArgsUsage: "[FILE]",
		Description: `Runs the checks a person runs when a deploy will not work, one line
each, with the fix for what fails. On this machine: Nix evaluates and
builds, the hosts' flakes are locked, an ssh-agent. For each selected
host (one connection each, -p at a time, no retries): a key to log in
with, reachable, host key known, login accepted, sudo -n where the user
is not root, Nix on the host with a writable store, free space on /nix.
Changes nothing anywhere (the probe build leaves an unrooted path in the
local store). Exit status 0 when everything holds, 1 otherwise.

Examples:
  fleet doctor
  fleet doctor --on envy --json`,
		Flags: []cli.Flag{onFlag, parallelFlag, colorFlag, jsonFlag, sshConfigFlag, askSudoFlag, overrideFlag},
		Action: func(c *cli.Context) error {
			t, err := reach(c, "")
			if err != nil {
				return err
			}
			hosts := deployable(t.sel.Selected)
			checks := localChecks(c, hosts, t.opts.Overrides)

			ex := executor.New(t.opts)
			defer ex.Close()
			perHost := make([][]executor.Check, len(hosts))
			eachHost(c.Context, c.Int("parallel"), hosts, func(i int, h *runtime.Host) {
				perHost[i] = ex.Doctor(c.Context, h)
			}, func(int, *runtime.Host) {})
			if err := c.Context.Err(); err != nil {
				return err
			}
			for i, h := range hosts {
				checks = append(checks, hostHeader(h))
				checks = append(checks, perHost[i]...)
			}
			return printDoctor(c.App.Writer, c.Bool("json"), checks)
		},
	}
}

// hostHeader is the line that introduces a host's checks (not a check).
func hostHeader(h *runtime.Host) executor.Check {
	return executor.Check{Host: h.Name, Name: "", Detail: h.Target()}
}

// localChecks are this machine's: Nix builds, flakes locked, ssh-agent.
func localChecks(c *cli.Context, hosts []*runtime.Host, overrides map[string]string) []executor.Check {
	var out []executor.Check
	add := func(name string, err error, detail, fix string) {
		ck := executor.Check{Name: name, Status: executor.CheckOK, Detail: detail}
		if err != nil {
			ck.Status, ck.Detail, ck.Fix = executor.CheckFailed, err.Error(), fix
			if p, ok := localnix.As(err); ok {
				ck.Detail, ck.Fix = p.What, p.Fix
			}
		}
		out = append(out, ck)
	}
	version, err := localnix.Probe(c.Context)
	add("nix", err, version+": evaluates and builds on this machine", "")
	if err == nil {
		if flakes := hostFlakes(hosts); len(flakes) > 0 {
			err := localnix.Preflight(c.Context, localnix.Options{Flakes: flakes, Overrides: overrides})
			add("flakes", err, "every local flake is locked (or all its inputs overridden)", "")
		}
	}
	switch sock := os.Getenv("SSH_AUTH_SOCK"); {
	case sock == "":
		out = append(out, executor.Check{Name: "agent", Status: executor.CheckOK, Detail: "no ssh-agent (SSH_AUTH_SOCK unset): identity files only"})
	default:
		out = append(out, executor.Check{Name: "agent", Status: executor.CheckOK, Detail: "ssh-agent at " + sock})
	}
	return out
}

// printDoctor prints the checks, one line each (a header line per host),
// and returns an error that exits 1 if any failed.
func printDoctor(w io.Writer, asJSON bool, checks []executor.Check) error {
	var failed []string
	for _, ck := range checks {
		if ck.Status == executor.CheckFailed {
			where := ck.Host
			if where == "" {
				where = "this machine"
			}
			failed = append(failed, ui.Sanitize(where+" "+ck.Name))
		}
	}
	if asJSON {
		var list []executor.Check
		for _, ck := range checks {
			if ck.Name != "" {
				list = append(list, ck)
			}
		}
		if err := writeJSON(w, struct {
			OK     bool             `json:"ok"`
			Checks []executor.Check `json:"checks"`
		}{len(failed) == 0, list}); err != nil {
			return err
		}
	} else {
		ok := color.New(color.FgGreen).SprintFunc()
		bad := color.New(color.FgRed, color.Bold).SprintFunc()
		dim := color.New(color.Faint).SprintFunc()
		fmt.Fprintln(w, "this machine")
		for _, ck := range checks {
			if ck.Name == "" {
				fmt.Fprintf(w, "%s  %s\n", ui.Sanitize(ck.Host), ui.Sanitize(ck.Detail))
				continue
			}
			mark := ok("✔")
			switch ck.Status {
			case executor.CheckFailed:
				mark = bad("✘")
			case executor.CheckSkipped:
				mark = dim("·")
			}
			fmt.Fprintf(w, "  %s %-10s %s\n", mark, ui.Sanitize(ck.Name), ui.Sanitize(ck.Detail))
			if ck.Fix != "" {
				fmt.Fprintf(w, "    %-10s fix: %s\n", "", ui.Sanitize(ck.Fix))
			}
		}
		if len(failed) == 0 {
			fmt.Fprintln(w, "\nno problems found")
		} else {
			fmt.Fprintf(w, "\n%d %s: %s\n", len(failed), plural(len(failed), "problem", "problems"), strings.Join(failed, ", "))
		}
	}
	if len(failed) > 0 {
		return cli.Exit("", exitHostFailed)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
