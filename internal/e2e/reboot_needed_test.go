package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// bootingRebootScript is fakeRebootScript that also boots the host's
// boot entry, as a real reboot does: /run/booted-system and
// /run/current-system become the system the entry points at.
const bootingRebootScript = `#!/bin/sh
# FLEET-FAKE-REBOOT
( kill -STOP $(cat /run/sshd.pid); sleep 3
  t=$(readlink /nix/var/lab/boot/default) && ln -sfn "$t" /run/booted-system && ln -sfn "$t" /run/current-system
  cat /proc/sys/kernel/random/uuid > /tmp/.boot_id; kill -CONT $(cat /run/sshd.pid) ) </dev/null >/dev/null 2>&1 &
`

// kernel is a mini-nixpkgs module giving the host a stand-in kernel of
// version v (fleet.test.kernel).
func kernel(v string) string { return `{"fleet": {"test": {"kernel": "` + v + `"}}}` }

// TestRebootIfNeeded: a and b run v1, booted, with kernel 6.1; v2 keeps
// a's kernel and gives b 6.2. fleet run --reboot=if-needed switches
// both and reboots b only: b's boot id changes and it booted v2, a's
// does not; the reboot steps say why, the summary lists b as rebooted.
func TestRebootIfNeeded(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	a, b := l.Host("a"), l.Host("b")
	r := fleet(t, runArgs(l, fleetDir(t, l, "1.0", map[string]string{"a": kernel("6.1"), "b": kernel("6.1")}))...)
	if r.code != 0 {
		t.Fatalf("v1: exit %d\n%s", r.code, r.stderr)
	}
	boot := map[string]string{}
	for _, h := range []*lab.Host{a, b} {
		exec(t, h, "ln -sfn $(readlink /run/current-system) /run/booted-system")
		if k := exec(t, h, "cat /run/booted-system/kernel"); k != "kernel 6.1" {
			t.Fatalf("%s: kernel %q", h.Name, k)
		}
		boot[h.Name] = fakeRebootWith(t, h, bootingRebootScript)
	}

	file := fleetDir(t, l, "2.0", map[string]string{"a": kernel("6.1"), "b": kernel("6.2")})
	p := fleet(t, "plan", "--reboot=if-needed", file)
	if p.code != 0 || !strings.Contains(p.stdout, "reboot    root@b:22, back within 600s, if the kernel, initrd or modules changed") {
		t.Errorf("plan:\n%s", p.stdout)
	}
	r = fleet(t, runArgs(l, file, "--reboot=if-needed")...)
	if r.code != 0 {
		t.Fatalf("v2: exit %d\n%s", r.code, r.stderr)
	}
	cl := closures(events(t, r.stdout))
	if got := exec(t, a, "cat /proc/sys/kernel/random/boot_id"); got != boot["a"] {
		t.Errorf("a rebooted, its kernel did not change")
	}
	if got := exec(t, b, "cat /proc/sys/kernel/random/boot_id"); got == boot["b"] {
		t.Errorf("b did not reboot, its kernel changed")
	}
	if got := exec(t, b, "readlink /run/booted-system"); got != cl["b"] {
		t.Errorf("b booted %q, want %q", got, cl["b"])
	}
	if got := current(t, a); got != cl["a"] {
		t.Errorf("a runs %q, want %q", got, cl["a"])
	}
	type rebootEvent struct {
		Event string `json:"event"`
		Host  string `json:"host"`
		Step  struct {
			Action string `json:"action"`
			Result struct {
				Rebooted bool   `json:"rebooted"`
				Reason   string `json:"reason"`
			} `json:"result"`
		} `json:"step"`
		Rebooted []string `json:"rebooted"`
		Hosts    []struct {
			Host     string `json:"host"`
			Rebooted bool   `json:"rebooted"`
		} `json:"hosts"`
	}
	reasons := map[string]string{}
	var sum rebootEvent
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e rebootEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if e.Event == "step_end" && e.Step.Action == "reboot" {
			reasons[e.Host] = e.Step.Result.Reason
			if e.Step.Result.Rebooted != (e.Host == "b") {
				t.Errorf("%s: rebooted %v", e.Host, e.Step.Result.Rebooted)
			}
		}
		if e.Event == "summary" {
			sum = e
		}
	}
	if reasons["a"] != "kernel, initrd and kernel-modules unchanged" || reasons["b"] != "kernel, initrd, kernel-modules changed" {
		t.Errorf("reasons %q", reasons)
	}
	if strings.Join(sum.Rebooted, ",") != "b" {
		t.Errorf("summary rebooted %v", sum.Rebooted)
	}

	// The same again: b booted 6.2, so nobody reboots.
	again := exec(t, b, "cat /proc/sys/kernel/random/boot_id")
	r = fleet(t, runArgs(l, file, "--reboot=if-needed")...)
	if r.code != 0 {
		t.Fatalf("v2 again: exit %d", r.code)
	}
	if strings.Contains(r.stdout, `"rebooted":true`) || exec(t, b, "cat /proc/sys/kernel/random/boot_id") != again {
		t.Errorf("a host rebooted with nothing changed")
	}
}
