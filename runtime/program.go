package runtime

import (
	"context"
	"fmt"

	"go.starlark.net/starlark"
)

// Program is a loaded fleet.star: the inventory its host() calls
// declared, its globals, and the files it loaded. It is immutable once
// Load returns, so one Program can be planned and deployed any number
// of times; each Deploy or MakePlan gets a Run of its own.
type Program struct {
	File    string // the main file, as messages name it
	loader  *loader
	globals starlark.StringDict
	hosts   []*Host // in declaration order
	// warnings of the load (Warnings)
	warnings []Warning
}

// Load evaluates the fleet.star at file with the given predeclared
// names (fleet's builtins). Loading declares the inventory; it may not
// touch machines. The load runs under the same limits as a deploy, with
// MaxLoadSteps for the main thread.
func Load(ctx context.Context, file string, universe starlark.StringDict) (*Program, error) {
	l, err := newLoader(file, universe)
	if err != nil {
		return nil, err
	}
	p := &Program{File: l.display(l.main), loader: l}
	r := newLoadRun(ctx, p)
	defer r.finish()
	th, release := r.newThread("load", &threadState{})
	defer release()
	limit(th, MaxLoadSteps, "loading "+p.File)
	globals, err := l.execMain(th, l.main)
	if merr := r.stopWatch(); merr != nil && err == nil {
		err = fmt.Errorf("%s: %w", p.File, merr)
	}
	if err != nil {
		return nil, r.wrap(err)
	}
	p.globals, p.hosts = globals, r.hosts
	p.warnings = p.secretWarnings()
	return p, nil
}

// Globals are the names fleet.star defines.
func (p *Program) Globals() starlark.StringDict { return p.globals }

// Hosts returns the inventory in declaration order.
func (p *Program) Hosts() []*Host { return append([]*Host(nil), p.hosts...) }

// Select applies a --on selector to the inventory.
func (p *Program) Select(selector string) (*Selection, error) {
	return Select(p.Hosts(), selector)
}

// Deploy runs the script's deploy(ctx), or the stdlib default strategy
// when the script has none, on the selected hosts. It returns the steps
// performed in program order.
func (p *Program) Deploy(ctx context.Context, sel *Selection, o RunOptions) ([]*Step, error) {
	return p.Call(ctx, "deploy", sel, o)
}

// Call runs the script's global function name(ctx) the way Deploy runs
// deploy(ctx), in a fresh Run. Tests of strategies use it to run test_*
// functions.
func (p *Program) Call(ctx context.Context, name string, sel *Selection, o RunOptions) ([]*Step, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	r := newDeployRun(ctx, p, o)
	defer r.finish()
	return r.call(name, o.Strategy, sel)
}

// Check reports a goal or a parallelism no run can have, as a
// UsageError.
func (o RunOptions) Check() error {
	if err := CheckGoal(o.Goal); err != nil {
		return err
	}
	return CheckParallel(o.Parallel)
}

// CheckGoal and CheckParallel are Check's checks of one option each,
// for a command line that checks its flags as it parses them, before
// it shows or records anything of a run.
func CheckGoal(goal string) error {
	if !ValidGoal(goal) {
		return &UsageError{Msg: fmt.Sprintf("--goal %q: must be one of switch, boot, test, dry-activate", goal)}
	}
	return nil
}

// CheckParallel: see CheckGoal.
func CheckParallel(n int) error {
	if n < 1 {
		return &UsageError{Msg: fmt.Sprintf("--parallel %d: must be at least 1", n)}
	}
	return nil
}

// entry is the script's function name, or for deploy the stdlib
// strategy (the default one when the script has no deploy), loaded by
// the run's loader so that the Program's stays untouched.
func (p *Program) entry(r *Run, th *starlark.Thread, name, strategy string) (starlark.Callable, error) {
	v, ok := p.globals[name]
	if strategy != "" {
		ok = false
	} else {
		strategy = "@fleet//default.star"
	}
	if !ok && name == "deploy" {
		g, err := r.loader.load(th, strategy)
		if err != nil {
			return nil, r.wrap(err)
		}
		v, ok = g["deploy"]
	}
	if !ok {
		return nil, fmt.Errorf("%s: no function %s(ctx)", p.File, name)
	}
	fn, ok := v.(starlark.Callable)
	if !ok {
		return nil, fmt.Errorf("%s: %s must be a function %s(ctx), got %s", p.File, name, name, v.Type())
	}
	return fn, nil
}
