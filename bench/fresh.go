// Fresh deploys of N = 10, 16 and 50 hosts from EMPTY host stores, wall
// and CPU time, and the deployer's max RSS, against the baseline
// (colmena's steps with xargs -P 10, baseline.go) and, at N = 10, Ansible
// (ansible.go). Methods are interleaved, their order rotated every
// repetition; every host must run its closure afterwards. The WAN
// benchmark (wan.go) runs these deploys through its delay proxies. The
// unmeasured warm-up that builds every host's closure is here too.

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// method is one way to deploy (fleet, the baseline, Ansible), run once per
// repetition.
type method struct {
	name string
	run  func(rep int) (time.Duration, error)
}

// freshProject writes (once) the fleet.star of hosts h1..hN.
func (b *bench) freshProject(n int) (string, error) {
	dir := filepath.Join(cfg.work, fmt.Sprintf("fresh%d", n))
	file := filepath.Join(dir, "fleet.star")
	if _, err := os.Stat(file); err == nil {
		return file, nil
	}
	return writeDeployProject(dir, hostNames(n), smallPayloadCount, smallPayloadSizeKB)
}

// buildClosures is the unmeasured warm-up: one fleet run to hosts
// h1..hN (N = all lab hosts) that builds every host's closure (the
// baselines need them built beforehand) and warms the caches. Host hK
// has the same closure in every project. With the profile benchmark, this
// run is fleet's CLI in-process under the CPU profiler (see profile.go).
func (b *bench) buildClosures(ctx context.Context, n int) error {
	file, err := b.freshProject(n)
	if err != nil {
		return err
	}
	names := hostNames(n)
	var ph phases
	for attempt := 1; ; attempt++ {
		if err := b.resetHosts(names); err != nil {
			return err
		}
		if want("profile") && !cfg.noProfile && n >= 50 {
			logf("warm-up: fleet run to %d hosts, in-process under pprof (builds the closures; not measured)", n)
			var p profileReport
			p, err = b.profileDeploy(fmt.Sprintf("fresh deploy N=%d (first run: the warm-up)", n), "fresh50.pprof", file)
			if err == nil && p.ph == nil {
				err = fmt.Errorf("no events from the in-process run")
			}
			if err == nil {
				ph = *p.ph
				b.profiles = append(b.profiles, p)
				logf("warm-up took %.2fs (build %.2fs)", p.wall.Seconds(), ph.build.Seconds())
			}
		} else {
			logf("warm-up: fleet run to %d hosts (builds the closures; not measured)", n)
			var r result
			r, ph, err = runFleet(ctx, b.fleetRun(file))
			if err == nil {
				logf("warm-up took %.2fs (build %.2fs)", r.wall.Seconds(), ph.build.Seconds())
			}
		}
		if err == nil && len(ph.closures) != n {
			err = fmt.Errorf("warm-up built %d closures, want %d", len(ph.closures), n)
		}
		if err == nil {
			err = b.verify(names, ph.closures)
		}
		if err == nil {
			break
		}
		if attempt == 2 {
			return err
		}
		logf("warm-up failed, once more: %v", err)
	}
	b.closures = ph.closures
	return nil
}

