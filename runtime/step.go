package runtime

import (
	"context"
	"sort"
	"time"

	"go.starlark.net/starlark"
)

// Action is what a step does. Its string is the "action" of a step in
// `fleet plan --json` and in the events, so the values are a contract.
type Action string

// The actions, one per step builtin.
const (
	ActionBuild     Action = "build"      // nix_build: build a host's system closure
	ActionPush      Action = "push"       // push: copy a closure to the host
	ActionActivate  Action = "activate"   // activate: switch the host to a closure
	ActionRollback  Action = "rollback"   // rollback: back to the previous generation
	ActionRun       Action = "run"        // run: a command on the host
	ActionCheck     Action = "check"      // check: a health check, retried
	ActionReboot    Action = "reboot"     // reboot: restart and wait for the host
	ActionUploadKey Action = "upload-key" // upload_keys: one key file
	ActionSleep     Action = "sleep"      // sleep: a pause of the rollout, no host
)

// Step is one action on one host, as planned and as executed. Its JSON
// form is part of the `fleet plan --json` contract: "host" and "action"
// are always present; the rest depend on the action.
type Step struct {
	Host    string   `json:"host"`
	Action  Action   `json:"action"`
	Goal    string   `json:"goal,omitempty"`
	Closure string   `json:"closure,omitempty"`
	Target  string   `json:"target,omitempty"`
	System  string   `json:"system,omitempty"`
	Build   string   `json:"build,omitempty"` // how the system is built
	Argv    []string `json:"argv,omitempty"`
	Sudo    bool     `json:"sudo,omitempty"`
	Confirm int      `json:"confirm,omitempty"` // activate: dead-man window, seconds
	Check   string   `json:"check,omitempty"`   // check: what is checked
	Seconds float64  `json:"seconds,omitempty"` // sleep, reboot's timeout
	// Generation: rollback to this system generation (0: the previous).
	Generation int `json:"generation,omitempty"`
	// IfNeeded: reboot only if the kernel, initrd or modules changed.
	IfNeeded bool     `json:"if_needed,omitempty"`
	Key      *KeyInfo `json:"key,omitempty"`   // upload-key
	Group    string   `json:"group,omitempty"` // e.g. "wave 1/2", from parallel(name=...)
	Limit    int      `json:"limit,omitempty"` // parallelism of the enclosing parallel()

	// Substitute: the push lets the host fetch from its substituters
	// first (Host.Substitute).
	Substitute bool `json:"substitute,omitempty"`

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
	// activate, rollback: the system profile's generation afterwards,
	// and a caveat of a success ("switched, with failed units").
	Generation int    `json:"generation,omitempty"`
	Warning    string `json:"warning,omitempty"`
	// reboot: whether the host restarted, and why (or why not, with
	// if_needed).
	Rebooted bool   `json:"rebooted,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// StepFunc does the work of one step through the run's Executor. The
// result it returns is the step's Result in a real run; a plan shows
// none. A step that reports progress gets its ProgressFunc from
// Run.Progress.
type StepFunc func(ctx context.Context, ex Executor) (*StepResult, error)

// Step performs st for the builtin running on th, the one way a builtin
// reaches machines: it refuses while fleet.star loads or after an
// interrupt, records st in program order, tells the observer, times do,
// keeps its result unless this is a plan, and counts a failure as the
// host's. It returns do's error.
func (r *Run) Step(th *starlark.Thread, st *Step, do StepFunc) error {
	if err := r.CheckDeploy(builtinName(th)); err != nil {
		return err
	}
	r.begin(th, st)
	start := time.Now()
	res, err := do(r.ctx, r.exec)
	if res != nil && !r.dryRun {
		st.Result = res
	}
	r.end(st, err, time.Since(start))
	return err
}

// Batch performs one piece of work that makes a step of each of steps,
// such as one Nix evaluation that builds many hosts, ordered as steps
// are. do returns each step's outcome (nil entries succeed) and the
// error of the whole, which Batch returns. With no steps, Batch only
// checks that machines may be touched.
func (r *Run) Batch(th *starlark.Thread, steps []*Step, do func(ctx context.Context, ex Executor) ([]error, error)) error {
	if err := r.CheckDeploy(builtinName(th)); err != nil {
		return err
	}
	if len(steps) == 0 {
		return nil
	}
	ts := stateOf(th)
	slot := ts.next
	ts.next++
	for i, st := range steps {
		r.place(ts, st, slot, i)
	}
	r.mu.Lock()
	r.steps = append(r.steps, steps...)
	r.mu.Unlock()
	for _, st := range steps {
		r.started(st)
	}
	start := time.Now()
	errs, err := do(r.ctx, r.exec)
	for i, st := range steps {
		var stepErr error
		if i < len(errs) {
			stepErr = errs[i]
		}
		r.end(st, stepErr, time.Since(start))
	}
	return err
}

// begin records that th starts st.
func (r *Run) begin(th *starlark.Thread, st *Step) {
	ts := stateOf(th)
	r.place(ts, st, ts.next)
	ts.next++
	r.mu.Lock()
	r.steps = append(r.steps, st)
	r.mu.Unlock()
	r.started(st)
}

// place gives st its position in program order, key being the thread's
// position followed by at. Steps inherit the group and parallelism of
// the parallel() they run in.
func (r *Run) place(ts *threadState, st *Step, at ...int) {
	st.key = append(append([]int(nil), ts.pos...), at...)
	if st.Group == "" {
		st.Group = ts.group
	}
	if st.Limit == 0 {
		st.Limit = ts.limit
	}
}

func (r *Run) started(st *Step) {
	if r.observer != nil {
		r.observer.StepStarted(st)
	}
}

// end reports the outcome of a step; a failure counts for its host.
func (r *Run) end(st *Step, err error, elapsed time.Duration) {
	if err != nil {
		he, ok := err.(*HostError)
		if !ok || he.Host != st.Host {
			he = &HostError{Host: st.Host, Step: string(st.Action), Err: err}
		}
		r.fail(he)
	}
	if r.observer != nil {
		r.observer.StepFinished(st, err, elapsed)
	}
}

// Progress returns the function that tells the run's observer how far
// st has got, or nil when the observer does not listen.
func (r *Run) Progress(st *Step) ProgressFunc {
	p, ok := r.observer.(Progress)
	if !ok {
		return nil
	}
	return func(done, total int64, unit string) { p.StepProgress(st, done, total, unit) }
}

// Steps returns the steps recorded so far, in program order.
func (r *Run) Steps() []*Step {
	r.mu.Lock()
	steps := append([]*Step(nil), r.steps...)
	r.mu.Unlock()
	sortSteps(steps)
	return steps
}

// builtinName is the name of the builtin running on th, for messages.
func builtinName(th *starlark.Thread) string {
	if th.CallStackDepth() == 0 {
		return "?"
	}
	return th.CallFrame(0).Name
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
