package ui

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// plainView prints one timestamped line per event, host first, in
// columns that grep and awk can rely on:
//
//	14:02:03 envy    push     ok     1.2s  2 of 2 paths, 6.7 KiB
//
// It never moves the cursor. A long step reports its progress at most
// every plainProgress.
type plainView struct {
	w  io.Writer
	st style
}

const plainProgress = 5 * time.Second

func (v *plainView) runStart(r *Renderer) {
	printSelection(v.w, r.sel, style(v.st))
}

func (v *plainView) line(r *Renderer, host, action, status, elapsed, detail string) {
	fmt.Fprint(v.w, plainLine(r, style(v.st), host, action, status, elapsed, detail))
}

// plainLine formats one line of the plain view (and of the log files).
// host and detail are sanitized here, the one place every plain and
// log-file line passes: detail should be one line (callers split text
// of many), a line break in it is shown escaped.
func plainLine(r *Renderer, st style, host, action, status, elapsed, detail string) string {
	host, detail = Sanitize(hostLabel(host)), Sanitize(detail)
	pad := fmt.Sprintf("%-5s", status)
	switch status {
	case "ok":
		pad = st.green(pad)
	case "FAIL":
		pad = st.red(pad)
	case "|":
		pad = "|"
	}
	s := fmt.Sprintf("%s %-*s %-8s %s %5s  %s", r.now().Format("15:04:05"), r.hostWidth(), host, action, pad, elapsed, detail)
	if status == "|" {
		s = fmt.Sprintf("%s %-*s %-8s | %s", r.now().Format("15:04:05"), r.hostWidth(), host, action, detail)
	}
	return strings.TrimRight(s, " ") + "\n"
}

func (v *plainView) stepStart(r *Renderer, s *stepState) {
	v.line(r, s.step.Host, string(s.step.Action), "start", "", Describe(s.step))
}

func (v *plainView) stepProgress(r *Renderer, s *stepState) {
	if l := progressLine(r, style(v.st), s, &s.shownPlain); l != "" {
		fmt.Fprint(v.w, l)
	}
}

// progressLine is the plain line of a step's progress, or "" when the
// last one (at *shown) is less than plainProgress old.
func progressLine(r *Renderer, st style, s *stepState, shown *time.Time) string {
	now := r.now()
	last := *shown
	if last.IsZero() {
		last = s.start
	}
	if now.Sub(last) < plainProgress {
		return ""
	}
	*shown = now
	return plainLine(r, st, s.step.Host, string(s.step.Action), "...", Duration(now.Sub(s.start)), progressText(s))
}

func (v *plainView) stepEnd(r *Renderer, s *stepState) {
	for _, l := range endLines(r, style(v.st), s) {
		fmt.Fprint(v.w, l)
	}
}

// endLines are the plain lines of a step that ended: one, and for a
// failure the rest of its error and the last lines of its log.
func endLines(r *Renderer, st style, s *stepState) []string {
	host, action, el := s.step.Host, string(s.step.Action), Duration(s.elapsed)
	if s.err == nil {
		return []string{plainLine(r, st, host, action, "ok", el, outcome(s.step))}
	}
	first, rest := firstLine(s.cause)
	out := []string{plainLine(r, st, host, action, "FAIL", el, first)}
	for _, l := range append(rest, s.log...) {
		out = append(out, plainLine(r, st, host, action, "|", "", l))
	}
	return out
}

func (v *plainView) log(r *Renderer, host, source, msg string) {
	if source != "script" && !r.o.Verbose {
		return
	}
	for _, l := range logLines(r, style(v.st), host, source, msg) {
		fmt.Fprint(v.w, l)
	}
}

// logLines are the plain lines of a log message, one per line of it,
// each under the host's name: a message of many lines cannot start a
// line of its own.
func logLines(r *Renderer, st style, host, source, msg string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		out = append(out, plainLine(r, st, host, logAction(source), "", "", l))
	}
	return out
}

