package lab

// This file makes a host's files under Host.Root before anything runs in
// it: the directory tree, per-host copies of /etc/passwd, shadow, group,
// sudoers and hosts with the lab's users added, the SSH keys and nix.conf.
// Nothing here touches the deployer's view of the system.

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/fleet-deploy/fleet/internal/nixconf"
)

// etcFiles are the per-host copies bind-mounted over the deployer's /etc
// files (only those that exist on the deployer).
var etcFiles = []string{"passwd", "shadow", "group", "sudoers", "hosts", "hostname"}

// labUser is a login user the lab adds to every host.
type labUser struct {
	name, gecos string
	// hash is the shadow password field: "*" (no password, key login
	// only) or a crypt(3) hash.
	hash string
	// sudoers is the user's sudoers rule.
	sudoers string
}

// opsPasswordHash is crypt(3) SHA-512 of OpsPassword
// (`openssl passwd -6 -salt fleetlabops fleet-lab-ops-pw`).
const opsPasswordHash = "$6$fleetlabops$WouivmRIJtdybE4iWM1Ptmg2lE6hcYOrcKYhUIfBM9l.9xQv40Ej0NRmaOSBaMWO/HxhMcPbaaHn51bEf15sY0"

var labUsers = []labUser{
	{name: NixosUser, gecos: "NixOS lab user", hash: "*", sudoers: "ALL=(ALL:ALL) NOPASSWD: ALL"},
	{name: OpsUser, gecos: "lab user whose sudo needs a password", hash: opsPasswordHash, sudoers: "ALL=(ALL:ALL) ALL"},
}

func isLabUser(name string) bool {
	for _, u := range labUsers {
		if u.name == name {
			return true
		}
	}
	return false
}

// baseEtc is what the per-host /etc files are made from.
type baseEtc struct {
	passwd, shadow, group []string // lines without the lab users' entries
	shadowMode            os.FileMode
	shadowGID             int
	uid, gid              map[string]int // of each lab user
}

func readLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

func readBaseEtc() (*baseEtc, error) {
	b := &baseEtc{shadowMode: 0o640, uid: map[string]int{}, gid: map[string]int{}}
	var err error
	if b.passwd, err = readLines("/etc/passwd"); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if b.group, err = readLines("/etc/group"); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if b.shadow, err = readLines("/etc/shadow"); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if fi, err := os.Stat("/etc/shadow"); err == nil {
		b.shadowMode = fi.Mode().Perm()
		b.shadowGID = int(fi.Sys().(*syscall.Stat_t).Gid)
	}
	usedUID, usedGID := map[int]bool{}, map[int]bool{}
	deployer := map[string][]string{} // the deployer's own entries of lab users
	b.passwd = dropLabUsers(b.passwd, deployer)
	b.group = dropLabUsers(b.group, nil)
	b.shadow = dropLabUsers(b.shadow, nil)
	for _, l := range b.passwd {
		if n, err := strconv.Atoi(strings.Split(l, ":")[2]); err == nil {
			usedUID[n] = true
		}
	}
	for _, l := range b.group {
		if n, err := strconv.Atoi(strings.Split(l, ":")[2]); err == nil {
			usedGID[n] = true
		}
	}
	for _, u := range labUsers {
		uid, gid := -1, -1
		// Keep the deployer's uid/gid of the user if it has one, else
		// take the first free id from 1000 for both uid and gid.
		if f := deployer[u.name]; len(f) >= 4 {
			if n, err := strconv.Atoi(f[2]); err == nil && !usedUID[n] {
				uid = n
			}
			if n, err := strconv.Atoi(f[3]); err == nil && !usedGID[n] {
				gid = n
			}
		}
		for n := 1000; uid < 0 || gid < 0; n++ {
			if uid < 0 && !usedUID[n] && (gid >= 0 || !usedGID[n]) {
				uid = n
			}
			if gid < 0 && !usedGID[n] {
				gid = n
			}
		}
		usedUID[uid], usedGID[gid] = true, true
		b.uid[u.name], b.gid[u.name] = uid, gid
	}
	return b, nil
}

// dropLabUsers drops the lab users' entries (and malformed lines) from
// passwd, group or shadow lines; if dropped is non-nil it gets the fields
// of the dropped entries by name.
func dropLabUsers(lines []string, dropped map[string][]string) []string {
	var out []string
	for _, l := range lines {
		f := strings.Split(l, ":")
		if len(f) < 3 {
			continue
		}
		if isLabUser(f[0]) {
			if dropped != nil {
				dropped[f[0]] = f
			}
			continue
		}
		out = append(out, l)
	}
	return out
}

