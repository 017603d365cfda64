package executor

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
)

// bootHost answers what Reboot asks: bootDiffScript with diff, the boot
// id (a new one over a fresh connection once rebootScript ran), and
// counts the reboots.
type bootHost struct {
	diff     string
	reboots  int
	commands []string
}

func (b *bootHost) User() string { return "root" }
func (b *bootHost) Redial()      {}
func (b *bootHost) Close() error { return nil }

func (b *bootHost) Run(ctx context.Context, cmd remote.Cmd) error {
	b.commands = append(b.commands, strings.Join(cmd.Argv, " "))
	switch {
	case len(cmd.Argv) == 3 && cmd.Argv[2] == bootDiffScript:
		io.WriteString(cmd.Stdout, b.diff)
	case len(cmd.Argv) == 3 && cmd.Argv[2] == rebootScript:
		b.reboots++
	case len(cmd.Argv) == 2 && cmd.Argv[1] == bootIDFile:
		fmt.Fprintf(cmd.Stdout, "boot-%d\n", b.reboots)
	default:
		return fmt.Errorf("unexpected command %q", cmd.Argv)
	}
	return nil
}

func (b *bootHost) Fresh(ctx context.Context, cmd remote.Cmd) error { return b.Run(ctx, cmd) }

// TestRebootIfNeeded: with IfNeeded the host restarts only when
// bootDiffScript names a part that changed; without, always.
func TestRebootIfNeeded(t *testing.T) {
	tests := []struct {
		name     string
		ifNeeded bool
		diff     string
		want     runtime.RebootResult
	}{
		{"unchanged", true, "", runtime.RebootResult{Reason: "kernel, initrd and kernel-modules unchanged"}},
		{"kernel and modules changed", true, "kernel\nkernel-modules\n", runtime.RebootResult{Rebooted: true, Reason: "kernel, kernel-modules changed"}},
		{"never booted by NixOS", true, "no-booted-system\n", runtime.RebootResult{Rebooted: true, Reason: "no /run/booted-system to compare with"}},
		{"always", false, "", runtime.RebootResult{Rebooted: true, Reason: "asked to"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &bootHost{diff: tt.diff}
			e := New(Options{})
			e.clock = &fakeClock{now: time.Unix(0, 0)}
			e.newHost = func(*runtime.Host) (Host, error) { return h, nil }
			res, err := e.Reboot(context.Background(), testH, runtime.RebootOptions{Timeout: time.Minute, IfNeeded: tt.ifNeeded})
			if err != nil {
				t.Fatal(err)
			}
			if *res != tt.want {
				t.Errorf("got %+v, want %+v", *res, tt.want)
			}
			if rebooted := h.reboots == 1; rebooted != tt.want.Rebooted {
				t.Errorf("%d reboots; commands %q", h.reboots, h.commands)
			}
		})
	}
}
