// Package ui renders what fleet does while it does it: a live view on a
// terminal, one timestamped line per event otherwise, a stream of JSON
// events (docs/events.md) for programs, per-host log files, and the
// summary that ends a run. Every view is fed by one Renderer, a
// runtime.Observer, so they all tell the same story.
package ui

import (
	"errors"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fleet-deploy/fleet/internal/tail"
	"github.com/fleet-deploy/fleet/runtime"
)

// Mode is how a run is shown.
type Mode int

const (
	// Auto picks Live when the output is a terminal, Plain otherwise.
	Auto Mode = iota
	// Plain prints one timestamped line per event, and no cursor
	// movement ever.
	Plain
	// Live redraws one line per host in place, on a terminal.
	Live
	// JSON prints one JSON event per line (docs/events.md).
	JSON
)

// Options configure a Renderer.
type Options struct {
	Out  io.Writer
	Mode Mode
	// Color turns on ANSI colours (Plain and Live). Layout does not
	// depend on it: NO_COLOR still gets the live view on a terminal.
	Color bool
	// Verbose shows every log line (Nix's build output included), not
	// only the script's log() messages.
	Verbose bool
	// LogDir, when set, receives one log file per host (HOST.log) with
	// every event and log line of that host, and _run.log with the
	// lines that concern no single host.
	LogDir string

	// Command ("run" or "plan"), Goal and Parallel describe the run in
	// its run_start event.
	Command  string
	Goal     string
	Parallel int
	DryRun   bool

	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Size returns the terminal's columns and rows (Live); the size of
	// Out when nil, 80x24 when Out is not a terminal.
	Size func() (cols, rows int)
	// Refresh is the period of the live view's redraws (at most this
	// often); 100ms when zero.
	Refresh time.Duration
}

// Renderer turns the events of a run into output. It is a
// runtime.Observer and a runtime.Progress, safe for concurrent use.
// Call Finish once when the run is over.
type Renderer struct {
	o     Options
	now   func() time.Time
	views []view

	mu        sync.Mutex
	start     time.Time
	sel       *runtime.Selection
	hosts     map[string]*hostState
	order     []*hostState
	steps     map[*runtime.Step]*stepState
	nextID    int
	firstFail *stepState
	finished  bool
	width     int // of the host column: the longest host name
}

var (
	_ runtime.Observer = (*Renderer)(nil)
	_ runtime.Progress = (*Renderer)(nil)
)

// hostState is what the views know of one host.
type hostState struct {
	name    string
	running []*stepState
	last    *stepState // the last step that ended
	failed  *stepState // the first step that failed
	ended   int        // steps ended
	times   map[string]time.Duration
	// before and after are the systems the host ran before the first
	// and after the last activation or rollback.
	before, after string
	warning       string // of the last activation, e.g. "switched, with failed units"
	activated     bool
	changed       bool
	staged        bool // a build or push of it ended well
	rebooted      bool // a reboot step of it restarted it
	rolledBack    bool // a rollback put another system in place
}

// stepState is one step in flight or done.
type stepState struct {
	id      int
	step    *runtime.Step
	host    *hostState
	start   time.Time
	elapsed time.Duration
	ended   bool
	err     error
	cause   string   // err without host and step
	log     []string // the last lines of the step's output

	done, total int64
	unit        string
	rate        float64 // per second, smoothed
	lastT       time.Time
	lastDone    int64
	shownJSON   time.Time // when the last step_progress was written
	shownPlain  time.Time
	shownLog    time.Time
}

// view is one way of showing the run. The Renderer calls its methods
// with its lock held, in the order things happen.
type view interface {
	runStart(r *Renderer)
	stepStart(r *Renderer, s *stepState)
	stepProgress(r *Renderer, s *stepState)
	stepEnd(r *Renderer, s *stepState)
	log(r *Renderer, host, source, msg string)
	finish(r *Renderer, sum *Summary)
}