// fresh measures fresh deploys of hosts h1..hN; with w, through its
// delay proxies, counting what each host saw.
func (b *bench) fresh(ctx context.Context, n, reps int, w *wan) error {
	names := hostNames(n)
	file, err := b.freshProject(n)
	if err != nil {
		return err
	}
	sshConfig, bench, label := b.lab.SSHConfig, fmt.Sprintf("fresh N=%d", n), fmt.Sprintf("fresh deploy N=%d", n)
	if w != nil {
		sshConfig = w.sshConfig
		bench = fmt.Sprintf("fresh N=%d, RTT %d ms", n, w.rtt.Milliseconds())
		label = fmt.Sprintf("fresh deploy N=%d at %d ms RTT", n, w.rtt.Milliseconds())
	}
	fleetCmd := withMaxRSS(b.fleetRunVia(sshConfig, file))
	baseCmd, baseDoc, err := b.baselineCmdVia(sshConfig, names, b.closures, 10)
	if err != nil {
		return err
	}
	baseCmd = withMaxRSS(baseCmd)
	b.cmd(bench, "fleet", fleetCmd.String())
	b.cmd(bench, "baseline (colmena's steps, xargs -P 10)", baseDoc)
	bd := breakdown{name: label}
	rss := map[string][]float64{}
	methods := []method{
		{"fleet", func(int) (time.Duration, error) {
			r, ph, err := runFleet(ctx, fleetCmd)
			if err == nil {
				bd.ph = append(bd.ph, ph)
				bd.wall = append(bd.wall, r.wall.Seconds())
				rss["fleet"] = append(rss["fleet"], r.maxRSSMB())
			}
			return r.wall, err
		}},
		{"baseline", func(int) (time.Duration, error) {
			r := baseCmd.run(ctx)
			if r.failed() == nil {
				rss["baseline"] = append(rss["baseline"], r.maxRSSMB())
			}
			return r.wall, r.failed()
		}},
	}
	withAnsible := w == nil && b.ansible != "" && (n <= 10 || cfg.ansible50)
	if withAnsible {
		first := true
		methods = append(methods, method{"ansible", func(rep int) (time.Duration, error) {
			c, err := b.ansibleCmd(names, b.closures, rep)
			if err != nil {
				return 0, err
			}
			if first {
				b.cmd(bench, "Ansible (forks=10)", c.String()+"   # deploy.yml: bench/projects.go's ansiblePlaybook")
				first = false
			}
			r := c.run(ctx)
			return r.wall, r.failed()
		}})
	} else if b.ansible != "" && w == nil {
		b.notes = append(b.notes, fmt.Sprintf("%s: Ansible not run (one Ansible deploy of 50 hosts takes ~5× its N=10 time, too long for the ~15 min budget; -ansible50 runs it)", bench))
	}
	walls := map[string][]float64{}
	cpus := map[string][]float64{}
	for rep := 0; rep < reps; rep++ {
		for i := range methods {
			m := methods[(i+rep)%len(methods)] // rotate the order every repetition
			var ms meas
			var c0, c1 wanCounts // what the WAN's hosts saw before and after
			err := b.twice(bench, m.name, rep, func() (err error) {
				if err := b.resetHosts(names); err != nil {
					return err
				}
				if w != nil {
					c0 = w.counts()
				}
				ms, err = b.measure(func() (time.Duration, error) { return m.run(rep) })
				if w != nil {
					c1 = w.counts()
				}
				if err == nil {
					err = b.verify(names, b.closures)
				}
				return err
			})
			if err != nil {
				return err
			}
			b.split(bench, m.name, ms)
			if w != nil {
				d := wanCounts{c1.proxyStats.sub(c0.proxyStats), c1.sessions - c0.sessions}
				r := rss[m.name]
				b.addHostMetrics(bench, m.name, n, d, ms, r[len(r)-1])
			}
			walls[m.name] = append(walls[m.name], ms.wall.Seconds())
			cpus[m.name] = append(cpus[m.name], ms.cpu())
			logf("%s rep %d/%d: %-8s %6.2fs wall, CPU %5.1fs deployer + %5.1fs hosts", bench, rep+1, reps, m.name, ms.wall.Seconds(), ms.dep.Seconds(), ms.hosts.Seconds())
		}
	}
	b.breakdowns = append(b.breakdowns, bd)
	// Targets: issue 9's ≤ 0.5× at N = 10; issue 15's ≤ 0.5× wall and CPU
	// at N = 16 and 50, ≤ 0.4× wall through the WAN.
	wallTarget, wallMax := "≤ 0.5× baseline", 0.5
	cpuTarget, cpuMax := "(info)", 0.0
	if w != nil {
		wallTarget, wallMax = "≤ 0.4× baseline", 0.4
	} else if n == 16 || n == 50 {
		cpuTarget, cpuMax = "≤ 0.5× baseline", 0.5
	}
	b.rows = append(b.rows, row{
		name: label + ", wall (s)", fleet: walls["fleet"], base: walls["baseline"],
		baseName: "(xargs -P 10)", ratios: ratios(walls["fleet"], walls["baseline"]),
		format: secs, target: wallTarget, met: func(_ stats, r float64) bool { return r <= wallMax },
	})
	if withAnsible {
		b.rows = append(b.rows, row{
			name: label + " vs Ansible, wall (s)", fleet: walls["fleet"], base: walls["ansible"],
			baseName: "(ansible -f 10)", ratios: ratios(walls["fleet"], walls["ansible"]),
			format: secs, target: "≤ 0.2× Ansible", met: func(_ stats, r float64) bool { return r <= 0.2 },
		})
	}
	if b.cpu != nil {
		r := row{
			name: label + ", CPU s (deployer+hosts)", fleet: cpus["fleet"], base: cpus["baseline"],
			baseName: "(xargs -P 10)", ratios: ratios(cpus["fleet"], cpus["baseline"]), format: secs, target: cpuTarget,
		}
		if cpuMax > 0 {
			r.met = func(_ stats, r float64) bool { return r <= cpuMax }
		}
		b.rows = append(b.rows, r)
		if withAnsible {
			b.rows = append(b.rows, row{
				name: label + " vs Ansible, CPU s", fleet: cpus["fleet"], base: cpus["ansible"],
				baseName: "(ansible -f 10)", ratios: ratios(cpus["fleet"], cpus["ansible"]), format: secs, target: "(info)",
			})
		}
	}
	if n == 50 && w == nil && timeBin != "" {
		b.rows = append(b.rows, row{
			name: label + ", deployer max RSS (MB)", fleet: rss["fleet"], base: rss["baseline"],
			baseName: "(largest process)", ratios: ratios(rss["fleet"], rss["baseline"]), format: mb,
			target: "≤ 100 MB", met: func(s stats, _ float64) bool { return s.med <= 100 },
		})
	}
	return nil
}

// twice makes one measurement of method (try: reset, measure, verify),
// and when it fails makes it once more, with a note: other work on this
// machine shares the PID namespace with the lab, and a stray kill must
// not sink the run. The second failure is the benchmark's.
func (b *bench) twice(bench, method string, rep int, try func() error) error {
	for attempt := 1; ; attempt++ {
		err := try()
		if err == nil {
			return nil
		}
		err = fmt.Errorf("%s %s: %w", bench, method, err)
		if attempt == 2 {
			return err
		}
		logf("%v\n  -> measuring once more", err)
		b.notes = append(b.notes, fmt.Sprintf("%s rep %d: first attempt failed and was repeated: %s", bench, rep+1, firstLine(err.Error())))
	}
}
