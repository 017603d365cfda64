package remote

// This file is Cmd and Run: one remote command in a session of its own,
// from the command line sent to the error returned, each step a function
// of its own (command lines, wiring the streams, starting, feeding stdin,
// waiting or stopping, telling the outcome).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fleet-deploy/fleet/internal/shell"
	"github.com/fleet-deploy/fleet/internal/tail"
)

// ExitError is a remote command that ran and exited non-zero (or was killed
// by a signal).
type ExitError struct {
	Host string // the host's name (Endpoint.Host)
	// Command is the command line, shell.Join(argv) with the sudo prefix
	// if any: `sudo -n --`, or `sudo -S --` with a SudoPassword (the
	// pid-reporting wrapper, sudo's prompt and start marker left out).
	Command string
	Code    int    // exit status; 128+n when killed by signal n
	Signal  string // signal name without "SIG" ("TERM"), when killed by one
	// Stderr is the end (at most 64 KiB) of the command's stderr.
	Stderr string
}

func (e *ExitError) Error() string {
	var b strings.Builder
	if e.Signal != "" {
		fmt.Fprintf(&b, "%s: %s: killed by signal SIG%s", e.Host, e.Command, e.Signal)
	} else {
		fmt.Fprintf(&b, "%s: %s: exit status %d", e.Host, e.Command, e.Code)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		const max = 2048
		if len(s) > max {
			s = "…" + s[len(s)-max:]
		}
		b.WriteString(": ")
		b.WriteString(s)
	}
	return b.String()
}

// Cmd is one remote command.
type Cmd struct {
	Argv []string
	// Sudo runs the command through sudo when the endpoint's user is not
	// root: `sudo -n --`, or with the endpoint's SudoPassword `sudo -S`
	// answering its prompt (see Run).
	Sudo   bool
	Stdin  io.Reader // nil: empty stdin
	Stdout io.Writer // nil: discarded
	Stderr io.Writer // nil: discarded (its end is still kept for ExitError)
}

const (
	stderrTail = 64 << 10
	// termGrace is how long a cancelled command gets between SIGTERM and
	// the closing of its session; closeGrace how long the server then gets
	// to confirm the close.
	termGrace  = 250 * time.Millisecond
	closeGrace = time.Second
)

// Run runs cmd in a new session and waits for it. The command line is
// shell.Join(argv), prefixed with `sudo -n --` for Sudo when the user is not
// root (and wrapped as the package documentation shows). At most
// MaxSessions-1 Runs are under way at once on a Conn; others wait.
//
// With Endpoint.SudoPassword set, Sudo runs `sudo -S` instead and writes
// the password to the session's stdin when (and only if) sudo prompts for
// it; Stdin is passed on to the command only once sudo has started it, so
// the command reads exactly Stdin. The password is never part of a command
// line or an error.
//
// A non-zero exit gives an *ExitError (a *SudoError when sudo wanted a
// password, or rejected SudoPassword); a dead connection an error wrapping
// ErrConnLost; a failure reading Stdin or writing Stdout/Stderr stops the
// command and is returned.
// When ctx is done the command gets SIGTERM (by an SSH signal request and
// by kill(1)), its session is closed after at most 250ms, and Run returns
// an error wrapping ctx.Err(). Stdout and Stderr are not written to after
// Run returns; Stdin may still be read once more if the command ended
// without reading all of it.
func (c *Conn) Run(ctx context.Context, cmd Cmd) error {
	notStarted, err := c.attempt(ctx, cmd, true)
	if notStarted {
		// The prepared session would not start the command: the server
		// closed it while it waited (sshd's ChannelTimeout). Once more,
		// in a new one; cmd's streams were not touched yet.
		_, err = c.attempt(ctx, cmd, false)
	}
	return err
}

// attempt is one attempt at Run, in the session Prepare opened if there is
// one and usePrepared. notStarted reports that the prepared session
// would not start the command, on a connection still alive.
func (c *Conn) attempt(ctx context.Context, cmd Cmd, usePrepared bool) (notStarted bool, err error) {
	r, err := c.newRun(cmd)
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, r.wrap(err)
	}
	sess, release, prepared, err := c.openSession(ctx, usePrepared)
	if err != nil {
		if ctx.Err() != nil {
			return false, r.wrap(ctx.Err())
		}
		return false, err
	}
	defer release()
	started, err := r.exec(ctx, sess)
	return prepared && !started && ctx.Err() == nil && c.Err() == nil, err
}

