package e2e

import (
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/shell"
)

// fakeRebootScript stands in for reboot and systemctl inside a lab host:
// it freezes the host's sshd for 3 s, then gives the host a new boot id.
const fakeRebootScript = `#!/bin/sh
# FLEET-FAKE-REBOOT
( kill -STOP $(cat /run/sshd.pid); sleep 3; cat /proc/sys/kernel/random/uuid > /tmp/.boot_id; kill -CONT $(cat /run/sshd.pid) ) </dev/null >/dev/null 2>&1 &
`

// fakeReboot makes "rebooting" lab host h safe and observable: inside
// h's mount namespace only, the boot id comes from a file, and reboot
// and systemctl are fakeRebootScript. Nothing reaches the real
// machine's reboot: the test stops unless both stand-ins are in place.
func fakeReboot(t *testing.T, h *lab.Host) string {
	t.Helper()
	exec(t, h, "set -e\n"+
		"cat /proc/sys/kernel/random/uuid > /tmp/.boot_id\n"+
		"mount --bind /tmp/.boot_id /proc/sys/kernel/random/boot_id\n"+
		"printf '%s' "+shell.Quote(fakeRebootScript)+" > /tmp/.fake-reboot\n"+
		"chmod 755 /tmp/.fake-reboot\n"+
		"for f in /usr/sbin/reboot /usr/bin/systemctl; do if [ -e \"$f\" ]; then mount --bind /tmp/.fake-reboot \"$f\"; fi; done\n")
	check := exec(t, h, `for f in reboot systemctl; do p=$(command -v $f) || continue; grep -q FLEET-FAKE-REBOOT "$p" || echo "REAL $p"; done`)
	if strings.Contains(check, "REAL") {
		t.Fatalf("refusing to test reboot: %s is not the stand-in", check)
	}
	return exec(t, h, "cat /proc/sys/kernel/random/boot_id")
}

// TestReboot: reboot(h) returns once h is back with a new boot id and a
// fresh SSH connection works; the plan shows the step.
func TestReboot(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a"}})
	a := l.Host("a")
	before := fakeReboot(t, a)
	file := rolloutDir(t, l, "1.0", nil, `
def deploy(ctx):
    closures = nix_build(ctx.hosts)
    for h in ctx.hosts:
        push(h, closures[h.name])
        activate(h, closures[h.name], goal = "boot")
        reboot(h, timeout = 60)
        check(h, cmd = ["true"])
`)
	r := fleet(t, runArgs(l, file)...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if after := exec(t, a, "cat /proc/sys/kernel/random/boot_id"); after == before {
		t.Errorf("boot id unchanged: the reboot did not happen")
	}
	if !strings.Contains(r.stdout, `"action":"reboot"`) {
		t.Errorf("no reboot step in the events")
	}
	p := fleet(t, "plan", file)
	if !strings.Contains(p.stdout, "reboot    root@a:22, back within 60s") {
		t.Errorf("plan:\n%s", p.stdout)
	}
}