// logAction is the action column of a log line.
func logAction(source string) string {
	switch source {
	case "nix":
		return "nix"
	case "step":
		return "output"
	}
	return "log"
}

func (v *plainView) finish(r *Renderer, sum *Summary) {
	st := style(v.st)
	fmt.Fprintf(v.w, "\n%s %s\n", r.now().Format("15:04:05"), statusLine(st, sum))
	for _, l := range summaryBlock(st, sum, 0) {
		fmt.Fprintln(v.w, l)
	}
}

// statusLine is the verdict of a run and its total time.
func statusLine(st style, sum *Summary) string {
	switch sum.Result {
	case "interrupted":
		return st.bold(st.yellow("Interrupted after " + Duration(sum.Elapsed) + "."))
	case "failed":
		return st.bold(st.red("Failed after " + Duration(sum.Elapsed) + "."))
	}
	return st.bold(st.green("All done in " + Duration(sum.Elapsed) + "."))
}

// summaryBlock lists what changed and what failed, then the table,
// whose rows are cut to width cells unless width is 0.
func summaryBlock(st style, sum *Summary, width int) []string {
	out := []string{
		"  changed: " + Sanitize(list(sum.Changed)),
		"  failed:  " + Sanitize(list(sum.failedList())),
	}
	if len(sum.Skipped) > 0 {
		var skipped []string
		for h := range sum.Skipped {
			skipped = append(skipped, h+" (unreachable)")
		}
		sort.Strings(skipped)
		out = append(out, "  skipped: "+Sanitize(list(skipped)))
	}
	if len(sum.Rebooted) > 0 {
		out = append(out, "  rebooted: "+Sanitize(list(sum.Rebooted)))
	}
	if f := sum.FirstFailure; f != nil {
		out = append(out, st.red(fmt.Sprintf("  first failure: %s %s: %s", Sanitize(hostLabel(f.Host)), Sanitize(f.Step), oneLine(f.Error))))
	}
	if len(sum.Hosts) > 0 {
		out = append(out, "")
		for _, l := range summaryTable(st, sum) {
			if width > 0 {
				l = Truncate(l, width-2)
			}
			out = append(out, "  "+l)
		}
	}
	return out
}

// summaryTable is one row per host: its result, the time it spent in
// each kind of step, and the system it ran before and after.
func summaryTable(st style, sum *Summary) []string {
	head := []string{"HOST", "RESULT"}
	for _, a := range sum.Actions {
		head = append(head, strings.ToUpper(a))
	}
	head = append(head, "GENERATION")
	rows := [][]string{head}
	for _, h := range sum.Hosts {
		res := h.Result
		if h.FailedStep != "" {
			res += " (" + h.FailedStep + ")"
		}
		if h.Warning != "" {
			res += " (units failed)"
		}
		row := []string{h.Host, res}
		for _, a := range sum.Actions {
			if d, ok := h.times[a]; ok {
				row = append(row, Duration(d))
			} else {
				row = append(row, "-")
			}
		}
		gen := generationWith(systemLabel(h.Host), h.Previous, h.Current)
		if gen == "" {
			gen = "-"
		}
		row = append(row, gen)
		for i, c := range row {
			row[i] = Sanitize(c)
		}
		rows = append(rows, row)
	}
	widths := make([]int, len(head))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], Width(c))
		}
	}
	var out []string
	for n, row := range rows {
		var b strings.Builder
		for i, c := range row {
			cell := c
			if i < len(row)-1 {
				cell += strings.Repeat(" ", widths[i]-Width(c)+2)
			}
			switch {
			case n == 0:
				cell = st.bold(cell)
			case i == 1 && strings.HasPrefix(c, "failed"):
				cell = st.red(cell)
			case i == 1 && c == "changed":
				cell = st.green(cell)
			}
			b.WriteString(cell)
		}
		out = append(out, strings.TrimRight(b.String(), " "))
	}
	return out
}
