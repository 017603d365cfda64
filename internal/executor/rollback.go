package executor

// This file is what follows an activation: the dead-man confirmation,
// judged by the host's record, and rollback(h) to what the host ran
// before the run.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
)

// confirm proves the new system still lets fleet in: a fresh SSH
// connection, within the window, marks it confirmed. Whether it did is
// the host's record, not the deployer's timeout: when the confirmation
// fails or is late, fleet asks the host what it recorded.
func (m *machine) confirm(ctx context.Context, dir, prev string, window time.Duration, log runtime.LogFunc) error {
	cctx, cancel := context.WithTimeout(ctx, window)
	_, err := m.fresh(cctx, asRoot, "sh", "-c", confirmScript, "fleet-confirm", dir)
	cancel()
	if err == nil {
		return nil
	}
	why := fmt.Sprintf("the new system was not confirmed within %v (%s): the host rolls itself back to %s", window, m.scrub(err), prev)
	deadline := m.clock.Now().Add(window + 2*time.Minute)
	for m.clock.Now().Before(deadline) && ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, window+30*time.Second)
		out, rerr := m.fresh(rctx, asRoot, "sh", "-c", outcomeScript, "fleet-outcome", dir)
		cancel()
		if rerr == nil {
			state, rest, _ := strings.Cut(out, "\n")
			cur, report, _ := strings.Cut(rest, "\n")
			cur = strings.TrimSpace(cur)
			switch state {
			case "confirmed":
				log.Report(fmt.Sprintf("the confirmation of %s was slow (%s), but the host recorded it: confirmed", m.h.Name, m.scrub(err)))
				return nil
			case "rolledback":
				if cur == prev {
					return &runtime.HostError{Host: m.h.Name, Step: "activate", Err: fmt.Errorf("%s; it did, and runs %s again", why, prev), Log: logTail(report)}
				}
				return &runtime.HostError{Host: m.h.Name, Step: "activate", Err: fmt.Errorf("%s; it tried, but runs %q", why, cur), Log: logTail(report)}
			}
			return &runtime.HostError{Host: m.h.Name, Step: "activate", Err: fmt.Errorf("%s; it recorded no decision and runs %q", why, cur)}
		}
		m.clock.Sleep(ctx, time.Second)
	}
	return &runtime.HostError{Host: m.h.Name, Step: "activate", Err: fmt.Errorf("%s; fleet could not reach it since", why)}
}

// Rollback returns the host to what it ran before this run, as recorded
// at activation: that system becomes the profile's newest generation and
// is switched to, and the generation this run added is deleted. With no
// record (nothing was activated in this run) it falls back to the
// profile's previous generation, and says so.
func (e *Executor) Rollback(ctx context.Context, h *runtime.Host, log runtime.LogFunc) (*runtime.ActivateResult, error) {
	m, err := e.machine(h)
	if err != nil {
		return nil, hostErr(h, "rollback", err)
	}
	return m.rollback(ctx, log)
}

func (m *machine) rollback(ctx context.Context, log runtime.LogFunc) (*runtime.ActivateResult, error) {
	m.rec.Lock()
	target, recorded, added := m.previous, m.recorded, m.added
	m.rec.Unlock()
	if !recorded {
		out, err := m.run(ctx, asRoot, nil, "sh", "-c", previousScript, "fleet-previous", m.stateDir(""))
		if err != nil {
			return nil, m.stepErr("rollback", errors.New(m.scrub(err)), "")
		}
		target = strings.TrimSpace(out)
	}
	if target == "" {
		var err error
		if target, err = m.previousGeneration(ctx, log); err != nil {
			return nil, err
		}
	}
	r, err := m.session(ctx, "rollback", sessionArgs{dir: m.stateDir("-rollback"), closure: target, goal: "switch",
		unit: m.unitName("fleet-rollback-"), drop: added, log: log})
	if err != nil {
		return nil, err
	}
	res, err := m.judge("rollback", r)
	if err != nil {
		return nil, err
	}
	if r.decision == "ok" {
		m.rec.Lock()
		m.added = 0
		m.rec.Unlock()
	}
	return res, nil
}

// previousGeneration is the fallback target of a rollback without a
// record: the system of the profile's previous generation.
func (m *machine) previousGeneration(ctx context.Context, log runtime.LogFunc) (string, error) {
	log.Report(fmt.Sprintf("no record of what %s ran before this run: rolling back to the system profile's previous generation", m.h.Name))
	if _, err := m.run(ctx, asRoot, nil, "nix-env", "--profile", systemProfile, "--rollback"); err != nil {
		return "", m.stepErr("rollback", fmt.Errorf("no previous generation to roll back to: %s", m.scrub(err)), "")
	}
	target, err := m.readlink(ctx, "-f", systemProfile)
	if err != nil || !isStorePath(target) {
		return "", m.stepErr("rollback", fmt.Errorf("the system profile points at %q: %v", target, err), "")
	}
	return target, nil
}
