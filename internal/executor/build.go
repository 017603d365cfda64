package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/fleet-deploy/fleet/internal/localnix"
	"github.com/fleet-deploy/fleet/internal/nixgen"
	"github.com/fleet-deploy/fleet/internal/nixserve"
	"github.com/fleet-deploy/fleet/runtime"
)

// Build builds every host's toplevel: one nix-build over one generated
// expression per chunk of hosts (one evaluation per chunk, chunks.go).
// When a chunk fails it rebuilds that chunk host by host, only to say
// which hosts fail and why. With Options.Closures it builds nothing and
// returns those.
func (e *Executor) Build(ctx context.Context, hosts []*runtime.Host) (map[string]string, error) {
	if e.opts.Closures != nil {
		return e.given(hosts)
	}
	var here, there []*runtime.Host
	for _, h := range hosts {
		if h.BuildOnTarget {
			there = append(there, h)
		} else {
			here = append(here, h)
		}
	}
	out := map[string]string{}
	var errs []error
	build := func(hosts []*runtime.Host, how func(context.Context, []*runtime.Host) (map[string]string, error)) {
		if len(hosts) > 0 {
			m, err := how(ctx, hosts)
			maps.Copy(out, m)
			errs = append(errs, err)
		}
	}
	build(here, e.buildHere)
	for _, h := range here {
		if p, ok := out[h.Name]; ok {
			e.paths.want(p) // for the pushes: one query for all
		}
	}
	build(there, e.buildThere)
	return out, errors.Join(errs...)
}

// buildThere evaluates the hosts' derivations here, in one evaluation,
// copies each derivation's closure to its host and builds it there
// (build_on_target: for hosts of a system this machine cannot build).
func (e *Executor) buildThere(ctx context.Context, hosts []*runtime.Host) (map[string]string, error) {
	drvs, err := e.instantiate(ctx, hosts)
	if err != nil {
		return nil, err
	}
	e.paths.want(drvs...)
	paths, errs := make([]string, len(hosts)), make([]error, len(hosts))
	var g errgroup.Group
	for i, h := range hosts {
		g.Go(func() error {
			m, err := e.machine(h)
			var drv []*nixserve.PathInfo
			if err == nil {
				drv, err = e.paths.of(ctx, drvs[i])
			}
			if err == nil {
				paths[i], err = m.realise(ctx, drvs[i], drv)
			}
			errs[i] = hostErr(h, "build", err)
			return nil
		})
	}
	g.Wait()
	return built(hosts, paths, errs), errors.Join(errs...)
}

// built maps the names of the hosts that built to their paths.
func built(hosts []*runtime.Host, paths []string, errs []error) map[string]string {
	out := map[string]string{}
	for i, h := range hosts {
		if errs[i] == nil {
			out[h.Name] = paths[i]
		}
	}
	return out
}

// realise copies drv's closure to the machine and builds it there.
func (m *machine) realise(ctx context.Context, drv string, closure []*nixserve.PathInfo) (string, error) {
	if _, err := m.copy(ctx, 0, drv, func() ([]*nixserve.PathInfo, error) { return closure, nil }, nil); err != nil {
		return "", fmt.Errorf("copying the derivation: %w", err)
	}
	out, err := m.run(ctx, asRoot, nil, "nix-store", "--realise", drv)
	if err != nil {
		return "", fmt.Errorf("building on the host: %w", err)
	}
	path := strings.TrimSpace(out)
	if !isStorePath(path) {
		return "", fmt.Errorf("nix-store --realise printed %q", path)
	}
	return path, nil
}

// buildHere builds on this machine, chunk by chunk (chunks.go).
func (e *Executor) buildHere(ctx context.Context, hosts []*runtime.Host) (map[string]string, error) {
	res, err := inChunks(ctx, e, hosts, e.buildChunk)
	out := map[string]string{}
	for _, m := range res {
		maps.Copy(out, m)
	}
	return out, err
}

// buildChunk builds hosts in one nix-build: one evaluation.
func (e *Executor) buildChunk(ctx context.Context, hosts []*runtime.Host) (map[string]string, error) {
	expr, attrs, err := nixgen.Build(hosts, e.opts.Overrides)
	if err != nil {
		return nil, err
	}
	paths, log, err := e.nix(ctx, "nix-build", expr, attrs)
	if err == nil {
		out := make(map[string]string, len(hosts))
		for i, h := range hosts {
			out[h.Name] = paths[i]
		}
		return out, nil
	}
	if ctx.Err() != nil || len(hosts) == 1 || localnix.Diagnose(log) != nil {
		return nil, buildError(hosts, log, err)
	}
	// Find the culprits, four builds at a time.
	paths, errs := make([]string, len(hosts)), make([]error, len(hosts))
	var g errgroup.Group
	g.SetLimit(4)
	for i, h := range hosts {
		g.Go(func() error {
			expr, attrs, _ := nixgen.Build([]*runtime.Host{h}, e.opts.Overrides)
			p, log, err := e.nix(ctx, "nix-build", expr, attrs)
			if err != nil {
				errs[i] = buildError([]*runtime.Host{h}, log, err)
				return nil
			}
			paths[i] = p[0]
			return nil
		})
	}
	g.Wait()
	out := built(hosts, paths, errs)
	// No errors left means flaky: the batch failed, every host alone built.
	errs = slices.DeleteFunc(errs, func(err error) bool { return err == nil })
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return out, errors.Join(errs...)
}

