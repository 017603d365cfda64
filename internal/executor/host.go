package executor

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/internal/tail"
	"github.com/fleet-deploy/fleet/runtime"
)

// Host is one machine as the executor reaches it: over SSH (sshHost),
// or this machine itself (localHost). The Executor builds one per host
// and run, and every command of every operation goes through it.
type Host interface {
	// User is the user commands run as: the one the host really logs in
	// as (the target with ssh_config applied), or fleet's own user for
	// a local host.
	User() string
	// Run runs cmd, over the host's connection: dialled on first use,
	// and again after it was lost. cmd.Sudo runs the command through
	// sudo. A non-zero exit is a *remote.ExitError; any other error is
	// about reaching the host.
	Run(ctx context.Context, cmd remote.Cmd) error
	// Fresh runs cmd over a new connection, closed afterwards: proof
	// that the host accepts connections now (dead-man confirmation,
	// coming back from a reboot).
	Fresh(ctx context.Context, cmd remote.Cmd) error
	// Redial drops the connection; the next Run dials again.
	Redial()
	// Close closes the connection.
	Close() error
}

// newHost builds the Host that reaches h: this machine for a local
// deployment, else SSH, with ssh_config applied now, once for the run.
func newHost(o remote.Options, h *runtime.Host) (Host, error) {
	if isLocal(h) {
		return newLocalHost(h.Name), nil
	}
	return newSSHHost(o, h)
}

// machine is one host as the executor's operations see it: what
// fleet.star says about it, and the Host that reaches it. The
// operations (push.go, activate.go, ...) are its methods.
type machine struct {
	h      *runtime.Host
	runID  string
	clock  clock
	holder string // the host lock's holder line: when, who, which run
	noWait bool   // fail at once when another deploy holds the host lock
	// reactivate switches a host that already runs the closure again
	// (run --reactivate); without it such a host is left alone.
	reactivate bool

	// What this run did to the host, for Rollback: the system it ran
	// before the run's first activation, and the profile generation the
	// run added. rec guards them (a script may run steps on one host in
	// parallel).
	rec      sync.Mutex
	previous string
	recorded bool
	added    int
	units    int // transient units started, for their names
	// seen is what the last push found the host running, when the host
	// had the closure already (activate.go's fromSeen).
	seen *hostSeen
	// ahead is a push started before its closure was known (serveAhead).
	ahead   *serveProc
	aheadOK bool // serveAhead may start one (allowAhead, until takeAhead)

	ops int // operations on the host so far (Executor.machineOp; guarded by the Executor's mu)

	mu   sync.Mutex // guards host while Executor.machine builds it
	host Host       // set before the machine is handed out
}

// privilege says whether a command needs root.
type privilege bool

const (
	asUser privilege = false
	asRoot privilege = true
)

// needsSudo is the privilege rule: a command that needs root goes
// through sudo unless the user it runs as is root.
func needsSudo(user string) bool { return runtime.NeedsSudo(user) }

// sudo applies the privilege rule to a command of the machine's.
func (m *machine) sudo(p privilege) bool {
	return bool(p) && needsSudo(m.host.User())
}

// outputMax bounds what is kept of a remote command's stdout: its last
// outputMax bytes. fleet's own commands print little; a host that prints
// gigabytes must not take this machine's memory.
const outputMax = 1 << 20

// run runs argv on the machine and returns (the end of) its stdout. A
// non-zero exit is a *remote.ExitError carrying the tail of stderr.
func (m *machine) run(ctx context.Context, p privilege, stdin io.Reader, argv ...string) (string, error) {
	out := tail.NewBuffer(outputMax)
	err := m.host.Run(ctx, remote.Cmd{Argv: argv, Sudo: m.sudo(p), Stdin: stdin, Stdout: out})
	return out.String(), err
}

// fresh runs argv on the machine over a new connection (Host.Fresh) and
// returns its stdout.
func (m *machine) fresh(ctx context.Context, p privilege, argv ...string) (string, error) {
	out := tail.NewBuffer(outputMax)
	err := m.host.Fresh(ctx, remote.Cmd{Argv: argv, Sudo: m.sudo(p), Stdout: out})
	return out.String(), err
}

// readlink returns the target of a link on the machine, "" if there is
// none.
func (m *machine) readlink(ctx context.Context, args ...string) (string, error) {
	out, err := m.run(ctx, asUser, nil, append([]string{"readlink"}, args...)...)
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		return "", nil
	}
	return strings.TrimSpace(out), err
}

// prepare tells the machine's Host that a command will follow the one
// under way, so that it can open that command's session now (an SSH
// Host opens it in the background: one round trip fewer when the
// command comes). A Host without sessions ignores it.
func (m *machine) prepare() {
	if p, ok := m.host.(interface{ Prepare() }); ok {
		p.Prepare()
	}
}

// isConnErr reports whether err is about reaching the host rather than
// about the command.
func isConnErr(err error) bool {
	var ee *remote.ExitError
	return !errors.As(err, &ee)
}
