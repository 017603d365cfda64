// The report: the result table (median [min–max], paired ratio, target
// met?), where fleet's wall time went, the CPU split per method, the exact
// commands, the single operations, notes and profiles.

package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleet-deploy/fleet/internal/nixconf"
)

// row is one line of the result table.
type row struct {
	name     string
	fleet    []float64
	base     []float64 // nil: no baseline
	baseName string
	ratios   []float64 // per repetition, fleet/baseline (or baseline/fleet)
	format   func(float64) string
	target   string
	met      func(fleet stats, ratio float64) bool
	pending  string // not measurable yet: why (printed instead of numbers)
}

// breakdown is where fleet's wall time went in the runs of one benchmark.
type breakdown struct {
	name string
	ph   []phases
	wall []float64
}

func (b *bench) report(w io.Writer) {
	m := b.machine
	fmt.Fprintf(w, "\n== fleet benchmarks (issues 9 and 15) ==\n\n")
	fmt.Fprintf(w, "machine: nproc %s; CPU %s; %s; %s; RAM %s\n", m.nproc, m.cpu, m.kernel, m.os, m.mem)
	fmt.Fprintf(w, "tools:   %s; %s; %s", m.nix, m.ssh, m.goVersion)
	if m.ansible != "" {
		fmt.Fprintf(w, "; %s", m.ansible)
	}
	fmt.Fprintf(w, "\nload:    %s at start, %s at end (1/5/15 min); other work shares this machine\n", m.loadStart, b.loadEnd)
	fmt.Fprintf(w, "reps:    %d (N=50 fresh deploys: %d; plan: %d), methods interleaved, order rotated every repetition\n", cfg.reps, cfg.reps50, cfg.planReps)
	if b.noAnsible != "" {
		fmt.Fprintf(w, "Ansible: not measured: %s\n", b.noAnsible)
	}

	fmt.Fprintf(w, "\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tfleet median [min–max]\tbaseline median [min–max]\tratio (paired) median [min–max]\ttarget\tmet?")
	for _, r := range b.rows {
		f, bs, ra, met := r.cells()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.name, f, bs, ra, r.target, met)
	}
	tw.Flush()

	if cfg.markdown && len(b.rows) > 0 {
		fmt.Fprintf(w, "\nMarkdown:\n\n| benchmark | fleet median [min–max] | baseline median [min–max] | ratio | target | met? |\n|---|---|---|---|---|---|\n")
		for _, r := range b.rows {
			f, bs, ra, met := r.cells()
			md := strings.NewReplacer("|", `\|`).Replace
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", md(strings.TrimSpace(r.name)), md(f), md(bs), md(ra), r.target, met)
		}
	}

	if len(b.breakdowns) > 0 {
		fmt.Fprintf(w, "\nWhere fleet's wall time goes (medians over the measured runs, seconds; from `fleet run --json` events):\n")
		fmt.Fprintf(w, "  load = process start to run_start (start-up, Starlark, selection); build = run_start to last build step_end (one nix-build: eval + build);\n")
		fmt.Fprintf(w, "  push/activate = first step_start to last step_end of that action (all hosts, -p 10); Σ = sum of the hosts' step times; tail = summary to exit\n\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "run\twall\tload\tbuild\tpush\tΣpush/host\tactivate\tΣactivate/host\ttail")
		for _, bd := range b.breakdowns {
			get := func(f func(p phases) time.Duration) string {
				var xs []float64
				for _, p := range bd.ph {
					xs = append(xs, f(p).Seconds())
				}
				return fmt.Sprintf("%.2f", summarize(xs).med)
			}
			n := 1.0
			if len(bd.ph) > 0 && len(bd.ph[0].closures) > 0 {
				n = float64(len(bd.ph[0].closures))
			}
			perHost := func(f func(p phases) time.Duration) string {
				var xs []float64
				for _, p := range bd.ph {
					xs = append(xs, f(p).Seconds()/n)
				}
				return fmt.Sprintf("%.2f", summarize(xs).med)
			}
			fmt.Fprintf(tw, "%s\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", bd.name, summarize(bd.wall).med,
				get(func(p phases) time.Duration { return p.load }),
				get(func(p phases) time.Duration { return p.build }),
				get(func(p phases) time.Duration { return p.push }),
				perHost(func(p phases) time.Duration { return p.pushSum }),
				get(func(p phases) time.Duration { return p.activate }),
				perHost(func(p phases) time.Duration { return p.actSum }),
				get(func(p phases) time.Duration { return p.tail }))
		}
		tw.Flush()
	}

	if len(b.cpuSplits) > 0 && b.cpu != nil {
		fmt.Fprintf(w, "\nCPU time per run, medians in seconds (deployer = the tool and every process it starts here; hosts = every process on the lab hosts: sshd, sessions, nix, activation):\n\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "benchmark\tmethod\tdeployer\thosts\ttotal")
		for _, s := range b.cpuSplits {
			var tot []float64
			for i := range s.dep {
				tot = append(tot, s.dep[i]+s.hosts[i])
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.1f\n", s.bench, s.method, summarize(s.dep).med, summarize(s.hosts).med, summarize(tot).med)
		}
		tw.Flush()
	}
	if len(b.hostMetrics) > 0 {
		fmt.Fprintf(w, "\nPer host, through the delay proxies (medians over the runs of run total / N; connections, round trips and bytes counted by the proxies,\n")
		fmt.Fprintf(w, "  round trips = 1 per connection (TCP handshake) + the turns: the deployer's side sends after the host's side has; sessions = sessions that ran a command (root's login shell counts them);\n")
		fmt.Fprintf(w, "  deployer max RSS = the largest deployer process of a run, from /usr/bin/time):\n\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "benchmark\tmethod\tconnections\tsessions\tround trips\tKB sent\tKB received\tdeployer CPU ms\thost CPU ms\tdeployer max RSS MB")
		for _, m := range b.hostMetrics {
			med := func(xs []float64) float64 { return summarize(xs).med }
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\n", m.bench, m.method,
				med(m.conns), med(m.sessions), med(m.turns), med(m.kbUp), med(m.kbDown), med(m.depMS), med(m.hostMS), med(m.maxRSS))
		}
		tw.Flush()
	}
	if len(b.wanOpsResults) > 0 {
		fmt.Fprintf(w, "\nRound trips of single operations at %d ms RTT, on h1 through its proxy (means of %d):\n\n", wanRTT.Milliseconds(), b.wanOpsResults[0].k)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "operation\tround trips\twall ms")
		for _, o := range b.wanOpsResults {
			fmt.Fprintf(tw, "%s\t%.1f\t%.0f\n", o.name, o.turns, o.wall)
		}
		tw.Flush()
	}
	if len(b.commands) > 0 {
		fmt.Fprintf(w, "\nExact commands (run inside the lab's network namespace; hosts reset to empty stores before each fresh/subst/large measurement):\n")
		last := ""
		for _, c := range b.commands {
			if c.bench != last {
				fmt.Fprintf(w, "  [%s]\n", c.bench)
				last = c.bench
			}
			fmt.Fprintf(w, "    %s:\n      %s\n", c.what, strings.ReplaceAll(c.cmd, "\n", "\n      "))
		}
		fmt.Fprintf(w, "  every command reads only this nix.conf (NIX_CONF_DIR, internal/nixconf):\n    %s\n", strings.ReplaceAll(strings.TrimSpace(nixconf.Settings), "\n", "\n    "))
	}
	if len(b.opsResults) > 0 {
		fmt.Fprintf(w, "\nCost of single operations, one at a time on lab host h1 (means of %d; CPU from the hosts and deployer cpuacct cgroups; other work on the machine inflates them):\n\n", b.opsResults[0].k)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "operation\thost CPU ms\tdeployer CPU ms\twall ms")
		for _, o := range b.opsResults {
			fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.0f\n", o.name, o.host, o.dep, o.wall)
		}
		tw.Flush()
	}
	for _, n := range b.notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
	for _, p := range b.profiles {
		fmt.Fprintf(w, "\n== CPU profile: %s (in-process cli.Main: fleet %s) ==\n", p.name, p.args)
		file := p.file
		if !cfg.keep {
			file += " (removed at exit; -keep keeps it)"
		}
		fmt.Fprintf(w, "wall %.2fs per run; fleet's own CPU %.2fs; CPU of the processes it waited for (nix-build, nix-store, ...) %.2fs; profile %s\n",
			p.wall.Seconds(), p.selfCPU.Seconds(), p.childCPU.Seconds(), file)
		if p.ph != nil {
			fmt.Fprintf(w, "phases: load %.2fs, build %.2fs, push %.2fs (Σ %.1fs), activate %.2fs (Σ %.1fs)\n",
				p.ph.load.Seconds(), p.ph.build.Seconds(), p.ph.push.Seconds(), p.ph.pushSum.Seconds(), p.ph.activate.Seconds(), p.ph.actSum.Seconds())
		}
		fmt.Fprintf(w, "-- top, flat --\n%s\n-- top, cumulative --\n%s\n-- fleet's own code and its libraries (cumulative; %% of all samples) --\n%s\n", p.flat, p.cum, p.own)
	}
}

