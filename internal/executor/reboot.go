package executor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
)

// rebootScript reboots in the background, a second from now, so that the
// command itself returns cleanly before the connection goes away.
const rebootScript = `setsid sh -c 'sleep 1; systemctl reboot 2>/dev/null || reboot' </dev/null >/dev/null 2>&1 &`

const bootIDFile = "/proc/sys/kernel/random/boot_id"

// Reboot restarts h and waits, up to timeout, until it is back: sshd
// answers a fresh connection and the kernel's boot id has changed.
func (e *Executor) Reboot(ctx context.Context, h *runtime.Host, timeout time.Duration) error {
	m, err := e.machine(h)
	if err != nil {
		return hostErr(h, "reboot", err)
	}
	return hostErr(h, "reboot", m.reboot(ctx, timeout))
}

func (m *machine) reboot(ctx context.Context, timeout time.Duration) error {
	before, err := m.run(ctx, asUser, nil, "cat", bootIDFile)
	if err != nil {
		return err
	}
	before = strings.TrimSpace(before)
	if _, err := m.run(ctx, asRoot, nil, "sh", "-c", rebootScript); err != nil {
		return err
	}
	m.host.Redial()
	deadline := m.clock.Now().Add(timeout)
	var last error
	for m.clock.Now().Before(deadline) {
		if err := m.clock.Sleep(ctx, time.Second); err != nil {
			return err
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		id, err := m.fresh(actx, asUser, "cat", bootIDFile)
		cancel()
		if err != nil {
			last = err
			continue
		}
		if id = strings.TrimSpace(id); id != before {
			return nil
		}
		last = fmt.Errorf("still up with the same boot id")
	}
	return fmt.Errorf("not back within %v: %v", timeout, last)
}