// prepare creates the host's directories and files under Root (nothing here
// touches the deployer's view of the system).
func (h *Host) prepare(b bins, base *baseEtc, clientPub string) error {
	r := h.Root
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{r, 0o755},
		{r + "/nix", 0o755},
		{r + "/nix/store", os.ModeSticky | 0o775},
		{r + "/nix/var/nix/profiles", 0o755},
		{r + "/nix/var/nix/gcroots", 0o755},
		{r + "/run", 0o755},
		{r + "/run/sshd", 0o755}, // sshd's privilege separation directory
		{r + "/run/lock", os.ModeSticky | 0o777},
		{r + "/tmp", os.ModeSticky | 0o777},
		{r + "/home", 0o755},
		{r + "/root", 0o700},
		{r + "/var/log", 0o755},
		{r + "/etc", 0o755},
		{r + "/etc/ssh", 0o755},
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d.path, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return err
		}
	}
	if err := h.installSystemd(); err != nil {
		return err
	}
	for _, u := range labUsers {
		home := r + "/home/" + u.name
		if err := os.MkdirAll(home, 0o700); err != nil {
			return err
		}
		if err := os.Chown(home, base.uid[u.name], base.gid[u.name]); err != nil {
			return err
		}
	}

	// /etc/passwd, shadow, group: the deployer's entries plus the lab users.
	passwd := append([]string(nil), base.passwd...)
	for _, u := range labUsers {
		passwd = append(passwd, fmt.Sprintf("%s:x:%d:%d:%s:/home/%s:/bin/bash", u.name, base.uid[u.name], base.gid[u.name], u.gecos, u.name))
	}
	var shadow []string
	for _, l := range base.shadow {
		f := strings.Split(l, ":")
		if f[0] == RootUser && len(f) >= 9 {
			// sshd without PAM refuses accounts whose password is locked
			// ("!…") or expired.
			if strings.HasPrefix(f[1], "!") {
				f[1] = "*"
			}
			f[7] = ""
			l = strings.Join(f, ":")
		}
		shadow = append(shadow, l)
	}
	group := append([]string(nil), base.group...)
	for _, u := range labUsers {
		shadow = append(shadow, u.name+":"+u.hash+":19000:0:99999:7:::")
		group = append(group, fmt.Sprintf("%s:x:%d:", u.name, base.gid[u.name]))
	}
	var hosts strings.Builder
	hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, o := range h.lab.Hosts {
		fmt.Fprintf(&hosts, "%s\t%s\n", o.Addr, o.Name)
	}
	sudoers := "# generated by fleet lab\n" +
		"Defaults\tenv_reset\n" +
		"Defaults\tsecure_path=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\n" +
		"root\tALL=(ALL:ALL) ALL\n"
	for _, u := range labUsers {
		sudoers += u.name + "\t" + u.sudoers + "\n"
	}

	files := []struct {
		path string
		data string
		mode os.FileMode
		gid  int
	}{
		{r + "/etc/passwd", strings.Join(passwd, "\n") + "\n", 0o644, 0},
		{r + "/etc/shadow", strings.Join(shadow, "\n") + "\n", base.shadowMode, base.shadowGID},
		{r + "/etc/group", strings.Join(group, "\n") + "\n", 0o644, 0},
		{r + "/etc/sudoers", sudoers, 0o440, 0},
		{r + "/etc/hosts", hosts.String(), 0o644, 0},
		{r + "/etc/hostname", h.Name + "\n", 0o644, 0},
		{r + "/etc/ssh/authorized_keys", clientPub + " fleet-lab-client\n", 0o644, 0},
		{r + "/etc/ssh/sshd_config", h.sshdConfig(b), 0o644, 0},
		{r + "/etc/ssh/ssh_config", "# generated by fleet lab (host " + h.Name + ")\n", 0o644, 0},
	}
	for _, f := range files {
		if err := writeFileMode(f.path, []byte(f.data), f.mode, f.gid); err != nil {
			return err
		}
	}

	// A per-host /etc/nix with the project's own nix.conf (internal/nixconf),
	// whatever the deployer's /etc/nix says: no build users, no sandbox, no
	// binary cache (lab hosts are offline by construction). Kept from an
	// earlier run with the same Dir (tests may change a host's nix.conf
	// with Exec).
	if _, err := os.Stat(r + "/etc/nix/nix.conf"); err != nil {
		if err := os.MkdirAll(r+"/etc/nix", 0o755); err != nil {
			return err
		}
		if err := writeFileMode(r+"/etc/nix/nix.conf", []byte(nixconf.Settings), 0o644, 0); err != nil {
			return err
		}
	}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	h.HostKey, err = writeKeyPair(r+"/etc/ssh/ssh_host_ed25519_key", pub, priv, "root@"+h.Name)
	return err
}

func writeFileMode(path string, data []byte, mode os.FileMode, gid int) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Chown(tmp, 0, gid); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	// Rename keeps the inode fresh; a bind mount of the old file in a live
	// host would keep showing the old content, which is fine for a restart.
	return os.Rename(tmp, path)
}