// Output runs argv and returns its stdout. A non-zero exit gives an
// *ExitError carrying the end of stderr.
func (c *Conn) Output(ctx context.Context, argv ...string) ([]byte, error) {
	var out bytes.Buffer
	err := c.Run(ctx, Cmd{Argv: argv, Stdout: &out})
	return out.Bytes(), err
}

// run is one Run under way.
type run struct {
	c   *Conn
	cmd Cmd

	sudo         bool   // run through sudo (Cmd.Sudo, and the user is not root)
	withPassword bool   // sudo -S, answering its prompt
	command      string // the command line errors show
	wrapped      string // the command line sent

	// Set by wire:
	tail    *tail.Buffer   // the end of stderr, for ExitError
	gate    *gate          // between the session and the caller's writers
	pid     *pidWriter     // first on stderr: takes the wrapper's pid line off
	sudoOut *sudoFilter    // next on stderr, withPassword only: takes sudo's lines off
	stdin   io.WriteCloser // the session's stdin, when anything is written to it

	rejected atomic.Bool // sudo prompted a second time: the password is wrong
}

// newRun builds cmd's command lines: the one shown and the one sent.
func (c *Conn) newRun(cmd Cmd) (*run, error) {
	r := &run{c: c, cmd: cmd}
	r.sudo = cmd.Sudo && c.ep.User != "root"
	r.withPassword = r.sudo && c.ep.SudoPassword != nil
	argv, shown := cmd.Argv, cmd.Argv
	switch {
	case r.withPassword:
		argv, shown = sudoArgv(argv)
	case r.sudo:
		argv = append([]string{"sudo", "-n", "--"}, argv...)
		shown = argv
	}
	var err error
	if r.command, err = shell.Join(shown...); err != nil {
		return nil, fmt.Errorf("ssh %s: %w", c.ep.name(), err)
	}
	if r.wrapped, err = wrapCommand(argv); err != nil {
		return nil, fmt.Errorf("ssh %s: %w", c.ep.name(), err)
	}
	return r, nil
}

// wrap is err as the failure of r's command.
func (r *run) wrap(err error) error {
	return fmt.Errorf("ssh %s: %s: %w", r.c.ep.name(), r.command, err)
}

// exec runs r in sess, which it closes, and waits for it; started
// reports whether the server started the command.
func (r *run) exec(ctx context.Context, sess *ssh.Session) (started bool, err error) {
	// runCtx is also cancelled, with the cause, when reading Stdin or
	// writing Stdout/Stderr fails: the command is then stopped rather than
	// fed a truncated stdin or left blocked on output nobody reads.
	runCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	if err := r.wire(sess, fail); err != nil {
		sess.Close()
		return false, r.wrap(err)
	}
	if err := sess.Start(r.wrapped); err != nil {
		sess.Close()
		r.gate.close()
		return false, r.startError(err)
	}
	finished := make(chan struct{})
	defer close(finished)
	r.feed(fail, finished)
	waitc := make(chan error, 1)
	go func() { waitc <- sess.Wait() }()

	select {
	case err := <-waitc:
		sess.Close()
		r.flush()
		r.gate.close()
		if err := r.localIOError(runCtx); err != nil {
			return true, err
		}
		return true, r.outcome(err)
	case <-runCtx.Done():
		r.stop(sess, waitc)
		if err := r.localIOError(runCtx); err != nil {
			return true, err
		}
		return true, r.wrap(ctx.Err())
	}
}

// wire connects sess to the caller's streams, through r's gate and
// filters; a failure of the caller's side calls fail.
func (r *run) wire(sess *ssh.Session, fail context.CancelCauseFunc) error {
	r.gate = &gate{fail: fail}
	r.tail = tail.NewBuffer(stderrTail)
	if r.cmd.Stdout != nil {
		sess.Stdout = r.gate.writer(r.cmd.Stdout, "stdout")
	}
	var stderr io.Writer = r.tail
	if r.cmd.Stderr != nil {
		stderr = io.MultiWriter(r.tail, r.cmd.Stderr)
	}
	errW := r.gate.writer(stderr, "stderr")
	if r.withPassword {
		r.sudoOut = newSudoFilter(errW)
		errW = r.sudoOut
	}
	r.pid = &pidWriter{w: errW, got: make(chan struct{})}
	sess.Stderr = r.pid
	if r.cmd.Stdin != nil || r.withPassword {
		var err error
		if r.stdin, err = sess.StdinPipe(); err != nil {
			return err
		}
	}
	return nil
}

