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
	before, err := e.run(ctx, h, false, nil, "cat", bootIDFile)
	if err != nil {
		return hostErr(h, "reboot", err)
	}
	before = strings.TrimSpace(before)
	if _, err := e.run(ctx, h, h.TargetUser != "root", nil, "sh", "-c", rebootScript); err != nil {
		return hostErr(h, "reboot", err)
	}
	if c, err := e.dial(ctx, h); err == nil {
		e.drop(h, c)
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return hostErr(h, "reboot", ctx.Err())
		case <-time.After(time.Second):
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		id, err := e.fresh(actx, h, false, "cat", bootIDFile)
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
	return hostErr(h, "reboot", fmt.Errorf("not back within %v: %v", timeout, last))
}
