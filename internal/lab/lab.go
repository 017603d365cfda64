// Package lab runs simulated NixOS hosts on this machine for end-to-end
// tests, benchmarks and demos.
//
// Every host is a real OpenSSH sshd listening on its own loopback address
// (127.0.0.2, 127.0.0.3, …, port 22) inside its own mount and UTS namespace:
// inside a host, /nix, /run, /tmp, /home, /root, /var/log and /etc/ssh are
// the host's own directories under Host.Root, /etc/passwd, /etc/shadow,
// /etc/group, /etc/sudoers, /etc/hosts and /etc/hostname are per-host copies
// (with a "nixos" user that has passwordless sudo and an "ops" user whose
// sudo needs OpsPassword), and the hostname is the
// host's name. Everything else (notably /usr with the nix binaries) is the
// deployer's. The host's /nix starts out as an empty store.
//
// Each host also runs a nix-daemon (unless Options.NoNixDaemon), so that, as
// on NixOS, root uses the store directly and other users go through the
// daemon. Hosts share the deployer's PID namespace and network namespace
// (each on its own loopback address): `pkill` inside a host can hit other
// hosts' processes.
//
// The lab must run in a private network namespace (see RunInPrivateNetns,
// labtest.Main and cmd/fleet-lab), so that nothing it does can reach the
// network. Typical use in a package's tests (the helpers that take a
// testing.T live in internal/lab/labtest, so that binaries linking lab do
// not link package testing):
//
//	func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }
//
//	func TestDeploy(t *testing.T) {
//		labtest.Require(t)
//		l, err := lab.Start(ctx, lab.Options{Hosts: []string{"envy", "lenovo"}})
//		if err != nil {
//			t.Fatal(err)
//		}
//		defer l.Close()
//		out, err := l.SSH(ctx, "nixos@envy", "sudo -n nix-store --verify").CombinedOutput()
//		// or: exec.Command("ssh", "-F", l.SSHConfig, "root@envy", ...)
//		cs, _ := l.Host("envy").CurrentSystem()
//	}
//
// This file holds the lab as a whole: Options, Start, Env and Close; one
// host's lifecycle is in host.go, the processes that make it up in
// holder.go, sshd.go and nixdaemon.go, its files in hostfs.go, the client's
// files in client.go.
package lab

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sync/errgroup"
)

// Options configure Start.
type Options struct {
	// Hosts are the host names, e.g. {"envy", "lenovo", "rpi4-a"}. Host i
	// gets address 127.0.0.(i+2) (127.0.K.(i+2) for the K-th lab running at
	// the same time in the same network namespace).
	Hosts []string
	// Dir is the state directory. If empty, a temporary directory is made,
	// and Close removes it. A given Dir is kept (host stores survive).
	Dir string
	// Aliases are extra names or addresses that reach a host in the
	// generated ssh_config and known_hosts, e.g. {"10.0.0.10": "envy"}. A
	// value may be a host name or a host address.
	Aliases map[string]string
	// NoNixDaemon turns off the nix-daemon that otherwise runs in every host
	// (as on NixOS: root uses the store directly, other users such as nixos
	// go through the daemon). Without it only root can use a host's store.
	NoNixDaemon bool
	// SystemdRun, when set, is the path of the systemd-run stand-in
	// (testdata/lab/systemd-run, see testdata/lab/systemd-standin.md): in
	// every host it is bind-mounted over /usr/bin/systemd-run and
	// /usr/bin/systemctl, and /run/systemd/system exists, so that the host
	// looks like one where systemd runs. Without it a host has no systemd
	// (the deployer's systemd-run, which cannot reach a manager there).
	SystemdRun string
	// SSHDConfig is extra sshd_config text for every host, placed before
	// the lab's own lines so that its values win (sshd takes the first
	// value of a keyword); paths are as seen inside the host (Root+"/etc"
	// is its /etc). No Match blocks.
	SSHDConfig string
}

// Lab is a running set of hosts.
type Lab struct {
	Dir   string
	Hosts []*Host
	// ClientKey is the path of an unencrypted ed25519 private key that is
	// authorized for root, nixos and ops on every host.
	ClientKey string
	// KnownHosts is the path of a known_hosts file with every host's key,
	// under its name, address and aliases.
	KnownHosts string
	// SSHConfig is the path of an ssh_config with a `Host <name> <aliases…>`
	// block per host.
	SSHConfig string

	tempDir   bool
	slot      int
	closeOnce sync.Once
	closeErr  error
}

