package executor

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/internal/tail"
	"github.com/fleet-deploy/fleet/runtime"
)

const (
	systemProfile = "/nix/var/nix/profiles/system"
	currentSystem = "/run/current-system"
)

// sessionLogMax is how much of a session's stderr (the switch's output)
// is kept for the step's log.
const sessionLogMax = 64 << 10

// interruptWait bounds how long an interrupted activation is waited for
// before fleet gives up and says it still runs.
const interruptWait = 2 * time.Minute

// Exit statuses of the session scripts (scripts.go).
const (
	exitSetup    = 111 // could not create /run/fleet or its files
	exitNoState  = 112 // no activation started in that state dir
	exitNoResult = 113 // the runner ended without a result
	exitLocked   = 75  // --no-wait and another deploy holds the host lock
)

// hostResult is the runner's result line: what the host ran before and
// runs after, and what the runner decided.
type hostResult struct {
	prev, cur     string
	prevGen, gen  int
	boot          string // the boot entry, where the host has one to read
	status        int    // switch-to-configuration's exit status
	decision      string // ok, unchanged, units-failed, switched-failed, failed[-restored], locked[-restored], not-a-system, profile-failed
	via           string // systemd, setsid
	log           string // the end of the switch's output
	armed         bool   // the dead-man window runs
	closure, goal string // what was activated
}

// parseResult finds the result line in a session's stdout.
func parseResult(out string) (*hostResult, error) {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "\t")
		if f[0] != "fleet-result" {
			continue
		}
		if len(f) != 9 {
			return nil, fmt.Errorf("malformed result line (%d fields)", len(f))
		}
		r := &hostResult{prev: f[1], cur: f[2], boot: f[5], decision: f[7], via: f[8]}
		r.prevGen, _ = strconv.Atoi(f[3])
		r.gen, _ = strconv.Atoi(f[4])
		var err error
		if r.status, err = strconv.Atoi(f[6]); err != nil {
			return nil, fmt.Errorf("malformed exit status %q", f[6])
		}
		return r, nil
	}
	return nil, errors.New("no result line")
}

// Activate makes closure h's system for o.Goal, in one session: the
// host lock, the profile (switch, boot), the switch (detached), and the
// truth afterwards, whatever the switch's exit status (scripts.go).
func (e *Executor) Activate(ctx context.Context, h *runtime.Host, closure string, o runtime.ActivateOptions) (*runtime.ActivateResult, error) {
	if !isStorePath(closure) {
		return nil, &runtime.HostError{Host: h.Name, Step: "activate", Err: fmt.Errorf("%q is not a /nix/store path", closure)}
	}
	m, op, err := e.machineOp(h)
	if err != nil {
		return nil, hostErr(h, "activate", err)
	}
	m.endAhead()
	if r := m.fromSeen(op, closure, o.Goal); r != nil {
		m.record(r)
		return m.judge("activate", r)
	}
	return m.activate(ctx, closure, o)
}

// hostSeen is what a push found the host running when the host had the
// closure already (pushScript's "fleet-has" line).
type hostSeen struct {
	closure, current, profile, link, boot, ok string
	op                                        int // the push's operation number
}

// fromSeen answers an activation of closure for goal from what the push
// just before it saw, without a session: the host runs (boots) closure
// as ActivateScript's own test would find, and no other operation on
// the host came between the two (op is the activation's number). It is
// nil, and the session decides, in every other case, and with
// --reactivate. What the push saw is used once.
//
// The session would test the same under the host lock; this reads it a
// moment earlier, without it. A host in another deploy's dead-man window
// does not pass (/run/fleet/ok names a system only once it is
// confirmed), nor one whose switch or boot another deploy started (that
// sets the profile first); a test switch another deploy starts after
// the push looked is that deploy's to report.
func (m *machine) fromSeen(op int, closure, goal string) *hostResult {
	m.rec.Lock()
	s := m.seen
	m.seen = nil
	m.rec.Unlock()
	if s == nil || s.op != op-1 || s.closure != closure || m.reactivate {
		return nil
	}
	same := false
	switch goal {
	case "switch":
		same = s.current == closure && s.profile == closure && s.ok == closure
	case "test":
		same = s.current == closure && s.ok == closure
	case "boot":
		same = s.profile == closure && (s.boot == "" || s.boot == closure)
	}
	if !same {
		return nil
	}
	gen := 0
	if g := genRE.FindStringSubmatch(s.link); g != nil {
		gen, _ = strconv.Atoi(g[1])
	}
	return &hostResult{prev: s.current, cur: s.current, prevGen: gen, gen: gen, boot: s.boot,
		decision: "unchanged", via: "none", closure: closure, goal: goal}
}

