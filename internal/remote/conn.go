// Package remote is fleet's SSH transport: one SSH connection per host for a
// whole run, multiplexing every remote command over it as separate sessions.
//
// Resolve applies ssh_config to a Target (ProxyJump included), Dial
// connects (through jump hosts, retrying what may pass, at most
// MaxConcurrentHandshakes at once; ssh-agent and identity files,
// known_hosts verification, keepalives), and Conn.Run runs one command per
// session; the command line is always built with shell.Join, so argv
// elements arrive intact. Sudo commands run `sudo -n`, or `sudo -S`
// answering its prompt with Endpoint.SudoPassword (see sudo.go).
//
// Each command is run as
//
//	/bin/sh -c 'printf '\''fleet-remote-pid %d\n'\'' "$$" >&2 && exec "$@"' sh ARGV...
//
// (all of it quoted by shell.Join): the wrapper reports the command's pid
// on stderr, where Run takes it off again, so that a cancelled command can
// be sent SIGTERM with kill(1) from a second session. OpenSSH's sshd
// ignores the SSH "signal" request for root logins, and closing the
// session does not stop a command that neither reads nor writes; without
// the pid a cancelled command would run on, and keep its sshd session (one
// of MaxSessions) until it ended by itself.
package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fleet-deploy/fleet/internal/shell"
)

// ErrConnLost is wrapped by the errors of Run (and Output) when the
// connection died: the remote command's fate is unknown.
var ErrConnLost = errors.New("ssh connection lost")

// ErrClosed is wrapped by the errors of Run after Close.
var ErrClosed = errors.New("ssh connection closed")

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

// Conn is one SSH connection to a host. Its methods may be called
// concurrently.
type Conn struct {
	ep     Endpoint
	client *ssh.Client
	nc     net.Conn      // the connection client runs over: TCP, or a jump host's channel
	base   net.Conn      // the TCP connection to the first hop (nc without jump hosts)
	jumps  []*ssh.Client // the jump hosts' connections, in order
	slots  *limiter

	done     chan struct{} // closed once the connection is gone
	mu       sync.Mutex
	closed   bool  // Close was called
	deathErr error // why the connection is gone; set before done is closed

	relMu      sync.Mutex
	relPending int  // session slots waiting for releaser
	relRunning bool // a releaser goroutine is running
}

// Endpoint returns the endpoint c is connected to.
func (c *Conn) Endpoint() Endpoint { return c.ep }

func (e Endpoint) name() string {
	if e.Host != "" {
		return e.Host
	}
	return e.Address
}

func withDefaults(e Endpoint) (Endpoint, error) {
	if e.Address == "" {
		e.Address = e.Host
	}
	if e.Address == "" {
		return e, errors.New("remote: endpoint has no address")
	}
	if e.Host == "" {
		e.Host = e.Address
	}
	if e.User == "" {
		e.User = "root"
	}
	if e.Port == 0 {
		e.Port = 22
	}
	if e.Port < 0 || e.Port > 65535 {
		return e, fmt.Errorf("remote: %s: invalid port %d", e.Host, e.Port)
	}
	switch e.StrictHostKeyChecking {
	case "":
		e.StrictHostKeyChecking = strictYes
	case strictYes, strictAcceptNew:
	default:
		return e, fmt.Errorf("remote: %s: StrictHostKeyChecking %q: want yes or accept-new", e.Host, e.StrictHostKeyChecking)
	}
	if e.ConnectTimeout <= 0 {
		e.ConnectTimeout = defaultConnectTimeout
	}
	if e.ServerAliveInterval == 0 {
		e.ServerAliveInterval = defaultAliveInterval
	}
	if e.ServerAliveCountMax <= 0 {
		e.ServerAliveCountMax = defaultAliveCountMax
	}
	if e.MaxSessions <= 0 {
		e.MaxSessions = defaultMaxSessions
	}
	if e.ConnectionAttempts <= 0 {
		e.ConnectionAttempts = defaultConnAttempts
	}
	return e, nil
}

// watch waits for the connection to end, records why, and closes the jump
// hosts' connections.
func (c *Conn) watch() {
	err := c.client.Wait()
	c.closeJumps()
	c.mu.Lock()
	if c.deathErr == nil {
		switch {
		case c.closed:
			c.deathErr = fmt.Errorf("ssh %s: %w", c.ep.name(), ErrClosed)
		case err == nil || errors.Is(err, io.EOF):
			c.deathErr = fmt.Errorf("ssh %s: %w (closed by the remote end)", c.ep.name(), ErrConnLost)
		default:
			c.deathErr = fmt.Errorf("ssh %s: %w: %v", c.ep.name(), ErrConnLost, err)
		}
	}
	c.mu.Unlock()
	close(c.done)
}

