// Substitution (subst): fresh deploys of N = 10 hosts whose substituter,
// a signed binary cache, holds half of each host's payload paths (leaves,
// so the cached part of a closure is closed under references): fleet run
// --substitute-on-destination against the baseline with nix-copy-closure
// --use-substitutes (colmena's --substitute-on-destination, baseline.go).
// The cache is `nix copy --to file://DIR?compression=none&secret-key=SK`
// of those paths, served over HTTP by this process on 127.0.0.1 (the lab's
// network namespace, so the hosts reach it), each host under a URL prefix
// of its own (http://ADDR/hN), so the server counts what each host fetched.
// While the benchmark runs, every host's /etc/nix/nix.conf has that
// substituter and the cache's public key; the host's own narinfo cache
// (/root/.cache/nix) is emptied with its store before every measurement.
// Methods are interleaved, their order rotated every repetition; every
// host must run its closure afterwards. Besides wall and CPU time it
// reports what fleet pushed per host (bytes of its push step_end events)
// against the whole closure, and the files (narinfo + nar) the cache
// served per host for either method.

package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// substHosts is the benchmark's N.
const substHosts = 10

func (b *bench) subst(ctx context.Context) error {
	n := substHosts
	names := hostNames(n)
	file, err := b.freshProject(n)
	if err != nil {
		return err
	}
	c, err := b.newSubstCache(ctx, names)
	if err != nil {
		return fmt.Errorf("binary cache: %w", err)
	}
	defer c.close()
	if err := c.configureHosts(b, names); err != nil {
		return err
	}
	bench, label := fmt.Sprintf("substitution N=%d", n), fmt.Sprintf("substitute on destination N=%d (half of each payload cached)", n)
	fleetCmd := b.fleetRun(file, "--substitute-on-destination")
	baseCmd, baseDoc, err := b.baselineCmdOpts(b.lab.SSHConfig, names, b.closures, 10, "--use-substitutes")
	if err != nil {
		return err
	}
	b.cmd(bench, "binary cache (half of each host's payload paths, signed; served by the bench at http://"+c.addr+"/HOST)",
		fmt.Sprintf("nix-store --generate-binary-cache-key fleet-bench-cache %s %s\nnix --extra-experimental-features nix-command copy --to 'file://%s?compression=none&secret-key=%s' PAYLOAD_PATHS...   # per host: the first %d of its %d payload paths, sorted\n# each host's /etc/nix/nix.conf, for the benchmark: substituters = http://%s/HOST, trusted-public-keys = %s",
			c.sk, c.pk, c.dir, c.sk, smallPayloadCount/2, smallPayloadCount, c.addr, c.pub))
	b.cmd(bench, "fleet", fleetCmd.String())
	b.cmd(bench, "baseline (colmena's steps with --substitute-on-destination, xargs -P 10)", baseDoc)
	bd := breakdown{name: bench}
	var pushedMB []float64
	var last phases // of fleet's last run
	methods := []method{
		{"fleet", func(int) (time.Duration, error) {
			r, ph, err := runFleet(ctx, fleetCmd)
			last = ph
			return r.wall, err
		}},
		{"baseline", func(int) (time.Duration, error) {
			r := baseCmd.run(ctx)
			return r.wall, r.failed()
		}},
	}
	walls := map[string][]float64{}
	cpus := map[string][]float64{}
	served := map[string][]float64{} // per run: files served / N
	for rep := 0; rep < cfg.reps; rep++ {
		for i := range methods {
			m := methods[(i+rep)%len(methods)]
			var ms meas
			var s0 map[string]int
			var got int
			var short []string
			err := b.twice(bench, m.name, rep, func() (err error) {
				if err := b.resetHosts(names); err != nil {
					return err
				}
				if err := clearNarinfoCache(b, names); err != nil {
					return err
				}
				s0 = c.servedNow()
				ms, err = b.measure(func() (time.Duration, error) { return m.run(rep) })
				got, short = c.servedSince(s0, names)
				if err == nil {
					err = b.verify(names, b.closures)
				}
				return err
			})
			if err != nil {
				return err
			}
			if len(short) > 0 {
				b.notes = append(b.notes, fmt.Sprintf("%s rep %d: %s: hosts fetched fewer files from the cache than it has for them: %s", bench, rep+1, m.name, strings.Join(short, ", ")))
			}
			if m.name == "fleet" {
				if want := c.expectMissing(names); last.missing != want {
					b.notes = append(b.notes, fmt.Sprintf("%s rep %d: fleet pushed %d paths, want %d (the closures' paths not in the cache)", bench, rep+1, last.missing, want))
				}
				bd.ph = append(bd.ph, last)
				bd.wall = append(bd.wall, ms.wall.Seconds())
				pushedMB = append(pushedMB, float64(last.pushBytes)/1e6/float64(n))
			}
			b.split(bench, m.name, ms)
			walls[m.name] = append(walls[m.name], ms.wall.Seconds())
			cpus[m.name] = append(cpus[m.name], ms.cpu())
			served[m.name] = append(served[m.name], float64(got)/float64(n))
			logf("%s rep %d/%d: %-8s %6.2fs wall, CPU %5.1fs deployer + %5.1fs hosts, cache served %d files", bench, rep+1, cfg.reps, m.name, ms.wall.Seconds(), ms.dep.Seconds(), ms.hosts.Seconds(), got)
		}
	}
	b.breakdowns = append(b.breakdowns, bd)
	base := "(xargs -P 10, --use-substitutes)"
	b.rows = append(b.rows, row{
		name: label + ", wall (s)", fleet: walls["fleet"], base: walls["baseline"],
		baseName: base, ratios: ratios(walls["fleet"], walls["baseline"]), format: secs, target: "(info)",
	})
	if b.cpu != nil {
		b.rows = append(b.rows, row{
			name: label + ", CPU s (deployer+hosts)", fleet: cpus["fleet"], base: cpus["baseline"],
			baseName: base, ratios: ratios(cpus["fleet"], cpus["baseline"]), format: secs, target: "(info)",
		})
	}
	full := make([]float64, len(pushedMB))
	for i := range full {
		full[i] = c.closureMB(names)
	}
	b.rows = append(b.rows,
		row{
			name: fmt.Sprintf("substitute on destination N=%d, MB pushed by fleet per host", n), fleet: pushedMB, base: full, baseName: "(whole closure)",
			ratios: ratios(pushedMB, full), format: mb2, target: "(info)",
		},
		row{
			name: fmt.Sprintf("substitute on destination N=%d, files the cache served per host (narinfo + nar)", n), fleet: served["fleet"], base: served["baseline"],
			baseName: "(baseline)", ratios: ratios(served["fleet"], served["baseline"]), format: one, target: "(info)",
		})
	b.notes = append(b.notes, fmt.Sprintf("%s: the cache holds %d of each host's %d payload paths (%.2f of %.2f MB per host); the hosts fetch them from the bench's HTTP server (its CPU is the bench's own, not counted)",
		bench, smallPayloadCount/2, smallPayloadCount, c.cachedMB(names), c.closureMB(names)))
	return nil
}

