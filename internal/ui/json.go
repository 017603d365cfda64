package ui

import (
	"encoding/json"
	"io"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
)

// Version is the version of the JSON events ("v" in every event). It
// changes only when a field changes meaning or goes away; new fields
// and events may appear within a version.
const Version = 1

// The JSON events, one per line; docs/events.md documents them and
// docs/events.schema.json is their JSON Schema.

// RunStart is the first event of a run or plan.
type RunStart struct {
	V        int            `json:"v"`
	Event    string         `json:"event"` // run_start
	Time     string         `json:"time"`
	Command  string         `json:"command"` // run, plan
	Goal     string         `json:"goal,omitempty"`
	Parallel int            `json:"parallel,omitempty"`
	DryRun   bool           `json:"dry_run"`
	Selected []string       `json:"selected"`
	Skipped  []runtime.Skip `json:"skipped"`
}

// StepStart says a step began.
type StepStart struct {
	V     int           `json:"v"`
	Event string        `json:"event"` // step_start
	Time  string        `json:"time"`
	ID    int           `json:"id"`
	Host  string        `json:"host,omitempty"`
	Step  *runtime.Step `json:"step"`
}

// StepProgress says how far a long step has got.
type StepProgress struct {
	V         int     `json:"v"`
	Event     string  `json:"event"` // step_progress
	Time      string  `json:"time"`
	ID        int     `json:"id"`
	Host      string  `json:"host,omitempty"`
	Action    string  `json:"action"`
	Done      int64   `json:"done"`
	Total     int64   `json:"total"`
	Unit      string  `json:"unit"`
	Rate      float64 `json:"rate"` // units per second
	ElapsedMS int64   `json:"elapsed_ms"`
}

// StepEnd says a step ended, and how.
type StepEnd struct {
	V         int           `json:"v"`
	Event     string        `json:"event"` // step_end
	Time      string        `json:"time"`
	ID        int           `json:"id"`
	Host      string        `json:"host,omitempty"`
	Step      *runtime.Step `json:"step"`
	Result    string        `json:"result"` // ok, failed
	ElapsedMS int64         `json:"elapsed_ms"`
	Error     string        `json:"error,omitempty"`
	Log       []string      `json:"log,omitempty"`
}

// LogEvent is a line of a log: the script's log() ("script"), Nix's
// build output ("nix", with -v) or a step's output ("step", with -v).
type LogEvent struct {
	V       int    `json:"v"`
	Event   string `json:"event"` // log
	Time    string `json:"time"`
	Host    string `json:"host,omitempty"`
	Source  string `json:"source"`
	Message string `json:"message"`
}

// SummaryEvent is the last event of a run.
type SummaryEvent struct {
	V         int    `json:"v"`
	Event     string `json:"event"` // summary
	Time      string `json:"time"`
	ElapsedMS int64  `json:"elapsed_ms"`
	*Summary
}

type jsonView struct {
	w   io.Writer
	enc *json.Encoder
}

func (v *jsonView) emit(e any) {
	if v.enc == nil {
		v.enc = json.NewEncoder(v.w)
		v.enc.SetEscapeHTML(false)
	}
	v.enc.Encode(e)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (v *jsonView) runStart(r *Renderer) {
	e := RunStart{V: Version, Event: "run_start", Time: stamp(r.start), Command: r.o.Command, Goal: r.o.Goal,
		Parallel: r.o.Parallel, DryRun: r.o.DryRun, Selected: []string{}, Skipped: r.sel.Skipped}
	for _, h := range r.sel.Selected {
		e.Selected = append(e.Selected, h.Name)
	}
	if e.Skipped == nil {
		e.Skipped = []runtime.Skip{}
	}
	v.emit(e)
}

func (v *jsonView) stepStart(r *Renderer, s *stepState) {
	v.emit(StepStart{V: Version, Event: "step_start", Time: stamp(s.start), ID: s.id, Host: s.step.Host, Step: s.step})
}

// stepProgress writes the first report of a step and then at most one
// a second.
func (v *jsonView) stepProgress(r *Renderer, s *stepState) {
	now := r.now()
	if !s.shownJSON.IsZero() && now.Sub(s.shownJSON) < time.Second {
		return
	}
	s.shownJSON = now
	v.emit(StepProgress{V: Version, Event: "step_progress", Time: stamp(now), ID: s.id, Host: s.step.Host,
		Action: string(s.step.Action), Done: s.done, Total: s.total, Unit: s.unit, Rate: float64(int64(s.rate)),
		ElapsedMS: now.Sub(s.start).Milliseconds()})
}

func (v *jsonView) stepEnd(r *Renderer, s *stepState) {
	e := StepEnd{V: Version, Event: "step_end", Time: stamp(r.now()), ID: s.id, Host: s.step.Host, Step: s.step,
		Result: "ok", ElapsedMS: s.elapsed.Milliseconds()}
	if s.err != nil {
		e.Result, e.Error, e.Log = "failed", s.cause, s.log
	}
	v.emit(e)
}

func (v *jsonView) log(r *Renderer, host, source, msg string) {
	if source != "script" && !r.o.Verbose {
		return
	}
	v.emit(LogEvent{V: Version, Event: "log", Time: stamp(r.now()), Host: host, Source: source, Message: msg})
}

func (v *jsonView) finish(r *Renderer, sum *Summary) {
	v.emit(SummaryEvent{V: Version, Event: "summary", Time: stamp(r.now()), ElapsedMS: sum.Elapsed.Milliseconds(), Summary: sum})
}
