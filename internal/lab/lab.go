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
// The lab must run in a private network namespace (see Main, RunInPrivateNetns
// and cmd/fleet-lab), so that nothing it does can reach the network. Typical
// use in a package's tests:
//
//	func TestMain(m *testing.M) { os.Exit(lab.Main(m)) }
//
//	func TestDeploy(t *testing.T) {
//		lab.Require(t)
//		l, err := lab.Start(ctx, lab.Options{Hosts: []string{"envy", "lenovo"}})
//		if err != nil {
//			t.Fatal(err)
//		}
//		defer l.Close()
//		out, err := l.SSH(ctx, "nixos@envy", "sudo -n nix-store --verify").CombinedOutput()
//		// or: exec.Command("ssh", "-F", l.SSHConfig, "root@envy", ...)
//		cs, _ := l.Host("envy").CurrentSystem()
//	}
package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
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
}

// Host is one simulated host.
type Host struct {
	Name string
	Addr string // "127.0.0.N"
	Port int    // 22
	// Root holds the host's private directories on the deployer's
	// filesystem: Root+"/nix", Root+"/run", Root+"/tmp", Root+"/home",
	// Root+"/root", Root+"/etc", Root+"/var/log"; Root+"/sshd.log" is sshd's log.
	Root string
	// HostKey is the public host key line ("ssh-ed25519 AAAA...").
	HostKey string

	aliases []string
	lab     *Lab

	mu         sync.Mutex
	holder     *exec.Cmd // `sleep infinity` that keeps the namespaces alive
	holderDone chan struct{}
	mntNS      string // "mnt:[…]" of the holder
	sshd       *exec.Cmd
	sshdDone   chan struct{}
	daemon     *exec.Cmd // nix-daemon, if any
	paused     bool
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

// bins are the programs the lab runs, resolved once.
type bins struct {
	sshd, nsenter, sh, mount, sleep string
	nixDaemon                       string // "" if not installed
	sshdVersion                     [2]int
}

var (
	binsOnce sync.Once
	binsVal  bins
	binsErr  error
)

func findBins() (bins, error) {
	binsOnce.Do(func() {
		var b bins
		var missing []string
		for _, p := range []struct {
			dst  *string
			name string
		}{{&b.sshd, "sshd"}, {&b.nsenter, "nsenter"}, {&b.sh, "sh"}, {&b.mount, "mount"}, {&b.sleep, "sleep"}} {
			path, err := findBin(p.name)
			if err != nil {
				missing = append(missing, p.name)
				continue
			}
			*p.dst = path
		}
		if len(missing) > 0 {
			binsErr = fmt.Errorf("lab: missing programs %s (apt-get install openssh-server util-linux)", strings.Join(missing, ", "))
			return
		}
		b.nixDaemon, _ = findBin("nix-daemon")
		// `sshd -V` is not in every version; an invalid flag prints the
		// version in the usage message too.
		out, _ := exec.Command(b.sshd, "-V").CombinedOutput()
		if m := regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`).FindSubmatch(out); m != nil {
			fmt.Sscan(string(m[1]), &b.sshdVersion[0])
			fmt.Sscan(string(m[2]), &b.sshdVersion[1])
		}
		binsVal = b
	})
	return binsVal, binsErr
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

// Start creates and starts the hosts in parallel and returns once every
// sshd has sent its SSH banner. It must run as root in a private network
// namespace (see Main). On error everything already started is torn down.
func Start(ctx context.Context, opts Options) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: need root")
	}
	if !InPrivateNetns() {
		return nil, errors.New("lab: refusing to start outside a private network namespace (call lab.Main from TestMain, or run under fleet-lab)")
	}
	b, err := findBins()
	if err != nil {
		return nil, err
	}
	if len(opts.Hosts) == 0 {
		return nil, errors.New("lab: no hosts")
	}
	if len(opts.Hosts) > 253 {
		return nil, errors.New("lab: at most 253 hosts")
	}
	seen := map[string]bool{}
	for _, n := range opts.Hosts {
		if !hostNameRE.MatchString(n) {
			return nil, fmt.Errorf("lab: invalid host name %q", n)
		}
		if seen[n] {
			return nil, fmt.Errorf("lab: duplicate host name %q", n)
		}
		seen[n] = true
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
		removeStaleDirs()
		d, err := os.MkdirTemp("", tempPrefix)
		if err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		l.Dir, l.tempDir = d, true
		os.Chmod(d, 0o755)
		os.WriteFile(filepath.Join(d, ownerFile), []byte(fmt.Sprintln(os.Getpid())), 0o644)
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
		})
	}
	aliasKeys := make([]string, 0, len(opts.Aliases))
	for a := range opts.Aliases {
		aliasKeys = append(aliasKeys, a)
	}
	sort.Strings(aliasKeys)
	for _, a := range aliasKeys {
		target := opts.Aliases[a]
		var h *Host
		for _, c := range l.Hosts {
			if c.Name == target || c.Addr == target {
				h = c
			}
		}
		if h == nil {
			return nil, fmt.Errorf("lab: alias %q: no host %q", a, target)
		}
		if strings.ContainsAny(a, " \t\"#,*?!") || a == "" {
			return nil, fmt.Errorf("lab: invalid alias %q", a)
		}
		if seen[a] {
			return nil, fmt.Errorf("lab: alias %q is used twice or is a host name", a)
		}
		seen[a] = true
		h.aliases = append(h.aliases, a)
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

	errs := make([]error, len(l.Hosts))
	var wg sync.WaitGroup
	for i, h := range l.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.boot(ctx, b, base, clientPub, !opts.NoNixDaemon)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := l.writeClientFiles(); err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

const (
	tempPrefix = "fleet-lab-"
	ownerFile  = "owner.pid"
)

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

func writeKeyPair(path string, pub ed25519.PublicKey, priv ed25519.PrivateKey, comment string) (string, error) {
	blk, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return "", err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	os.Remove(path)
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(path+".pub", []byte(line+" "+comment+"\n"), 0o644); err != nil {
		return "", err
	}
	return line, nil
}

func (l *Lab) writeClientFiles() error {
	l.KnownHosts = filepath.Join(l.Dir, "known_hosts")
	l.SSHConfig = filepath.Join(l.Dir, "ssh_config")
	var kh, cfg bytes.Buffer
	fmt.Fprintf(&cfg, "# generated by fleet lab; use: ssh -F %s root@<host>\n", quoteCfg(l.SSHConfig))
	for _, h := range l.Hosts {
		names := append([]string{h.Name, h.Addr}, h.aliases...)
		fmt.Fprintf(&kh, "%s %s\n", strings.Join(names, ","), h.HostKey)
		fmt.Fprintf(&cfg, "\nHost %s\n", strings.Join(append([]string{h.Name}, h.aliases...), " "))
		fmt.Fprintf(&cfg, "  HostName %s\n  Port %d\n", h.Addr, h.Port)
		fmt.Fprintf(&cfg, "  IdentityFile %s\n  IdentitiesOnly yes\n", quoteCfg(l.ClientKey))
		fmt.Fprintf(&cfg, "  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n", quoteCfg(l.KnownHosts))
		fmt.Fprintf(&cfg, "  StrictHostKeyChecking yes\n  UpdateHostKeys no\n")
	}
	if err := os.WriteFile(l.KnownHosts, kh.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(l.SSHConfig, cfg.Bytes(), 0o644)
}

func quoteCfg(s string) string {
	if strings.ContainsAny(s, " \t\"") {
		return `"` + s + `"`
	}
	return s
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

// SSH returns a command running the system ssh client with the lab's
// ssh_config and BatchMode, e.g. l.SSH(ctx, "nixos@envy", "sudo", "-n", "true").
func (l *Lab) SSH(ctx context.Context, target string, args ...string) *exec.Cmd {
	sshBin, err := findBin("ssh")
	if err != nil {
		sshBin = "ssh"
	}
	a := append([]string{"-F", l.SSHConfig, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", target}, args...)
	return exec.CommandContext(ctx, sshBin, a...)
}

// Close stops every host (all of its processes, not just sshd) and removes
// the state directory if Start created it. It is idempotent.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		var wg sync.WaitGroup
		errs := make([]error, len(l.Hosts))
		for i, h := range l.Hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = h.shutdown()
			}()
		}
		wg.Wait()
		if l.slot >= 0 {
			freeSlot(l.slot)
		}
		if l.tempDir {
			if err := os.RemoveAll(l.Dir); err != nil {
				errs = append(errs, err)
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// ---- per host ----

func (h *Host) String() string { return h.Name + "(" + h.Addr + ")" }

func (h *Host) boot(ctx context.Context, b bins, base *baseEtc, clientPub string, nixDaemon bool) error {
	if err := h.prepare(b, base, clientPub); err != nil {
		return fmt.Errorf("lab: host %s: %w", h.Name, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.startHolder(ctx, b); err != nil {
		return fmt.Errorf("lab: host %s: %w", h.Name, err)
	}
	if nixDaemon && b.nixDaemon != "" {
		if err := h.startNixDaemon(b); err != nil {
			return fmt.Errorf("lab: host %s: %w", h.Name, err)
		}
	}
	if err := h.startSSHDLocked(ctx, b); err != nil {
		return fmt.Errorf("lab: host %s: %w", h.Name, err)
	}
	if h.daemon != nil {
		if err := waitFile(ctx, h.Root+"/nix/var/nix/daemon-socket/socket", 10*time.Second); err != nil {
			log, _ := os.ReadFile(h.Root + "/nix-daemon.log")
			return fmt.Errorf("lab: host %s: nix-daemon: %w; log: %s", h.Name, err, strings.TrimSpace(string(log)))
		}
	}
	return nil
}

// startNixDaemon starts nix-daemon inside the host (it creates
// /nix/var/nix/daemon-socket/socket).
func (h *Host) startNixDaemon(b bins) error {
	logf, err := os.OpenFile(h.Root+"/nix-daemon.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	os.Remove(h.Root + "/nix/var/nix/daemon-socket/socket")
	cmd := exec.Command(b.nsenter, "-t", fmt.Sprint(h.holder.Process.Pid), "-m", "-u", "--", b.nixDaemon)
	cmd.Env = minimalEnv
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting nix-daemon: %w", err)
	}
	go cmd.Wait()
	h.daemon = cmd
	return nil
}

func waitFile(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mounts returns (source on the deployer, target inside the host) pairs in
// the order the holder mounts them. The target that covers Root itself (e.g.
// /tmp for the default state directory, /root for --dir ~/lab) comes last, so
// that the other sources are still reachable when they are mounted.
func (h *Host) mounts() [][2]string {
	r := h.Root
	m := [][2]string{
		{r + "/nix", "/nix"},
		{r + "/run", "/run"},
		{r + "/home", "/home"},
		{r + "/root", "/root"},
		{r + "/var/log", "/var/log"},
		{r + "/tmp", "/tmp"},
		{r + "/etc/ssh", "/etc/ssh"},
		{r + "/etc/nix", "/etc/nix"},
	}
	for _, f := range etcFiles {
		if _, err := os.Stat("/etc/" + f); err == nil {
			m = append(m, [2]string{r + "/etc/" + f, "/etc/" + f})
		}
	}
	// Root as the deployer sees it, symlinks resolved, as mount does.
	real := r
	if p, err := filepath.EvalSymlinks(r); err == nil {
		real = p
	}
	sort.SliceStable(m, func(i, j int) bool {
		return !covers(m[i][1], real) && covers(m[j][1], real)
	})
	return m
}

func covers(dir, path string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

func fstabEscape(s string) string {
	return strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`).Replace(s)
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

var minimalEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root", "USER=root", "LOGNAME=root", "LANG=C.UTF-8",
}

// startHolder starts the process that creates and keeps the host's mount and
// UTS namespaces: a shell that makes all mounts private, bind-mounts the
// host's directories, sets the hostname and becomes `sleep infinity`.
func (h *Host) startHolder(ctx context.Context, b bins) error {
	// One `mount -a` with a private fstab does all the bind mounts (a mount
	// process per bind costs ~8ms of CPU each).
	var fstab strings.Builder
	for _, m := range h.mounts() {
		fmt.Fprintf(&fstab, "%s %s none bind 0 0\n", fstabEscape(m[0]), fstabEscape(m[1]))
	}
	fstabPath := h.Root + "/fstab"
	if err := os.WriteFile(fstabPath, []byte(fstab.String()), 0o644); err != nil {
		return err
	}
	var s strings.Builder
	s.WriteString("set -e\n")
	fmt.Fprintf(&s, "%s --make-rprivate /\n", b.mount)
	fmt.Fprintf(&s, "%s -a -T %s\n", b.mount, shQuote(fstabPath))
	fmt.Fprintf(&s, "echo %s > /proc/sys/kernel/hostname\n", shQuote(h.Name))
	fmt.Fprintf(&s, "echo ready\nexec %s infinity\n", b.sleep)

	cmd := exec.Command(b.sh, "-c", s.String())
	cmd.Env = minimalEnv
	cmd.Dir = "/"
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting namespace holder: %w", err)
	}
	done := make(chan struct{})
	h.holder, h.holderDone = cmd, done
	lineCh := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lineCh <- line
		io.Copy(io.Discard, out)
	}()
	var line string
	select {
	case line = <-lineCh:
	case <-ctx.Done():
		cmd.Process.Kill()
		line = <-lineCh
	}
	go func() {
		cmd.Wait()
		close(done)
	}()
	if line != "ready\n" {
		<-done
		return fmt.Errorf("setting up namespaces failed: %s", strings.TrimSpace(stderr.String()))
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", cmd.Process.Pid))
	if err != nil {
		return err
	}
	if self, _ := os.Readlink("/proc/self/ns/mnt"); self == ns {
		return errors.New("holder is not in a new mount namespace")
	}
	h.mntNS = ns
	return nil
}

func (h *Host) startSSHDLocked(ctx context.Context, b bins) error {
	if h.holder == nil || isClosed(h.holderDone) {
		return errors.New("host is shut down")
	}
	if h.sshd != nil && !isClosed(h.sshdDone) {
		return nil
	}
	os.Remove(h.Root + "/run/sshd.pid")
	logf, err := os.OpenFile(h.Root+"/sshd.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(b.nsenter, "-t", fmt.Sprint(h.holder.Process.Pid), "-m", "-u", "--",
		b.sshd, "-D", "-e", "-f", "/etc/ssh/sshd_config")
	cmd.Env = minimalEnv
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting sshd: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	h.sshd, h.sshdDone = cmd, done
	if err := waitBanner(ctx, h.Addr+":22", done); err != nil {
		cmd.Process.Kill()
		<-done
		log, _ := os.ReadFile(h.Root + "/sshd.log")
		if int64(len(log)) >= logStart {
			log = log[logStart:]
		}
		return fmt.Errorf("sshd on %s: %w; log: %s", h.Addr, err, strings.TrimSpace(string(log)))
	}
	return nil
}

func isClosed(c chan struct{}) bool {
	if c == nil {
		return true
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// waitBanner waits until addr accepts a TCP connection and sends an SSH
// banner.
func waitBanner(ctx context.Context, addr string, exited chan struct{}) error {
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if isClosed(exited) {
			return errors.New("sshd exited")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if last = readBanner(addr, time.Second); last == nil {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("no SSH banner: %v", last)
}

func readBanner(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("unexpected banner %q", line)
	}
	return nil
}

// Exec runs `sh -c script` as root inside the host's mount and UTS
// namespaces (via nsenter, not ssh; it works while sshd is stopped or
// paused) and returns its combined output. The environment is minimal
// (PATH, HOME=/root, USER, LOGNAME, LANG).
func (h *Host) Exec(ctx context.Context, script string) (string, error) {
	b, err := findBins()
	if err != nil {
		return "", err
	}
	h.mu.Lock()
	pid := 0
	if h.holder != nil && !isClosed(h.holderDone) {
		pid = h.holder.Process.Pid
	}
	h.mu.Unlock()
	if pid == 0 {
		return "", fmt.Errorf("lab: host %s is shut down", h.Name)
	}
	cmd := exec.CommandContext(ctx, b.nsenter, "-t", fmt.Sprint(pid), "-m", "-u", "--", b.sh, "-c", script)
	cmd.Env = minimalEnv
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("lab: %s: %w", h.Name, err)
	}
	return string(out), err
}

// StopSSHD stops the host's sshd: the listener and every per-connection sshd
// process, so established connections drop too (like the host's sshd going
// away). Other processes in the host and its files stay. It waits until the
// port refuses connections. Stopping a stopped sshd is a no-op.
func (h *Host) StopSSHD() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sshd != nil && !isClosed(h.sshdDone) {
		h.sshd.Process.Kill()
		<-h.sshdDone
	}
	if h.mntNS != "" {
		h.killLoop(syscall.SIGKILL, func(p procInfo) bool { return p.isSSHD() })
	}
	return nil
}

// StartSSHD starts the host's sshd again and waits for its banner. Starting
// a running sshd is a no-op.
func (h *Host) StartSSHD() error {
	b, err := findBins()
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.startSSHDLocked(context.Background(), b)
}

// Pause stalls the host: SIGSTOP to every process in it (the sshd listener,
// per-connection sshds and whatever they run). TCP connects to the host
// still complete (the kernel accepts into the listen backlog) but nothing
// answers. Exec still works while paused.
func (h *Host) Pause() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mntNS == "" || isClosed(h.holderDone) {
		return fmt.Errorf("lab: host %s is shut down", h.Name)
	}
	holder := h.holder.Process.Pid
	h.killLoop(syscall.SIGSTOP, func(p procInfo) bool { return p.pid != holder })
	h.paused = true
	return nil
}

// Resume continues a paused host (SIGCONT to every process in it).
func (h *Host) Resume() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mntNS == "" {
		return fmt.Errorf("lab: host %s is shut down", h.Name)
	}
	for _, p := range procsInNS(h.mntNS) {
		syscall.Kill(p.pid, syscall.SIGCONT)
	}
	h.paused = false
	return nil
}

