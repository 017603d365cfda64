package ui

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// liveView draws a run on a terminal. The screen has two parts: lines
// that stay (the selection, every step that ended, collapsed to one line
// like "  envy ✅ 1.2s Pushed system closure", failures with their log,
// log messages), and below them a live region, redrawn in place, with
// one line per host (its current step, a spinner, the time it has
// taken, bytes and throughput of a push), the first failure, and a
// status line. Events only mark the screen dirty: a ticker redraws at
// most once per refresh period, so a fleet of 500 hosts costs no more
// than a fleet of five. Live lines are cut to the terminal's width so
// that they never wrap; when the hosts do not fit in its height, the
// busy ones are shown first and the rest are counted.
type liveView struct {
	w       io.Writer
	st      style
	size    func() (int, int)
	pending []string // lines that stay, not yet written
	drawn   int      // lines of the live region on the screen
	dirty   bool
	stop    chan struct{}
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func newLiveView(r *Renderer) *liveView {
	v := &liveView{w: r.o.Out, st: style(r.o.Color), size: r.o.Size, stop: make(chan struct{})}
	if v.size == nil {
		out := r.o.Out
		v.size = func() (int, int) {
			c, l := terminalSize(out)
			if c <= 0 || l <= 0 {
				return 80, 24
			}
			return c, l
		}
	}
	period := r.o.Refresh
	if period <= 0 {
		period = 100 * time.Millisecond
	}
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-v.stop:
				return
			case <-t.C:
			}
			r.mu.Lock()
			if r.finished {
				r.mu.Unlock()
				return
			}
			v.draw(r, nil)
			r.mu.Unlock()
		}
	}()
	return v
}

func (v *liveView) add(lines ...string) {
	v.pending = append(v.pending, lines...)
	v.dirty = true
}

func (v *liveView) runStart(r *Renderer) {
	var b strings.Builder
	printSelection(&b, r.sel, v.st)
	v.add(strings.Split(strings.TrimRight(b.String(), "\n"), "\n")...)
}

func (v *liveView) stepStart(r *Renderer, s *stepState)    { v.dirty = true }
func (v *liveView) stepProgress(r *Renderer, s *stepState) { v.dirty = true }

func (v *liveView) stepEnd(r *Renderer, s *stepState) {
	w := r.hostWidth() + 2
	host := Sanitize(hostLabel(s.step.Host))
	if s.err == nil {
		v.add(fmt.Sprintf("%*s %s %s %s", w, host, v.st.green("✅"), Duration(s.elapsed), Sanitize(Done(s.step))))
		return
	}
	first, rest := firstLine(s.cause)
	v.add(fmt.Sprintf("%*s %s %s %s", w, host, v.st.red("❌"), Duration(s.elapsed), v.st.red(Sanitize(string(s.step.Action)+" failed: "+first))))
	for _, l := range append(rest, s.log...) {
		v.add(fmt.Sprintf("%*s %s %s", w, host, v.st.dim("|"), Sanitize(l)))
	}
}

func (v *liveView) log(r *Renderer, host, source, msg string) {
	if source != "script" && !r.o.Verbose {
		return
	}
	label := Sanitize(host)
	switch {
	case source == "nix":
		label = "nix"
	case host == "":
		label = "-"
	}
	for _, l := range SanitizeLines(msg) {
		line := fmt.Sprintf("%*s %s", r.hostWidth()+2, label, l)
		if source != "script" {
			line = v.st.dim(line)
		}
		v.add(line)
	}
}

func (v *liveView) finish(r *Renderer, sum *Summary) {
	close(v.stop)
	v.add("", statusLine(v.st, sum))
	cols, _ := v.size()
	v.add(summaryBlock(v.st, sum, cols-1)...)
	v.draw(r, sum)
}

