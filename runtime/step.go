package runtime

import (
	"context"
	"sort"
	"time"
)

// Step is one action on one host, as planned and as executed. Its JSON
// form is part of the `fleet plan --json` contract: "host" and "action"
// are always present; the rest depend on the action.
type Step struct {
	Host    string   `json:"host"`
	Action  string   `json:"action"` // build, push, activate, rollback, run, check, sleep
	Goal    string   `json:"goal,omitempty"`
	Closure string   `json:"closure,omitempty"`
	Target  string   `json:"target,omitempty"`
	System  string   `json:"system,omitempty"`
	Build   string   `json:"build,omitempty"` // how the system is built
	Argv    []string `json:"argv,omitempty"`
	Sudo    bool     `json:"sudo,omitempty"`
	Confirm int      `json:"confirm,omitempty"` // activate: dead-man window, seconds
	Check   string   `json:"check,omitempty"`   // check: what is checked
	Seconds float64  `json:"seconds,omitempty"` // sleep
	Key     *KeyInfo `json:"key,omitempty"`     // upload-key
	Group   string   `json:"group,omitempty"`   // e.g. "wave 1/2", from parallel(name=...)
	Limit   int      `json:"limit,omitempty"`   // parallelism of the enclosing parallel()

	// Result is filled in when a real step ends.
	Result *StepResult `json:"result,omitempty"`

	key []int // position in program order, see threadState
}

// KeyInfo describes an uploaded key without its content.
type KeyInfo struct {
	Dest   string `json:"dest"`
	Owner  string `json:"owner"`
	Group  string `json:"group"`
	Mode   string `json:"mode"`
	Source string `json:"source"`         // text, file PATH, command
	Hash   string `json:"hash,omitempty"` // of the content, when known
}

// StepResult is what a finished step did.
type StepResult struct {
	Paths    int    `json:"paths,omitempty"`    // push: paths in the closure
	Missing  int    `json:"missing,omitempty"`  // push: paths copied
	Bytes    int64  `json:"bytes,omitempty"`    // push: bytes sent
	Previous string `json:"previous,omitempty"` // activate: system before
	Current  string `json:"current,omitempty"`  // activate: system after
	ExitCode int    `json:"exit_code,omitempty"`
}

// Observer receives the steps of a run as they start and end. The CLI's
// output (tty, plain, JSON) is an Observer; so is the journal.
type Observer interface {
	StepStarted(s *Step)
	StepFinished(s *Step, err error, elapsed time.Duration)
	Log(host, msg string)
}

// sortSteps orders steps by program order: the order a sequential reading
// of the script would perform them, with the items of a parallel() in
// item order. This makes plans deterministic whatever the scheduling.
func sortSteps(steps []*Step) {
	sort.SliceStable(steps, func(i, j int) bool { return lessKey(steps[i].key, steps[j].key) })
}

func lessKey(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// Progress is an optional part of an Observer: it hears how far a long
// step (a push) has got.
type Progress interface {
	StepProgress(s *Step, done, total int64, unit string)
}

type progressKey struct{}

// WithProgress returns a context whose long-running executor work
// reports its progress to fn.
func WithProgress(ctx context.Context, fn func(done, total int64, unit string)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ReportProgress tells the observer of the step running under ctx how
// far it has got; without one it does nothing.
func ReportProgress(ctx context.Context, done, total int64, unit string) {
	if fn, ok := ctx.Value(progressKey{}).(func(int64, int64, string)); ok {
		fn(done, total, unit)
	}
}

// StepContext is the context for the executor work of step st: it
// carries progress reports to the observer, if it listens.
func (s *Session) StepContext(st *Step) context.Context {
	p, ok := s.observer.(Progress)
	if !ok {
		return s.ctx
	}
	return WithProgress(s.ctx, func(done, total int64, unit string) { p.StepProgress(st, done, total, unit) })
}

// Fanout is an Observer that tells every one of obs, in order.
func Fanout(obs ...Observer) Observer { return fanout(obs) }

type fanout []Observer

func (f fanout) StepStarted(s *Step) {
	for _, o := range f {
		o.StepStarted(s)
	}
}

func (f fanout) StepFinished(s *Step, err error, d time.Duration) {
	for _, o := range f {
		o.StepFinished(s, err, d)
	}
}

func (f fanout) Log(host, msg string) {
	for _, o := range f {
		o.Log(host, msg)
	}
}

// StepProgress passes progress to those that listen.
func (f fanout) StepProgress(s *Step, done, total int64, unit string) {
	for _, o := range f {
		if p, ok := o.(Progress); ok {
			p.StepProgress(s, done, total, unit)
		}
	}
}
