// The no-op redeploy: fleet run of the N = 50 file again, nothing changed,
// against the baseline's no-op (its same steps again: nothing to copy,
// nix-copy-closure still asks, both ssh steps still run), target ≤ 0.15×
// (issue 15; issue 9's was ≤ 1 s). -noop-baseline=false skips the
// baseline, and then the row has no ratio.

package main

import (
	"context"
	"fmt"
	"time"
)

func (b *bench) noop(ctx context.Context) error {
	const n = 50
	names := hostNames(n)
	file, err := b.freshProject(n)
	if err != nil {
		return err
	}
	fleetCmd := b.fleetRun(file)
	// Every host must run what the file says: after the fresh N=50
	// benchmark they do; otherwise deploy first.
	if b.closures == nil || b.verify(names, b.closures) != nil {
		logf("no-op N=%d: settling deploy", n)
		_, ph, err := runFleet(ctx, fleetCmd)
		if err != nil {
			return err
		}
		b.closures = ph.closures
		if err := b.verify(names, b.closures); err != nil {
			return err
		}
	}
	bench := "no-op N=50"
	b.cmd(bench, "fleet (again, nothing changed)", fleetCmd.String())
	var baseCmd command
	if cfg.noopBaseline {
		var doc string
		if baseCmd, doc, err = b.baselineCmd(names, b.closures, 10); err != nil {
			return err
		}
		b.cmd(bench, "baseline (colmena's steps again: nothing to copy, re-activates)", doc)
	}
	bd := breakdown{name: "no-op redeploy, N=50"}
	var fw, bw, fc, bc []float64
	for rep := 0; rep < cfg.reps; rep++ {
		for i := 0; i < 2; i++ {
			if (i+rep)%2 == 0 {
				var ph phases
				var r result
				ms, err := b.measure(func() (time.Duration, error) {
					var err error
					r, ph, err = runFleet(ctx, fleetCmd)
					return r.wall, err
				})
				if err != nil {
					return err
				}
				if ph.missing != 0 {
					return fmt.Errorf("no-op run pushed %d paths", ph.missing)
				}
				bd.ph = append(bd.ph, ph)
				bd.wall = append(bd.wall, r.wall.Seconds())
				fw = append(fw, r.wall.Seconds())
				fc = append(fc, ms.cpu())
				b.split(bench, "fleet", ms)
				logf("%s rep %d/%d: fleet    %6.2fs wall, CPU %5.1fs deployer + %5.1fs hosts", bench, rep+1, cfg.reps, r.wall.Seconds(), ms.dep.Seconds(), ms.hosts.Seconds())
			} else if cfg.noopBaseline {
				ms, err := b.measure(func() (time.Duration, error) {
					r := baseCmd.run(ctx)
					return r.wall, r.failed()
				})
				if err != nil {
					return fmt.Errorf("baseline: %w", err)
				}
				bw = append(bw, ms.wall.Seconds())
				bc = append(bc, ms.cpu())
				b.split(bench, "baseline", ms)
				logf("%s rep %d/%d: baseline %6.2fs wall, CPU %5.1fs deployer + %5.1fs hosts", bench, rep+1, cfg.reps, ms.wall.Seconds(), ms.dep.Seconds(), ms.hosts.Seconds())
			}
		}
	}
	b.breakdowns = append(b.breakdowns, bd)
	b.rows = append(b.rows, row{
		name: "no-op redeploy N=50, wall (s)", fleet: fw, base: bw, baseName: "(same steps again)",
		ratios: ratios(fw, bw), format: secs, target: "≤ 0.15× baseline", met: func(_ stats, r float64) bool { return r <= 0.15 },
	})
	if b.cpu != nil {
		b.rows = append(b.rows, row{
			name: "no-op redeploy N=50, CPU s (deployer+hosts)", fleet: fc, base: bc, baseName: "(same steps again)",
			ratios: ratios(fc, bc), format: secs, target: "(info)",
		})
	}
	return nil
}
