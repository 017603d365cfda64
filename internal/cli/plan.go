package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fatih/color"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "print what `fleet run` would do, touching nothing",
		ArgsUsage: "[FILE]",
		Description: `Runs fleet.star's deploy(ctx) (or the default strategy) on a recording
executor: no Nix, no network, no machine touched. Prints the selected
hosts, why the others are skipped, and every step in order.

Examples:
  fleet plan --on envy,lenovo examples/homelab/fleet.star
  fleet plan --json | jq '.steps[] | select(.action == "activate")'`,
		Flags: commonFlags(jsonFlag),
		Action: func(c *cli.Context) error {
			prog, err := setup(c)
			if err != nil {
				return err
			}
			sel, err := prog.Select(c.String("on"))
			if err != nil {
				return err
			}
			plan, err := prog.MakePlan(c.Context, sel, c.String("goal"), c.Int("parallel"), &logObserver{w: c.App.ErrWriter})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(plan)
			}
			printSelection(c.App.Writer, sel)
			printPlan(c.App.Writer, plan)
			return nil
		},
	}
}

// printSelection prints colmena's "Selected N out of M hosts." line and
// the reason for every host left alone.
func printSelection(w io.Writer, sel *runtime.Selection) {
	bold := color.New(color.Bold).SprintFunc()
	fmt.Fprintln(w, bold(fmt.Sprintf("Selected %d out of %d hosts.", len(sel.Selected), sel.Deployable)))
	width := 0
	for _, s := range sel.Skipped {
		width = max(width, len(s.Host))
	}
	for _, s := range sel.Skipped {
		fmt.Fprintf(w, "  skip %-*s  %s\n", width, s.Host, s.Reason)
	}
}

func printPlan(w io.Writer, plan *runtime.Plan) {
	bold := color.New(color.Bold).SprintFunc()
	fmt.Fprintf(w, "\n%s\n", bold(fmt.Sprintf("Plan: goal %s, parallel %d, %d steps", plan.Goal, plan.Parallel, len(plan.Steps))))
	if len(plan.Steps) == 0 {
		fmt.Fprintln(w, "  nothing to do")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, st := range plan.Steps {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", i+1, st.Host, st.Action, describe(st))
	}
	tw.Flush()
}

// describe renders the arguments of a step on one line.
func describe(st *runtime.Step) string {
	var s string
	switch st.Action {
	case "build":
		s = fmt.Sprintf("%s %s", st.System, st.Build)
	case "push":
		s = fmt.Sprintf("%s -> %s", st.Closure, st.Target)
	case "activate":
		s = fmt.Sprintf("%s %s on %s", st.Goal, st.Closure, st.Target)
		var notes []string
		if st.Sudo {
			notes = append(notes, "sudo")
		}
		if st.Confirm > 0 {
			notes = append(notes, fmt.Sprintf("confirm within %ds", st.Confirm))
		}
		if len(notes) > 0 {
			s += " (" + strings.Join(notes, ", ") + ")"
		}
	case "rollback":
		s = "to the previous generation on " + st.Target
	case "check":
		if strings.HasPrefix(st.Check, "http ") {
			s = st.Check + " (from this machine)"
		} else {
			s = fmt.Sprintf("%s on %s", st.Check, st.Target)
		}
	case "upload-key":
		if k := st.Key; k != nil {
			s = fmt.Sprintf("%s %s:%s %s from %s %s on %s", k.Dest, k.Owner, k.Group, k.Mode, k.Source, k.Hash, st.Target)
		}
	case "reboot":
		s = fmt.Sprintf("%s, back within %gs", st.Target, st.Seconds)
	case "sleep":
		s = fmt.Sprintf("%gs", st.Seconds)
	case "run":
		s = fmt.Sprintf("%s on %s", strings.Join(quoteAll(st.Argv), " "), st.Target)
	default:
		s = st.Target
	}
	var tags []string
	if st.Group != "" {
		tags = append(tags, st.Group)
	}
	if st.Limit > 0 {
		tags = append(tags, fmt.Sprintf("limit %d", st.Limit))
	}
	if len(tags) > 0 {
		s += "  [" + strings.Join(tags, ", ") + "]"
	}
	return s
}

func quoteAll(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`;&|<>(){}*?[]#~") {
			out[i] = fmt.Sprintf("%q", a)
		} else {
			out[i] = a
		}
	}
	return out
}

// logObserver prints log() messages of a dry run to stderr, so stdout
// holds only the plan.
type logObserver struct{ w io.Writer }

func (o *logObserver) StepStarted(*runtime.Step)                        {}
func (o *logObserver) StepFinished(*runtime.Step, error, time.Duration) {}
func (o *logObserver) Log(host, msg string) {
	if host != "" {
		fmt.Fprintf(o.w, "log %s: %s\n", host, msg)
	} else {
		fmt.Fprintf(o.w, "log: %s\n", msg)
	}
}
