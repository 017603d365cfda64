// fleet plan of 1000 generated hosts (attr and nixos_system() hosts,
// rolled out 10% at a time): wall, CPU and max RSS against the targets
// (≤ 300 ms, ≤ 150 MB); there is no baseline.

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/fleet-deploy/fleet/internal/tail"
)

func (b *bench) plan(ctx context.Context) error {
	kinds := []string{"attr", "nixos"}
	cmds := map[string]command{}
	for _, k := range kinds {
		file, err := writePlanProject(filepath.Join(cfg.work, "plan-"+k), 1000, k)
		if err != nil {
			return err
		}
		cmds[k] = command{dir: filepath.Dir(file), argv: []string{cfg.fleet, "plan", file}}
		how := "wall measured here; max RSS: ru_maxrss from wait4(2), which includes this process's RSS at vfork (/usr/bin/time is not installed)"
		if timeBin != "" {
			cmds[k] = withMaxRSS(cmds[k])
			how = "wall measured here (includes /usr/bin/time's ~1 ms); max RSS from /usr/bin/time -f %M; CPU user+sys from wait4(2)"
		}
		b.cmd("plan 1000 hosts", k+" hosts", cmds[k].String()+"   # "+how)
		// warm-up (page cache), checks the plan
		r := cmds[k].run(ctx)
		if err := r.failed(); err != nil {
			return err
		}
		if !strings.Contains(r.stdout, "Plan: goal switch, parallel 10, 3000 steps") || !strings.Contains(r.stdout, "wave 10/10") {
			return fmt.Errorf("unexpected plan: %s", tail.Lines(r.stdout, 5))
		}
	}
	wall := map[string][]float64{}
	rss := map[string][]float64{}
	cpu := map[string][]float64{}
	for rep := 0; rep < cfg.planReps; rep++ {
		for i := range kinds {
			k := kinds[(i+rep)%len(kinds)]
			r := cmds[k].run(ctx)
			if err := r.failed(); err != nil {
				return err
			}
			wall[k] = append(wall[k], float64(r.wall.Microseconds())/1000)
			if timeBin != "" && !strings.Contains(r.stderr, "BENCHTIME ") {
				return fmt.Errorf("no BENCHTIME line from /usr/bin/time: %s", tail.Lines(r.stderr, 5))
			}
			rss[k] = append(rss[k], r.maxRSSMB())
			cpu[k] = append(cpu[k], float64(r.cpu.Microseconds())/1000)
		}
	}
	for _, k := range kinds {
		logf("plan 1000 %s hosts: wall %v ms, CPU %v ms, max RSS %v MB", k, fmtList(wall[k]), fmtList(cpu[k]), fmtList(rss[k]))
		what := map[string]string{"attr": `attr=".#nixosConfigurations.hN"`, "nixos": "nixos_system()"}[k]
		b.rows = append(b.rows,
			row{name: "plan 1000 " + what + " hosts, rolling 10%: wall (ms)", fleet: wall[k], format: ms,
				target: "≤ 300 ms", met: func(s stats, _ float64) bool { return s.med <= 300 }},
			row{name: "plan 1000 " + what + " hosts, rolling 10%: CPU user+sys (ms)", fleet: cpu[k], format: ms, target: "(info)"},
			row{name: "plan 1000 " + what + " hosts, rolling 10%: max RSS (MB)", fleet: rss[k], format: mb,
				target: "≤ 150 MB", met: func(s stats, _ float64) bool { return s.med <= 150 }},
		)
	}
	return nil
}

func fmtList(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(s, " ")
}