var foreignRE = regexp.MustCompile(`a '([^']+)' with features \{[^}]*\} is required to build '[^']+', but I am a '([^']+)'`)

// buildError names the hosts of a failed build and keeps the end of
// Nix's log; it recognises the common "cannot build for that system".
func buildError(hosts []*runtime.Host, log string, err error) error {
	if p := localnix.Diagnose(log); p != nil {
		return p // this machine's Nix, not the hosts: fleet exits 2
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	if line := lastError(log); line != "" {
		err = errors.New(line)
	}
	if m := foreignRE.FindStringSubmatch(log); m != nil {
		err = fmt.Errorf("this machine (%s) cannot build %s systems; add a remote builder for %s (--builders, or builders = in nix.conf), enable emulation (extra-platforms with binfmt), or set build_on_target = True on the host", m[2], m[1], m[1])
	}
	return &runtime.HostError{Host: strings.Join(names, ", "), Step: "build", Err: err, Log: logTail(log)}
}

// lastError is the last "error: ..." line of a Nix log.
func lastError(log string) string {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "error: ") {
			return strings.TrimPrefix(l, "error: ")
		}
	}
	return ""
}

// buildLogMax is how much of Nix's log a build keeps for its error
// message (which shows its last lines and its last "error:" line).
const buildLogMax = 4 << 20

// nix runs nix-build (or nix-instantiate) on expr for attrs and returns
// the out (or derivation) paths in attrs order: the classic commands
// print them in that order, unlike `nix build --json`, and work on Nix
// 2.8 as well as modern Nix.
func (e *Executor) nix(ctx context.Context, command, expr string, attrs []string) ([]string, string, error) {
	f, err := os.CreateTemp("", "fleet-build-*.nix")
	if err != nil {
		return nil, "", err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(expr); err != nil {
		f.Close()
		return nil, "", err
	}
	f.Close()
	args := localnix.Args()
	if command == "nix-build" {
		args = append(args, "--no-out-link")
	}
	if e.opts.Builders != "" && command == "nix-build" {
		args = append(args, "--builders", e.opts.Builders)
	}
	args = append(args, f.Name())
	for _, a := range attrs {
		args = append(args, "-A", a)
	}
	cmd := exec.CommandContext(ctx, command, args...)
	var stdout bytes.Buffer
	log := newLineWriter(buildLogMax, e.opts.Log)
	cmd.Stdout = &stdout
	cmd.Stderr = log
	err = cmd.Run()
	log.flush()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			err = localnix.NotInstalled(command)
		}
		return nil, log.String(), err
	}
	paths := strings.Fields(stdout.String())
	if len(paths) != len(attrs) {
		return nil, log.String(), fmt.Errorf("%s printed %d paths for %d hosts", command, len(paths), len(attrs))
	}
	return paths, log.String(), nil
}

// Evaluate returns the system each host would get now, without
// building it: one evaluation (nix-instantiate), then the derivations'
// output paths.
func (e *Executor) Evaluate(ctx context.Context, hosts []*runtime.Host) (map[string]string, error) {
	drvs, err := e.instantiate(ctx, hosts)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(hosts))
	for i, h := range hosts {
		o, err := exec.CommandContext(ctx, "nix-store", "--query", "--outputs", drvs[i]).Output()
		if err != nil {
			return nil, fmt.Errorf("%s: nix-store --query --outputs: %v", h.Name, err)
		}
		out[h.Name] = strings.TrimSpace(string(o))
	}
	return out, nil
}

// instantiate evaluates the hosts' systems, one evaluation per chunk,
// and returns their derivations in host order.
func (e *Executor) instantiate(ctx context.Context, hosts []*runtime.Host) ([]string, error) {
	res, err := inChunks(ctx, e, hosts, e.instantiateChunk)
	if err != nil {
		return nil, err
	}
	return slices.Concat(res...), nil
}

// instantiateChunk evaluates hosts in one nix-instantiate.
func (e *Executor) instantiateChunk(ctx context.Context, hosts []*runtime.Host) ([]string, error) {
	expr, attrs, err := nixgen.Build(hosts, e.opts.Overrides)
	if err != nil {
		return nil, err
	}
	drvs, log, err := e.nix(ctx, "nix-instantiate", expr, attrs)
	if err != nil {
		return nil, buildError(hosts, log, err)
	}
	return drvs, nil
}