// startError is the error of a session that would not start r's command.
func (r *run) startError(err error) error {
	if lost := r.c.checkLost(); lost != nil {
		return fmt.Errorf("%w (starting %s)", lost, r.command)
	}
	return fmt.Errorf("ssh %s: starting %s: %w", r.c.ep.name(), r.command, err)
}

// feed starts writing to the command's stdin: Cmd.Stdin, after sudo's
// password with one. It stops when finished is closed.
func (r *run) feed(fail context.CancelCauseFunc, finished <-chan struct{}) {
	switch {
	case r.withPassword:
		go answerSudo(r.stdin, r.sudoOut, r.c.ep.SudoPassword, r.cmd.Stdin, fail, finished, &r.rejected)
	case r.stdin != nil:
		go feedStdin(r.stdin, r.cmd.Stdin, fail)
	}
}

// flush passes on the stderr the filters still hold back; called when the
// command has ended.
func (r *run) flush() {
	r.pid.flush()
	if r.sudoOut != nil {
		r.sudoOut.flush()
	}
}

// stop ends a cancelled command. The "signal" request works for non-root
// logins only (sshd refuses it for root: "session signalling requires
// privilege separation"), so the command is also sent SIGTERM with kill(1)
// in a second session, using the pid the wrapper reported. Its session is
// closed after at most termGrace; the server then gets up to closeGrace to
// confirm the close, so that the session slot is really free again.
func (r *run) stop(sess *ssh.Session, waitc <-chan error) {
	exited := r.terminate(sess, waitc)
	sess.Close()
	if exited {
		r.flush()
	}
	r.gate.close()
	if !exited {
		t := time.NewTimer(closeGrace)
		select {
		case <-waitc:
		case <-t.C:
		case <-r.c.done:
		}
		t.Stop()
	}
}

// terminate sends the command SIGTERM both ways and waits up to termGrace
// for it to exit; it reports whether it did.
func (r *run) terminate(sess *ssh.Session, waitc <-chan error) (exited bool) {
	_ = sess.Signal(ssh.SIGTERM)
	grace, cancel := context.WithTimeout(context.Background(), termGrace)
	defer cancel()
	select {
	case <-r.pid.got:
	case <-waitc:
		return true
	case <-grace.Done():
	}
	if pid := r.pid.value(); pid > 0 {
		r.c.kill(pid, grace.Done())
	}
	select {
	case <-waitc:
		return true
	case <-grace.Done():
		return false
	}
}

// localIOError is the failure of the caller's Stdin, Stdout or Stderr
// that stopped the command, if one did.
func (r *run) localIOError(runCtx context.Context) error {
	var le *localIOError
	if cause := context.Cause(runCtx); errors.As(cause, &le) {
		return r.wrap(cause)
	}
	return nil
}

// outcome is Run's result for the session's end, err from Wait.
func (r *run) outcome(err error) error {
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return r.exitError(ee)
	}
	if lost := r.c.checkLost(); lost != nil {
		return fmt.Errorf("%w (running %s)", lost, r.command)
	}
	return r.wrap(err)
}

// exitError is a non-zero exit: an *ExitError, or a *SudoError when sudo
// wanted a password or rejected the one it was given.
func (r *run) exitError(ee *ssh.ExitError) error {
	ep := r.c.ep
	xe := &ExitError{Host: ep.name(), Command: r.command, Code: ee.ExitStatus(), Signal: ee.Signal(), Stderr: r.tail.String()}
	switch {
	case r.withPassword && (r.rejected.Load() || !r.sudoOut.hasStarted() && sudoRejected(xe.Stderr)):
		return &SudoError{Host: ep.name(), User: ep.User, Rejected: true, Exit: xe}
	case r.sudo && !r.withPassword && xe.Code == 1 && sudoWantsPassword(xe.Stderr):
		return &SudoError{Host: ep.name(), User: ep.User, Exit: xe}
	}
	return xe
}
