package runtime

import (
	"time"
)

// Observer receives the steps of a run as they start and end. The CLI's
// output (tty, plain, JSON) is an Observer; so is the journal.
type Observer interface {
	StepStarted(s *Step)
	StepFinished(s *Step, err error, elapsed time.Duration)
	Log(host, msg string)
}

// Progress is an optional part of an Observer: it hears how far a long
// step (a push) has got.
type Progress interface {
	StepProgress(s *Step, done, total int64, unit string)
}

// ProgressFunc hears how far a long step has got: done of total, in
// unit ("bytes"). Run.Progress makes one for a step; executors call it
// through Report, which a nil ProgressFunc ignores.
type ProgressFunc func(done, total int64, unit string)

// Report calls f, if there is one.
func (f ProgressFunc) Report(done, total int64, unit string) {
	if f != nil {
		f(done, total, unit)
	}
}

// LogFunc hears an executor's messages about a step of one host, such
// as "waiting for the deploy started at … by … to end"; builtins make
// one with Run.Log. A nil LogFunc ignores them.
type LogFunc func(msg string)

// Report calls f, if there is one.
func (f LogFunc) Report(msg string) {
	if f != nil {
		f(msg)
	}
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
