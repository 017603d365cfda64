// CPU accounting: the deployer's and the hosts' CPU time, from two
// cgroups, whatever else runs on the machine.

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuAcct counts CPU time in two cpuacct cgroups, so that a measurement
// can say how much CPU a deploy cost, whatever else runs on the machine:
//
//	deployer  this process and everything it starts (fleet, nix-build,
//	          nix-store, ssh, xargs, ansible-playbook and their orphans)
//	hosts     the lab's processes (sshd, nix-daemon) and everything they
//	          start (sessions, nix-store --import, activations, even
//	          detached ones)
//
// It uses the cgroup v1 cpuacct controller or, failing that, cgroup v2's
// cpu.stat; if neither can be used, CPU is not reported.
type cpuAcct struct {
	root, dep, hosts string
	v2               bool
}

func newCPUAcct() (*cpuAcct, error) {
	c := &cpuAcct{root: "/sys/fs/cgroup/cpuacct"}
	if _, err := os.Stat(c.root + "/cpuacct.usage"); err != nil {
		c.root, c.v2 = "/sys/fs/cgroup", true
		if _, err := os.Stat(c.root + "/cgroup.controllers"); err != nil {
			return nil, fmt.Errorf("no cgroup v1 cpuacct or cgroup v2 hierarchy")
		}
	}
	// Groups of earlier runs that were killed: empty once their
	// processes are gone.
	if old, _ := filepath.Glob(filepath.Join(c.root, "fleet-bench-*")); len(old) > 0 {
		for _, o := range old {
			os.Remove(o + "/deployer")
			os.Remove(o + "/hosts")
			os.Remove(o)
		}
	}
	base := filepath.Join(c.root, fmt.Sprintf("fleet-bench-%d", os.Getpid()))
	c.dep, c.hosts = base+"/deployer", base+"/hosts"
	for _, d := range []string{base, c.dep, c.hosts} {
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			return nil, err
		}
	}
	if err := c.move(c.dep, os.Getpid()); err != nil {
		c.close()
		return nil, err
	}
	if _, err := c.read(c.dep); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *cpuAcct) move(dir string, pid int) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
}

// adoptLab moves this process's children (the lab's namespace holders,
// sshds and nix-daemons; nothing else runs between measurements) into
// the hosts group.
func (c *cpuAcct) adoptLab() error {
	me := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(me) {
			continue
		}
		if err := c.move(c.hosts, pid); err == nil {
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("no lab processes found")
	}
	return nil
}

func (c *cpuAcct) read(dir string) (time.Duration, error) {
	if !c.v2 {
		data, err := os.ReadFile(dir + "/cpuacct.usage")
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		return time.Duration(n), err
	}
	data, err := os.ReadFile(dir + "/cpu.stat")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Duration(n) * time.Microsecond, err
		}
	}
	return 0, fmt.Errorf("no usage_usec in %s/cpu.stat", dir)
}

// snapshot returns the CPU used so far by the deployer and the hosts.
func (c *cpuAcct) snapshot() (dep, hosts time.Duration) {
	if c == nil {
		return 0, 0
	}
	dep, _ = c.read(c.dep)
	hosts, _ = c.read(c.hosts)
	return
}

// close moves this process back and removes the groups (once the lab is
// gone they are empty).
func (c *cpuAcct) close() {
	if c == nil {
		return
	}
	c.move(c.root, os.Getpid())
	// What is left was started by this run and outlived it (e.g. the
	// ssh ControlPersist masters of Ansible): end it, by pid.
	for _, d := range []string{c.dep, c.hosts} {
		data, _ := os.ReadFile(d + "/cgroup.procs")
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGTERM)
			}
		}
	}
	for i := 0; i < 50; i++ {
		os.Remove(c.dep)
		os.Remove(c.hosts)
		if os.Remove(filepath.Dir(c.dep)) == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
