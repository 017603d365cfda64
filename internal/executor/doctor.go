package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/internal/tail"
	"github.com/fleet-deploy/fleet/runtime"
	"golang.org/x/crypto/ssh/agent"
)

// Check is one finding of fleet doctor: what was checked on which host
// ("" for this machine), whether it held, and how to fix it if not.
type Check struct {
	Host   string      `json:"host,omitempty"`
	Name   string      `json:"check"`
	Status CheckStatus `json:"status"`
	Detail string      `json:"detail"`
	Fix    string      `json:"fix,omitempty"`
}

// CheckStatus is the outcome of a Check.
type CheckStatus string

const (
	CheckOK      CheckStatus = "ok"
	CheckFailed  CheckStatus = "failed"
	CheckSkipped CheckStatus = "skipped" // an earlier check of the host failed
)

// minFreeNix is the free space on a host's /nix below which doctor calls
// it a problem: a NixOS system closure with a few generations is gigabytes.
const minFreeNix = 2 << 30

// Doctor checks, in the order a deploy needs them, that h can be
// deployed: a key to log in with, the host reachable, its host key known,
// the login accepted, sudo -n where the user is not root, Nix present
// with a writable store, and free space on /nix. It uses a connection of
// its own (one per host) with a single connection attempt, and stops at
// the first failure: the checks after it are reported as skipped.
func (e *Executor) Doctor(ctx context.Context, h *runtime.Host) []Check {
	var checks []Check
	failed := false
	add := func(name string, err error, detail, fix string) {
		c := Check{Host: h.Name, Name: name, Status: CheckOK, Detail: detail}
		switch {
		case failed:
			c.Status, c.Detail = CheckSkipped, "not checked"
		case err != nil:
			c.Status, c.Detail, c.Fix = CheckFailed, err.Error(), fix
			failed = true
		}
		checks = append(checks, c)
	}
	if isLocal(h) {
		add("local", nil, "deployed on this machine (allow_local): no SSH", "")
		return checks
	}
	s, err := newSSHHost(e.opts.SSH, h)
	if err != nil {
		add("ssh-config", err, "", "fix the ssh_config file named above")
		return checks
	}
	ep := s.ep
	if ep.ConnectionAttempts == 0 {
		ep.ConnectionAttempts = 1 // a diagnosis, not a deploy: no retries
	}
	keys, kerr := loginKeys(ep)
	add("keys", kerr, keys, "load a key into ssh-agent (ssh-add), or name one with IdentityFile in ~/.ssh/config")

	// Reachable means what it means for fleet run's check (reach.go):
	// the host's SSH server answered, whatever the handshake then brought.
	var answered atomic.Bool
	conn, err := remote.DialAnswered(ctx, ep, func() { answered.Store(true) })
	var (
		unknown *remote.UnknownHostError
		changed *remote.ChangedHostKeyError
		revoked *remote.RevokedHostKeyError
		auth    *remote.AuthError
	)
	addr := net.JoinHostPort(ep.Address, strconv.Itoa(ep.Port))
	switch {
	case err != nil && !answered.Load():
		add("reachable", err, "", fmt.Sprintf("is the host up, and sshd listening on %s? (ssh -v -p %d %s@%s)", addr, ep.Port, ep.User, ep.Address))
	case err == nil:
		defer conn.Close()
		add("reachable", nil, addr+" answers SSH", "")
		add("host-key", nil, "known", "")
		add("login", nil, "as "+ep.User, "")
	case errors.As(err, &unknown):
		add("reachable", nil, addr+" answers SSH", "")
		add("host-key", fmt.Errorf("%s is not in %s", unknown.Host, orNone(ep.KnownHostsFiles)),
			"", fmt.Sprintf("if %s is the host's key, add this line to %s (or deploy once with --accept-new-host-keys): %s", unknown.Fingerprint, unknown.File, unknown.KeyLine))
	case errors.As(err, &changed), errors.As(err, &revoked):
		add("reachable", nil, addr+" answers SSH", "")
		add("host-key", err, "", "find out why the key changed before anything else; see the message")
	case errors.As(err, &auth):
		add("reachable", nil, addr+" answers SSH", "")
		add("host-key", nil, "known", "")
		add("login", err, "", fmt.Sprintf("authorize one of your keys for %s on the host (ssh-copy-id %s@%s)", ep.User, ep.User, ep.Address))
	default: // it answered, then the handshake failed
		add("reachable", nil, addr+" answers SSH", "")
		add("host-key", nil, "known", "")
		add("login", err, "", "the handshake failed after the host answered: see the message (ssh -v shows the same exchange)")
	}
	if failed {
		for _, n := range []string{"host-key", "login", "sudo", "nix", "space"} {
			if !hasCheck(checks, n) && (n != "sudo" || needsSudo(ep.User)) {
				add(n, nil, "", "")
			}
		}
		return checks
	}

	if needsSudo(ep.User) {
		err := conn.Run(ctx, remote.Cmd{Argv: []string{"true"}, Sudo: true})
		add("sudo", err, "sudo -n works for "+ep.User, fmt.Sprintf("let %s run sudo without a password (NOPASSWD in sudoers), or deploy with --ask-sudo-password", ep.User))
	}
	out := tail.NewBuffer(64 << 10) // the answers are a few lines
	err = conn.Run(ctx, remote.Cmd{Argv: []string{"sh", "-c", doctorScript}, Sudo: true, Stdout: out})
	st := parseDoctor(out.String())
	switch {
	case err != nil && st["nix"] == "":
		add("nix", err, "", "")
	case st["nix"] == "missing":
		add("nix", errors.New("no nix-store on the PATH of a login session"), "", "is it a NixOS host? fleet needs Nix on the host to receive closures")
	case st["writable"] != "yes":
		add("nix", fmt.Errorf("%s, but /nix/store is not writable by %s", st["nix"], privileged(ep.User)), "", "fleet imports closures into /nix/store: is /nix mounted read-only?")
	default:
		add("nix", nil, st["nix"]+", /nix/store writable", "")
	}
	kb, perr := strconv.ParseInt(st["avail-kb"], 10, 64)
	switch {
	case perr != nil:
		add("space", fmt.Errorf("df /nix printed %q", st["avail-kb"]), "", "")
	case kb*1024 < minFreeNix:
		add("space", fmt.Errorf("/nix: only %s free", gib(kb*1024)), "", "free space on the host: nix-collect-garbage --delete-older-than 30d")
	default:
		add("space", nil, "/nix: "+gib(kb*1024)+" free", "")
	}
	return checks
}