// draw writes the pending lines and redraws the live region, in one
// write. The region is dropped once the run is over (sum != nil).
func (v *liveView) draw(r *Renderer, sum *Summary) {
	running := false
	for _, h := range r.hosts {
		running = running || len(h.running) > 0
	}
	if !v.dirty && !running && sum == nil {
		return // nothing moves: no spinner, no clock
	}
	cols, rows := v.size()
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\r\x1b[%dA\x1b[J", v.drawn)
	}
	for _, l := range v.pending {
		b.WriteString(l)
		b.WriteString("\n")
	}
	v.pending = v.pending[:0]
	v.drawn = 0
	if sum == nil {
		for _, l := range v.region(r, cols, rows) {
			b.WriteString(Truncate(l, cols-1))
			b.WriteString("\n")
			v.drawn++
		}
	}
	v.dirty = false
	io.WriteString(v.w, b.String())
}

// region is the live part of the screen.
func (v *liveView) region(r *Renderer, cols, rows int) []string {
	now := r.now()
	spin := spinner[(now.UnixMilli()/100)%int64(len(spinner))]
	var busy, failed, waiting, steps int
	for _, h := range r.order {
		switch {
		case len(h.running) > 0:
			busy++
		case h.failed != nil:
			failed++
		default:
			waiting++
		}
		steps += h.ended
	}
	hosts := append([]*hostState(nil), r.order...)
	if h := r.hosts[""]; h != nil && len(h.running) > 0 {
		hosts = append(hosts, h) // a step of the whole run (sleep)
	}
	var footer []string
	if f := r.firstFail; f != nil {
		footer = append(footer, v.st.red(fmt.Sprintf("  ✗ first failure: %s %s: %s", Sanitize(hostLabel(f.step.Host)), f.step.Action, oneLine(f.cause))))
	}
	status := fmt.Sprintf("  %s %s  %d busy · %d waiting · %d failed · %d steps done",
		v.st.cyan(spin), Duration(now.Sub(r.start)), busy, waiting, failed, steps)
	footer = append(footer, v.st.dim(status))

	avail := max(1, rows-1-len(footer))
	var shown []*hostState
	more := 0
	if len(hosts) <= avail {
		shown = hosts
	} else {
		// Busy hosts first, then failed ones, then the rest; one line
		// says how many did not fit.
		for _, pass := range []func(*hostState) bool{
			func(h *hostState) bool { return len(h.running) > 0 },
			func(h *hostState) bool { return len(h.running) == 0 && h.failed != nil },
		} {
			for _, h := range hosts {
				if pass(h) && len(shown) < avail-1 {
					shown = append(shown, h)
				}
			}
		}
		more = len(hosts) - len(shown)
	}
	w := r.hostWidth()
	var out []string
	for _, h := range shown {
		out = append(out, v.hostLine(r, h, w, spin, now))
	}
	if more > 0 {
		out = append(out, v.st.dim(fmt.Sprintf("  … and %d more hosts (%d busy in all)", more, busy)))
	}
	return append(out, footer...)
}

// hostLine is a host's line in the live region.
func (v *liveView) hostLine(r *Renderer, h *hostState, w int, spin string, now time.Time) string {
	name := hostLabel(Sanitize(h.name))
	name += strings.Repeat(" ", max(0, w-Width(name)))
	if n := len(h.running); n > 0 {
		s := h.running[n-1]
		detail := Sanitize(liveDetail(s))
		if n > 1 {
			detail += fmt.Sprintf(" (+%d more)", n-1)
		}
		return fmt.Sprintf("  %s %s  %-8s %6s  %s", v.st.cyan(spin), name, s.step.Action, Duration(now.Sub(s.start)), detail)
	}
	if f := h.failed; f != nil {
		return v.st.red(fmt.Sprintf("  ✗ %s  %-8s %6s  failed: %s", name, f.step.Action, Duration(f.elapsed), oneLine(f.cause)))
	}
	if s := h.last; s != nil {
		return v.st.dim(fmt.Sprintf("  ✓ %s  %-8s %6s  %s", name, s.step.Action, Duration(s.elapsed), Sanitize(outcome(s.step))))
	}
	return v.st.dim(fmt.Sprintf("  · %s  waiting", name))
}

// liveDetail says what a step in flight is doing.
func liveDetail(s *stepState) string {
	if s.unit != "" {
		return progressText(s)
	}
	st := s.step
	switch st.Action {
	case "build":
		return st.System
	case "push":
		return "→ " + st.Target
	case "activate":
		return st.Goal + " on " + st.Target
	case "check":
		return st.Check
	case "run":
		return strings.Join(QuoteAll(st.Argv), " ")
	case "sleep":
		return fmt.Sprintf("%gs", st.Seconds)
	case "reboot":
		return fmt.Sprintf("waiting for %s to come back (at most %gs)", st.Target, st.Seconds)
	case "upload-key":
		if st.Key != nil {
			return st.Key.Dest
		}
	}
	return st.Target
}
