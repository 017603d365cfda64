package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"
)

const (
	sessionKey = "fleet.session"
	stateKey   = "fleet.thread"
)

// Session is the state of one evaluation of a fleet.star: the inventory
// declared while loading, and, once deploy(ctx) runs, the Executor, the
// run's settings and the steps performed. Builtins find it through their
// thread.
type Session struct {
	ctx      context.Context // cancelled to abort at once
	soft     context.Context // cancelled to stop starting new work
	loader   *loader
	deploy   bool // false while fleet.star loads: machines are off limits
	exec     Executor
	observer Observer
	goal     string
	parallel int
	dryRun   bool

	mu       sync.Mutex
	hosts    []*Host
	byName   map[string]*Host
	steps    []*Step
	failures []*HostError // every failed step, handled by the script or not
}

// threadState places a thread's steps in program order. A step recorded
// by a thread gets key pos+[next]; a parallel() call takes one slot and
// runs item i on a child thread whose pos is pos+[slot, i].
type threadState struct {
	pos   []int
	next  int
	group string
	limit int
}

// SessionOf returns the session a builtin runs in.
func SessionOf(th *starlark.Thread) *Session {
	s, _ := th.Local(sessionKey).(*Session)
	return s
}

// Context is the context of work in flight: it is cancelled only when
// the run is aborted (a second interrupt), so that a first interrupt lets
// running activations finish.
func (s *Session) Context() context.Context { return s.ctx }

// SoftContext is cancelled by the first interrupt: waits (sleep, retry
// intervals) end there.
func (s *Session) SoftContext() context.Context {
	if s.soft == nil {
		return s.ctx
	}
	return s.soft
}

// Stopping reports whether the run was interrupted: no new work starts.
func (s *Session) Stopping() bool { return s.SoftContext().Err() != nil }

// Goal is the default activation goal (--goal).
func (s *Session) Goal() string { return s.goal }

// Parallel is the default parallelism (-p).
func (s *Session) Parallel() int { return s.parallel }

// DryRun reports whether this is a plan.
func (s *Session) DryRun() bool { return s.dryRun }

// Executor returns the executor of the run.
func (s *Session) Executor() Executor { return s.exec }

// Hosts returns the inventory in declaration order.
func (s *Session) Hosts() []*Host {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Host(nil), s.hosts...)
}

// Resolve turns a path written in the file at pos (a starlark position
// filename) into an absolute path.
func (s *Session) Resolve(th *starlark.Thread, p string) string {
	return s.loader.resolve(callerFile(th), p)
}

// Display shortens an absolute path for messages: relative to the
// working directory when below it.
func (s *Session) Display(abs string) string { return s.loader.display(abs) }

// ProjectDir is the directory of the main fleet.star.
func (s *Session) ProjectDir() string { return s.loader.root }

