// The machine the bench ran on, for the report's header: CPU, kernel,
// tool versions and the load average at start and end.

package main

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
)

type machine struct {
	nproc, cpu, kernel, nix, ssh, goVersion, os, ansible, mem string
	loadStart                                                 string
}

func machineDetails() machine {
	m := machine{goVersion: runtime.Version()}
	out := func(name string, args ...string) string {
		o, _ := exec.Command(name, args...).CombinedOutput()
		return strings.TrimSpace(string(o))
	}
	m.nproc = out("nproc")
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	m.kernel = out("uname", "-sr")
	m.nix = out("nix", "--version")
	m.ssh = out("ssh", "-V")
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.os = strings.Trim(v, `"`)
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.mem = strings.Join(strings.Fields(strings.SplitN(string(data), "\n", 2)[0])[1:], " ")
	}
	if p, err := exec.LookPath("ansible-playbook"); err == nil {
		m.ansible = strings.SplitN(out(p, "--version"), "\n", 2)[0]
	}
	m.loadStart = loadavg()
	return m
}

func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