func mb2(x float64) string { return fmt.Sprintf("%.2f", x) }
func one(x float64) string { return fmt.Sprintf("%.1f", x) }

// substCache is the binary cache of the substitution benchmark and the
// HTTP server that serves it.
type substCache struct {
	dir, sk, pk, pub string
	addr             string
	srv              *http.Server
	paths            map[string][]string // host -> its closure's paths
	size             map[string]int64    // path -> NAR size
	cached           map[string]bool     // paths in the cache

	mu     sync.Mutex
	served map[string]int // host -> narinfo and nar files served (200)

	nixConf map[string][]byte // host -> its nix.conf before the benchmark
	hosts   []string
	root    map[string]string // host -> its Root
}

// newSubstCache signs half of every host's payload paths into a new
// binary cache and starts serving it on 127.0.0.1.
func (b *bench) newSubstCache(ctx context.Context, names []string) (c *substCache, err error) {
	dir := filepath.Join(cfg.work, "subst-cache")
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	c = &substCache{
		dir: dir, sk: filepath.Join(cfg.work, "subst-cache.sk"), pk: filepath.Join(cfg.work, "subst-cache.pk"),
		paths: map[string][]string{}, size: map[string]int64{}, cached: map[string]bool{}, served: map[string]int{},
		nixConf: map[string][]byte{}, root: map[string]string{},
	}
	os.Remove(c.sk)
	os.Remove(c.pk)
	if _, err := localOutput(ctx, "nix-store", "--generate-binary-cache-key", "fleet-bench-cache", c.sk, c.pk); err != nil {
		return nil, err
	}
	pub, err := os.ReadFile(c.pk)
	if err != nil {
		return nil, err
	}
	c.pub = strings.TrimSpace(string(pub))
	var toCache []string
	for _, n := range names {
		closure := b.closures[n]
		if closure == "" {
			return nil, fmt.Errorf("no closure of %s", n)
		}
		out, err := localOutput(ctx, "nix-store", "--query", "--requisites", closure)
		if err != nil {
			return nil, err
		}
		paths := strings.Fields(out)
		out, err = localOutput(ctx, append([]string{"nix-store", "--query", "--size"}, paths...)...)
		if err != nil {
			return nil, err
		}
		sizes := strings.Fields(out)
		if len(sizes) != len(paths) {
			return nil, fmt.Errorf("%d sizes for %d paths", len(sizes), len(paths))
		}
		var payload []string
		for i, p := range paths {
			if c.size[p], err = strconv.ParseInt(sizes[i], 10, 64); err != nil {
				return nil, err
			}
			if strings.Contains(p, "-fleet-payload-") {
				payload = append(payload, p)
			}
		}
		if len(payload) != smallPayloadCount {
			return nil, fmt.Errorf("%s: %d payload paths in %s, want %d", n, len(payload), closure, smallPayloadCount)
		}
		sort.Strings(payload)
		for _, p := range payload[:len(payload)/2] {
			c.cached[p] = true
			toCache = append(toCache, p)
		}
		c.paths[n] = paths
	}
	if _, err := localOutput(ctx, append([]string{"nix", "--extra-experimental-features", "nix-command", "copy",
		"--to", "file://" + dir + "?compression=none&secret-key=" + c.sk}, toCache...)...); err != nil {
		return nil, err
	}

	// GET /HOST/x serves dir/x and counts it for HOST if it is a narinfo
	// or a NAR that was there.
	files := http.FileServer(http.Dir(dir))
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c.addr = ln.Addr().String()
	c.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		r.URL.Path = "/" + rest
		files.ServeHTTP(sw, r)
		if sw.code == http.StatusOK && (strings.HasSuffix(rest, ".narinfo") || strings.HasPrefix(rest, "nar/")) {
			c.mu.Lock()
			c.served[host]++
			c.mu.Unlock()
		}
	})}
	go c.srv.Serve(ln)
	logf("substitution: binary cache of %d paths at http://%s (%s)", len(toCache), c.addr, dir)
	return c, nil
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// configureHosts appends the substituter (this cache, under the host's
// prefix) and the cache's key to every host's nix.conf; close restores
// them. /etc/nix is a bind-mounted directory: the file is rewritten in
// place.
func (c *substCache) configureHosts(b *bench, names []string) error {
	for _, n := range names {
		h := b.lab.Host(n)
		if h == nil {
			return fmt.Errorf("no lab host %s", n)
		}
		file := h.Root + "/etc/nix/nix.conf"
		old, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		c.nixConf[n], c.root[n] = old, h.Root
		c.hosts = append(c.hosts, n)
		extra := fmt.Sprintf("\n# go run ./bench, substitution (restored afterwards)\nsubstituters = http://%s/%s\ntrusted-public-keys = %s\n", c.addr, n, c.pub)
		if err := os.WriteFile(file, append(append([]byte(nil), old...), extra...), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// close stops the server and gives the hosts their nix.conf back.
func (c *substCache) close() {
	if c.srv != nil {
		c.srv.Close()
	}
	for _, n := range c.hosts {
		if err := os.WriteFile(c.root[n]+"/etc/nix/nix.conf", c.nixConf[n], 0o644); err != nil {
			logf("substitution: restoring %s's nix.conf: %v", n, err)
		}
	}
}

// servedNow is the narinfo and nar files served so far, per host.
func (c *substCache) servedNow() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.served))
	for h, k := range c.served {
		m[h] = k
	}
	return m
}