// AddHost adds h to the inventory. It is only allowed while loading.
func (s *Session) AddHost(th *starlark.Thread, h *Host) error {
	if s.deploy {
		return fmt.Errorf("host(): hosts are declared while fleet.star loads, not inside deploy()")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.byName[h.Name]; ok {
		return fmt.Errorf("host(): a host named %q is already declared at %s", h.Name, prev.Pos)
	}
	s.hosts = append(s.hosts, h)
	s.byName[h.Name] = h
	return nil
}

// CheckDeploy returns an error if fn, a builtin that touches machines,
// is called while fleet.star is still loading.
func (s *Session) CheckDeploy(fn string) error {
	if !s.deploy {
		return fmt.Errorf("%s() touches machines, so it can only be called inside deploy(ctx), not while fleet.star loads", fn)
	}
	if s.Stopping() {
		return &Interrupted{What: fn + "()"}
	}
	return nil
}

// Deploying reports whether deploy(ctx) runs (rather than the file
// loading).
func (s *Session) Deploying() bool { return s.deploy }

// Interrupted is the error of work refused after an interrupt.
type Interrupted struct{ What string }

func (e *Interrupted) Error() string {
	return fmt.Sprintf("interrupted: %s not started", e.What)
}

// Is makes an Interrupted match context.Canceled (exit 130).
func (e *Interrupted) Is(target error) bool { return target == context.Canceled }

// Begin records that th starts step st and tells the observer. The
// caller must call End with the step's outcome.
func (s *Session) Begin(th *starlark.Thread, st *Step) *Step {
	ts := stateOf(th)
	st.key = append(append([]int(nil), ts.pos...), ts.next)
	ts.next++
	if st.Group == "" {
		st.Group = ts.group
	}
	if st.Limit == 0 {
		st.Limit = ts.limit
	}
	s.mu.Lock()
	s.steps = append(s.steps, st)
	s.mu.Unlock()
	if s.observer != nil {
		s.observer.StepStarted(st)
	}
	return st
}

// BeginBatch records one step per host for a batched action (one Nix
// evaluation for many hosts), ordered as the hosts are.
func (s *Session) BeginBatch(th *starlark.Thread, steps []*Step) {
	ts := stateOf(th)
	slot := ts.next
	ts.next++
	for i, st := range steps {
		st.key = append(append([]int(nil), ts.pos...), slot, i)
		if st.Group == "" {
			st.Group = ts.group
		}
		if st.Limit == 0 {
			st.Limit = ts.limit
		}
	}
	s.mu.Lock()
	s.steps = append(s.steps, steps...)
	s.mu.Unlock()
	if s.observer != nil {
		for _, st := range steps {
			s.observer.StepStarted(st)
		}
	}
}

// End reports the outcome of a step begun with Begin.
func (s *Session) End(st *Step, err error, elapsed time.Duration) {
	if err != nil {
		he, ok := err.(*HostError)
		if !ok || he.Host != st.Host {
			he = &HostError{Host: st.Host, Step: st.Action, Err: err}
		}
		s.mu.Lock()
		s.failures = append(s.failures, he)
		s.mu.Unlock()
	}
	if s.observer != nil {
		s.observer.StepFinished(st, err, elapsed)
	}
}

// ItemFailed records that the work of a parallel() item failed when
// the item is a host and its failure was not a step's (e.g. a
// strategy's fail()): the host still counts as failed for the run.
func (s *Session) ItemFailed(item starlark.Value, err error) {
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
	s.mu.Lock()
	s.failures = append(s.failures, &HostError{Host: h.Name, Step: "rollout", Err: errors.New(msg)})
	s.mu.Unlock()
}

// Log sends a message from the script to the observer.
func (s *Session) Log(host, msg string) {
	if s.observer != nil {
		s.observer.Log(host, msg)
	}
}

// Steps returns the steps recorded so far, in program order.
func (s *Session) Steps() []*Step {
	s.mu.Lock()
	steps := append([]*Step(nil), s.steps...)
	s.mu.Unlock()
	sortSteps(steps)
	return steps
}

// Fork makes the thread that runs item i of a parallel() call that took
// slot in th. group labels its steps (e.g. "wave 1/3"), limit is the
// call's parallelism. The child is cancelled with the session.
func (s *Session) Fork(th *starlark.Thread, slot, i int, group string, limit int) (*starlark.Thread, func()) {
	parent := stateOf(th)
	child := &threadState{
		pos:   append(append([]int(nil), parent.pos...), slot, i),
		group: parent.group,
		limit: limit,
	}
	if group != "" {
		if child.group != "" {
			child.group += " › " + group
		} else {
			child.group = group
		}
	}
	nt := s.newThread(fmt.Sprintf("%s/%d", th.Name, i), child)
	stop := context.AfterFunc(s.ctx, func() { nt.Cancel("interrupted") })
	return nt, func() { stop() }
}

// Slot reserves a position in th's program order for a parallel() call.
func (s *Session) Slot(th *starlark.Thread) int {
	ts := stateOf(th)
	slot := ts.next
	ts.next++
	return slot
}

func (s *Session) newThread(name string, ts *threadState) *starlark.Thread {
	th := &starlark.Thread{
		Name:  name,
		Load:  s.loader.load,
		Print: s.print,
	}
	th.SetLocal(sessionKey, s)
	th.SetLocal(stateKey, ts)
	limit(th, MaxSteps, "the script")
	return th
}

func (s *Session) print(th *starlark.Thread, msg string) {
	s.Log("", msg)
}

func stateOf(th *starlark.Thread) *threadState {
	ts, _ := th.Local(stateKey).(*threadState)
	if ts == nil {
		ts = &threadState{}
		th.SetLocal(stateKey, ts)
	}
	return ts
}

// callerFile is the starlark filename of the innermost Starlark frame
// that called the running builtin.
func callerFile(th *starlark.Thread) string {
	for i := 1; i < th.CallStackDepth(); i++ {
		fr := th.CallFrame(i)
		if f := fr.Pos.Filename(); f != "" && !strings.HasPrefix(f, "<") {
			return f
		}
	}
	return ""
}
