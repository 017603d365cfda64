package runtime

import (
	"context"
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

type progressKey struct{}

// WithProgress returns a context whose long-running executor work
// reports its progress to fn. Run.Step gives every step such a context
// when its observer is a Progress.
func WithProgress(ctx context.Context, fn func(done, total int64, unit string)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ReportProgress tells the observer of the step running under ctx how
// far it has got; without one it does nothing. Executors call it.
func ReportProgress(ctx context.Context, done, total int64, unit string) {
	if fn, ok := ctx.Value(progressKey{}).(func(int64, int64, string)); ok {
		fn(done, total, unit)
	}
}

type logKey struct{}

// WithLog returns a context whose executor work reports messages (such
// as "waiting for the deploy started at … by …") to fn. Run.Step gives
// every step one that tells the observer, as the step's host.
func WithLog(ctx context.Context, fn func(msg string)) context.Context {
	return context.WithValue(ctx, logKey{}, fn)
}

// ReportLog tells the observer of the step running under ctx msg;
// without one it does nothing. Executors call it.
func ReportLog(ctx context.Context, msg string) {
	if fn, ok := ctx.Value(logKey{}).(func(string)); ok {
		fn(msg)
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
