package remote

// This file is a Conn's life, from the handshake Dial completed to its
// end: keepalives, noticing (and saying why) the connection is gone, and
// Close. Running commands over it is run.go's job, bounding its sessions
// session.go's.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrConnLost is wrapped by the errors of Run (and Output) when the
// connection died: the remote command's fate is unknown.
var ErrConnLost = errors.New("ssh connection lost")

// ErrClosed is wrapped by the errors of Run after Close.
var ErrClosed = errors.New("ssh connection closed")

// Conn is one SSH connection to a host. Its methods may be called
// concurrently.
type Conn struct {
	ep     Endpoint
	client *ssh.Client
	nc     net.Conn      // the connection client runs over: TCP, or a jump host's channel
	base   net.Conn      // the TCP connection to the first hop (nc without jump hosts)
	jumps  []*ssh.Client // the jump hosts' connections, in order
	slots  *slots

	// life ends once the connection is gone; done is life.Done().
	life     context.Context
	end      context.CancelFunc
	done     <-chan struct{}
	mu       sync.Mutex
	closed   bool  // Close was called
	deathErr error // why the connection is gone; set before life ends

	prepMu sync.Mutex
	prep   *prepared // the session Prepare opened for the next Run

	relMu      sync.Mutex
	relPending int  // session slots waiting for releaser
	relRunning bool // a releaser goroutine is running
}

// newConn returns the Conn over an established client and starts watching
// it (and sending keepalives, unless e disables them).
func newConn(e Endpoint, client *ssh.Client, nc, base net.Conn, jumps []*ssh.Client) *Conn {
	life, end := context.WithCancel(context.Background())
	c := &Conn{
		ep:     e,
		client: client,
		nc:     nc,
		base:   base,
		jumps:  jumps,
		slots:  newSlots(max(e.MaxSessions-1, 1)),
		life:   life,
		end:    end,
		done:   life.Done(),
	}
	go c.watch()
	if e.ServerAliveInterval > 0 {
		go c.keepalive()
	}
	return c
}

// Endpoint returns the endpoint c is connected to.
func (c *Conn) Endpoint() Endpoint { return c.ep }

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
	c.end()
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

// death is why the connection is gone, once it is.
func (c *Conn) death() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deathErr
}

// ping sends a keepalive@openssh.com request; the channel gets its
// outcome. A round trip is also how to know the server has read all that
// was sent before it (see releaseLater).
func (c *Conn) ping() <-chan error {
	res := make(chan error, 1)
	go func() {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		res <- err
	}()
	return res
}

// keepalive pings every ServerAliveInterval and declares the connection
// lost after ServerAliveCountMax intervals without an answer.
func (c *Conn) keepalive() {
	t := time.NewTicker(c.ep.ServerAliveInterval)
	defer t.Stop()
	var answer <-chan error // the ping in flight, if any
	misses := 0
	for {
		select {
		case <-c.done:
			return
		case err := <-answer:
			answer, misses = nil, 0
			if err != nil {
				return // the connection is going away; watch records why
			}
		case <-t.C:
			if answer == nil {
				answer = c.ping()
				continue
			}
			misses++
			if misses >= c.ep.ServerAliveCountMax {
				c.die(fmt.Errorf("ssh %s: %w: no answer to keepalives for %s (ServerAliveInterval %s × ServerAliveCountMax %d)",
					c.ep.name(), ErrConnLost, time.Duration(misses)*c.ep.ServerAliveInterval, c.ep.ServerAliveInterval, c.ep.ServerAliveCountMax))
				return
			}
		}
	}
}

// checkLost returns the connection's death error if it is dead, finding out
// with a ping if need be; nil if it is alive.
func (c *Conn) checkLost() error {
	select {
	case <-c.done:
		return c.death()
	default:
	}
	res := c.ping()
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
