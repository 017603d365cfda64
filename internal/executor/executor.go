// Package executor is fleet's real Executor: it builds with the local
// Nix, and reaches hosts over one SSH connection each, through which it
// pushes closures (nix-store --export | nix-store --import) and activates
// them. Every remote command is an argv quoted by internal/shell.
package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/fleet-deploy/fleet/internal/remote"
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
}

// Executor implements runtime.Executor. It is safe for concurrent use.
type Executor struct {
	opts  Options
	runID string

	mu    sync.Mutex
	conns map[string]*hostConn
}

var _ runtime.Executor = (*Executor)(nil)

// New returns an Executor. Close it to drop its connections.
func New(o Options) *Executor {
	b := make([]byte, 6)
	rand.Read(b)
	return &Executor{opts: o, runID: hex.EncodeToString(b), conns: map[string]*hostConn{}}
}

// hostConn is the single connection to one host, dialed on first use and
// redialed after a drop.
type hostConn struct {
	mu   sync.Mutex
	conn *remote.Conn
	ep   remote.Endpoint
}

// conn returns how to run commands on h: its SSH connection, dialed on
// first use, or a local runner for a local deployment.
func (e *Executor) conn(ctx context.Context, h *runtime.Host) (runner, error) {
	if isLocal(h) {
		return localRunner{host: h.Name}, nil
	}
	return e.dial(ctx, h)
}

// dial returns the SSH connection to h, dialing it if needed.
func (e *Executor) dial(ctx context.Context, h *runtime.Host) (*remote.Conn, error) {
	e.mu.Lock()
	hc, ok := e.conns[h.Name]
	if !ok {
		hc = &hostConn{}
		e.conns[h.Name] = hc
	}
	e.mu.Unlock()

	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.conn != nil {
		return hc.conn, nil
	}
	ep, err := remote.Resolve(e.opts.SSH, remote.Target{Host: h.TargetHost, User: h.TargetUser, Port: h.TargetPort})
	if err != nil {
		return nil, err
	}
	c, err := remote.Dial(ctx, ep)
	if err != nil {
		return nil, err
	}
	hc.conn, hc.ep = c, ep
	return c, nil
}

// drop forgets c after it was lost, so that the next use redials.
func (e *Executor) drop(h *runtime.Host, c *remote.Conn) {
	e.mu.Lock()
	hc := e.conns[h.Name]
	e.mu.Unlock()
	if hc == nil {
		return
	}
	hc.mu.Lock()
	if hc.conn == c {
		hc.conn = nil
		c.Close()
	}
	hc.mu.Unlock()
}

// Close closes every connection.
func (e *Executor) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, hc := range e.conns {
		hc.mu.Lock()
		if hc.conn != nil {
			hc.conn.Close()
		}
		hc.mu.Unlock()
	}
	return nil
}

// run runs argv on h and returns its stdout. A non-zero exit is a
// *remote.ExitError carrying the tail of stderr.
func (e *Executor) run(ctx context.Context, h *runtime.Host, sudo bool, stdin io.Reader, argv ...string) (string, error) {
	c, err := e.conn(ctx, h)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	err = c.Run(ctx, remote.Cmd{Argv: argv, Sudo: sudo, Stdin: stdin, Stdout: &out})
	if rc, ok := c.(*remote.Conn); ok && errors.Is(err, remote.ErrConnLost) {
		e.drop(h, rc)
	}
	return out.String(), err
}

// fresh runs argv on h over a new SSH connection, closed afterwards,
// and returns its stdout: proof that the host still accepts connections
// (dead-man confirmation, coming back from a reboot).
func (e *Executor) fresh(ctx context.Context, h *runtime.Host, sudo bool, argv ...string) (string, error) {
	var r runner = localRunner{host: h.Name}
	if !isLocal(h) {
		ep, err := remote.Resolve(e.opts.SSH, remote.Target{Host: h.TargetHost, User: h.TargetUser, Port: h.TargetPort})
		if err != nil {
			return "", err
		}
		c, err := remote.Dial(ctx, ep)
		if err != nil {
			return "", err
		}
		defer c.Close()
		r = c
	}
	var out strings.Builder
	err := r.Run(ctx, remote.Cmd{Argv: argv, Sudo: sudo, Stdout: &out})
	return out.String(), err
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
		log = tail(string(ee.Stderr), 20)
	}
	return &runtime.HostError{Host: h.Name, Step: step, Err: err, Log: log}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// RunID names this run in state directories and the journal.
func (e *Executor) RunID() string { return e.runID }
