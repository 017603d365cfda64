// Fresh deploys of N = 10 and N = 50 hosts from EMPTY host stores, wall and
// CPU time, against the baseline (colmena's steps with xargs -P 10,
// baseline.go) and, at N = 10, Ansible (ansible.go). Methods are
// interleaved, their order rotated every repetition; every host must run
// its closure afterwards. The unmeasured warm-up that builds every host's
// closure is here too.

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

func (b *bench) fresh(ctx context.Context, n, reps int) error {
	names := hostNames(n)
	file, err := b.freshProject(n)
	if err != nil {
		return err
	}
	fleetCmd := b.fleetRun(file)
	bench := fmt.Sprintf("fresh N=%d", n)
	baseCmd, baseDoc, err := b.baselineCmd(names, b.closures, 10)
	if err != nil {
		return err
	}
	b.cmd(bench, "fleet", fleetCmd.String())
	b.cmd(bench, "baseline (colmena's steps, xargs -P 10)", baseDoc)
	bd := breakdown{name: fmt.Sprintf("fresh deploy, N=%d", n)}
	methods := []method{
		{"fleet", func(int) (time.Duration, error) {
			r, ph, err := runFleet(ctx, fleetCmd)
			if err == nil {
				bd.ph = append(bd.ph, ph)
				bd.wall = append(bd.wall, r.wall.Seconds())
			}
			return r.wall, err
		}},
		{"baseline", func(int) (time.Duration, error) {
			r := baseCmd.run(ctx)
			return r.wall, r.failed()
		}},
	}
	withAnsible := b.ansible != "" && (n <= 10 || cfg.ansible50)
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
	} else if b.ansible != "" {
		b.notes = append(b.notes, fmt.Sprintf("%s: Ansible not run (one Ansible deploy of 50 hosts takes ~5× its N=10 time, too long for the ~15 min budget; -ansible50 runs it)", bench))
	}
	walls := map[string][]float64{}
	cpus := map[string][]float64{}
	for rep := 0; rep < reps; rep++ {
		for i := range methods {
			m := methods[(i+rep)%len(methods)] // rotate the order every repetition
			var ms meas
			for attempt := 1; ; attempt++ {
				if err := b.resetHosts(names); err != nil {
					return err
				}
				ms, err = b.measure(func() (time.Duration, error) { return m.run(rep) })
				if err == nil {
					err = b.verify(names, b.closures)
				}
				if err == nil {
					break
				}
				err = fmt.Errorf("%s %s: %w", bench, m.name, err)
				if attempt == 2 {
					return err
				}
				// Other work on this machine shares the PID namespace
				// with the lab; a stray kill must not sink the run.
				logf("%v\n  -> measuring once more", err)
				b.notes = append(b.notes, fmt.Sprintf("%s rep %d: first attempt failed and was repeated: %s", bench, rep+1, firstLine(err.Error())))
			}
			b.split(bench, m.name, ms)
			walls[m.name] = append(walls[m.name], ms.wall.Seconds())
			cpus[m.name] = append(cpus[m.name], ms.cpu())
			logf("%s rep %d/%d: %-8s %6.2fs wall, CPU %5.1fs deployer + %5.1fs hosts", bench, rep+1, reps, m.name, ms.wall.Seconds(), ms.dep.Seconds(), ms.hosts.Seconds())
		}
	}
	b.breakdowns = append(b.breakdowns, bd)
	b.rows = append(b.rows, row{
		name: fmt.Sprintf("fresh deploy N=%d, wall (s)", n), fleet: walls["fleet"], base: walls["baseline"],
		baseName: "(xargs -P 10)", ratios: ratios(walls["fleet"], walls["baseline"]),
		format: secs, target: "≤ 0.5× baseline", met: func(_ stats, r float64) bool { return r <= 0.5 },
	})
	if withAnsible {
		b.rows = append(b.rows, row{
			name: fmt.Sprintf("fresh deploy N=%d vs Ansible, wall (s)", n), fleet: walls["fleet"], base: walls["ansible"],
			baseName: "(ansible -f 10)", ratios: ratios(walls["fleet"], walls["ansible"]),
			format: secs, target: "≤ 0.2× Ansible", met: func(_ stats, r float64) bool { return r <= 0.2 },
		})
	}
	if b.cpu != nil {
		b.rows = append(b.rows, row{
			name: fmt.Sprintf("fresh deploy N=%d, CPU s (deployer+hosts)", n), fleet: cpus["fleet"], base: cpus["baseline"],
			baseName: "(xargs -P 10)", ratios: ratios(cpus["fleet"], cpus["baseline"]), format: secs, target: "(info)",
		})
		if withAnsible {
			b.rows = append(b.rows, row{
				name: fmt.Sprintf("fresh deploy N=%d vs Ansible, CPU s", n), fleet: cpus["fleet"], base: cpus["ansible"],
				baseName: "(ansible -f 10)", ratios: ratios(cpus["fleet"], cpus["ansible"]), format: secs, target: "(info)",
			})
		}
	}
	return nil
}
