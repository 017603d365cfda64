package executor

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
)

// Unreachable checks, before a run builds anything, that every host
// answers SSH: one connection each, dialled once (no retries), all at
// once but for the bound internal/remote puts on handshakes under way
// (remote.MaxConcurrentHandshakes): dialling is waiting for round trips,
// and waves of -p hosts would pay them once per wave. The connection is
// the host's for the rest of the run, so the check costs no handshake of
// its own. It returns the error of each host
// that does not answer, by name. As fleet doctor's "reachable" check,
// only a failure to reach the host counts: a host whose key is unknown
// or that refuses the login answers, and its deploy reports that as it
// always does. Hosts deployed locally (allow_local) are always reached.
func (e *Executor) Unreachable(ctx context.Context, hosts []*runtime.Host) map[string]error {
	out := map[string]error{}
	var mu sync.Mutex
	var g errgroup.Group
	for _, h := range hosts {
		if isLocal(h) {
			continue
		}
		g.Go(func() error {
			if err := e.reach(ctx, h); err != nil {
				mu.Lock()
				out[h.Name] = err
				mu.Unlock()
			}
			return nil
		})
	}
	g.Wait()
	return out
}

// reach dials h once, as the connection its machine keeps for the run;
// nil unless h could not be reached at all. It returns as soon as h's
// SSH server has answered: the rest of the handshake (key exchange and
// authentication, five round trips) goes on while the run builds, and
// the host's push is started once it is done (serveAhead). A failure of
// that rest is the deploy's to report, as for any host that answers.
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
	m.allowAhead()
	answered := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := s.connectAnswered(ctx, ep, func() { close(answered) })
		if err == nil {
			m.serveAhead() // the push, started while the build runs
		}
		done <- err
	}()
	select {
	case <-answered:
		return nil
	case err = <-done:
	}
	select {
	case <-answered: // it answered, then the handshake failed: the deploy reports why
		return nil
	default:
	}
	var auth *remote.AuthError
	switch {
	case errors.As(err, &auth):
		return nil // no key to log in with (nothing was dialled): the deploy says so, as it always has
	case ctx.Err() != nil, errors.Is(err, remote.ErrClosed):
		return nil // interrupted, or the run is over: the run reports that
	}
	return err
}
