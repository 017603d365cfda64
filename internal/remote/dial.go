package remote

// This file is Dial: turns to connect, retries, the chain of jump hosts
// and one SSH handshake, with errors that say which hop failed and whether
// trying again may help.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/semaphore"
)

// MaxConcurrentHandshakes bounds the connection attempts under way at once
// in this process (TCP connect, SSH handshake and authentication, through
// every jump host): when hundreds of hosts are dialled in parallel, the
// others wait for their turn in Dial, so that neither the process's file
// descriptors nor the servers' MaxStartups are exhausted. Set it before
// dialling; values below 1 mean 1.
var MaxConcurrentHandshakes = 64

// Backoff between connection attempts: retryBackoff, doubled after every
// attempt, at most retryBackoffMax.
var (
	retryBackoff    = 250 * time.Millisecond
	retryBackoffMax = 4 * time.Second
)

// JumpError is returned by Dial when connecting to one of the endpoint's
// jump hosts (or through it to the next hop) failed. It unwraps to the
// hop's error (an *UnknownHostError, *AuthError, ...).
type JumpError struct {
	Host     string // the endpoint being dialled
	Jump     string // the jump host's name, as ssh_config names it
	Endpoint string // the jump host's user@address:port
	Err      error
}

func (e *JumpError) Error() string {
	return fmt.Sprintf("ssh %s: via jump host %s (%s): %v", e.Host, e.Jump, e.Endpoint, e.Err)
}

func (e *JumpError) Unwrap() error { return e.Err }

// Dial connects and authenticates to e, through its jump hosts if it has
// any (each one verified and authenticated like any host, with its own
// settings; the next hop is reached over a direct-tcpip channel of the one
// before). Authentication is first with the keys of the ssh-agent at
// e.AgentSocket, then with e.IdentityFiles. A passphrase-protected key that
// no agent holds is never prompted for; if nothing else works, the
// *AuthError names it. The host key is verified against the known_hosts
// files (*UnknownHostError, *ChangedHostKeyError). A failure at a jump host
// is a *JumpError naming it, wrapping the error.
//
// Connecting is tried up to e.ConnectionAttempts times, waiting 250ms,
// 500ms, 1s, ... (at most 4s) in between, when it failed in a way that may
// pass: connection refused, reset or timed out, a jump host that could not
// reach the next hop. Host key and authentication failures are never
// retried. The error after the last attempt says how many were made.
//
// At most MaxConcurrentHandshakes connection attempts run at once in the
// process; the others wait in Dial. The first Dial raises the soft limit of
// open files (RLIMIT_NOFILE) to the hard limit.
//
// ctx and e.ConnectTimeout (per host and attempt) bound the connecting;
// ctx also ends the waits for a turn or between attempts at once. ctx does
// not affect the connection once Dial has returned.
func Dial(ctx context.Context, e Endpoint) (*Conn, error) {
	return DialAnswered(ctx, e, nil)
}

// DialAnswered is Dial, calling answered (once, from another goroutine)
// as soon as the SSH server of e itself, past any jump hosts, has sent
// its first bytes: it answers SSH, whatever the rest of the handshake
// brings. fleet run's reachability check needs to know no more; the key
// exchange and authentication (five more round trips) go on while it
// builds.
func DialAnswered(ctx context.Context, e Endpoint, answered func()) (*Conn, error) {
	e, err := withDefaults(e)
	if err != nil {
		return nil, err
	}
	hops := make([]Endpoint, 0, len(e.Jumps)+1)
	for _, j := range e.Jumps {
		j, err := withDefaults(j)
		if err != nil {
			return nil, fmt.Errorf("ssh %s: jump host: %w", e.name(), err)
		}
		j.Jumps, j.SudoPassword = nil, nil
		hops = append(hops, j)
	}
	hops = append(hops, e)
	raiseNoFileLimit()

	delay := retryBackoff
	for attempt := 1; ; attempt++ {
		c, retry, err := dialChain(ctx, e, hops, answered)
		if err == nil {
			return c, nil
		}
		if !retry || ctx.Err() != nil {
			if attempt > 1 && ctx.Err() != nil {
				return nil, fmt.Errorf("%w (attempt %d of %d)", err, attempt, e.ConnectionAttempts)
			}
			return nil, err
		}
		if attempt >= e.ConnectionAttempts {
			return nil, fmt.Errorf("%w (gave up after %s)", err, plural(attempt, "attempt"))
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("ssh %s: connecting: %w (after %s; the last failed with: %v)", e.name(), ctx.Err(), plural(attempt, "attempt"), err)
		}
		delay = min(2*delay, retryBackoffMax)
		retries.Add(1)
	}
}

// retries counts the connection attempts Dial repeated (for tests).
var retries atomic.Int64

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// dialChain makes one attempt at connecting through hops (the jump hosts,
// then the target e itself), calling answered (if not nil) once the
// target has sent its first bytes. retry reports whether the failure is
// worth another attempt.
func dialChain(ctx context.Context, e Endpoint, hops []Endpoint, answered func()) (c *Conn, retry bool, err error) {
	release, err := handshakes.acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("ssh %s: waiting for a turn to connect: %w", e.name(), err)
	}
	defer release()

	var (
		base   net.Conn      // the TCP connection to the first hop
		jumps  []*ssh.Client // connected jump hosts
		client *ssh.Client
		nc     net.Conn
	)
	for i, hop := range hops {
		var via *ssh.Client
		if i > 0 {
			via = jumps[i-1]
		}
		var first func()
		if i == len(hops)-1 {
			first = answered
		}
		cl, hopNC, retry, err := handshake(ctx, hop, via, base, first)
		if err != nil {
			for j := len(jumps) - 1; j >= 0; j-- {
				jumps[j].Close()
			}
			if base != nil {
				base.Close()
			}
			if i < len(hops)-1 {
				err = &JumpError{Host: e.name(), Jump: hop.name(), Endpoint: hop.String(), Err: err}
			} else if i > 0 {
				err = fmt.Errorf("%w (via %s)", err, hops[i-1].name())
			}
			return nil, retry, err
		}
		if i == 0 {
			base = hopNC
		}
		if i < len(hops)-1 {
			jumps = append(jumps, cl)
		} else {
			client, nc = cl, hopNC
		}
	}
	return newConn(e, client, nc, base, jumps), false, nil
}

// handshake connects to e, directly or (via != nil) through a
// direct-tcpip channel of via, and authenticates, calling answered (if
// not nil) once e has sent its first bytes. On a timeout it closes base
// too (the chain's TCP connection), since a channel of a stalled jump
// host cannot be interrupted otherwise.
func handshake(ctx context.Context, e Endpoint, via *ssh.Client, base net.Conn, answered func()) (*ssh.Client, net.Conn, bool, error) {
	keys, err := loadKeys(e)
	if err != nil {
		return nil, nil, false, err
	}
	defer keys.close()
	if len(keys.signers) == 0 {
		agentState := "no ssh-agent (SSH_AUTH_SOCK unset)"
		if e.AgentSocket != "" {
			agentState = "no usable ssh-agent key"
		}
		return nil, nil, false, &AuthError{Endpoint: e.String(), Encrypted: keys.encrypted, Problems: keys.problems,
			Err: fmt.Errorf("%s, and no readable identity file among %s", agentState, strings.Join(e.IdentityFiles, ", "))}
	}

	checker := newHostKeyChecker(e)
	known, err := checker.load()
	if err != nil {
		return nil, nil, false, fmt.Errorf("ssh %s: %w", e.name(), err)
	}
	var hk struct {
		sync.Mutex
		called bool
		err    error
	}
	verify := checker.callback(known)
	cfg := &ssh.ClientConfig{
		User: e.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(keys.signers...)},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			err := verify(hostname, remote, key)
			hk.Lock()
			hk.called, hk.err = true, err
			hk.Unlock()
			return err
		},
		HostKeyAlgorithms: checker.algorithms(known),
		Timeout:           e.ConnectTimeout,
	}

	// Which bound applies: ctx's deadline, if sooner, or ConnectTimeout.
	ctxBound := false
	if dl, ok := ctx.Deadline(); ok && !dl.After(time.Now().Add(e.ConnectTimeout)) {
		ctxBound = true
	}
	dctx, cancel := context.WithTimeout(ctx, e.ConnectTimeout)
	defer cancel()
	addr := net.JoinHostPort(e.Address, strconv.Itoa(e.Port))
	timedOut := func() (*ssh.Client, net.Conn, bool, error) {
		if err := ctx.Err(); err != nil {
			return nil, nil, false, fmt.Errorf("ssh %s: connecting to %s: %w", e.name(), addr, err)
		}
		if ctxBound {
			return nil, nil, false, fmt.Errorf("ssh %s: connecting to %s: %w", e.name(), addr, context.DeadlineExceeded)
		}
		return nil, nil, true, fmt.Errorf("ssh %s: connecting to %s: timed out after %s (ConnectTimeout)", e.name(), addr, e.ConnectTimeout)
	}
	var nc net.Conn
	var proxy *cmdConn
	switch {
	case via != nil:
		nc, err = via.DialContext(dctx, "tcp", addr)
	case e.ProxyCommand != "":
		// No retries: ssh runs a ProxyCommand once.
		if proxy, err = dialCommand(e.ProxyCommand); err != nil {
			return nil, nil, false, fmt.Errorf("ssh %s: %w", e.name(), err)
		}
		nc = proxy
	default:
		var d net.Dialer
		if e.BindAddress != "" {
			local, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(e.BindAddress, "0"))
			if err != nil {
				return nil, nil, false, fmt.Errorf("ssh %s: BindAddress %s: %w", e.name(), e.BindAddress, err)
			}
			d.LocalAddr = local
		}
		nc, err = d.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		if dctx.Err() != nil {
			return timedOut()
		}
		return nil, nil, transientDialError(err), fmt.Errorf("ssh %s: %w", e.name(), dialErr(err, addr))
	}
	if answered != nil {
		nc = &firstRead{Conn: nc, f: answered}
	}
	stop := context.AfterFunc(dctx, func() {
		nc.Close()
		if base != nil {
			base.Close()
		}
	})
	// No deadline on nc: the handshake's reader goroutine keeps reading
	// after NewClientConn returns, and a deadline not cleared in time would
	// kill a connection that was established just before it. Closing nc
	// (AfterFunc) is what bounds the handshake.
	sc, chans, reqs, err := ssh.NewClientConn(nc, e.knownHostsAddr(), cfg)
	if !stop() {
		if err == nil {
			sc.Close()
		}
		nc.Close()
		return timedOut()
	}
	if err != nil {
		nc.Close()
		hk.Lock()
		hkCalled, hkErr := hk.called, hk.err
		hk.Unlock()
		if hkErr != nil {
			return nil, nil, false, hkErr
		}
		if proxy != nil && !hkCalled {
			if why := proxy.failure(); why != "" {
				return nil, nil, false, fmt.Errorf("ssh %s: %s (%v)", e.name(), why, err)
			}
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, nil, false, &AuthError{Endpoint: e.String(), Tried: keys.tried, Encrypted: keys.encrypted, Problems: keys.problems, Err: err}
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return timedOut()
		}
		// A server that drops the connection before the key exchange
		// (sshd over MaxStartups, still starting, restarting) may well
		// take the next one.
		return nil, nil, !hkCalled && transientHandshakeError(err), fmt.Errorf("ssh %s: %w", e.name(), err)
	}
	return ssh.NewClient(sc, chans, reqs), nc, false, nil
}

// dialErr describes a failure of a jump host to reach addr.
func dialErr(err error, addr string) error {
	var oce *ssh.OpenChannelError
	if errors.As(err, &oce) {
		return fmt.Errorf("connecting to %s: the jump host could not: %w", addr, err)
	}
	return err
}

// transientDialError reports whether a failed TCP connect (or a jump
// host's failed direct-tcpip open) is worth retrying.
func transientDialError(err error) bool {
	var oce *ssh.OpenChannelError
	if errors.As(err, &oce) {
		return oce.Reason == ssh.ConnectionFailed
	}
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
		syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.ENETDOWN, syscall.EAGAIN} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// transientHandshakeError reports whether a handshake that failed before
// the host key was seen is worth retrying: the server closed or reset the
// connection.
func transientHandshakeError(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection reset by peer") || strings.HasSuffix(s, ": EOF") || strings.Contains(s, "broken pipe")
}

// turns hands out the turns to connect: a semaphore of
// MaxConcurrentHandshakes, made anew when that has changed (tests change
// it; a turn is given back to the semaphore it came from).
type turns struct {
	mu     sync.Mutex
	size   int
	sem    *semaphore.Weighted
	active int // turns taken
	peak   int // highest active seen (for tests)
}

var handshakes = &turns{}

// acquire waits for a turn; release gives it back.
func (t *turns) acquire(ctx context.Context) (release func(), err error) {
	t.mu.Lock()
	if n := max(MaxConcurrentHandshakes, 1); t.sem == nil || n != t.size {
		t.size, t.sem = n, semaphore.NewWeighted(int64(n))
	}
	sem := t.sem
	t.mu.Unlock()
	if err := sem.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.active++
	t.peak = max(t.peak, t.active)
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		t.active--
		t.mu.Unlock()
		sem.Release(1)
	}, nil
}

// noFileOnce guards raising RLIMIT_NOFILE (a variable so tests can redo it).
var noFileOnce = new(sync.Once)

func raiseNoFileLimit() {
	noFileOnce.Do(raiseNoFile)
}

// firstRead calls f once, when a Read first returns bytes.
type firstRead struct {
	net.Conn
	once sync.Once
	f    func()
}

func (c *firstRead) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.once.Do(c.f)
	}
	return n, err
}
