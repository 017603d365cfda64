// fleet's slowest paths in-process (cli.Main, what bin/fleet runs) under
// runtime/pprof: the fresh N = 50 deploy (as the warm-up), the no-op
// N = 50 redeploy, the large closure push and 20 plans of 1000 hosts, with
// fleet's own CPU against that of the processes it waited for; there is no
// baseline.

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/fleet-deploy/fleet/internal/cli"
	"github.com/fleet-deploy/fleet/internal/tail"
)

// profileReport is one in-process fleet run under the CPU profiler.
type profileReport struct {
	name      string
	args      string
	wall      time.Duration
	selfCPU   time.Duration // user+sys of this process (fleet's own code) during the run
	childCPU  time.Duration // user+sys of the processes fleet started and waited for (nix-build, nix-store ...)
	file      string
	flat, cum string // go tool pprof -top output
	own       string // the same, only fleet's and its libraries' functions
	ph        *phases
}

// profile runs fleet's slowest paths in-process (cli.Main, what bin/fleet
// runs) under runtime/pprof: the no-op N=50 redeploy, the large closure
// push and plan of 1000 hosts (the fresh N=50 deploy is profiled as the warm-up, see
// buildClosures).
func (b *bench) profile(ctx context.Context) error {
	dir := filepath.Join(cfg.work, "pprof")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if b.lab != nil && len(b.lab.Hosts) >= 50 {
		file, err := b.freshProject(50)
		if err != nil {
			return err
		}
		if b.closures == nil || b.verify(hostNames(50), b.closures) != nil {
			if _, _, err := runFleet(ctx, b.fleetRun(file)); err != nil {
				return err
			}
		}
		logf("profile: no-op redeploy N=50, in-process")
		p, err := b.profileDeploy("no-op redeploy N=50", "noop50.pprof", file)
		if err != nil {
			return err
		}
		b.profiles = append(b.profiles, p)
	}
	if b.largeFile != "" {
		if err := b.resetHosts([]string{"h1"}); err != nil {
			return err
		}
		logf("profile: large closure to an empty host, in-process")
		p, err := b.profileDeploy("large closure, 1 host", "large.pprof", b.largeFile)
		if err != nil {
			return err
		}
		b.profiles = append(b.profiles, p)
	}
	planFile := filepath.Join(cfg.work, "plan-nixos", "fleet.star")
	if _, err := os.Stat(planFile); err != nil {
		if planFile, err = writePlanProject(filepath.Dir(planFile), 1000, "nixos"); err != nil {
			return err
		}
	}
	logf("profile: plan 1000 nixos_system hosts x 20, in-process")
	p, err := profileRun("plan 1000 nixos_system hosts (x20)", filepath.Join(dir, "plan1000.pprof"), []string{"fleet", "plan", planFile}, 20)
	if err != nil {
		return err
	}
	b.profiles = append(b.profiles, p)
	return nil
}

// profileDeploy runs `fleet run --json -p 10` of file in-process under
// the CPU profiler.
func (b *bench) profileDeploy(name, pprofFile, file string) (profileReport, error) {
	dir := filepath.Join(cfg.work, "pprof")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return profileReport{}, err
	}
	args := append([]string{"fleet", "run", "--json", "-p", "10", "--ssh-config", b.lab.SSHConfig}, b.overrideArgs()...)
	return profileRun(name, filepath.Join(dir, pprofFile), append(args, file), 1)
}

func cpuTimes() (self, children time.Duration) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	children = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return
}

func profileRun(name, file string, args []string, times int) (profileReport, error) {
	p := profileReport{name: name, file: file, args: strings.Join(args[1:], " ")}
	f, err := os.Create(file)
	if err != nil {
		return p, err
	}
	defer f.Close()
	runtime.GC()
	s0, c0 := cpuTimes()
	t0 := time.Now()
	if err := pprof.StartCPUProfile(f); err != nil {
		return p, err
	}
	var out, errb bytes.Buffer
	code := 0
	for i := 0; i < times && code == 0; i++ {
		out.Reset()
		errb.Reset()
		code = cli.Main(args, &out, &errb)
	}
	pprof.StopCPUProfile()
	p.wall = time.Since(t0) / time.Duration(times)
	s1, c1 := cpuTimes()
	p.selfCPU, p.childCPU = (s1-s0)/time.Duration(times), (c1-c0)/time.Duration(times)
	if code != 0 {
		return p, fmt.Errorf("%s: exit %d: %s", name, code, tail.Lines(errb.String(), 10))
	}
	if args[1] == "run" {
		evs, err := parseEvents(out.String())
		if err == nil {
			ph := fleetPhases(result{started: t0, wall: p.wall}, evs)
			p.ph = &ph
		}
	}
	p.flat = pprofTop(file, false)
	p.cum = pprofTop(file, true)
	p.own = pprofTop(file, true, "-show=fleet-deploy|x/crypto/ssh|go.starlark.net|os/exec")
	return p, nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

func pprofTop(file string, cum bool, extra ...string) string {
	args := []string{"tool", "pprof", "-top", "-nodecount=22"}
	if cum {
		args = append(args, "-cum")
	}
	args = append(args, extra...)
	out, err := exec.Command(goTool(), append(args, file)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(go tool pprof failed: %v: %s)", err, out)
	}
	// Drop the header lines about the file and build.
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.TrimRight(strings.Join(keep, "\n"), "\n")
}
