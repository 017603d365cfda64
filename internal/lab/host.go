package lab

// This file is one host's lifecycle: boot (files, namespaces, nix-daemon,
// sshd, in that order), the controls tests use to make a host misbehave
// (StopSSHD, Pause, …), Exec for looking inside without SSH, and shutdown.
// How each process is started lives in holder.go, sshd.go and nixdaemon.go.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

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

	aliases   []string
	lab       *Lab
	sshdExtra string // Options.SSHDConfig
	// systemdRun is the stand-in systemd-run to install, "" for a host
	// without systemd.
	systemdRun string

	mu         sync.Mutex
	holder     *exec.Cmd // `sleep infinity` that keeps the namespaces alive
	holderDone chan struct{}
	mntNS      string // "mnt:[…]" of the holder
	sshd       *exec.Cmd
	sshdDone   chan struct{}
	daemon     *exec.Cmd // nix-daemon, if any
	paused     bool
}

// Systemd reports whether the host has the systemd stand-in
// (Options.SystemdRun).
func (h *Host) Systemd() bool { return h.systemdRun != "" }

func (h *Host) String() string { return h.Name + "(" + h.Addr + ")" }

// minimalEnv is the environment of every process the lab starts in a host.
var minimalEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root", "USER=root", "LOGNAME=root", "LANG=C.UTF-8",
}

// command returns a command running args as root inside the mount and UTS
// namespaces of the holder process pid, with minimalEnv, in /.
func (b bins) command(ctx context.Context, pid int, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.nsenter, append([]string{"-t", strconv.Itoa(pid), "-m", "-u", "--"}, args...)...)
	cmd.Env = minimalEnv
	cmd.Dir = "/"
	return cmd
}

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
		if err := h.waitNixDaemon(ctx); err != nil {
			return fmt.Errorf("lab: host %s: %w", h.Name, err)
		}
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
	out, err := b.command(ctx, pid, b.sh, "-c", script).CombinedOutput()
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

// procInfo is a process found in /proc.
type procInfo struct {
	pid int
	exe string
}

func (p procInfo) isSSHD() bool {
	return strings.HasPrefix(filepath.Base(p.exe), "sshd")
}

// procsInNS lists the live (non-zombie) processes whose mount namespace is
// mntNS: a host's processes are exactly those, whoever started them (sshd
// sessions, daemons a deploy started), since hosts share the PID namespace.
func procsInNS(mntNS string) []procInfo {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := "/proc/" + e.Name()
		if ns, err := os.Readlink(dir + "/ns/mnt"); err != nil || ns != mntNS {
			continue
		}
		if st, err := os.ReadFile(dir + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(st), ')'); i > 0 && i+2 < len(st) && (st[i+2] == 'Z' || st[i+2] == 'X') {
				continue
			}
		}
		exe, _ := os.Readlink(dir + "/exe")
		out = append(out, procInfo{pid: pid, exe: exe})
	}
	return out
}
