package runtime

import (
	"context"
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Program is an evaluated fleet.star: its inventory and its deploy
// entry point.
type Program struct {
	File    string
	session *Session
	globals starlark.StringDict
}

// Load evaluates the fleet.star at file with the given predeclared
// names (fleet's builtins). Loading declares the inventory; it may not
// touch machines.
func Load(ctx context.Context, file string, universe starlark.StringDict) (*Program, error) {
	l, err := newLoader(file, universe)
	if err != nil {
		return nil, err
	}
	s := &Session{ctx: ctx, loader: l, byName: map[string]*Host{}}
	th := s.newThread("load", &threadState{})
	stop := context.AfterFunc(ctx, func() { th.Cancel("interrupted") })
	defer stop()
	limit(th, MaxLoadSteps, "loading "+l.display(l.main))
	stopWatch := watchMemory(ctx, th)
	abs := l.main
	globals, err := l.execMain(th, abs)
	if merr := stopWatch(); merr != nil && err == nil {
		err = fmt.Errorf("%s: %w", l.display(abs), merr)
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	return &Program{File: l.display(abs), session: s, globals: globals}, nil
}

// Globals are the names fleet.star defines.
func (p *Program) Globals() starlark.StringDict { return p.globals }

// Hosts returns the inventory in declaration order.
func (p *Program) Hosts() []*Host { return p.session.Hosts() }

// Select applies a --on selector to the inventory.
func (p *Program) Select(selector string) (*Selection, error) {
	return Select(p.Hosts(), selector)
}

// RunOptions configure one deploy.
type RunOptions struct {
	Executor Executor
	// Stop, when closed, interrupts the run gently: nothing new starts,
	// work in flight finishes. Cancelling the context aborts at once.
	Stop     <-chan struct{}
	Observer Observer
	Goal     string
	Parallel int
	DryRun   bool
	// Strategy, when set, names a stdlib file ("@fleet//keys.star")
	// whose deploy(ctx) runs instead of the script's.
	Strategy string
}

// Deploy runs the script's deploy(ctx), or the stdlib default strategy
// when the script has none, on the selected hosts. It returns the steps
// performed in program order.
func (p *Program) Deploy(ctx context.Context, sel *Selection, o RunOptions) ([]*Step, error) {
	return p.Call(ctx, "deploy", sel, o)
}

// Call runs the script's global function name(ctx) the way Deploy runs
// deploy(ctx). Tests of strategies use it to run test_* functions.
func (p *Program) Call(ctx context.Context, name string, sel *Selection, o RunOptions) ([]*Step, error) {
	if !ValidGoal(o.Goal) {
		return nil, &UsageError{Msg: fmt.Sprintf("--goal %q: must be one of switch, boot, test, dry-activate", o.Goal)}
	}
	if o.Parallel < 1 {
		return nil, &UsageError{Msg: fmt.Sprintf("--parallel %d: must be at least 1", o.Parallel)}
	}
	s := p.session
	s.ctx, s.deploy = ctx, true
	soft, cancelSoft := context.WithCancel(ctx)
	defer cancelSoft()
	s.soft = soft
	if o.Stop != nil {
		go func() {
			select {
			case <-o.Stop:
				cancelSoft()
			case <-soft.Done():
			}
		}()
	}
	s.exec, s.observer = o.Executor, o.Observer
	s.goal, s.parallel, s.dryRun = o.Goal, o.Parallel, o.DryRun

	th := s.newThread("deploy", &threadState{})
	stop := context.AfterFunc(ctx, func() { th.Cancel("interrupted") })
	defer stop()

	fn, err := p.entry(th, name, o.Strategy)
	if err != nil {
		return nil, err
	}
	_, err = starlark.Call(th, fn, starlark.Tuple{p.context(sel)}, nil)
	steps := s.Steps()
	if ctx.Err() != nil || s.Stopping() {
		return steps, &Interrupted{What: "the rest of the rollout"}
	}
	if err != nil {
		return steps, s.wrap(err)
	}
	s.mu.Lock()
	failures := append([]*HostError(nil), s.failures...)
	s.mu.Unlock()
	if len(failures) > 0 {
		// The script carried on past failed steps (parallel(collect=True));
		// the run still failed for those hosts.
		return steps, &HostFailures{Errs: failures}
	}
	return steps, nil
}

// entry is the script's deploy function or the stdlib default.
func (p *Program) entry(th *starlark.Thread, name, strategy string) (starlark.Callable, error) {
	v, ok := p.globals[name]
	if strategy != "" {
		ok = false
	} else {
		strategy = "@fleet//default.star"
	}
	if !ok && name == "deploy" {
		g, err := p.session.loader.load(th, strategy)
		if err != nil {
			return nil, p.session.wrap(err)
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

// context is the ctx value passed to deploy(ctx).
func (p *Program) context(sel *Selection) starlark.Value {
	hosts := make([]starlark.Value, len(sel.Selected))
	for i, h := range sel.Selected {
		hosts[i] = h
	}
	all := p.Hosts()
	allv := make([]starlark.Value, len(all))
	for i, h := range all {
		allv[i] = h
	}
	s := p.session
	ctx := starlarkstruct.FromStringDict(starlark.String("ctx"), starlark.StringDict{
		"hosts":     starlark.NewList(hosts),
		"all_hosts": starlark.NewList(allv),
		"goal":      starlark.String(s.goal),
		"parallel":  starlark.MakeInt(s.parallel),
		"dry_run":   starlark.Bool(s.dryRun),
	})
	ctx.Freeze()
	return ctx
}

// wrap attaches the loader's sources to a Starlark error so that it can
// be printed with its line and caret.
func (s *Session) wrap(err error) error {
	return &ScriptError{err: err, src: s.loader.source, names: s.loader.universe.Keys()}
}