// closeJumps closes the jump hosts' connections, last first, and the TCP
// connection under them.
func (c *Conn) closeJumps() {
	for i := len(c.jumps) - 1; i >= 0; i-- {
		c.jumps[i].Close()
	}
	c.base.Close()
}

// die records why the connection is being torn down and closes it (all of
// the chain: a channel through a stalled jump host cannot be closed alone).
func (c *Conn) die(err error) {
	c.mu.Lock()
	if c.deathErr == nil {
		c.deathErr = err
	}
	c.mu.Unlock()
	c.nc.Close()
	c.base.Close()
}

// Err returns nil while the connection is usable, and afterwards why it is
// not (an error wrapping ErrConnLost, or ErrClosed after Close).
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.death()
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("ssh %s: %w", c.ep.name(), ErrClosed)
	}
	return c.deathErr
}

func (c *Conn) death() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deathErr
}

// keepalive sends keepalive@openssh.com every ServerAliveInterval and
// declares the connection lost after ServerAliveCountMax intervals
// without an answer.
func (c *Conn) keepalive() {
	t := time.NewTicker(c.ep.ServerAliveInterval)
	defer t.Stop()
	answers := make(chan error, 1)
	inflight, misses := false, 0
	for {
		select {
		case <-c.done:
			return
		case err := <-answers:
			inflight, misses = false, 0
			if err != nil {
				return // the connection is going away; watch records why
			}
		case <-t.C:
			if inflight {
				misses++
				if misses >= c.ep.ServerAliveCountMax {
					c.die(fmt.Errorf("ssh %s: %w: no answer to keepalives for %s (ServerAliveInterval %s × ServerAliveCountMax %d)",
						c.ep.name(), ErrConnLost, time.Duration(misses)*c.ep.ServerAliveInterval, c.ep.ServerAliveInterval, c.ep.ServerAliveCountMax))
					return
				}
				continue
			}
			inflight = true
			go func() {
				_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
				answers <- err
			}()
		}
	}
}

