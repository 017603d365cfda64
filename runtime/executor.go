package runtime

import (
	"context"
	"strings"
	"time"
)

// Executor is the one seam between a script and the world. Builtins that
// touch machines validate their arguments, record a Step, and call the
// Executor; nothing else reaches Nix or SSH. The dry run (fleet plan) is
// the same script on the DryExecutor, so the plan printed is the plan
// executed.
type Executor interface {
	// Build builds the system closures of hosts in one batch and returns
	// the closure (a store path) of each host by name.
	Build(ctx context.Context, hosts []*Host) (map[string]string, error)
	// Push copies closure and its dependencies to the host, telling
	// progress (which may be nil) how many bytes have gone.
	Push(ctx context.Context, h *Host, closure string, progress ProgressFunc) (*PushResult, error)
	// Activate makes closure the host's running system for o.Goal.
	Activate(ctx context.Context, h *Host, closure string, o ActivateOptions) (*ActivateResult, error)
	// Rollback switches the host back to what it ran before this run
	// (its previous generation without a record), telling log what it
	// does beyond that.
	Rollback(ctx context.Context, h *Host, log LogFunc) (*ActivateResult, error)
	// RollbackTo switches the host to the system of its generation gen
	// (fleet rollback --to), telling log what it does beyond that.
	RollbackTo(ctx context.Context, h *Host, gen int, log LogFunc) (*ActivateResult, error)
	// Run runs argv on the host.
	Run(ctx context.Context, h *Host, argv []string) (*RunResult, error)
	// Check makes one attempt of a health check; nil means healthy.
	Check(ctx context.Context, h *Host, c *CheckSpec) error
	// Sleep waits for d, or until ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
	// Reboot restarts the host and waits until it is back (a new boot
	// id, sshd answering), at most o.Timeout. With o.IfNeeded it first
	// compares the booted system's kernel, initrd and kernel modules
	// with the new system's and restarts only if they differ.
	Reboot(ctx context.Context, h *Host, o RebootOptions) (*RebootResult, error)
	// UploadKey gets the key's content (reading its file or running its
	// command here) and installs it on the host atomically; it returns
	// the content's Hash.
	UploadKey(ctx context.Context, h *Host, key *Secret) (string, error)
}

// ActivateOptions say how to activate.
type ActivateOptions struct {
	Goal string
	// Confirm arms a dead-man switch: unless fleet confirms the new
	// system over a fresh SSH connection within Confirm, the host rolls
	// itself back to the system it ran before. Zero disables it.
	Confirm time.Duration
	// InstallBootloader asks switch-to-configuration to (re)install the
	// boot loader (NIXOS_INSTALL_BOOTLOADER=1).
	InstallBootloader bool
	// Log, which may be nil, hears what the activation says beyond its
	// result: waiting for another deploy's lock, waiting for an
	// interrupted switch to end, a warning.
	Log LogFunc
}

// RebootOptions say how to reboot.
type RebootOptions struct {
	Timeout  time.Duration // to be back with a new boot id
	IfNeeded bool          // only if the kernel, initrd or modules changed
}

// RebootResult says whether a host restarted, and why (or why not).
type RebootResult struct {
	Rebooted bool
	Reason   string // e.g. "kernel, initrd changed"
}

// CheckSpec is one health check: exactly one of Cmd (run on the host,
// healthy when it exits 0), HTTP (a GET from this machine, healthy on
// 2xx) or Systemd (units that must be active on the host).
type CheckSpec struct {
	Cmd     []string
	HTTP    string
	Systemd []string
	Timeout time.Duration // per attempt
}

// String describes the check for plans and messages.
func (c *CheckSpec) String() string {
	switch {
	case len(c.Cmd) > 0:
		return "cmd " + strings.Join(c.Cmd, " ")
	case c.HTTP != "":
		return "http " + c.HTTP
	default:
		return "systemd " + strings.Join(c.Systemd, " ")
	}
}

// PushResult says what a push copied.
type PushResult struct {
	Paths   int   // store paths in the closure
	Missing int   // paths the host lacked and received
	Bytes   int64 // bytes sent
}

// ActivateResult says which system a host ran before and after, as the
// host reports it after the switch.
type ActivateResult struct {
	Previous string // store path of the system before activation, "" if none
	Current  string
	// Generation is the system profile's generation afterwards, 0 if
	// there is none; Boot the system the boot entry points at, where
	// the host has one fleet can read.
	Generation int
	Boot       string
	// Warning is set when the step succeeded with a caveat: "switched,
	// with failed units" (switch-to-configuration exited 4 or 2 and the
	// host runs the new system). A strategy's check decides what next.
	Warning string
}

// RunResult is the outcome of a remote command.
type RunResult struct {
	Stdout   string
	Stderr   string
	ExitCode int
}

// Goals are the activation goals of switch-to-configuration.
var Goals = []string{"switch", "boot", "test", "dry-activate"}

// ValidGoal reports whether g is one of Goals.
func ValidGoal(g string) bool {
	for _, x := range Goals {
		if x == g {
			return true
		}
	}
	return false
}
