package remote

// This file is the ProxyCommand transport: the command runs under
// /bin/sh -c in a process group of its own, and its stdin and stdout are
// the connection the SSH handshake runs over, as with ssh. Closing the
// connection kills the group (an `ssh -W` or nc does not always notice
// its stdin closing).

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cmdConn is a net.Conn over a ProxyCommand's stdio.
type cmdConn struct {
	cmd     *exec.Cmd
	command string
	stdin   io.WriteCloser
	stdout  io.ReadCloser
	stderr  *tailBuffer

	once sync.Once
	done chan struct{} // closed once the command has exited
	err  error         // its exit status, after done
}

// dialCommand starts command.
func dialCommand(command string) (*cmdConn, error) {
	// "exec": the shell becomes the command, as with ssh.
	cmd := exec.Command("/bin/sh", "-c", "exec "+command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c := &cmdConn{cmd: cmd, command: command, stderr: &tailBuffer{max: 4 << 10}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if c.stdout, err = cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ProxyCommand %q: %w", command, err)
	}
	go func() {
		// Wait closes stdout once the command exits, ending a Read.
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *cmdConn) Read(b []byte) (int, error)  { return c.stdout.Read(b) }
func (c *cmdConn) Write(b []byte) (int, error) { return c.stdin.Write(b) }

// Close ends the command: stdin closed, then the process group killed.
func (c *cmdConn) Close() error {
	c.once.Do(func() {
		c.stdin.Close()
		select {
		case <-c.done:
		case <-time.After(100 * time.Millisecond):
		}
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	})
	return nil
}

// failure describes why the command stopped, if it has: for the error of
// a handshake that failed over it.
func (c *cmdConn) failure() string {
	select {
	case <-c.done:
	case <-time.After(500 * time.Millisecond):
		return ""
	}
	msg := strings.TrimSpace(c.stderr.String())
	if c.err != nil {
		if msg != "" {
			return fmt.Sprintf("ProxyCommand %s: %v: %s", c.command, c.err, msg)
		}
		return fmt.Sprintf("ProxyCommand %s: %v", c.command, c.err)
	}
	if msg != "" {
		return fmt.Sprintf("ProxyCommand %s exited: %s", c.command, msg)
	}
	return fmt.Sprintf("ProxyCommand %s exited", c.command)
}

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

func (c *cmdConn) LocalAddr() net.Addr  { return pipeAddr("proxycommand") }
func (c *cmdConn) RemoteAddr() net.Addr { return pipeAddr(c.command) }

// Deadlines are not supported on pipes of a process; Dial bounds the
// handshake by closing the connection instead.
func (c *cmdConn) SetDeadline(time.Time) error      { return nil }
func (c *cmdConn) SetReadDeadline(time.Time) error  { return nil }
func (c *cmdConn) SetWriteDeadline(time.Time) error { return nil }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}