// Close closes the connection, and those to its jump hosts; running
// commands fail with ErrClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if already {
		return nil
	}
	err := c.client.Close()
	if len(c.jumps) > 0 {
		c.closeJumps()
	}
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
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
	argv := cmd.Argv
	sudo := cmd.Sudo && c.ep.User != "root"
	withPassword := sudo && c.ep.SudoPassword != nil
	shown := argv
	switch {
	case withPassword:
		argv, shown = sudoArgv(argv)
	case sudo:
		argv = append([]string{"sudo", "-n", "--"}, argv...)
		shown = argv
	}
	command, err := shell.Join(shown...)
	if err != nil {
		return fmt.Errorf("ssh %s: %w", c.ep.name(), err)
	}
	wrapped, err := wrapCommand(argv)
	if err != nil {
		return fmt.Errorf("ssh %s: %w", c.ep.name(), err)
	}
	ctxErr := func(err error) error {
		return fmt.Errorf("ssh %s: %s: %w", c.ep.name(), command, err)
	}
	if err := ctx.Err(); err != nil {
		return ctxErr(err)
	}
	sess, release, err := c.openSession(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctxErr(ctx.Err())
		}
		return err
	}
	defer release()

	// runCtx is also cancelled, with the cause, when reading Stdin or
	// writing Stdout/Stderr fails: the command is then stopped rather than
	// fed a truncated stdin or left blocked on output nobody reads.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	g := &gate{fail: cancel}
	tail := &tailBuffer{max: stderrTail}
	if cmd.Stdout != nil {
		sess.Stdout = g.writer(cmd.Stdout, "stdout")
	}
	var stderr io.Writer = tail
	if cmd.Stderr != nil {
		stderr = io.MultiWriter(tail, cmd.Stderr)
	}
	errW := g.writer(stderr, "stderr")
	var sf *sudoFilter
	if withPassword {
		sf = newSudoFilter(errW)
		errW = sf
	}
	pw := &pidWriter{w: errW, got: make(chan struct{})}
	sess.Stderr = pw
	flush := func() {
		pw.flush()
		if sf != nil {
			sf.flush()
		}
	}
	var stdin io.WriteCloser
	if cmd.Stdin != nil || withPassword {
		if stdin, err = sess.StdinPipe(); err != nil {
			sess.Close()
			return fmt.Errorf("ssh %s: %s: %w", c.ep.name(), command, err)
		}
	}

	if err := sess.Start(wrapped); err != nil {
		sess.Close()
		g.close()
		if lost := c.checkLost(); lost != nil {
			return fmt.Errorf("%w (starting %s)", lost, command)
		}
		return fmt.Errorf("ssh %s: starting %s: %w", c.ep.name(), command, err)
	}
	finished := make(chan struct{})
	defer close(finished)
	var rejected atomic.Bool
	switch {
	case withPassword:
		go answerSudo(stdin, sf, c.ep.SudoPassword, cmd.Stdin, cancel, finished, &rejected)
	case stdin != nil:
		go feedStdin(stdin, cmd.Stdin, cancel)
	}
	waitc := make(chan error, 1)
	go func() { waitc <- sess.Wait() }()

	select {
	case err = <-waitc:
		sess.Close()
		flush()
		g.close()
	case <-runCtx.Done():
		// The "signal" request works for non-root logins only (sshd
		// refuses it for root: "session signalling requires privilege
		// separation"), so the command is also sent SIGTERM with kill(1)
		// in a second session, using the pid the wrapper reported.
		_ = sess.Signal(ssh.SIGTERM)
		exited := false
		grace, cancelGrace := context.WithTimeout(context.Background(), termGrace)
		select {
		case <-pw.got:
		case <-waitc:
			exited = true
		case <-grace.Done():
		}
		if pid := pw.value(); pid > 0 && !exited {
			c.kill(pid, grace.Done())
		}
		if !exited {
			select {
			case <-waitc:
				exited = true
			case <-grace.Done():
			}
		}
		cancelGrace()
		sess.Close()
		if exited {
			flush()
		}
		g.close()
		if !exited {
			// Give the server a moment to confirm the close, so that the
			// session slot is really free again.
			t := time.NewTimer(closeGrace)
			select {
			case <-waitc:
			case <-t.C:
			case <-c.done:
			}
			t.Stop()
		}
		var le *localIOError
		if cause := context.Cause(runCtx); errors.As(cause, &le) {
			return fmt.Errorf("ssh %s: %s: %w", c.ep.name(), command, cause)
		}
		return ctxErr(ctx.Err())
	}
	var le *localIOError
	if cause := context.Cause(runCtx); errors.As(cause, &le) {
		return fmt.Errorf("ssh %s: %s: %w", c.ep.name(), command, cause)
	}

	var ee *ssh.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		xe := &ExitError{Host: c.ep.name(), Command: command, Code: ee.ExitStatus(), Signal: ee.Signal(), Stderr: string(tail.bytes())}
		switch {
		case withPassword && (rejected.Load() || !sf.hasStarted() && sudoRejected(xe.Stderr)):
			return &SudoError{Host: c.ep.name(), User: c.ep.User, Rejected: true, Exit: xe}
		case sudo && !withPassword && xe.Code == 1 && sudoWantsPassword(xe.Stderr):
			return &SudoError{Host: c.ep.name(), User: c.ep.User, Exit: xe}
		}
		return xe
	}
	if lost := c.checkLost(); lost != nil {
		return fmt.Errorf("%w (running %s)", lost, command)
	}
	return fmt.Errorf("ssh %s: %s: %w", c.ep.name(), command, err)
}

// Output runs argv and returns its stdout. A non-zero exit gives an
// *ExitError carrying the end of stderr.
func (c *Conn) Output(ctx context.Context, argv ...string) ([]byte, error) {
	var out bytes.Buffer
	err := c.Run(ctx, Cmd{Argv: argv, Stdout: &out})
	return out.Bytes(), err
}

