// The push of one large closure (200 payload paths of 1 MiB) to one empty
// host, in MB/s of its export stream, against nix-copy-closure --to; the
// same stream through OpenSSH into nix-store --import tells fleet's SSH
// client apart from Nix's import.

package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

func (b *bench) large(ctx context.Context) error {
	names := []string{"h1"}
	dir := filepath.Join(cfg.work, "large")
	file, err := writeDeployProject(dir, names, 200, 1024)
	if err != nil {
		return err
	}
	fleetCmd := b.fleetRun(file)
	if err := b.resetHosts(names); err != nil {
		return err
	}
	logf("large closure: warm-up fleet run (builds 200 x 1 MiB payload paths the first time)")
	r, ph, err := runFleet(ctx, fleetCmd)
	if err != nil {
		return err
	}
	closure := ph.closures["h1"]
	b.largeFile = file
	logf("large closure: warm-up %.1fs, %d paths, %.1f MB pushed", r.wall.Seconds(), ph.missing, float64(ph.pushBytes)/1e6)
	narSize, paths, err := closureSize(ctx, closure)
	if err != nil {
		return err
	}
	b.notes = append(b.notes, fmt.Sprintf("large closure: %d store paths, NAR size %.1f MB; fleet's push stream (nix-store --export) %.1f MB. Throughput = those export bytes / time for both tools (the same bytes cross the wire, modulo framing).", paths, float64(narSize)/1e6, float64(ph.pushBytes)/1e6))
	copyCmd := command{env: []string{"NIX_SSHOPTS=-F " + b.lab.SSHConfig}, argv: []string{"nix-copy-closure", "--to", "root@h1", closure}}
	bench := "large closure"
	b.cmd(bench, "fleet (push step of)", fleetCmd.String())
	b.cmd(bench, "baseline", copyCmd.String())
	bd := breakdown{name: "large closure, 1 host"}
	// The same export stream through OpenSSH into nix-store --import:
	// tells fleet's SSH client apart from Nix's import format.
	pipeCmd := command{argv: []string{"sh", "-c", `nix-store --export $(nix-store -qR "$1") | ssh -F "$2" root@h1 nix-store --import >/dev/null`, "sh", closure, b.lab.SSHConfig}}
	b.cmd(bench, "fleet's stream through OpenSSH (for context)", pipeCmd.String())
	exportBytes := ph.pushBytes
	valid := func() error {
		out, err := b.lab.Host("h1").Exec(ctx, "nix-store --check-validity "+closure)
		if err != nil {
			return fmt.Errorf("closure not valid on h1 afterwards: %v: %s", err, out)
		}
		return nil
	}
	timed := func(c command) (float64, error) {
		r := c.run(ctx)
		if err := r.failed(); err != nil {
			return 0, err
		}
		if err := valid(); err != nil {
			return 0, err
		}
		return float64(exportBytes) / 1e6 / r.wall.Seconds(), nil
	}
	tput := map[string][]float64{}
	methods := []string{"fleet", "nix-copy-closure", "export|ssh import"}
	for rep := 0; rep < cfg.reps; rep++ {
		for i := range methods {
			m := methods[(i+rep)%len(methods)]
			if err := b.resetHosts(names); err != nil {
				return err
			}
			var mbps float64
			switch m {
			case "fleet":
				r, ph, err := runFleet(ctx, fleetCmd)
				if err != nil {
					return err
				}
				if ph.pushMS <= 0 || ph.pushBytes == 0 {
					return fmt.Errorf("fleet pushed %d bytes in %d ms", ph.pushBytes, ph.pushMS)
				}
				bd.ph = append(bd.ph, ph)
				bd.wall = append(bd.wall, r.wall.Seconds())
				mbps = float64(ph.pushBytes) / 1e6 / (float64(ph.pushMS) / 1000)
				logf("%s rep %d/%d: fleet push %.2fs = %6.1f MB/s (run %.2fs)", bench, rep+1, cfg.reps, float64(ph.pushMS)/1000, mbps, r.wall.Seconds())
			case "nix-copy-closure":
				if mbps, err = timed(copyCmd); err != nil {
					return err
				}
				logf("%s rep %d/%d: nix-copy-closure %6.1f MB/s", bench, rep+1, cfg.reps, mbps)
			default:
				if mbps, err = timed(pipeCmd); err != nil {
					return err
				}
				logf("%s rep %d/%d: export | OpenSSH ssh import %6.1f MB/s", bench, rep+1, cfg.reps, mbps)
			}
			tput[m] = append(tput[m], mbps)
		}
	}
	b.breakdowns = append(b.breakdowns, bd)
	b.rows = append(b.rows,
		row{
			name: "large closure (~200 MB, 202 paths), push MB/s", fleet: tput["fleet"], base: tput["nix-copy-closure"], baseName: "nix-copy-closure --to",
			ratios: ratios(tput["fleet"], tput["nix-copy-closure"]), format: mbps, target: "≥ 1.0× baseline", met: func(_ stats, r float64) bool { return r >= 1.0 },
		},
		row{
			name: "  same export stream via OpenSSH into nix-store --import, MB/s", fleet: tput["export|ssh import"], base: tput["nix-copy-closure"], baseName: "nix-copy-closure --to",
			ratios: ratios(tput["export|ssh import"], tput["nix-copy-closure"]), format: mbps, target: "(info)",
		})
	return nil
}

func closureSize(ctx context.Context, closure string) (int64, int, error) {
	out, err := exec.CommandContext(ctx, "sh", "-c", `nix-store -qR "$1" | xargs nix-store -q --size`, "sh", closure).Output()
	if err != nil {
		return 0, 0, err
	}
	var total int64
	f := strings.Fields(string(out))
	for _, s := range f {
		var n int64
		fmt.Sscan(s, &n)
		total += n
	}
	return total, len(f), nil
}
