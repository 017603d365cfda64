package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

const (
	runKey   = "fleet.run"
	stateKey = "fleet.thread"
)

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
	// SecretKey keys the tags that outputs show of secrets (SecretTag):
	// the state directory's, so that tags compare across runs and plans
	// of one user and mean nothing elsewhere. Empty: no tags.
	SecretKey []byte
}

// Run is one evaluation of a Program's Starlark: the load that declares
// the inventory, or one deploy(ctx). It owns what that evaluation
// changes - the steps performed, the failures, the observer told of
// them - and what bounds it: the step and memory limits and the
// cancellation of its threads. Builtins find it through their thread
// (RunOf). A Run is used once; the Program it runs is never written to.
type Run struct {
	prog   *Program
	loader *loader // the program's while loading; a copy for a deploy

	ctx      context.Context // executor work; cancelled to abort at once
	soft     context.Context // cancelled by the first interrupt (Stop)
	stop     <-chan struct{} // RunOptions.Stop
	stopSoft context.CancelFunc
	threads  context.Context         // cancelled to stop every thread
	abort    context.CancelCauseFunc // cancels threads; the cause is their error
	watch    func() error            // stops the memory watch
	once     sync.Once
	memErr   error

	deploy   bool // false while fleet.star loads: machines are off limits
	exec     Executor
	observer Observer
	goal     string
	parallel int
	dryRun   bool
	// secretKey keys SecretTag.
	secretKey []byte

	mu       sync.Mutex
	hosts    []*Host // declared while loading
	byName   map[string]*Host
	steps    []*Step
	failures []*HostError // every failed step, handled by the script or not
}

func newRun(ctx context.Context, p *Program, l *loader) *Run {
	r := &Run{prog: p, loader: l, ctx: ctx}
	r.soft, r.stopSoft = context.WithCancel(ctx)
	r.threads, r.abort = context.WithCancelCause(ctx)
	r.watch = watchMemory(r.threads, func(msg string) { r.abort(errors.New(msg)) })
	return r
}

// newLoadRun is the run of loading p: it may declare hosts.
func newLoadRun(ctx context.Context, p *Program) *Run {
	r := newRun(ctx, p, p.loader)
	r.byName = map[string]*Host{}
	return r
}

// newDeployRun is the run of one deploy(ctx) of p. A strategy the
// script does not load itself is loaded by a copy of p's loader.
func newDeployRun(ctx context.Context, p *Program, o RunOptions) *Run {
	r := newRun(ctx, p, p.loader.fork())
	r.deploy = true
	r.exec, r.observer = o.Executor, o.Observer
	r.goal, r.parallel, r.dryRun = o.Goal, o.Parallel, o.DryRun
	r.secretKey = o.SecretKey
	if o.Stop != nil {
		r.stop = o.Stop
		go func() {
			select {
			case <-o.Stop:
				r.stopSoft()
			case <-r.soft.Done():
			}
		}()
	}
	return r
}

// stopWatch ends the memory watch and reports whether the run went over
// MaxMemory (a script may finish right after one huge allocation).
func (r *Run) stopWatch() error {
	r.once.Do(func() { r.memErr = r.watch() })
	return r.memErr
}

// finish releases the run's goroutines and contexts.
func (r *Run) finish() {
	r.stopWatch()
	r.stopSoft()
	r.abort(nil)
}

// call runs the function name(ctx) (deploy, or a test), or strategy's
// deploy, on the selection and returns the steps in program order.
func (r *Run) call(name, strategy string, sel *Selection) ([]*Step, error) {
	th, release := r.newThread("deploy", &threadState{})
	defer release()
	fn, err := r.prog.entry(r, th, name, strategy)
	if err != nil {
		return nil, err
	}
	_, err = starlark.Call(th, fn, starlark.Tuple{r.ctxValue(sel)}, nil)
	if merr := r.stopWatch(); merr != nil && err == nil {
		err = fmt.Errorf("%s: %w", r.prog.File, merr)
	}
	steps := r.Steps()
	if r.ctx.Err() != nil || r.Stopping() {
		return steps, &Interrupted{What: "the rest of the rollout"}
	}
	if err != nil {
		return steps, r.wrap(err)
	}
	r.mu.Lock()
	failures := append([]*HostError(nil), r.failures...)
	r.mu.Unlock()
	if len(failures) > 0 {
		// The script carried on past failed steps (parallel(collect=True));
		// the run still failed for those hosts.
		return steps, &HostFailures{Errs: failures}
	}
	return steps, nil
}