// servedSince is the files served to all hosts since s0 (a servedNow),
// and the hosts that fetched fewer than their cached paths' narinfo and
// nar files, i.e. did not substitute all the cache had.
func (c *substCache) servedSince(s0 map[string]int, names []string) (total int, short []string) {
	s1 := c.servedNow()
	for _, n := range names {
		k, want := s1[n]-s0[n], 0
		for _, p := range c.paths[n] {
			if c.cached[p] {
				want += 2
			}
		}
		total += k
		if k < want {
			short = append(short, fmt.Sprintf("%s %d of %d", n, k, want))
		}
	}
	return total, short
}

// expectMissing is how many paths a push must send: those of the
// closures that are not in the cache.
func (c *substCache) expectMissing(names []string) int {
	k := 0
	for _, n := range names {
		for _, p := range c.paths[n] {
			if !c.cached[p] {
				k++
			}
		}
	}
	return k
}

// closureMB and cachedMB are the NAR size of a closure and of its cached
// part, mean per host, in MB.
func (c *substCache) closureMB(names []string) float64 {
	return c.sumMB(names, func(string) bool { return true })
}

func (c *substCache) cachedMB(names []string) float64 {
	return c.sumMB(names, func(p string) bool { return c.cached[p] })
}

func (c *substCache) sumMB(names []string, in func(string) bool) float64 {
	var t int64
	for _, n := range names {
		for _, p := range c.paths[n] {
			if in(p) {
				t += c.size[p]
			}
		}
	}
	return float64(t) / 1e6 / float64(len(names))
}

// clearNarinfoCache removes the hosts' Nix caches of narinfo lookups
// (root's ~/.cache/nix): a fresh host has asked no cache yet, and a
// remembered answer would spare it the request.
func clearNarinfoCache(b *bench, names []string) error {
	for _, n := range names {
		if err := os.RemoveAll(b.lab.Host(n).Root + "/root/.cache/nix"); err != nil {
			return err
		}
	}
	return nil
}

// localOutput runs a command on this machine (with the bench's nix.conf)
// and returns its stdout.
func localOutput(ctx context.Context, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", strings.Join(argv[:min(len(argv), 4)], " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