// openSession waits for a free session slot and opens a session. When the
// server refuses a session (sshd's MaxSessions is lower than ours), the
// slot count is lowered to the sessions still open and it tries again once
// one of them ends (or after a short pause if none is open).
func (c *Conn) openSession(ctx context.Context) (*ssh.Session, func(), error) {
	const maxRefusals = 1000
	refusals := 0
	for {
		if err := c.slots.acquire(ctx, c.done); err != nil {
			if errors.Is(err, errDone) {
				return nil, nil, c.death()
			}
			return nil, nil, err
		}
		sess, err := c.client.NewSession()
		if err == nil {
			return sess, c.releaseLater, nil
		}
		// sshd refuses a session beyond its MaxSessions ("open failed",
		// with reason administratively prohibited or connect failed); a
		// session that just ended may also still count for a moment.
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) && (oce.Reason == ssh.Prohibited || oce.Reason == ssh.ConnectionFailed) && refusals < maxRefusals {
			refusals++
			others := c.slots.shrink()
			c.slots.release()
			if others == 0 {
				select {
				case <-time.After(time.Duration(refusals) * 20 * time.Millisecond):
				case <-ctx.Done():
					return nil, nil, ctx.Err()
				case <-c.done:
					return nil, nil, c.death()
				}
			}
			continue
		}
		c.slots.release()
		if lost := c.checkLost(); lost != nil {
			return nil, nil, lost
		}
		return nil, nil, fmt.Errorf("ssh %s: opening a session: %w", c.ep.name(), err)
	}
}

// checkLost returns the connection's death error if it is dead, finding out
// with a keepalive round trip if need be; nil if it is alive.
func (c *Conn) checkLost() error {
	select {
	case <-c.done:
		return c.death()
	default:
	}
	res := make(chan error, 1)
	go func() {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		res <- err
	}()
	probe := c.ep.ConnectTimeout
	t := time.NewTimer(probe)
	defer t.Stop()
	select {
	case <-c.done:
		return c.death()
	case err := <-res:
		if err == nil {
			return nil
		}
		select {
		case <-c.done:
			return c.death()
		case <-t.C:
			return fmt.Errorf("ssh %s: %w: %v", c.ep.name(), ErrConnLost, err)
		}
	case <-t.C:
		c.die(fmt.Errorf("ssh %s: %w: no answer to a keepalive within %s", c.ep.name(), ErrConnLost, probe))
		<-c.done
		return c.death()
	}
}

var errDone = errors.New("connection done")

// releaseLater frees the slot of a closed session once the server has
// surely processed the close: sshd frees a session only after the loop
// iteration that read the client's CHANNEL_CLOSE, and refuses a new one
// read in the same batch ("no more sessions"). A global request round trip
// guarantees that; one round trip serves all the slots pending when it
// starts, so the cost is not one round trip per session.
func (c *Conn) releaseLater() {
	c.relMu.Lock()
	c.relPending++
	start := !c.relRunning
	c.relRunning = true
	c.relMu.Unlock()
	if start {
		go c.releaser()
	}
}

func (c *Conn) releaser() {
	for {
		c.relMu.Lock()
		n := c.relPending
		c.relPending = 0
		if n == 0 {
			c.relRunning = false
			c.relMu.Unlock()
			return
		}
		c.relMu.Unlock()
		answered := make(chan struct{})
		go func() {
			c.client.SendRequest("keepalive@openssh.com", true, nil)
			close(answered)
		}()
		select {
		case <-answered:
		case <-c.done:
		}
		for range n {
			c.slots.release()
		}
	}
}

// limiter bounds the sessions open at once.
type limiter struct {
	mu     sync.Mutex
	limit  int
	active int
	wake   chan struct{} // closed and replaced at every release
}

func newLimiter(n int) *limiter {
	return &limiter{limit: n, wake: make(chan struct{})}
}

func (l *limiter) acquire(ctx context.Context, done <-chan struct{}) error {
	for {
		l.mu.Lock()
		if l.active < l.limit {
			l.active++
			l.mu.Unlock()
			return nil
		}
		w := l.wake
		l.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return errDone
		}
	}
}

func (l *limiter) release() {
	l.mu.Lock()
	l.active--
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// shrink lowers the limit below the number of other open sessions, that
// is the server's limit, keeping one spare (but at least 1), and returns
// that number; called by the holder of a slot whose session was refused.
func (l *limiter) shrink() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	others := l.active - 1
	if n := max(others-1, 1); l.limit > n {
		l.limit = n
	}
	return others
}

// localIOError is a failure of the caller's Stdin, Stdout or Stderr.
type localIOError struct {
	what string
	err  error
}

func (e *localIOError) Error() string { return e.what + ": " + e.err.Error() }
func (e *localIOError) Unwrap() error { return e.err }