// New makes a Renderer for a run of the selection and shows its start
// (the selected hosts, the skipped ones and why).
func New(o Options, sel *runtime.Selection) (*Renderer, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Command == "" {
		o.Command = "run"
	}
	if o.Mode == Auto {
		o.Mode = Plain
		if IsTerminal(o.Out) {
			o.Mode = Live
		}
	}
	if sel == nil {
		sel = &runtime.Selection{}
	}
	r := &Renderer{o: o, now: o.Now, sel: sel, hosts: map[string]*hostState{}, steps: map[*runtime.Step]*stepState{}}
	r.start = r.now()
	for _, h := range sel.Selected {
		r.host(h.Name)
	}
	switch o.Mode {
	case JSON:
		r.views = append(r.views, &jsonView{w: o.Out})
	case Live:
		r.views = append(r.views, newLiveView(r))
	default:
		r.views = append(r.views, &plainView{w: o.Out, st: style(o.Color)})
	}
	if o.LogDir != "" {
		lv, err := newLogDir(o.LogDir, sel)
		if err != nil {
			return nil, err
		}
		r.views = append(r.views, lv)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.views {
		v.runStart(r)
	}
	return r, nil
}

// host returns the state of the named host, adding it (in order of
// appearance) if it was not selected: a script may touch any host of
// the inventory. Steps without a host (sleep) belong to "".
func (r *Renderer) host(name string) *hostState {
	h, ok := r.hosts[name]
	if !ok {
		h = &hostState{name: name, times: map[string]time.Duration{}}
		r.hosts[name] = h
		if name != "" {
			r.order = append(r.order, h)
			r.width = max(r.width, Width(Sanitize(name)))
		}
	}
	return h
}

// hostWidth is the width of the host column.
func (r *Renderer) hostWidth() int { return max(1, r.width) }

// StepStarted implements runtime.Observer.
func (r *Renderer) StepStarted(st *runtime.Step) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	r.nextID++
	h := r.host(st.Host)
	s := &stepState{id: r.nextID, step: st, host: h, start: r.now()}
	r.steps[st] = s
	h.running = append(h.running, s)
	for _, v := range r.views {
		v.stepStart(r, s)
	}
}

// StepProgress implements runtime.Progress: done of total units
// (bytes, for a push) of the step are through.
func (r *Renderer) StepProgress(st *runtime.Step, done, total int64, unit string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.steps[st]
	if s == nil || s.ended || r.finished {
		return
	}
	now := r.now()
	if !s.lastT.IsZero() {
		if dt := now.Sub(s.lastT).Seconds(); dt > 0.05 && done >= s.lastDone {
			inst := float64(done-s.lastDone) / dt
			if s.rate == 0 {
				s.rate = inst
			} else {
				s.rate = 0.7*s.rate + 0.3*inst
			}
			s.lastT, s.lastDone = now, done
		}
	} else {
		if dt := now.Sub(s.start).Seconds(); dt > 0.05 {
			s.rate = float64(done) / dt
		}
		s.lastT, s.lastDone = now, done
	}
	s.done, s.total, s.unit = done, total, unit
	for _, v := range r.views {
		v.stepProgress(r, s)
	}
}

// StepFinished implements runtime.Observer.
func (r *Renderer) StepFinished(st *runtime.Step, err error, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	s := r.steps[st]
	if s == nil { // ended without a start: show it all the same
		r.nextID++
		h := r.host(st.Host)
		s = &stepState{id: r.nextID, step: st, host: h, start: r.now().Add(-d)}
		r.steps[st] = s
	}
	s.ended, s.elapsed, s.err = true, d, err
	h := s.host
	for i, x := range h.running {
		if x == s {
			h.running = append(h.running[:i], h.running[i+1:]...)
			break
		}
	}
	h.last = s
	h.ended++
	h.times[string(st.Action)] += d
	if err != nil {
		s.cause = err.Error()
		var he *runtime.HostError
		if errors.As(err, &he) {
			if he.Err != nil {
				s.cause = he.Err.Error()
			}
			if lines := tail.Split(he.Log, 20); len(lines) > 0 {
				s.log = lines
			}
		}
		if h.failed == nil {
			h.failed = s
		}
		if r.firstFail == nil {
			r.firstFail = s
		}
	} else if st.Action == "build" || st.Action == "push" {
		h.staged = true
	} else if st.Action == "reboot" {
		h.rebooted = h.rebooted || (st.Result != nil && st.Result.Rebooted)
	} else if res := st.Result; res != nil && (st.Action == "activate" || st.Action == "rollback") {
		if !h.activated {
			h.before = res.Previous
			h.activated = true
		}
		h.after = res.Current
		h.warning = res.Warning
		if st.Action == "activate" && res.Current != res.Previous {
			h.changed = true
		}
		if st.Action == "rollback" && res.Current != res.Previous {
			h.rolledBack = true
		}
	}
	for _, v := range r.views {
		v.stepEnd(r, s)
	}
}

