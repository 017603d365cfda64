// Package executor is fleet's real Executor: it builds with the local
// Nix, and reaches each host through one Host (host.go), built the
// first time a step needs the host and kept for the run: an SSH
// connection (ssh.go), or this machine itself for an allow_local host
// (local.go).
//
// The operations — push (push.go: one `nix-store --serve --write` per
// host, fed from the run's one local metadata query in pathinfos.go),
// activate (activate.go, its remote scripts in scripts.go), the dead-man
// confirmation and rollback (rollback.go), run and exec (run.go), checks
// (check.go), reboot (reboot.go) and keys (keys.go) — are methods of
// machine, the executor's view of one host, and run their commands only
// through its Host. They are the same code over SSH, locally and, in the
// tests, over a fake Host that keeps a NixOS machine's state in memory.
// fleet doctor (doctor.go) diagnoses a
// host over a connection of its own, from the same resolved endpoint and
// privilege rule; fleet run's reachability check (reach.go) dials each
// host the same way, once. fleet generations and rollback --to
// (generations.go) read and switch the system profile's generations. Every remote command is an argv: internal/remote quotes
// it with internal/shell.
package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/internal/tail"
	"github.com/fleet-deploy/fleet/runtime"
)

// Options configure an Executor.
type Options struct {
	// SSH settings: ssh_config files, known hosts, host key policy.
	SSH remote.Options
	// Overrides replace inputs of the flakes nixos_system() evaluates,
	// by input name, with flake references (like nix --override-input).
	Overrides map[string]string
	// Builders is passed to Nix as --builders when non-empty.
	Builders string
	// Log, when set, receives Nix's build output line by line.
	Log func(line string)
	// NoWait makes an activation fail at once when another deploy holds
	// the host's lock, instead of waiting for it (run --no-wait).
	NoWait bool
	// Reactivate activates a host that already runs (or boots) the
	// closure again, instead of reporting it unchanged (run --reactivate).
	Reactivate bool
	// EvalLimit is the most hosts one Nix evaluator process gets
	// (chunks.go); 0 means what this machine's memory holds.
	EvalLimit int
	// Closures, when set, are the systems to deploy, by host name (fleet
	// run --closures, closures.go): Build returns them and evaluates
	// nothing.
	Closures map[string]string
}

// Executor implements runtime.Executor. It is safe for concurrent use.
type Executor struct {
	opts   Options
	runID  string
	holder string // "started at TIME by USER@HOST (run ID)", for host locks
	clock  clock
	// procs, when set, is how many evaluator processes run at once
	// (tests); else one per core.
	procs int
	// newHost builds the Host of a host the first time a step needs it;
	// the tests put a fake here.
	newHost func(*runtime.Host) (Host, error)

	// paths is the local metadata of what the run pushes (push.go).
	paths pathInfos

	mu       sync.Mutex
	machines map[string]*machine // by host name
}

var _ runtime.Executor = (*Executor)(nil)

// New returns an Executor. Close it to drop its connections.
func New(o Options) *Executor {
	b := make([]byte, 6)
	rand.Read(b)
	id := hex.EncodeToString(b)
	return &Executor{
		opts:     o,
		runID:    id,
		holder:   holderLine(id, time.Now()),
		clock:    realClock{},
		newHost:  func(h *runtime.Host) (Host, error) { return newHost(o.SSH, h) },
		machines: map[string]*machine{},
	}
}

// machine returns h's machine, building its Host on first use: once per
// host and run, whichever step comes first. A Host that cannot be built
// (an ssh_config error) is tried again by the next step.
//
// Any operation but a push first ends a push started ahead and not
// taken yet (serveAhead): its session would hold one of the few the
// host allows, and the operation may be what the push waits for.
func (e *Executor) machine(h *runtime.Host) (*machine, error) {
	m, _, err := e.machineOp(h)
	if m != nil {
		m.endAhead()
	}
	return m, err
}

// machineOp is machine, and the number of this operation on the host:
// every operation on the host, of any kind, is numbered in turn, so that
// one can tell whether another came between two (seen, activate.go).
func (e *Executor) machineOp(h *runtime.Host) (*machine, int, error) {
	e.mu.Lock()
	m, ok := e.machines[h.Name]
	if !ok {
		m = &machine{h: h, runID: e.runID, clock: e.clock, holder: e.holder, noWait: e.opts.NoWait, reactivate: e.opts.Reactivate}
		e.machines[h.Name] = m
	}
	m.ops++
	op := m.ops
	e.mu.Unlock()

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.host == nil {
		host, err := e.newHost(h)
		if err != nil {
			return nil, op, err
		}
		m.host = host
	}
	return m, op, nil
}

// Close closes every host's connection.
func (e *Executor) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ahead []*serveProc
	for _, m := range e.machines {
		if p := m.takeAhead(); p != nil {
			ahead = append(ahead, p)
		}
		m.mu.Lock()
		if m.host != nil {
			m.host.Close()
		}
		m.mu.Unlock()
	}
	for _, p := range ahead { // their connections are closed: they end at once
		p.end()
	}
	return nil
}

// holderLine says whose deploy holds a lock: when it started, who runs
// it where, and its run id. It is one line of printable characters.
func holderLine(id string, t time.Time) string {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	line := fmt.Sprintf("started at %s by %s@%s (run %s)", t.UTC().Format(time.RFC3339), who, host, id)
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, line)
}

// Holder is the line this run leaves in the locks it holds.
func (e *Executor) Holder() string { return e.holder }

// RunID names this run in state directories and the journal.
func (e *Executor) RunID() string { return e.runID }

// Sleep waits for d or until ctx is done.
func (e *Executor) Sleep(ctx context.Context, d time.Duration) error {
	return e.clock.Sleep(ctx, d)
}

// clock is the time the executor's waits and retry loops run on: the
// real one, or in the tests one that moves on as soon as it is asked to
// wait, so that a loop of retries runs through at once.
type clock interface {
	Now() time.Time
	// Sleep waits for d; it returns ctx.Err() if ctx is done first.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hostErr wraps err as the failure of step on h.
func hostErr(h *runtime.Host, step string, err error) error {
	if err == nil {
		return nil
	}
	if he, ok := err.(*runtime.HostError); ok {
		return he
	}
	log := ""
	if ee, ok := err.(*remote.ExitError); ok {
		log = logTail(ee.Stderr)
	}
	return &runtime.HostError{Host: h.Name, Step: step, Err: err, Log: log}
}

// logTail is the end of a command's output that a HostError keeps: its
// last 20 lines.
func logTail(s string) string { return strings.TrimSpace(tail.Lines(s, 20)) }