// feedStdin copies r to the session's stdin and then sends EOF. If reading
// r fails, no EOF is sent: the run is cancelled instead, so the command is
// not fed a silently truncated stream. A failed write means the command is
// gone (it exited without reading everything); that is not an error.
func feedStdin(w io.WriteCloser, r io.Reader, fail context.CancelCauseFunc) {
	er := &errReader{r: r}
	_, err := io.Copy(w, er)
	if er.err != nil {
		fail(&localIOError{"reading stdin", er.err})
		return
	}
	if err == nil {
		w.Close()
	}
}

type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// gate guards the caller's writers: after close, writes are dropped, so
// nothing touches them once Run has returned. The first write error
// cancels the run (fail) and later output is drained and dropped.
type gate struct {
	mu     sync.Mutex
	closed bool
	failed bool
	fail   context.CancelCauseFunc
}

func (g *gate) writer(w io.Writer, what string) io.Writer {
	return &gatedWriter{g: g, w: w, what: what}
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

type gatedWriter struct {
	g    *gate
	w    io.Writer
	what string
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	w.g.mu.Lock()
	defer w.g.mu.Unlock()
	if w.g.closed || w.g.failed {
		return len(p), nil
	}
	n, err := w.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.g.failed = true
		w.g.fail(&localIOError{"writing " + w.what, err})
	}
	return len(p), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) == 0 {
		return nil
	}
	return append([]byte(nil), t.buf...)
}

// pidMarker starts the line the wrapper writes to stderr before running
// the command.
const pidMarker = "fleet-remote-pid "

// wrapperScript reports the pid of the command, then becomes it (exec keeps
// the pid), so that a cancelled command can be sent SIGTERM with kill(1).
const wrapperScript = `printf '` + pidMarker + `%d\n' "$$" >&2 && exec "$@"`

// wrapCommand returns the command line actually sent: argv run by
// /bin/sh through wrapperScript, all quoted by shell.Join.
func wrapCommand(argv []string) (string, error) {
	return shell.Join(append([]string{"/bin/sh", "-c", wrapperScript, "sh"}, argv...)...)
}

// pidWriter takes the wrapper's pid line off stderr and passes everything
// else on. The line is the first the wrapper writes, but the login shell's
// start-up files may have written lines before it; those are passed on.
type pidWriter struct {
	w    io.Writer
	mu   sync.Mutex
	head []byte // bytes not passed on yet, while looking for the line
	seen int    // bytes seen while looking
	done bool
	pid  int
	got  chan struct{} // closed once the line is found or given up on
}

const maxPidSearch = 16 << 10

func (p *pidWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return p.w.Write(b)
	}
	n := len(b)
	p.seen += n
	p.head = append(p.head, b...)
	var out []byte
	for {
		i := bytes.IndexByte(p.head, '\n')
		if i < 0 {
			break
		}
		line := p.head[:i+1]
		if bytes.HasPrefix(line, []byte(pidMarker)) {
			if pid, err := strconv.Atoi(string(line[len(pidMarker):i])); err == nil {
				p.pid = pid
				out = append(out, p.head[i+1:]...)
				p.head = nil
				p.done = true
				break
			}
		}
		out = append(out, line...)
		p.head = p.head[i+1:]
	}
	if !p.done && p.seen > maxPidSearch {
		out = append(out, p.head...)
		p.head = nil
		p.done = true
	}
	if p.done {
		close(p.got)
	}
	p.mu.Unlock()
	if len(out) > 0 {
		if _, err := p.w.Write(out); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// flush passes on what is held back; called when the command has ended.
func (p *pidWriter) flush() {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	out := p.head
	p.head = nil
	p.done = true
	close(p.got)
	p.mu.Unlock()
	if len(out) > 0 {
		p.w.Write(out)
	}
}

func (p *pidWriter) value() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// kill sends SIGTERM to pid on the remote host from a session of its own,
// outside the session limit (a cancelled command still counts against
// sshd's MaxSessions until it exits, hence the spare slot). It gives up
// when deadline fires.
func (c *Conn) kill(pid int, deadline <-chan struct{}) {
	cmd, err := shell.Join("kill", "-TERM", strconv.Itoa(pid))
	if err != nil {
		return
	}
	for {
		sess, err := c.client.NewSession()
		if err == nil {
			done := make(chan struct{})
			go func() {
				sess.Run(cmd)
				close(done)
			}()
			select {
			case <-done:
			case <-deadline:
			case <-c.done:
			}
			sess.Close()
			return
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			return
		case <-c.done:
			return
		}
	}
}