// doctorScript reports, one key=value per line, what fleet needs of a
// host's Nix. It is a constant: nothing from the host or the script is
// spliced into it.
const doctorScript = `if command -v nix-store >/dev/null 2>&1; then echo "nix=$(nix-store --version)"; else echo nix=missing; fi
if [ -w /nix/store ]; then echo writable=yes; else echo writable=no; fi
echo "avail-kb=$(df -Pk /nix/store 2>/dev/null | awk 'NR==2 {print $4}')"`

func parseDoctor(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// loginKeys describes the keys a login to ep can offer: the agent's and
// the identity files that exist.
func loginKeys(ep remote.Endpoint) (string, error) {
	var have []string
	if ep.AgentSocket != "" {
		if c, err := net.Dial("unix", ep.AgentSocket); err == nil {
			keys, err := agent.NewClient(c).List()
			c.Close()
			if err == nil && len(keys) > 0 {
				have = append(have, fmt.Sprintf("ssh-agent (%d keys)", len(keys)))
			}
		}
	}
	for _, f := range ep.IdentityFiles {
		if _, err := os.Stat(f); err == nil {
			have = append(have, f)
		}
	}
	if len(have) == 0 {
		return "", fmt.Errorf("no key to log in with: no ssh-agent with keys, and none of %s exists", orNone(ep.IdentityFiles))
	}
	return strings.Join(have, ", "), nil
}

func orNone(files []string) string {
	if len(files) == 0 {
		return "(no files)"
	}
	return strings.Join(files, ", ")
}

func hasCheck(cs []Check, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}

func privileged(user string) string {
	if !needsSudo(user) {
		return "root"
	}
	return user + " through sudo"
}

func gib(n int64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }
