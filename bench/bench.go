// The harness: what one bench run collects (result rows, phase
// breakdowns, exact commands, notes, profiles) and run, which starts the
// lab the chosen benchmarks need, builds the hosts' closures once and runs
// the benchmarks in order. Each benchmark is a file of its own:
//
//	fresh.go    fresh deploys of 10, 16 and 50 hosts (and the warm-up)
//	wan.go      fresh deploys of 10 and 50 hosts at 50 ms RTT, and what
//	            each host saw (delayproxy.go: the delay; wanops.go: the
//	            round trips of single operations)
//	noop.go     the no-op redeploy of 50 hosts
//	substitute.go  fresh deploys of 10 hosts that fetch half their
//	            closure from a binary cache (substitute on destination)
//	large.go    the push of one large closure
//	plan.go     fleet plan of 1000 hosts
//	profile.go  fleet's slowest paths in-process under pprof
//	ops.go      the CPU cost of single operations on one host
//
// and the baselines they are measured against are baseline.go (colmena's
// steps with xargs) and ansible.go. The rest is shared: labs.go (the lab,
// emptying and checking hosts), projects.go (the generated fleet.star
// files), command.go (running a command), fleetrun.go (running fleet,
// reading its events), measure.go and cpu.go (wall and CPU time, ratios),
// machine.go and report.go (the printed report).

package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

type bench struct {
	machine machine
	lab     *labs
	cpu     *cpuAcct // nil: CPU time not available

	closures  map[string]string // host -> small closure (fresh deploys)
	largeFile string            // fleet.star of the large closure, once built
	ansible   string            // ansible-playbook path, "" if not used
	noAnsible string            // why not

	rows          []row
	breakdowns    []breakdown
	commands      []cmdDoc
	notes         []string
	profiles      []profileReport
	opsResults    []opResult
	cpuSplits     []cpuSplit
	hostMetrics   []hostMetrics
	wanOpsResults []wanOp
	loadEnd       string
}

// cpuSplit is where the CPU time of one method's runs went.
type cpuSplit struct {
	bench, method string
	dep, hosts    []float64 // seconds, per run
}

func (b *bench) split(bench, method string, m meas) {
	for i := range b.cpuSplits {
		if s := &b.cpuSplits[i]; s.bench == bench && s.method == method {
			s.dep = append(s.dep, m.dep.Seconds())
			s.hosts = append(s.hosts, m.hosts.Seconds())
			return
		}
	}
	b.cpuSplits = append(b.cpuSplits, cpuSplit{bench, method, []float64{m.dep.Seconds()}, []float64{m.hosts.Seconds()}})
}

// cmdDoc is one exact command of the report.
type cmdDoc struct {
	bench string
	what  string
	cmd   string
}

func (b *bench) cmd(bench, what, cmd string) {
	b.commands = append(b.commands, cmdDoc{bench, what, cmd})
}

func hostNames(n int) []string {
	hs := make([]string, n)
	for i := range hs {
		hs[i] = fmt.Sprintf("h%d", i+1)
	}
	return hs
}

func (b *bench) run(ctx context.Context) error {
	needLab := 0
	switch {
	case want("fresh50") || want("wan50") || want("noop") || want("profile"):
		needLab = 50
	case want("fresh16"):
		needLab = 16
	case want("fresh10") || want("wan10") || want("subst") || want("ops"):
		needLab = 10
	case want("large"):
		needLab = 1
	}
	b.ansible, b.noAnsible = findAnsible()
	if c, err := newCPUAcct(); err != nil {
		b.notes = append(b.notes, fmt.Sprintf("CPU time not measured: %v", err))
	} else {
		b.cpu = c
		defer c.close()
	}
	if needLab > 0 {
		logf("starting a lab of %d hosts", needLab)
		t0 := time.Now()
		l, err := startLabs(ctx, needLab, filepath.Join(cfg.work, "lab"))
		if err != nil {
			return err
		}
		defer l.Close()
		b.lab = l
		logf("lab up in %v (%s)", time.Since(t0).Round(time.Millisecond), filepath.Join(cfg.work, "lab"))
		if b.cpu != nil {
			if err := b.cpu.adoptLab(); err != nil {
				b.notes = append(b.notes, fmt.Sprintf("CPU time not measured: %v", err))
				b.cpu.close()
				b.cpu = nil
			}
		}
		if needLab >= 10 {
			if err := b.buildClosures(ctx, needLab); err != nil {
				return err
			}
		}
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"fresh10", func(ctx context.Context) error { return b.fresh(ctx, 10, cfg.reps, nil) }},
		{"fresh16", func(ctx context.Context) error { return b.fresh(ctx, 16, cfg.reps, nil) }},
		{"fresh50", func(ctx context.Context) error { return b.fresh(ctx, 50, cfg.reps50, nil) }},
		{"wan10", func(ctx context.Context) error { return b.wan(ctx, 10) }},
		{"wan50", func(ctx context.Context) error { return b.wan(ctx, 50) }},
		{"noop", b.noop},
		{"subst", b.subst},
		{"large", b.large},
		{"plan", b.plan},
		{"profile", b.profile},
		{"ops", b.ops},
	}
	var errs []error
	for _, s := range steps {
		if !want(s.name) || (s.name == "profile" && cfg.noProfile) {
			continue
		}
		if err := s.fn(ctx); err != nil {
			logf("%s: FAILED: %v", s.name, err)
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
	}
	b.loadEnd = loadavg()
	return errors.Join(errs...)
}
