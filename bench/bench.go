package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
)

type bench struct {
	machine machine
	lab     *labs
	cpu     *cpuAcct // nil: CPU time not available

	closures  map[string]string // host -> small closure (fresh deploys)
	largeFile string            // fleet.star of the large closure, once built
	ansible   string            // ansible-playbook path, "" if not used
	noAnsible string            // why not

	rows       []row
	breakdowns []breakdown
	commands   []cmdDoc
	notes      []string
	profiles   []profileReport
	opsResults []opResult
	cpuSplits  []cpuSplit
	loadEnd    string
}

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
}

type breakdown struct {
	name string
	ph   []phases
	wall []float64
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
	case want("fresh50") || want("noop") || want("profile"):
		needLab = 50
	case want("fresh10") || want("ops"):
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
		{"fresh10", func(ctx context.Context) error { return b.fresh(ctx, 10, cfg.reps) }},
		{"fresh50", func(ctx context.Context) error { return b.fresh(ctx, 50, cfg.reps50) }},
		{"noop", b.noop},
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

func findAnsible() (string, string) {
	if cfg.ansible == "off" {
		return "", "turned off (-ansible off)"
	}
	p, err := exec.LookPath("ansible-playbook")
	if err != nil {
		return "", "ansible-playbook is not installed (apt-get install -y ansible)"
	}
	return p, ""
}

// ---- hosts ----

// resetHosts empties the hosts' stores and removes their system links,
// profiles and activation state: every host is as fresh as a new lab
// host (its sshd and nix-daemon keep running).
func (b *bench) resetHosts(names []string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		h := b.lab.Host(n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = resetHost(h)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func resetHost(h *lab.Host) error {
	r := h.Root
	if err := removeContents(r+"/nix/store", nil); err != nil {
		return err
	}
	if err := removeContents(r+"/nix/var/nix", map[string]bool{"daemon-socket": true}); err != nil {
		return err
	}
	if err := removeContents(r+"/nix/var", map[string]bool{"nix": true}); err != nil {
		return err
	}
	for _, d := range []string{"profiles", "gcroots"} {
		if err := os.MkdirAll(r+"/nix/var/nix/"+d, 0o755); err != nil {
			return err
		}
	}
	for _, p := range []string{"current-system", "booted-system", "fleet"} {
		if err := os.RemoveAll(r + "/run/" + p); err != nil {
			return err
		}
	}
	return nil
}

func removeContents(dir string, keep map[string]bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if keep[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// verify checks that every host runs its closure.
func (b *bench) verify(names []string, closures map[string]string) error {
	var bad []string
	for _, n := range names {
		cur, err := b.lab.Host(n).CurrentSystem()
		if err != nil || cur == "" || cur != closures[n] {
			bad = append(bad, fmt.Sprintf("%s runs %q, want %q (%v)", n, cur, closures[n], err))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not deployed: %s", strings.Join(bad, "; "))
	}
	return nil
}

// ---- commands ----

func (b *bench) overrideArgs() []string {
	return []string{"--override-input", "nixpkgs=" + filepath.Join(cfg.root, "testdata/mini-nixpkgs")}
}

func (b *bench) fleetRun(file string, extra ...string) command {
	argv := append([]string{cfg.fleet, "run", "--json", "-p", "10", "--ssh-config", b.lab.SSHConfig}, b.overrideArgs()...)
	argv = append(append(argv, extra...), file)
	return command{dir: filepath.Dir(file), argv: argv}
}

// runFleet runs a fleet run command and parses its events.
func runFleet(ctx context.Context, c command) (result, phases, error) {
	r := c.run(ctx)
	if err := r.failed(); err != nil {
		return r, phases{}, fmt.Errorf("%s: %w", c.argv[1], err)
	}
	evs, err := parseEvents(r.stdout)
	if err != nil {
		return r, phases{}, err
	}
	return r, fleetPhases(r, evs), nil
}

func (b *bench) baselineCmd(names []string, closures map[string]string, par int) (command, string, error) {
	script := filepath.Join(cfg.work, "baseline.sh")
	if err := os.WriteFile(script, []byte(baselineScript), 0o755); err != nil {
		return command{}, "", err
	}
	var in strings.Builder
	for _, n := range names {
		fmt.Fprintf(&in, "%s %s\n", n, closures[n])
	}
	list := filepath.Join(cfg.work, fmt.Sprintf("baseline-hosts-%d.txt", len(names)))
	if err := os.WriteFile(list, []byte(in.String()), 0o644); err != nil {
		return command{}, "", err
	}
	c := command{argv: []string{"sh", "-c", `exec "$0" "$1" "$2" < "$3"`, script, b.lab.SSHConfig, fmt.Sprint(par), list}}
	doc := fmt.Sprintf("%s %s %d < %s   # %s is bench/projects.go's baselineScript:\n#   NIX_SSHOPTS=\"-F $cfg\" xargs -P %d -n 2 sh -c 'nix-copy-closure --to root@$1 $2 && ssh -F $cfg root@$1 nix-env -p /nix/var/nix/profiles/system --set $2 && ssh -F $cfg root@$1 $2/bin/switch-to-configuration switch'   (stdin: \"HOST CLOSURE\" lines)",
		script, b.lab.SSHConfig, par, list, filepath.Base(script), par)
	return c, doc, nil
}

func (b *bench) ansibleCmd(names []string, closures map[string]string, rep int) (command, error) {
	dir := filepath.Join(cfg.work, fmt.Sprintf("ansible-%d", len(names)))
	inv := ansibleInventory(b.lab.SSHConfig, names, closures)
	if err := writeFiles(dir, map[string]string{"inventory.ini": inv, "deploy.yml": ansiblePlaybook}); err != nil {
		return command{}, err
	}
	cp := filepath.Join(cfg.work, fmt.Sprintf("ansible-cp-%d-%d", len(names), rep)) // no ControlPersist master survives a repetition
	return command{dir: dir, env: []string{
		"ANSIBLE_FORKS=10",
		"ANSIBLE_PIPELINING=True",
		"ANSIBLE_SSH_CONTROL_PATH_DIR=" + cp,
		"ANSIBLE_LOCAL_TEMP=" + filepath.Join(cfg.work, "ansible-tmp"),
		"ANSIBLE_RETRY_FILES_ENABLED=False",
		"ANSIBLE_NOCOWS=1",
	}, argv: []string{b.ansible, "-i", "inventory.ini", "-f", "10", "deploy.yml"}}, nil
}

// ---- 1. fresh deploys ----

// meas is one measured command: wall time and the CPU time it cost on
// the deployer and on the hosts (see cpuAcct).
type meas struct{ wall, dep, hosts time.Duration }

func (m meas) cpu() float64 { return (m.dep + m.hosts).Seconds() }

func (b *bench) measure(f func() (time.Duration, error)) (meas, error) {
	d0, h0 := b.cpu.snapshot()
	wall, err := f()
	d1, h1 := b.cpu.snapshot()
	return meas{wall: wall, dep: d1 - d0, hosts: h1 - h0}, err
}

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

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func ratios(num, den []float64) []float64 {
	var out []float64
	for i := range num {
		if i < len(den) && den[i] > 0 {
			out = append(out, num[i]/den[i])
		}
	}
	return out
}

// ---- 2. no-op redeploy ----

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
		ratios: ratios(fw, bw), format: secs, target: "≤ 1 s", met: func(s stats, _ float64) bool { return s.med <= 1 },
	})
	if b.cpu != nil {
		b.rows = append(b.rows, row{
			name: "no-op redeploy N=50, CPU s (deployer+hosts)", fleet: fc, base: bc, baseName: "(same steps again)",
			ratios: ratios(fc, bc), format: secs, target: "(info)",
		})
	}
	return nil
}

// ---- 3. large closure ----

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
			ratios: ratios(tput["fleet"], tput["nix-copy-closure"]), format: mbps, target: "≥ 0.9× baseline", met: func(_ stats, r float64) bool { return r >= 0.9 },
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

// ---- 4. plan at scale ----

func (b *bench) plan(ctx context.Context) error {
	kinds := []string{"attr", "nixos"}
	cmds := map[string]command{}
	for _, k := range kinds {
		file, err := writePlanProject(filepath.Join(cfg.work, "plan-"+k), 1000, k)
		if err != nil {
			return err
		}
		cmds[k] = command{dir: filepath.Dir(file), argv: []string{cfg.fleet, "plan", file}}
		// Max RSS: Go starts children with vfork, so the kernel's
		// ru_maxrss of a child starts at this (big) process's RSS; a
		// small intermediate process, /usr/bin/time, reports the real one.
		how := "wall measured here; max RSS: ru_maxrss from wait4(2), which includes this process's RSS at vfork (/usr/bin/time is not installed)"
		if _, err := os.Stat("/usr/bin/time"); err == nil {
			cmds[k] = command{dir: cmds[k].dir, argv: append([]string{"/usr/bin/time", "-f", "BENCHTIME %M"}, cmds[k].argv...)}
			how = "wall measured here (includes /usr/bin/time's ~1 ms); max RSS from /usr/bin/time -f %M; CPU user+sys from wait4(2)"
		}
		b.cmd("plan 1000 hosts", k+" hosts", cmds[k].String()+"   # "+how)
		// warm-up (page cache), checks the plan
		r := cmds[k].run(ctx)
		if err := r.failed(); err != nil {
			return err
		}
		if !strings.Contains(r.stdout, "Plan: goal switch, parallel 10, 3000 steps") || !strings.Contains(r.stdout, "wave 10/10") {
			return fmt.Errorf("unexpected plan: %s", tailLines(r.stdout, 5))
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
			kb := r.maxRSSKB
			if cmds[k].argv[0] == "/usr/bin/time" {
				kb = -1
				for _, l := range strings.Split(r.stderr, "\n") {
					if v, ok := strings.CutPrefix(l, "BENCHTIME "); ok {
						fmt.Sscan(v, &kb)
					}
				}
				if kb < 0 {
					return fmt.Errorf("no BENCHTIME line from /usr/bin/time: %s", tailLines(r.stderr, 5))
				}
			}
			rss[k] = append(rss[k], float64(kb)*1024/1e6)
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

// ---- formatting ----

func secs(x float64) string { return fmt.Sprintf("%.2f", x) }
func ms(x float64) string   { return fmt.Sprintf("%.0f", x) }
func mb(x float64) string   { return fmt.Sprintf("%.0f", x) }
func mbps(x float64) string { return fmt.Sprintf("%.0f", x) }

func (r row) cells() (fleet, base, ratio, met string) {
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
