package builtins_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/runtime"
)

// fakeExec is an Executor for unit tests: pushes and activations call
// wait, when set, and finish when it returns (tests block it on
// channels to shape the concurrency); activation then fails on the
// hosts in fail. Activations are counted.
type fakeExec struct {
	runtime.DryExecutor
	fail    map[string]bool
	wait    func(ctx context.Context, action, host string) error
	mu      sync.Mutex
	running int
	peak    int
	done    []string
}

func (f *fakeExec) Push(ctx context.Context, h *runtime.Host, closure string, _ runtime.ProgressFunc) (*runtime.PushResult, error) {
	if f.wait != nil {
		if err := f.wait(ctx, "push", h.Name); err != nil {
			return nil, err
		}
	}
	return &runtime.PushResult{}, nil
}

func (f *fakeExec) Activate(ctx context.Context, h *runtime.Host, closure string, o runtime.ActivateOptions) (*runtime.ActivateResult, error) {
	f.mu.Lock()
	f.running++
	f.peak = max(f.peak, f.running)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.done = append(f.done, h.Name)
		f.mu.Unlock()
	}()
	if f.wait != nil {
		if err := f.wait(ctx, "activate", h.Name); err != nil {
			return nil, err
		}
	}
	if f.fail[h.Name] {
		return nil, &runtime.HostError{Host: h.Name, Step: "activate", Err: errors.New("switch-to-configuration exited 1")}
	}
	return &runtime.ActivateResult{Current: closure}, nil
}

func (f *fakeExec) numRunning() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

const inventory = `
[host(name = "h%d" % i, target_host = "10.9.0.%d" % i, attr = ".#nixosConfigurations.h%d" % i) for i in range(1, 21)]
`

func load(t *testing.T, src string) *runtime.Program {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }"), 0o644)
	file := filepath.Join(dir, "fleet.star")
	if err := os.WriteFile(file, []byte(inventory+src), 0o644); err != nil {
		t.Fatal(err)
	}
	prog, err := runtime.Load(context.Background(), file, builtins.Universe())
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

func deploy(t *testing.T, ctx context.Context, prog *runtime.Program, ex runtime.Executor, parallel int) ([]*runtime.Step, error) {
	t.Helper()
	sel, err := prog.Select("")
	if err != nil {
		t.Fatal(err)
	}
	return prog.Deploy(ctx, sel, runtime.RunOptions{Executor: ex, Goal: "switch", Parallel: parallel})
}

