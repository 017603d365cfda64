package ui

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
)

// PrintSelection prints colmena's "Selected N out of M hosts." line and
// the reason for every host left alone.
func PrintSelection(w io.Writer, sel *runtime.Selection, color bool) {
	printSelection(w, sel, style(color))
}

func printSelection(w io.Writer, sel *runtime.Selection, st style) {
	fmt.Fprintln(w, st.bold(fmt.Sprintf("Selected %d out of %d hosts.", len(sel.Selected), sel.Deployable)))
	width := 0
	for _, s := range sel.Skipped {
		width = max(width, Width(Sanitize(s.Host)))
	}
	for _, s := range sel.Skipped {
		fmt.Fprintf(w, "  skip %-*s  %s\n", width, Sanitize(s.Host), Sanitize(s.Reason))
	}
}

// PrintPlan prints the steps of a plan, numbered, in program order.
func PrintPlan(w io.Writer, plan *runtime.Plan, color bool) {
	st := style(color)
	fmt.Fprintf(w, "\n%s\n", st.bold(fmt.Sprintf("Plan: goal %s, parallel %d, %d steps", plan.Goal, plan.Parallel, len(plan.Steps))))
	if len(plan.Steps) == 0 {
		fmt.Fprintln(w, "  nothing to do")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, s := range plan.Steps {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", i+1, Sanitize(s.Host), s.Action, Sanitize(Describe(s)))
	}
	tw.Flush()
}

// Describe renders the arguments of a step on one line, with the group
// it runs in and its parallelism.
func Describe(st *runtime.Step) string {
	var s string
	switch st.Action {
	case "build":
		s = fmt.Sprintf("%s %s", st.System, st.Build)
	case "push":
		s = fmt.Sprintf("%s -> %s", st.Closure, st.Target)
		if st.Substitute {
			s += " (substitute)"
		}
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
		if st.Generation > 0 {
			s = fmt.Sprintf("to generation %d on %s", st.Generation, st.Target)
		}
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
		if st.IfNeeded {
			s += ", if the kernel, initrd or modules changed"
		}
	case "sleep":
		s = fmt.Sprintf("%gs", st.Seconds)
	case "run":
		s = fmt.Sprintf("%s on %s", strings.Join(QuoteAll(st.Argv), " "), st.Target)
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

// PlanLog prints the log() messages of a dry run to w (stderr), so that
// stdout holds only the plan.
type PlanLog struct{ W io.Writer }

// StepStarted implements runtime.Observer.
func (PlanLog) StepStarted(*runtime.Step) {}

// StepFinished implements runtime.Observer.
func (PlanLog) StepFinished(*runtime.Step, error, time.Duration) {}

// Log implements runtime.Observer.
func (o PlanLog) Log(host, msg string) {
	head := "log: "
	if host != "" {
		head = "log " + Sanitize(host) + ": "
	}
	for _, l := range SanitizeLines(msg) {
		fmt.Fprintf(o.W, "%s%s\n", head, l)
	}
}