// unitName names the transient unit of the machine's next switch:
// prefix and the run id, then -2, -3, … for later ones in the same run,
// so that one never meets the name of the last (systemd unloads a
// unit a moment after it ends).
func (m *machine) unitName(prefix string) string {
	m.rec.Lock()
	defer m.rec.Unlock()
	m.units++
	if m.units == 1 {
		return prefix + m.runID
	}
	return fmt.Sprintf("%s%s-%d", prefix, m.runID, m.units)
}

// stateDir is the activation's directory on the host.
func (m *machine) stateDir(suffix string) string {
	return fmt.Sprintf("/run/fleet/%s-%s%s", m.runID, m.h.Name, suffix)
}

func (m *machine) activate(ctx context.Context, closure string, o runtime.ActivateOptions) (*runtime.ActivateResult, error) {
	goal := o.Goal
	dir := m.stateDir("")
	confirm := int(o.Confirm / time.Second)
	r, err := m.session(ctx, "activate", sessionArgs{dir: dir, closure: closure, goal: goal, confirm: confirm,
		unit: m.unitName("fleet-switch-"), bootloader: o.InstallBootloader, log: o.Log})
	if err != nil {
		return nil, err
	}
	m.record(r)
	res, err := m.judge("activate", r)
	if err != nil {
		return nil, err
	}
	if res.Warning != "" {
		o.Log.Report(res.Warning)
	}
	if r.armed {
		cctx := ctx
		if ctx.Err() != nil {
			// Interrupted, but the switch ended well: confirm it anyway
			// (bounded), rather than let the host roll itself back.
			var cancel context.CancelFunc
			cctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), interruptWait)
			defer cancel()
		}
		if err := m.confirm(cctx, dir, r.prev, o.Confirm, o.Log); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// record keeps what the host ran before this run (the first activation's
// previous system; the runner keeps it on the host too) and the
// generation this run added, which a rollback removes.
func (m *machine) record(r *hostResult) {
	m.rec.Lock()
	defer m.rec.Unlock()
	if !m.recorded {
		m.previous, m.recorded = r.prev, true
	}
	if r.gen != 0 && r.gen != r.prevGen && (r.decision == "ok" || r.decision == "units-failed" || r.decision == "switched-failed") {
		m.added = r.gen
	}
}

// judge turns the host's result into the step's: a success, a success
// with failed units, or an error that says what the host runs now.
func (m *machine) judge(step string, r *hostResult) (*runtime.ActivateResult, error) {
	res := &runtime.ActivateResult{Previous: r.prev, Current: r.cur, Generation: r.gen, Boot: r.boot}
	if r.goal == "boot" || r.goal == "dry-activate" {
		res.Current = r.prev
	}
	fail := func(err error) (*runtime.ActivateResult, error) {
		return nil, &runtime.HostError{Host: m.h.Name, Step: step, Err: err, Log: logTail(r.log)}
	}
	switch d := r.decision; {
	case d == "unchanged":
		return res, nil // it runs the closure already: not activated again
	case d == "ok":
		switch r.goal {
		case "switch", "test":
			if r.cur != r.closure {
				return fail(fmt.Errorf("switch-to-configuration %s exited 0 but /run/current-system is %q", r.goal, r.cur))
			}
		case "boot":
			if r.boot != "" && r.boot != r.closure {
				return fail(fmt.Errorf("switch-to-configuration boot exited 0 but the boot entry is %q", r.boot))
			}
		}
		return res, nil
	case d == "units-failed":
		res.Warning = fmt.Sprintf("switched, with failed units (switch-to-configuration %s exited with status %d)", r.goal, r.status)
		return res, nil
	case strings.HasPrefix(d, "locked"):
		return fail(fmt.Errorf("another switch is running on %s (switch-to-configuration's lock is held); nothing changed", m.h.Name))
	case d == "not-a-system":
		return fail(fmt.Errorf("%s is not a complete NixOS system (no nixos-version or bin/switch-to-configuration); nothing changed", r.closure))
	case d == "profile-failed":
		return fail(fmt.Errorf("setting the system profile failed (exit status %d); nothing changed", r.status))
	case d == "switched-failed":
		return fail(fmt.Errorf("switch-to-configuration %s exited with status %d; the host runs the new system, its profile is generation %d", r.goal, r.status, r.gen))
	}
	what := fmt.Sprintf("switch-to-configuration %s exited with status %d", r.goal, r.status)
	if r.status == 0 {
		what = fmt.Sprintf("switch-to-configuration %s exited 0 but the host does not run it (/run/current-system is %q)", r.goal, r.cur)
	}
	switch {
	case strings.HasSuffix(r.decision, "-restored"):
		what += fmt.Sprintf("; the profile is back at generation %d", r.gen)
	case r.goal == "switch" || r.goal == "boot":
		what += fmt.Sprintf("; the profile is generation %d", r.gen)
	}
	return fail(errors.New(what))
}

