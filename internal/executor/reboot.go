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

// bootDiffScript prints the parts of the booted system that a reboot
// would change, one per line: kernel, initrd, kernel-modules, as
// NixOS's switch-to-configuration compares them for its "reboot
// required" hint (readlink -f of each under /run/booted-system and under
// the new system). The new system is what the next boot starts: the
// system profile (after activate with goal switch or boot), else
// /run/current-system. A host without /run/booted-system prints
// "no-booted-system". A constant: nothing is spliced into it.
const bootDiffScript = `new=/nix/var/nix/profiles/system
[ -e "$new" ] || new=/run/current-system
[ -e /run/booted-system ] || { echo no-booted-system; exit 0; }
for f in kernel initrd kernel-modules; do
  [ "$(readlink -f /run/booted-system/$f)" = "$(readlink -f $new/$f)" ] || echo $f
done`

// Reboot restarts h and waits, up to o.Timeout, until it is back: sshd
// answers a fresh connection and the kernel's boot id has changed. With
// o.IfNeeded it restarts only if bootDiffScript finds a difference.
func (e *Executor) Reboot(ctx context.Context, h *runtime.Host, o runtime.RebootOptions) (*runtime.RebootResult, error) {
	m, err := e.machine(h)
	if err != nil {
		return nil, hostErr(h, "reboot", err)
	}
	res := &runtime.RebootResult{Rebooted: true, Reason: "asked to"}
	if o.IfNeeded {
		out, err := m.run(ctx, asUser, nil, "sh", "-c", bootDiffScript)
		if err != nil {
			return nil, hostErr(h, "reboot", fmt.Errorf("comparing the booted system with the new one: %w", err))
		}
		changed := strings.Fields(out)
		switch {
		case len(changed) == 0:
			return &runtime.RebootResult{Reason: "kernel, initrd and kernel-modules unchanged"}, nil
		case changed[0] == "no-booted-system":
			res.Reason = "no /run/booted-system to compare with"
		default:
			res.Reason = strings.Join(changed, ", ") + " changed"
		}
	}
	if err := m.reboot(ctx, o.Timeout); err != nil {
		return nil, hostErr(h, "reboot", err)
	}
	return res, nil
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