// Log implements runtime.Observer: a message of the script's log(),
// for host or for the whole run when host is "".
func (r *Renderer) Log(host, msg string) {
	r.log(host, "script", msg)
}

// NixLog takes a line of Nix's build output. It is shown with -v, and
// kept in the log files of the hosts being built.
func (r *Renderer) NixLog(line string) {
	r.log("", "nix", line)
}

// StepLog takes a line of output of a step in flight: kept in the
// host's log file, shown with -v, and the last 20 lines are shown if
// the step fails without a log of its own.
func (r *Renderer) StepLog(st *runtime.Step, line string) {
	r.mu.Lock()
	s := r.steps[st]
	if s != nil {
		s.log = append(s.log, line)
		if len(s.log) > 20 {
			s.log = s.log[len(s.log)-20:]
		}
	}
	r.mu.Unlock()
	r.log(st.Host, "step", line)
}

func (r *Renderer) log(host, source, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	for _, v := range r.views {
		v.log(r, host, source, msg)
	}
}

// building lists the hosts with a build step in flight.
func (r *Renderer) building() []string {
	var out []string
	for _, h := range r.order {
		for _, s := range h.running {
			if s.step.Action == "build" {
				out = append(out, h.name)
				break
			}
		}
	}
	return out
}

// Finish ends the output with the summary of the run: err is what the
// run returned, interrupted says whether the user stopped it. It
// returns the summary.
func (r *Renderer) Finish(err error, interrupted bool) *Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return nil
	}
	sum := r.summary(err, interrupted)
	for _, v := range r.views {
		v.finish(r, sum)
	}
	r.finished = true
	return sum
}

// Summary is the outcome of a run.
type Summary struct {
	Result  string            `json:"result"` // ok, failed, interrupted
	Changed []string          `json:"changed"`
	Failed  map[string]string `json:"failed"` // host -> first failed step
	// Skipped are the selected hosts left out before anything was built
	// (fleet run --skip-unreachable), with why.
	Skipped map[string]string `json:"skipped,omitempty"`
	// Rebooted are the hosts a reboot step restarted, sorted.
	Rebooted []string      `json:"rebooted,omitempty"`
	Elapsed  time.Duration `json:"-"`
	Error    string        `json:"error,omitempty"`
	Hosts    []HostSummary `json:"hosts"`
	// Actions are the step kinds of the run, in the table's order.
	Actions []string `json:"-"`
	// FirstFailure is the first step that failed, if any.
	FirstFailure *Failure `json:"-"`
}

// HostSummary is one row of the summary table.
type HostSummary struct {
	Host string `json:"host"`
	// Result is changed, unchanged (activated the system it ran
	// already), rolled back (only a rollback changed its system), ok (steps ran, no activation), failed or not run (the
	// script gave it no step). A run cut short (interrupted, stopped,
	// failed) cannot say a host it never finished is ok: one none of
	// whose steps ran is not started, one whose system was built or
	// pushed but never activated is not activated.
	Result     string           `json:"result"`
	FailedStep string           `json:"failed_step,omitempty"`
	Steps      map[string]int64 `json:"steps_ms"` // time per step kind
	Previous   string           `json:"previous,omitempty"`
	Current    string           `json:"current,omitempty"`
	Warning    string           `json:"warning,omitempty"` // e.g. "switched, with failed units (…)"
	Rebooted   bool             `json:"rebooted,omitempty"`
	times      map[string]time.Duration
}

// Failure is a failed step as the summary recalls it.
type Failure struct {
	Host, Step, Error string
	Log               []string
}

// actionOrder is the order of step kinds in the summary table.
var actionOrder = []string{"build", "push", "upload-key", "activate", "reboot", "check", "run", "rollback"}