// sessionArgs are the arguments of ActivateScript.
type sessionArgs struct {
	dir, closure, goal string
	confirm            int
	unit               string
	bootloader         bool
	drop               int // generation to delete after a successful switch
	log                runtime.LogFunc
}

// session runs one activation session and returns the host's result.
// A dropped connection is collected over a new one; an interrupt waits,
// bounded, for the detached switch to end; neither touches the host.
func (m *machine) session(ctx context.Context, step string, a sessionArgs) (*hostResult, error) {
	drop := ""
	if a.drop > 0 {
		drop = strconv.Itoa(a.drop)
	}
	out := tail.NewBuffer(outputMax)
	stderr := newLineWriter(sessionLogMax, func(l string) { waitingLine(a.log, l) })
	err := m.host.Run(ctx, remote.Cmd{
		Argv: []string{"sh", "-c", ActivateScript, "fleet-activate", a.dir, a.closure, a.goal,
			strconv.Itoa(a.confirm), a.unit, m.holder, boolArg(m.noWait), boolArg(a.bootloader), drop, boolArg(m.reactivate)},
		Sudo: m.sudo(asRoot), Stdout: out, Stderr: stderr,
	})
	var r *hostResult
	switch {
	case err == nil:
		r, err = parseResult(out.String())
		if err != nil {
			return nil, m.stepErr(step, err, withoutSessionLines(stderr.String()))
		}
		r.log = withoutSessionLines(stderr.String())
	case ctx.Err() != nil:
		if r, err = m.interrupted(ctx, step, a); err != nil {
			return nil, err
		}
	case isConnErr(err):
		lost := err
		if r, err = m.collect(ctx, step, a.dir); err != nil {
			if exitCode(err) == exitNoState {
				return nil, m.stepErr(step, fmt.Errorf("%s, and the host has no record of the activation (it did not start, or /run was wiped)", m.scrub(lost)), "")
			}
			return nil, err
		}
	default:
		return nil, m.sessionErr(step, a.goal, err, stderr.String())
	}
	r.closure, r.goal = a.closure, a.goal
	r.armed = r.decision == "ok" && a.confirm > 0 && r.prev != "" && r.prev != a.closure && r.cur == a.closure
	return r, nil
}

// waitingLine shows the session's "waiting for the lock" lines.
func waitingLine(log runtime.LogFunc, l string) {
	if h, ok := strings.CutPrefix(l, "fleet-waiting "); ok {
		log.Report("waiting for the deploy " + holderText(h) + " to end")
	}
}

// holderText is how a lock holder line reads in a message.
func holderText(h string) string {
	if strings.TrimSpace(h) == "" {
		return "of another fleet run"
	}
	return strings.TrimSpace(h)
}