// CurrentSystem returns the target of the host's /run/current-system, or ""
// if there is none.
func (h *Host) CurrentSystem() (string, error) {
	t, err := os.Readlink(h.Root + "/run/current-system")
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return t, err
}

// shutdown kills every process of the host (the namespaces go away with the
// last of them, and with them all of the host's mounts).
func (h *Host) shutdown() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.holder == nil {
		return nil
	}
	if h.mntNS != "" {
		h.killLoop(syscall.SIGKILL, func(procInfo) bool { return true })
	}
	h.holder.Process.Kill()
	var err error
	for _, c := range []chan struct{}{h.holderDone, h.sshdDone} {
		if c == nil {
			continue
		}
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			err = fmt.Errorf("lab: host %s: processes did not exit", h.Name)
		}
	}
	if h.mntNS != "" {
		if left := procsInNS(h.mntNS); len(left) > 0 {
			err = errors.Join(err, fmt.Errorf("lab: host %s: %d processes survived", h.Name, len(left)))
		}
	}
	return err
}

// killLoop sends sig to the host's processes selected by match, rescanning
// until a scan finds no process it has not signalled yet (processes may fork
// meanwhile). For SIGKILL it also waits until the processes are gone.
func (h *Host) killLoop(sig syscall.Signal, match func(procInfo) bool) {
	sent := map[int]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		fresh := 0
		alive := 0
		for _, p := range procsInNS(h.mntNS) {
			if !match(p) {
				continue
			}
			alive++
			if sig == syscall.SIGKILL || !sent[p.pid] {
				if !sent[p.pid] {
					fresh++
				}
				sent[p.pid] = true
				syscall.Kill(p.pid, sig)
			}
		}
		if sig == syscall.SIGKILL {
			if alive == 0 {
				return
			}
			time.Sleep(2 * time.Millisecond)
			continue
		}
		if fresh == 0 {
			return
		}
	}
}
