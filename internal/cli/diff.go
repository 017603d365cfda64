package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/fatih/color"
	"github.com/fleet-deploy/fleet/internal/executor"
	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

var diffFlag = &cli.BoolFlag{Name: "diff", Usage: "after the plan, build the selected hosts and show what would change on each (as fleet diff)"}

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "show what a deploy would change on each host, touching nothing",
		ArgsUsage: "[FILE]",
		Description: `Builds the selected hosts' systems here (as fleet run would), then asks
each host, over one connection, what it runs now and compares the two
closures: packages added, removed and changed, with their versions (from
the store paths' names), the names rebuilt at the same version, and how
much the closure grows or shrinks. Ends with a fleet-wide summary
("1 of 3 hosts change; 2 unchanged"). Nothing is copied or activated.
--json prints the document of docs/diff.md.

Exit status 0 whether or not hosts change; 1 if a host fails to build or
cannot be asked; 2 for a usage error.

Examples:
  fleet diff --on @server
  fleet diff --json | jq '.hosts[] | select(.changes) | .host'
  fleet diff --closures closures.json   # what CI built against what runs`,
		Flags: []cli.Flag{onFlag, parallelFlag, colorFlag, verboseFlag, jsonFlag, sshConfigFlag, acceptNewFlag, askSudoFlag, overrideFlag, buildersFlag, evalLimitFlag, closuresFlag},
		Action: func(c *cli.Context) error {
			t, err := reach(c, "")
			if err != nil {
				return err
			}
			res, err := diffHosts(c, t.opts, t.sel)
			if res == nil {
				return err
			}
			if c.Bool("json") {
				if err := writeJSON(c.App.Writer, res); err != nil {
					return err
				}
			} else {
				printDiffs(c.App.Writer, res, !color.NoColor)
			}
			return err
		},
	}
}

// diffResult is fleet diff's document (docs/diff.md).
type diffResult struct {
	Version int               `json:"version"`
	Hosts   []*executor.Diff  `json:"hosts"`
	Failed  map[string]string `json:"failed"`
	Summary diffSummary       `json:"summary"`
}

type diffSummary struct {
	Hosts     int `json:"hosts"`
	Change    int `json:"change"`
	Unchanged int `json:"unchanged"`
	Failed    int `json:"failed"`
}

// diffHosts builds the selection's deployable hosts (or takes their
// --closures) and diffs each against what it runs, ctx.parallel hosts
// at a time. Hosts that fail to build or cannot be asked are in the
// result's Failed, and in the error (exit 1).
func diffHosts(c *cli.Context, opts executor.Options, sel *runtime.Selection) (*diffResult, error) {
	hosts := deployable(sel.Selected)
	given, err := givenClosures(c, hosts)
	if err != nil {
		return nil, err
	}
	if err := preflight(c.Context, hosts, opts.Overrides, given == nil); err != nil {
		return nil, err
	}
	if given != nil {
		if err := executor.Realise(c.Context, given); err != nil {
			return nil, &runtime.UsageError{Msg: fmt.Sprintf("--closures %s: %v", c.String("closures"), err)}
		}
		opts.Closures = given
	}
	if c.Bool("verbose") {
		opts.Log = func(l string) { fmt.Fprintln(c.App.ErrWriter, l) }
	}
	ex := executor.New(opts)
	defer ex.Close()
	// Hosts that fail to build are failed hosts of the diff; anything
	// else (this machine's Nix, an interrupt) ends it.
	built, err := ex.Build(c.Context, hosts)
	var hf runtime.HostFailures
	if err != nil {
		f, ok := hostFailures(err).(*runtime.HostFailures)
		if !ok || c.Context.Err() != nil {
			return nil, err
		}
		hf.Errs = f.Errs
	}
	diffs := make([]*executor.Diff, len(hosts))
	errs := make([]error, len(hosts))
	eachHost(c.Context, c.Int("parallel"), hosts, func(i int, h *runtime.Host) {
		if p, ok := built[h.Name]; ok {
			diffs[i], errs[i] = ex.Diff(c.Context, h, p)
		}
	}, func(i int, h *runtime.Host) { errs[i] = c.Context.Err() })
	res := &diffResult{Version: 1, Hosts: []*executor.Diff{}, Failed: map[string]string{}}
	for _, he := range hf.Errs {
		for _, name := range strings.Split(he.Host, ", ") { // a chunk's hosts
			res.Failed[name] = he.Step + ": " + he.Err.Error()
		}
	}
	for i, h := range hosts {
		res.Summary.Hosts++
		switch {
		case diffs[i] == nil && errs[i] == nil: // did not build
			res.Summary.Failed++
			continue
		case errs[i] != nil:
			res.Failed[h.Name] = errs[i].Error()
			res.Summary.Failed++
			hf.Errs = append(hf.Errs, &runtime.HostError{Host: h.Name, Step: "diff", Err: errs[i]})
			continue
		case diffs[i].Changes:
			res.Summary.Change++
		default:
			res.Summary.Unchanged++
		}
		res.Hosts = append(res.Hosts, diffs[i])
	}
	if len(hf.Errs) > 0 {
		return res, &hf
	}
	return res, nil
}

// printDiffs prints each host's diff and the summary line.
func printDiffs(w io.Writer, res *diffResult, colour bool) {
	green, red, yellow := color.New(color.FgGreen).SprintFunc(), color.New(color.FgRed).SprintFunc(), color.New(color.FgYellow).SprintFunc()
	if !colour {
		green, red, yellow = fmt.Sprint, fmt.Sprint, fmt.Sprint
	}
	for _, d := range res.Hosts {
		// Names and versions come from the host's store: sanitized.
		for _, l := range executor.DiffLines(d, ui.Bytes) {
			l = ui.Sanitize(l)
			switch {
			case strings.HasPrefix(l, "  + "):
				l = green(l)
			case strings.HasPrefix(l, "  - "):
				l = red(l)
			case strings.HasPrefix(l, "  ~ "):
				l = yellow(l)
			}
			fmt.Fprintln(w, l)
		}
	}
	s := res.Summary
	line := fmt.Sprintf("%d of %d hosts change; %d unchanged", s.Change, s.Hosts, s.Unchanged)
	if s.Failed > 0 {
		line += fmt.Sprintf("; %d failed", s.Failed)
	}
	fmt.Fprintln(w, line)
}