// sessionErr is the error of a session that exited without a result.
func (m *machine) sessionErr(step, goal string, err error, stderr string) error {
	var ee *remote.ExitError
	if !errors.As(err, &ee) {
		return m.stepErr(step, errors.New(m.scrub(err)), "")
	}
	switch ee.Code {
	case exitLocked:
		h := ""
		for _, l := range strings.Split(stderr, "\n") {
			if s, ok := strings.CutPrefix(l, "fleet-locked "); ok {
				h = s
			}
		}
		return m.stepErr(step, fmt.Errorf("%s is locked by the deploy %s (--no-wait)", m.h.Name, holderText(h)), "")
	}
	stderr = withoutSessionLines(stderr)
	switch ee.Code {
	case exitSetup:
		return m.stepErr(step, errors.New("could not set up /run/fleet on the host (exit status 111)"), stderr)
	case exitNoResult:
		return m.stepErr(step, fmt.Errorf("the detached switch-to-configuration %s ended without a result (exit status 113)", goal), stderr)
	}
	return m.stepErr(step, fmt.Errorf("the activation session exited with status %d", ee.Code), stderr)
}

// stepErr is err as the failure of step, with log's last lines.
func (m *machine) stepErr(step string, err error, log string) error {
	return &runtime.HostError{Host: m.h.Name, Step: step, Err: err, Log: logTail(log)}
}

// scrub is err's message without the script remote puts in it: the
// command line `sh -c 'SCRIPT' fleet-NAME ARGS` reads `fleet-NAME ARGS`.
func (m *machine) scrub(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "sh -c '"); i >= 0 {
		if j := strings.LastIndex(msg, "' fleet-"); j > i {
			msg = msg[:i] + msg[j+2:]
		}
	}
	return msg
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// interrupted waits, bounded and past the interrupt, for the detached
// activation to end, so that fleet reports what the host runs. The
// profile is the runner's business: nothing here touches it.
func (m *machine) interrupted(ctx context.Context, step string, a sessionArgs) (*hostResult, error) {
	a.log.Report(fmt.Sprintf("waiting for the activation on %s to end", m.h.Name))
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), interruptWait)
	defer cancel()
	r, err := m.collect(wctx, step, a.dir)
	switch {
	case err == nil:
		return r, nil
	case exitCode(err) == exitNoState:
		return nil, m.stepErr(step, fmt.Errorf("interrupted before the activation started on %s; nothing changed: %w", m.h.Name, context.Canceled), "")
	}
	return nil, m.stepErr(step, fmt.Errorf("interrupted: activation still running on %s (see /run/fleet there): %w", m.h.Name, context.Canceled), "")
}

// collect reconnects after the session was lost and waits, on the lock
// the runner holds, for its result.
func (m *machine) collect(ctx context.Context, step, dir string) (*hostResult, error) {
	var err error
	for delay := 500 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		out := tail.NewBuffer(outputMax)
		stderr := newLineWriter(sessionLogMax, nil)
		err = m.host.Run(ctx, remote.Cmd{Argv: []string{"sh", "-c", collectScript, "fleet-collect", dir},
			Sudo: m.sudo(asRoot), Stdout: out, Stderr: stderr})
		if err == nil {
			r, perr := parseResult(out.String())
			if perr != nil {
				return nil, m.stepErr(step, perr, withoutSessionLines(stderr.String()))
			}
			r.log = withoutSessionLines(stderr.String())
			return r, nil
		}
		var ee *remote.ExitError
		if errors.As(err, &ee) {
			return nil, m.stepErr(step, &exitErr{ee, "collecting the activation after the connection dropped: " + firstLine(strings.TrimSpace(ee.Stderr))}, "")
		}
		if ctx.Err() != nil || m.clock.Sleep(ctx, delay) != nil {
			return nil, m.stepErr(step, errors.New(m.scrub(err)), "")
		}
		if delay >= 5*time.Second {
			return nil, m.stepErr(step, fmt.Errorf("lost the connection during activation and could not reconnect: %s", m.scrub(err)), "")
		}
	}
}

var genRE = regexp.MustCompile(`^system-([0-9]+)-link$`)

// exitErr is a script's non-zero exit, told in words: remote's message
// would paste the script.
type exitErr struct {
	*remote.ExitError
	msg string
}

func (e *exitErr) Error() string { return e.msg }
func (e *exitErr) Unwrap() error { return e.ExitError }

// exitCode is the exit status of the remote command in err's chain, -1
// if there is none.
func exitCode(err error) int {
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return -1
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
