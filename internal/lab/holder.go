package lab

// This file makes a host's namespaces. A host is not a container: it is a
// mount and UTS namespace kept alive by one `sleep infinity` (the holder),
// in which the host's own directories are bind-mounted over the deployer's
// /nix, /run, /etc/ssh, …; every other process of the host (sshd,
// nix-daemon, Exec) joins the holder's namespaces with nsenter.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/fleet-deploy/fleet/internal/shell"
)

// startHolder starts the process that creates and keeps the host's mount and
// UTS namespaces: a shell that makes all mounts private, bind-mounts the
// host's directories, sets the hostname and becomes `sleep infinity`.
func (h *Host) startHolder(ctx context.Context, b bins) error {
	// One `mount -a` with a private fstab does all the bind mounts (a mount
	// process per bind costs ~8ms of CPU each).
	var fstab strings.Builder
	for _, m := range h.mounts() {
		fmt.Fprintf(&fstab, "%s %s none bind 0 0\n", fstabField(m[0]), fstabField(m[1]))
	}
	fstabPath := h.Root + "/fstab"
	if err := os.WriteFile(fstabPath, []byte(fstab.String()), 0o644); err != nil {
		return err
	}
	var s strings.Builder
	s.WriteString("set -e\n")
	fmt.Fprintf(&s, "%s --make-rprivate /\n", b.mount)
	fmt.Fprintf(&s, "%s -a -T %s\n", b.mount, shell.Quote(fstabPath))
	fmt.Fprintf(&s, "echo %s > /proc/sys/kernel/hostname\n", shell.Quote(h.Name))
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
	if h.systemdRun != "" {
		for _, t := range systemdTargets {
			m = append(m, [2]string{r + systemdCopy, t})
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

// The systemd stand-in: where the host's copy of it lives (under Root,
// so that it is reachable whatever the mounts cover) and the binaries it
// is bind-mounted over; the name it is called by selects the program.
const systemdCopy = "/systemd-run"

var systemdTargets = []string{"/usr/bin/systemd-run", "/usr/bin/systemctl"}

// checkSystemdRun refuses the systemd path where it cannot be set up,
// rather than falling back to a host without systemd silently.
func checkSystemdRun(standin string) error {
	if fi, err := os.Stat(standin); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("lab: the systemd-run stand-in %s: not a regular file (%v)", standin, err)
	}
	for _, t := range systemdTargets {
		if _, err := os.Stat(t); err != nil {
			return fmt.Errorf("lab: the systemd stand-in is bind-mounted over %s, which does not exist here (apt-get install systemd): %w", t, err)
		}
	}
	return nil
}

// installSystemd copies the stand-in into the host's Root and creates
// /run/systemd/system, which tells nixos-rebuild and fleet that systemd
// runs.
func (h *Host) installSystemd() error {
	if h.systemdRun == "" {
		return nil
	}
	data, err := os.ReadFile(h.systemdRun)
	if err != nil {
		return err
	}
	if err := os.WriteFile(h.Root+systemdCopy, data, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(h.Root+systemdCopy, 0o755); err != nil {
		return err
	}
	return os.MkdirAll(h.Root+"/run/systemd/system", 0o755)
}

func covers(dir, path string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// fstabField returns s as one field of an fstab(5) line: blanks, newlines
// and backslashes as octal escapes (\040, …), the format mount(8) reads
// there. It is not shell quoting.
func fstabField(s string) string {
	return fstabEscapes.Replace(s)
}

var fstabEscapes = strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`)