func TestParallelLimit(t *testing.T) {
	prog := load(t, `
def deploy(ctx):
    parallel(lambda h: activate(h, "/nix/store/x"), ctx.hosts, limit = 4)
`)
	// Activations wait until four run at once, so the run only ends if
	// parallel() reaches its limit; the peak shows it goes no further.
	full := make(chan struct{})
	var once sync.Once
	ex := &fakeExec{}
	ex.wait = func(ctx context.Context, _, _ string) error {
		if ex.numRunning() == 4 {
			once.Do(func() { close(full) })
		}
		select {
		case <-full:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := deploy(t, ctx, prog, ex, 10); err != nil {
		t.Fatal(err)
	}
	if ex.peak != 4 || len(ex.done) != 20 {
		t.Fatalf("peak concurrency %d (want 4), activated %d (want 20)", ex.peak, len(ex.done))
	}
}

func TestParallelFirstFailureStopsScheduling(t *testing.T) {
	prog := load(t, `
def deploy(ctx):
    parallel(lambda h: activate(h, "/nix/store/x"), ctx.hosts, limit = 2)
`)
	// h1 and h2 take both slots; h1 fails at once, h2 fails once h1 has.
	// A slot only frees after a failure, so nothing after h2 may start.
	h1failed := make(chan struct{})
	ex := &fakeExec{fail: map[string]bool{"h1": true, "h2": true}}
	ex.wait = func(ctx context.Context, _, host string) error {
		switch host {
		case "h1":
			close(h1failed)
		default:
			<-h1failed
		}
		return nil
	}
	_, err := deploy(t, context.Background(), prog, ex, 10)
	var he *runtime.HostError
	if !errors.As(err, &he) || he.Host != "h1" || he.Step != "activate" {
		t.Fatalf("error %v: want the HostError of h1's activation", err)
	}
	if !strings.Contains(err.Error(), "h1: activate failed: switch-to-configuration exited 1") {
		t.Errorf("message %q does not name host and step", err)
	}
	if len(ex.done) != 2 {
		t.Fatalf("activated %v after h1 failed; scheduling must stop", ex.done)
	}
}

func TestParallelCollect(t *testing.T) {
	prog := load(t, `
def deploy(ctx):
    res = parallel(lambda h: activate(h, "/nix/store/x"), ctx.hosts[:3], collect = True)
    if [r.ok for r in res] != [True, False, True]:
        fail("oks: %r" % [r.ok for r in res])
    if "h2: activate failed" not in res[1].error:
        fail("error: %r" % res[1].error)
    if res[0].value.current != "/nix/store/x" or res[0].item.name != "h1":
        fail("value: %r" % res[0])
`)
	ex := &fakeExec{fail: map[string]bool{"h2": true}}
	// The script carried on, but the run still failed for h2 (exit 1).
	_, err := deploy(t, context.Background(), prog, ex, 10)
	var hf *runtime.HostFailures
	if !errors.As(err, &hf) || len(hf.Errs) != 1 || hf.Errs[0].Host != "h2" {
		t.Fatalf("err = %v, want the failure of h2", err)
	}
}

func TestParallelCancel(t *testing.T) {
	prog := load(t, `
def deploy(ctx):
    parallel(lambda h: activate(h, "/nix/store/x"), ctx.hosts, limit = 2)
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Activations hang until cancelled; the second to start cancels.
	var started atomic.Int32
	ex := &fakeExec{}
	ex.wait = func(ctx context.Context, _, _ string) error {
		if started.Add(1) == 2 {
			cancel()
		}
		<-ctx.Done()
		return ctx.Err()
	}
	start := time.Now()
	_, err := deploy(t, ctx, prog, ex, 10)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if time.Since(start) > 5*time.Second || len(ex.done) > 2 {
		t.Fatalf("cancel took %v and ran %d activations", time.Since(start), len(ex.done))
	}
}

func TestParallelFreezesSharedValues(t *testing.T) {
	prog := load(t, `
def deploy(ctx):
    seen = []
    parallel(lambda h: seen.append(h.name), ctx.hosts)
`)
	_, err := deploy(t, context.Background(), prog, runtime.DryExecutor{}, 10)
	if err == nil || !strings.Contains(err.Error(), "frozen list") {
		t.Fatalf("err = %v: threads must not share mutable values", err)
	}
}

const rollout = `
def deploy(ctx):
    c = nix_build(ctx.hosts)
    parallel(lambda h: push(h, c[h.name]), ctx.hosts)
    parallel(lambda h: activate(h, c[h.name]), ctx.hosts, limit = 3)
`

// TestStepsInProgramOrder checks that the plan is the same whatever the
// scheduling: steps come in program order, not completion order. In the
// run, every odd host's push and activation waits until the next host's
// has finished, so they complete out of order.
func TestStepsInProgramOrder(t *testing.T) {
	prog := load(t, rollout)
	plan := describe(mustDeploy(t, prog, runtime.DryExecutor{}))
	var mu sync.Mutex
	finished := map[string]chan struct{}{}
	ch := func(action string, n int) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		k := fmt.Sprint(action, n)
		if finished[k] == nil {
			finished[k] = make(chan struct{})
		}
		return finished[k]
	}
	ex := &fakeExec{}
	ex.wait = func(ctx context.Context, action, host string) error {
		var n int
		fmt.Sscanf(host, "h%d", &n)
		if n%2 == 0 {
			close(ch(action, n))
			return nil
		}
		select {
		case <-ch(action, n+1):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	run := describe(mustDeploy(t, prog, ex))
	if run != plan {
		t.Fatalf("run order differs from the plan's:\n%s\nwant\n%s", run, plan)
	}
	if !strings.HasPrefix(plan, "h1 build\nh2 build\n") || !strings.Contains(plan, "h20 push [ 10]\nh1 activate [ 3]\n") {
		t.Fatalf("unexpected order:\n%s", plan)
	}
}

// TestPlanThenRun plans, plans again, runs and plans once more on one
// Program: each gets a run of its own, so each has the same steps in
// the same order, none of them the last one's.
func TestPlanThenRun(t *testing.T) {
	for name, script := range map[string]string{"deploy": rollout, "default strategy": ""} {
		t.Run(name, func(t *testing.T) {
			prog := load(t, script)
			sel, err := prog.Select("")
			if err != nil {
				t.Fatal(err)
			}
			plan := func() string {
				p, err := prog.MakePlan(context.Background(), sel, "switch", 10, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				return describe(p.Steps)
			}
			first := plan()
			if n := strings.Count(first, "\n"); n < 60 {
				t.Fatalf("%d steps, want at least 60 (build, push, activate of 20 hosts):\n%s", n, first)
			}
			if again := plan(); again != first {
				t.Fatalf("second plan:\n%s\nwant\n%s", again, first)
			}
			if run := describe(mustDeploy(t, prog, &fakeExec{})); run != first {
				t.Fatalf("run:\n%s\nwant the plan:\n%s", run, first)
			}
			if after := plan(); after != first {
				t.Fatalf("plan after the run:\n%s\nwant\n%s", after, first)
			}
		})
	}
}

func mustDeploy(t *testing.T, prog *runtime.Program, ex runtime.Executor) []*runtime.Step {
	t.Helper()
	steps, err := deploy(t, context.Background(), prog, ex, 10)
	if err != nil {
		t.Fatal(err)
	}
	return steps
}

// describe lists steps one a line, in the order given.
func describe(steps []*runtime.Step) string {
	var b strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&b, "%s %s", s.Host, s.Action)
		if s.Group != "" || s.Limit != 0 {
			fmt.Fprintf(&b, " [%s %d]", s.Group, s.Limit)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestHostValidation(t *testing.T) {
	tests := []struct{ src, err string }{
		{`host(name = "a b", attr = ".#x")`, `name "a b" is not valid`},
		{`host(name = "-a", attr = ".#x")`, `name "-a" is not valid`},
		{`host(name = "a", system = "x86_64", attr = ".#x")`, `not a Nix system`},
		{`host(name = "a", target_host = "-oProxyCommand=x", attr = ".#x")`, `is not a host name or IP address`},
		{`host(name = "a", target_host = "a b", attr = ".#x")`, `is not a host name or IP address`},
		{`host(name = "a", target_host = "$(reboot)", attr = ".#x")`, `is not a host name or IP address`},
		{`host(name = "a", target_user = "root;id", attr = ".#x")`, `target_user "root;id" is not a valid user name`},
		{`host(name = "a", target_port = 70000, attr = ".#x")`, `target_port must be a port number`},
		{`host(name = "a", tags = ["ok", "no way"], attr = ".#x")`, `tag "no way" is not valid`},
		{`host(name = "a", tags = "server", attr = ".#x")`, `tags must be a list of strings`},
		{`host(name = "a", substitute = "yes", attr = ".#x")`, `"substitute": got string, want bool`},
		{`host(name = "a", vars = {1: 2}, attr = ".#x")`, `vars keys must be strings`},
		{`host(name = "a", attr = "nohash")`, `want "<flake>#nixosConfigurations.NAME"`},
		{`host(name = "a", attr = "./missing#x")`, `"./missing": no flake.nix in`},
		{`host(name = "a", attr = ".#x", nixos = nixos_system())`, `either nixos= or attr=, not both`},
		{`host(name = "a", nixos = "x")`, `nixos must be a nixos_system(...)`},
		{`nixos_system(modules = ["./hosts/a"])`, `wrap it as path("./hosts/a")`},
		{`nixos_system(special_args = {1: 2})`, `special_args keys must be strings`},
		{`nix_expr("")`, `empty expression`},
		{`path("./nope")`, `does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{}"), 0o644)
			file := filepath.Join(dir, "fleet.star")
			os.WriteFile(file, []byte(tt.src+"\n"), 0o644)
			_, err := runtime.Load(context.Background(), file, builtins.Universe())
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			if !strings.Contains(err.Error(), "fleet.star:1:") {
				t.Fatalf("err = %v: want file:line:col", err)
			}
		})
	}
}

func TestHostValue(t *testing.T) {
	prog := load(t, `
h = host(name = "web", target_host = "10.0.0.5", target_user = None, tags = ["a"], vars = {"k": [1]}, attr = ".#nixosConfigurations.web")
d = {h: 1}  # hashable
if h.target != "root@10.0.0.5:22" or not h.deployable or h.tags != ("a",) or h.vars["k"] != [1] or h.substitute:
    fail("fields: %s %s %s %s" % (h.target, h.tags, h.vars, h.substitute))
s = host(name = "near-cache", target_host = "10.0.0.6", substitute = True, attr = ".#nixosConfigurations.near-cache")
if not s.substitute:
    fail("substitute = True reads back as %s" % s.substitute)
`)
	var web *runtime.Host
	for _, h := range prog.Hosts() {
		if h.Name == "web" {
			web = h
		}
	}
	if web == nil || web.Vars.Len() != 1 || web.Substitute {
		t.Fatalf("web not declared")
	}
	if err := web.Vars.SetKey(nil, nil); err == nil {
		t.Fatalf("vars must be frozen")
	}
}
