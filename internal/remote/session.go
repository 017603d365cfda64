package remote

// This file bounds the sessions open at once on a Conn. sshd refuses a
// session beyond its MaxSessions, and counts a closed one until it has
// read the close, so Run waits for a slot, learns a lower limit from a
// refusal, and frees a slot only once the server has surely let the
// session go.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/semaphore"
)

// Prepare opens a session now, in the background, for the next Run: a
// session costs a round trip to open, which a caller that knows another
// command will follow (the activation after a push) pays while the first
// still runs. At most one session is prepared; it holds a session slot
// until a Run takes it or the Conn closes. Prepare does nothing when one
// is prepared already or no slot is free.
func (c *Conn) Prepare() {
	c.prepMu.Lock()
	defer c.prepMu.Unlock()
	if c.prep != nil || c.Err() != nil || !c.slots.tryAcquire() {
		return
	}
	p := &prepared{done: make(chan struct{})}
	c.prep = p
	go func() {
		p.sess, p.err = c.client.NewSession()
		if p.err != nil {
			c.slots.release()
		}
		close(p.done)
	}()
}

// prepared is a session Prepare opens.
type prepared struct {
	done chan struct{} // closed once sess or err is set
	sess *ssh.Session
	err  error
}

// takePrepared returns the prepared session, waiting for it to open if
// it is still opening, or nil if there is none (or it failed to open).
// Its slot goes with it.
func (c *Conn) takePrepared(ctx context.Context) *ssh.Session {
	c.prepMu.Lock()
	p := c.prep
	c.prep = nil
	c.prepMu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		if p.err != nil {
			return nil
		}
		return p.sess
	case <-ctx.Done():
		go func() { // not ours to use: close it once it is open
			<-p.done
			if p.err == nil {
				p.sess.Close()
				c.releaseLater()
			}
		}()
		return nil
	}
}

// openSession waits for a free session slot and opens a session, or
// with usePrepared takes the prepared one (prepared reports which); the
// function returned
// frees the slot once the session is closed. When the server refuses a
// session (sshd's MaxSessions is lower than ours), the slot count is
// lowered to the sessions still open and it tries again once one of them
// ends (or after a short pause if none is open).
func (c *Conn) openSession(ctx context.Context, usePrepared bool) (sess *ssh.Session, release func(), prepared bool, err error) {
	if usePrepared {
		if sess := c.takePrepared(ctx); sess != nil {
			return sess, c.releaseLater, true, nil
		}
	}
	sess, release, err = c.newSession(ctx)
	return sess, release, false, err
}

// newSession is openSession without a prepared session.
func (c *Conn) newSession(ctx context.Context) (*ssh.Session, func(), error) {
	const maxRefusals = 1000
	refusals := 0
	for {
		if err := c.acquireSlot(ctx); err != nil {
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
			others := c.slots.shrink(c.life)
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

// acquireSlot waits for a session slot; it gives up with ctx's error, or
// with the connection's death error when the connection ends first.
func (c *Conn) acquireSlot(ctx context.Context) error {
	wait, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.life, cancel)()
	err := c.slots.acquire(wait)
	if err != nil && ctx.Err() == nil {
		return c.death()
	}
	return err
}

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
		select {
		case <-c.ping():
		case <-c.done:
		}
		for range n {
			c.slots.release()
		}
	}
}

// slots bounds the sessions open at once: a semaphore of the first limit,
// MaxSessions-1, lowered (by taking the difference for good) when the
// server turns out to allow fewer.
type slots struct {
	sem    *semaphore.Weighted
	mu     sync.Mutex
	limit  int // the limit now
	active int // slots held
}

func newSlots(n int) *slots {
	return &slots{sem: semaphore.NewWeighted(int64(n)), limit: n}
}

func (s *slots) acquire(ctx context.Context) error {
	if err := s.sem.Acquire(ctx, 1); err != nil {
		return err
	}
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
	return nil
}

// tryAcquire takes a slot if one is free at once.
func (s *slots) tryAcquire() bool {
	if !s.sem.TryAcquire(1) {
		return false
	}
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
	return true
}

func (s *slots) release() {
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
	s.sem.Release(1)
}

// shrink lowers the limit below the number of other open sessions, that
// is the server's limit, keeping one spare (but at least 1), and returns
// that number; called by the holder of a slot whose session was refused.
// The slots taken away are acquired in the background as the sessions
// holding them end, and kept for life (the connection's): a semaphore
// serves its waiters in order, so no later acquire gets ahead of them.
func (s *slots) shrink(life context.Context) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	others := s.active - 1
	if n := max(others-1, 1); s.limit > n {
		go s.sem.Acquire(life, int64(s.limit-n))
		s.limit = n
	}
	return others
}