// ctxValue is the ctx value passed to deploy(ctx).
func (r *Run) ctxValue(sel *Selection) starlark.Value {
	ctx := starlarkstruct.FromStringDict(starlark.String("ctx"), starlark.StringDict{
		"hosts":     hostList(sel.Selected),
		"all_hosts": hostList(r.prog.hosts),
		"goal":      starlark.String(r.goal),
		"parallel":  starlark.MakeInt(r.parallel),
		"dry_run":   starlark.Bool(r.dryRun),
	})
	ctx.Freeze()
	return ctx
}

func hostList(hosts []*Host) *starlark.List {
	vs := make([]starlark.Value, len(hosts))
	for i, h := range hosts {
		vs[i] = h
	}
	return starlark.NewList(vs)
}

// wrap attaches the loader's sources to a Starlark error so that it can
// be printed with its line and caret.
func (r *Run) wrap(err error) error {
	return &ScriptError{err: err, src: r.loader.source, names: r.loader.universe.Keys()}
}

// RunOf returns the run a builtin runs in, nil on a thread fleet did not
// make.
func RunOf(th *starlark.Thread) *Run {
	r, _ := th.Local(runKey).(*Run)
	return r
}

// Program is the program the run evaluates. While loading, its
// inventory is not complete yet: values that need it (inventory())
// read it later, when a build encodes them.
func (r *Run) Program() *Program { return r.prog }

// Context is the context of work in flight: it is cancelled only when
// the run is aborted (a second interrupt), so that a first interrupt lets
// running activations finish.
func (r *Run) Context() context.Context { return r.ctx }

// SoftContext is cancelled by the first interrupt: waits (sleep, retry
// intervals) end there.
func (r *Run) SoftContext() context.Context { return r.soft }

// Stopping reports whether the run was interrupted: no new work starts.
// It looks at Stop itself, so that nothing starts once Stop is closed,
// not only once the goroutine that passes it on has run.
func (r *Run) Stopping() bool {
	select {
	case <-r.stop:
		r.stopSoft()
		return true
	default:
		return r.soft.Err() != nil
	}
}

// Goal is the default activation goal (--goal).
func (r *Run) Goal() string { return r.goal }

// Parallel is the default parallelism (-p); 0 while loading.
func (r *Run) Parallel() int { return r.parallel }

// DryRun reports whether this is a plan.
func (r *Run) DryRun() bool { return r.dryRun }

// Deploying reports whether deploy(ctx) runs (rather than the file
// loading).
func (r *Run) Deploying() bool { return r.deploy }

// Resolve turns a path written in the file of the calling Starlark
// frame into an absolute path.
func (r *Run) Resolve(th *starlark.Thread, p string) string {
	return r.loader.resolve(callerFile(th), p)
}

// Display shortens an absolute path for messages: relative to the
// working directory when below it.
func (r *Run) Display(abs string) string { return r.loader.display(abs) }

// AddHost adds h to the inventory. It is only allowed while loading.
func (r *Run) AddHost(th *starlark.Thread, h *Host) error {
	if r.deploy {
		return fmt.Errorf("host(): hosts are declared while fleet.star loads, not inside deploy()")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.byName[h.Name]; ok {
		return fmt.Errorf("host(): a host named %q is already declared at %s", h.Name, prev.Pos)
	}
	r.hosts = append(r.hosts, h)
	r.byName[h.Name] = h
	return nil
}

// CheckDeploy returns an error if fn, a builtin that touches machines,
// is called while fleet.star is still loading, or after an interrupt.
// Step does this check itself; builtins that need the run's settings
// before their step (or make no step) call it first.
func (r *Run) CheckDeploy(fn string) error {
	if !r.deploy {
		return fmt.Errorf("%s() touches machines, so it can only be called inside deploy(ctx), not while fleet.star loads", fn)
	}
	if r.Stopping() {
		return &Interrupted{What: fn + "()"}
	}
	return nil
}

// ItemFailed records that the work of a parallel() item failed when
// the item is a host and its failure was not a step's (e.g. a
// strategy's fail()): the host still counts as failed for the run.
func (r *Run) ItemFailed(item starlark.Value, err error) {
	h, ok := item.(*Host)
	if !ok {
		return
	}
	var he *HostError
	if errors.As(err, &he) {
		return // recorded when the step ended
	}
	var intr *Interrupted
	if errors.As(err, &intr) {
		return
	}
	msg := err.Error()
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		msg = ee.Msg
	}
	r.fail(&HostError{Host: h.Name, Step: "rollout", Err: errors.New(msg)})
}

func (r *Run) fail(he *HostError) {
	r.mu.Lock()
	r.failures = append(r.failures, he)
	r.mu.Unlock()
}

// Log sends a message from the script to the observer.
func (r *Run) Log(host, msg string) {
	if r.observer != nil {
		r.observer.Log(host, msg)
	}
}