func (r *Renderer) summary(err error, interrupted bool) *Summary {
	sum := &Summary{Result: "ok", Changed: []string{}, Failed: map[string]string{}, Elapsed: r.now().Sub(r.start), Hosts: []HostSummary{}}
	switch {
	case interrupted:
		sum.Result = "interrupted"
	case err != nil:
		sum.Result = "failed"
	}
	if err != nil {
		sum.Error = err.Error()
	}
	// Hosts that failed without a failed step of their own (a strategy
	// did not start them: ordered()'s dependents of a failed host) are
	// failed hosts too, under the run's error's step ("rollout").
	var hf *runtime.HostFailures
	stepless := map[string]string{}
	if errors.As(err, &hf) {
		for _, he := range hf.Errs {
			if _, ok := stepless[he.Host]; !ok {
				stepless[he.Host] = he.Step
			}
		}
	}
	whole := err == nil && !interrupted // the script ran to its end
	seen := map[string]bool{}
	for _, h := range r.order {
		// A host rolled back to the system it started from (a failed
		// check's on_failure = "rollback") did not change.
		changed := h.changed && h.after != h.before
		row := HostSummary{Host: h.name, Steps: map[string]int64{}, times: h.times, Previous: h.before, Current: h.after, Warning: h.warning}
		for a, d := range h.times {
			row.Steps[a] = d.Milliseconds()
			seen[a] = true
		}
		switch {
		case h.failed != nil:
			row.Result, row.FailedStep = "failed", string(h.failed.step.Action)
			sum.Failed[h.name] = string(h.failed.step.Action)
		case stepless[h.name] != "":
			row.Result, row.FailedStep = "failed", stepless[h.name]
			sum.Failed[h.name] = stepless[h.name]
		case changed:
			row.Result = "changed"
		case h.rolledBack:
			row.Result = "rolled back"
		case h.activated:
			row.Result = "unchanged"
		case !whole && h.ended == 0:
			row.Result = "not started"
		case !whole && h.staged:
			row.Result = "not activated"
		case h.ended > 0:
			row.Result = "ok"
		default:
			row.Result = "not run"
		}
		if changed {
			sum.Changed = append(sum.Changed, h.name)
		}
		if h.rebooted {
			row.Rebooted = true
			sum.Rebooted = append(sum.Rebooted, h.name)
		}
		sum.Hosts = append(sum.Hosts, row)
	}
	for _, s := range r.sel.Skipped {
		if why, ok := strings.CutPrefix(s.Reason, runtime.Unreachable); ok {
			if sum.Skipped == nil {
				sum.Skipped = map[string]string{}
			}
			sum.Skipped[s.Host] = strings.TrimPrefix(strings.TrimPrefix(why, ":"), " ")
			sum.Hosts = append(sum.Hosts, HostSummary{Host: s.Host, Result: "unreachable, skipped", Steps: map[string]int64{}})
		}
	}
	sort.Strings(sum.Changed)
	sort.Strings(sum.Rebooted)
	for _, a := range actionOrder {
		if seen[a] {
			sum.Actions = append(sum.Actions, a)
			delete(seen, a)
		}
	}
	var rest []string
	for a := range seen {
		rest = append(rest, a)
	}
	sort.Strings(rest)
	sum.Actions = append(sum.Actions, rest...)
	if f := r.firstFail; f != nil {
		sum.FirstFailure = &Failure{Host: f.step.Host, Step: string(f.step.Action), Error: f.cause, Log: f.log}
	}
	return sum
}

// failedList renders the failed hosts as "b (activate), c (push)",
// unsanitized.
func (s *Summary) failedList() []string {
	var out []string
	for h, st := range s.Failed {
		out = append(out, h+" ("+st+")")
	}
	sort.Strings(out)
	return out
}

// hostLabel names a step's host in text views; steps of the whole run
// (sleep) have none.
func hostLabel(h string) string {
	if h == "" {
		return "-"
	}
	return h
}

// oneLine keeps the first line of a message, sanitized, for one-line
// views.
func oneLine(msg string) string {
	first, rest := firstLine(msg)
	if len(rest) > 0 {
		return Sanitize(first) + " …"
	}
	return Sanitize(strings.TrimSpace(first))
}
