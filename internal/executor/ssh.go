package executor

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
)

// sshHost is a host reached over SSH: its endpoint, the target with
// ssh_config applied once, and its one connection, which every command
// of the run shares.
type sshHost struct {
	ep remote.Endpoint

	mu     sync.Mutex // held while dialling, so that one Run dials and the others wait
	conn   *remote.Conn
	closed bool
}

// newSSHHost resolves h's target through ssh_config.
func newSSHHost(o remote.Options, h *runtime.Host) (*sshHost, error) {
	ep, err := remote.Resolve(o, remote.Target{Host: h.TargetHost, User: h.TargetUser, Port: h.TargetPort})
	if err != nil {
		return nil, err
	}
	return &sshHost{ep: ep}, nil
}

// User is the resolved login user: the target's, else ssh_config's, else
// root.
func (s *sshHost) User() string { return s.ep.User }

// connection returns the connection, dialling it if there is none.
func (s *sshHost) connection(ctx context.Context) (*remote.Conn, error) {
	return s.connect(ctx, s.ep)
}

// connect returns the connection, dialling ep (the host's endpoint,
// perhaps with fewer attempts) if there is none; the connection is the
// host's for the run.
func (s *sshHost) connect(ctx context.Context, ep remote.Endpoint) (*remote.Conn, error) {
	return s.connectAnswered(ctx, ep, nil)
}

// connectAnswered is connect, calling answered once the host's SSH
// server answers (remote.DialAnswered), if it dials.
func (s *sshHost) connectAnswered(ctx context.Context, ep remote.Endpoint, answered func()) (*remote.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%s: %w", s.ep.Host, remote.ErrClosed)
	}
	if s.conn == nil {
		c, err := remote.DialAnswered(ctx, ep, answered)
		if err != nil {
			return nil, err
		}
		s.conn = c
	}
	return s.conn, nil
}

// Run runs cmd over the connection; a lost connection is dropped, so
// that the next Run redials.
func (s *sshHost) Run(ctx context.Context, cmd remote.Cmd) error {
	c, err := s.connection(ctx)
	if err != nil {
		return err
	}
	err = c.Run(ctx, cmd)
	if errors.Is(err, remote.ErrConnLost) {
		s.drop(c)
	}
	return err
}

// drop forgets c, unless another Run already replaced it.
func (s *sshHost) drop(c *remote.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == c {
		s.conn = nil
		c.Close()
	}
}

// Prepare has the connection, if there is one, open the session of the
// next command now (remote.Conn.Prepare).
func (s *sshHost) Prepare() {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		c.Prepare()
	}
}

func (s *sshHost) Fresh(ctx context.Context, cmd remote.Cmd) error {
	c, err := remote.Dial(ctx, s.ep)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Run(ctx, cmd)
}

func (s *sshHost) Redial() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// Close closes the connection; later Runs fail with remote.ErrClosed.
func (s *sshHost) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.Redial()
	return nil
}