func secs(x float64) string { return fmt.Sprintf("%.2f", x) }
func ms(x float64) string   { return fmt.Sprintf("%.0f", x) }
func mb(x float64) string   { return fmt.Sprintf("%.0f", x) }
func mbps(x float64) string { return fmt.Sprintf("%.0f", x) }

func (r row) cells() (fleet, base, ratio, met string) {
	if r.pending != "" {
		return r.pending, "—", "—", "—"
	}
	f := summarize(r.fleet)
	fleet = fmt.Sprintf("%s [%s–%s]", r.format(f.med), r.format(f.min), r.format(f.max))
	base = "—"
	ratio = "—"
	rt := math.NaN()
	if len(r.base) > 0 {
		bs := summarize(r.base)
		base = fmt.Sprintf("%s [%s–%s] %s", r.format(bs.med), r.format(bs.min), r.format(bs.max), r.baseName)
		rs := summarize(r.ratios)
		rt = rs.med
		ratio = fmt.Sprintf("%.2f× [%.2f–%.2f]", rs.med, rs.min, rs.max)
	}
	met = "no"
	switch {
	case len(r.fleet) == 0:
		return fleet, base, ratio, "?"
	case r.met == nil:
		return fleet, base, ratio, "—"
	}
	if r.met(f, rt) {
		met = "yes"
	}
	return
}
