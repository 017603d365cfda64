package lab

// This file finds the programs the lab runs (sshd, nsenter, nix-daemon, …)
// once per process: a lab host is made of the deployer's own binaries, so a
// missing one is the usual reason a lab cannot start, and is reported by name.

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
)

// bins are the programs the lab runs, resolved once.
type bins struct {
	sshd, nsenter, sh, mount, sleep string
	nixDaemon                       string // "" if not installed
	sshdVersion                     [2]int
}

var findBins = sync.OnceValues(func() (bins, error) {
	var b bins
	var missing []string
	for _, p := range []struct {
		dst  *string
		name string
	}{{&b.sshd, "sshd"}, {&b.nsenter, "nsenter"}, {&b.sh, "sh"}, {&b.mount, "mount"}, {&b.sleep, "sleep"}} {
		path, err := LookPath(p.name)
		if err != nil {
			missing = append(missing, p.name)
			continue
		}
		*p.dst = path
	}
	if len(missing) > 0 {
		return bins{}, fmt.Errorf("lab: missing programs %s (apt-get install openssh-server util-linux)", strings.Join(missing, ", "))
	}
	b.nixDaemon, _ = LookPath("nix-daemon")
	// `sshd -V` is not in every version; an invalid flag prints the
	// version in the usage message too.
	out, _ := exec.Command(b.sshd, "-V").CombinedOutput()
	if m := regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`).FindSubmatch(out); m != nil {
		fmt.Sscan(string(m[1]), &b.sshdVersion[0])
		fmt.Sscan(string(m[2]), &b.sshdVersion[1])
	}
	return b, nil
})

// MissingPrograms returns the programs the lab (and its tests) need that are
// not installed: sshd, ssh, nix-store, sudo, nsenter, mount, sleep, sh.
func MissingPrograms() []string {
	var missing []string
	for _, name := range []string{"sshd", "ssh", "nix-store", "sudo", "nsenter", "mount", "sleep", "sh"} {
		if _, err := LookPath(name); err != nil {
			missing = append(missing, name)
		}
	}
	return missing
}

// LookPath is exec.LookPath, but it looks in /usr/sbin, /usr/bin, /sbin and
// /bin first (root's PATH in a test environment may lack /usr/sbin, where
// sshd is).
func LookPath(name string) (string, error) {
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return exec.LookPath(name)
}