// User names that exist on every host. All of them log in with
// Lab.ClientKey. nixos has passwordless sudo; ops's sudo asks for
// OpsPassword (`sudo -n` fails for ops).
const (
	RootUser  = "root"
	NixosUser = "nixos"
	OpsUser   = "ops"
)

// OpsPassword is the password of OpsUser on every host, which its sudo
// asks for (sudoers `ops ALL=(ALL:ALL) ALL`).
const OpsPassword = "fleet-lab-ops-pw"

var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// Unavailable returns why a lab cannot run in this process, or "" if it
// can: not root, not inside a private network namespace, or a needed
// program (sshd, ssh, nix-store, sudo, nsenter, mount) missing.
func Unavailable() string {
	if !privileged() {
		return "need root"
	}
	if !InPrivateNetns() {
		return "not inside a private network namespace (TestMain must call labtest.Main, or run under fleet-lab)"
	}
	if missing := MissingPrograms(); len(missing) > 0 {
		return "missing programs: " + strings.Join(missing, ", ") + " (apt-get install openssh-server openssh-client nix-bin sudo)"
	}
	return ""
}

// Start creates and starts the hosts in parallel and returns once every
// sshd has sent its SSH banner. It must run as root in a private network
// namespace (see RunInPrivateNetns). On error everything already started is
// torn down.
func Start(ctx context.Context, opts Options) (*Lab, error) {
	if !privileged() {
		return nil, errors.New("lab: need root")
	}
	if !InPrivateNetns() {
		return nil, errors.New("lab: refusing to start outside a private network namespace (call labtest.Main from TestMain, or run under fleet-lab)")
	}
	b, err := findBins()
	if err != nil {
		return nil, err
	}
	if err := checkHostNames(opts.Hosts); err != nil {
		return nil, err
	}
	if opts.SystemdRun != "" {
		if err := checkSystemdRun(opts.SystemdRun); err != nil {
			return nil, err
		}
	}
	base, err := readBaseEtc()
	if err != nil {
		return nil, err
	}
	// The hosts bind-mount their own /nix, /home and /etc/nix over these
	// (an empty /etc/nix is only a mount point: lab hosts read the nix.conf
	// the lab writes, the deployer reads whatever it was set up to read).
	for _, d := range []string{"/nix", "/home", "/etc/nix"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}

	l := &Lab{Dir: opts.Dir, slot: -1}
	if l.Dir == "" {
		if l.Dir, err = makeTempDir(); err != nil {
			return nil, err
		}
		l.tempDir = true
	} else if l.Dir, err = filepath.Abs(l.Dir); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			l.Close()
		}
	}()
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if l.slot, err = allocSlot(len(opts.Hosts)); err != nil {
		return nil, err
	}
	for i, n := range opts.Hosts {
		l.Hosts = append(l.Hosts, &Host{
			Name: n,
			Addr: fmt.Sprintf("127.0.%d.%d", l.slot, i+2),
			Port: 22,
			Root: filepath.Join(l.Dir, "hosts", n),
			lab:  l,

			sshdExtra:  opts.SSHDConfig,
			systemdRun: opts.SystemdRun,
		})
	}
	if err := l.addAliases(opts.Aliases); err != nil {
		return nil, err
	}

	// Client key.
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	l.ClientKey = filepath.Join(l.Dir, "id_ed25519")
	clientPub, err := writeKeyPair(l.ClientKey, pub, priv, "fleet-lab-client")
	if err != nil {
		return nil, err
	}

	// One host failing to boot stops the others waiting.
	g, gctx := errgroup.WithContext(ctx)
	for _, h := range l.Hosts {
		g.Go(func() error { return h.boot(gctx, b, base, clientPub, !opts.NoNixDaemon) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := l.writeClientFiles(); err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

// checkHostNames checks that there are 1 to 253 hosts (one /24 of
// addresses) with distinct names that are valid DNS labels.
func checkHostNames(names []string) error {
	if len(names) == 0 {
		return errors.New("lab: no hosts")
	}
	if len(names) > 253 {
		return errors.New("lab: at most 253 hosts")
	}
	seen := map[string]bool{}
	for _, n := range names {
		if !hostNameRE.MatchString(n) {
			return fmt.Errorf("lab: invalid host name %q", n)
		}
		if seen[n] {
			return fmt.Errorf("lab: duplicate host name %q", n)
		}
		seen[n] = true
	}
	return nil
}

// addAliases gives each alias to the host it names (by name or address).
func (l *Lab) addAliases(aliases map[string]string) error {
	seen := map[string]bool{}
	for _, h := range l.Hosts {
		seen[h.Name] = true
	}
	for _, a := range slices.Sorted(maps.Keys(aliases)) {
		target := aliases[a]
		var h *Host
		for _, c := range l.Hosts {
			if c.Name == target || c.Addr == target {
				h = c
			}
		}
		if h == nil {
			return fmt.Errorf("lab: alias %q: no host %q", a, target)
		}
		if strings.ContainsAny(a, " \t\"#,*?!") || a == "" {
			return fmt.Errorf("lab: invalid alias %q", a)
		}
		if seen[a] {
			return fmt.Errorf("lab: alias %q is used twice or is a host name", a)
		}
		seen[a] = true
		h.aliases = append(h.aliases, a)
	}
	return nil
}

// Host returns the host with the given name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Env returns the FLEET_LAB_* variables describing the lab:
// FLEET_LAB_SSH_CONFIG, FLEET_LAB_KNOWN_HOSTS, FLEET_LAB_KEY, FLEET_LAB_DIR
// and FLEET_LAB_HOSTS (space-separated names).
func (l *Lab) Env() []string {
	names := make([]string, len(l.Hosts))
	for i, h := range l.Hosts {
		names[i] = h.Name
	}
	return []string{
		"FLEET_LAB_SSH_CONFIG=" + l.SSHConfig,
		"FLEET_LAB_KNOWN_HOSTS=" + l.KnownHosts,
		"FLEET_LAB_KEY=" + l.ClientKey,
		"FLEET_LAB_DIR=" + l.Dir,
		"FLEET_LAB_HOSTS=" + strings.Join(names, " "),
	}
}

// Close stops every host (all of its processes, not just sshd) and removes
// the state directory if Start created it. It is idempotent.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		var g errgroup.Group
		for _, h := range l.Hosts {
			g.Go(h.shutdown)
		}
		errs := []error{g.Wait()}
		if l.slot >= 0 {
			freeSlot(l.slot)
		}
		if l.tempDir {
			errs = append(errs, os.RemoveAll(l.Dir))
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// Address slots: the K-th lab running concurrently in one network namespace
// uses 127.0.K.0/24.
var (
	slotMu sync.Mutex
	slots  = map[int]bool{}
)

func allocSlot(n int) (int, error) {
	slotMu.Lock()
	defer slotMu.Unlock()
	for k := 0; k < 256; k++ {
		if slots[k] {
			continue
		}
		free := true
		var ls []net.Listener
		for i := 0; i < n; i++ {
			l, err := net.Listen("tcp4", fmt.Sprintf("127.0.%d.%d:22", k, i+2))
			if err != nil {
				free = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if free {
			slots[k] = true
			return k, nil
		}
	}
	return 0, errors.New("lab: no free 127.0.K.0/24 block for the hosts' port 22")
}

func freeSlot(k int) {
	slotMu.Lock()
	delete(slots, k)
	slotMu.Unlock()
}

const (
	tempPrefix = "fleet-lab-"
	ownerFile  = "owner.pid"
)

// makeTempDir makes a temporary state directory, marked with this
// process's pid so that a later lab can remove it if this process dies
// without Close.
func makeTempDir() (string, error) {
	removeStaleDirs()
	d, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	os.Chmod(d, 0o755)
	os.WriteFile(filepath.Join(d, ownerFile), []byte(fmt.Sprintln(os.Getpid())), 0o644)
	return d, nil
}

// removeStaleDirs removes temporary lab directories whose process died
// without Close (SIGKILL, a crashed test binary).
func removeStaleDirs() {
	owners, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*", ownerFile))
	for _, o := range owners {
		data, err := os.ReadFile(o)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(filepath.Dir(o))
		}
	}
}
