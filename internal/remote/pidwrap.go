package remote

// This file is the pid-reporting wrapper every command runs in (see the
// package documentation) and what it is for: stopping a cancelled
// command with kill(1), since sshd ignores the SSH "signal" request for
// root logins and closing a session does not stop a command that neither
// reads nor writes.

import (
	"bytes"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/fleet-deploy/fleet/internal/shell"
)

// pidMarker starts the line the wrapper writes to stderr before running
// the command.
const pidMarker = "fleet-remote-pid "

// wrapperScript reports the pid of the command, then becomes it (exec keeps
// the pid), so that a cancelled command can be sent SIGTERM with kill(1).
const wrapperScript = `printf '` + pidMarker + `%d\n' "$$" >&2 && exec "$@"`

// maxPidSearch is how much stderr is held back looking for a marker line
// (here and in sudoFilter) before it is passed on as it is.
const maxPidSearch = 16 << 10

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
