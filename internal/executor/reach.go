package executor

import (
	"context"
	"errors"
	"sync"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
)

// Unreachable checks, before a run builds anything, that every host
// answers SSH: one connection each, dialled once (no retries), at most
// parallel at a time. The connection is the host's for the rest of the
// run, so the check costs no handshake of its own. It returns the error of each host
// that does not answer, by name. As fleet doctor's "reachable" check,
// only a failure to reach the host counts: a host whose key is unknown
// or that refuses the login answers, and its deploy reports that as it
// always does. Hosts deployed locally (allow_local) are always reached.
func (e *Executor) Unreachable(ctx context.Context, hosts []*runtime.Host, parallel int) map[string]error {
	out := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, parallel))
	for _, h := range hosts {
		if isLocal(h) {
			continue
		}
		wg.Add(1)
		go func(h *runtime.Host) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := e.reach(ctx, h); err != nil {
				mu.Lock()
				out[h.Name] = err
				mu.Unlock()
			}
		}(h)
	}
	wg.Wait()
	return out
}

// reach dials h once and keeps the connection as its machine's; nil
// unless h could not be reached at all.
func (e *Executor) reach(ctx context.Context, h *runtime.Host) error {
	m, err := e.machine(h)
	if err != nil {
		return nil // an ssh_config error: the deploy reports it
	}
	s, ok := m.host.(*sshHost)
	if !ok {
		return nil
	}
	ep := s.ep
	ep.ConnectionAttempts = 1
	conn, err := remote.Dial(ctx, ep)
	if err == nil {
		s.mu.Lock()
		if s.conn == nil && !s.closed {
			s.conn, conn = conn, nil
		}
		s.mu.Unlock()
		if conn != nil {
			conn.Close()
		}
		return nil
	}
	var (
		unknown *remote.UnknownHostError
		changed *remote.ChangedHostKeyError
		revoked *remote.RevokedHostKeyError
		auth    *remote.AuthError
	)
	if errors.As(err, &unknown) || errors.As(err, &changed) || errors.As(err, &revoked) || errors.As(err, &auth) {
		return nil // it answers SSH
	}
	if ctx.Err() != nil {
		return nil // interrupted: the run reports that
	}
	return err
}
