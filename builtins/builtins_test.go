package builtins_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/runtime"
)

// fakeExec is an Executor for unit tests: activation fails at once on
// the hosts in fail, takes delay elsewhere, and is counted.
type fakeExec struct {
	runtime.DryExecutor
	fail    map[string]bool
	delay   time.Duration
	mu      sync.Mutex
	running int
	peak    int
	done    []string
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
	if f.fail[h.Name] {
		return nil, &runtime.HostError{Host: h.Name, Step: "activate", Err: errors.New("switch-to-configuration exited 1")}
	}
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &runtime.ActivateResult{Current: closure}, nil
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
	ex := &fakeExec{delay: 20 * time.Millisecond}
	if _, err := deploy(t, context.Background(), prog, ex, 10); err != nil {
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
	ex := &fakeExec{fail: map[string]bool{"h3": true}, delay: 10 * time.Millisecond}
	_, err := deploy(t, context.Background(), prog, ex, 10)
	var he *runtime.HostError
	if !errors.As(err, &he) || he.Host != "h3" || he.Step != "activate" {
		t.Fatalf("error %v: want the HostError of h3's activation", err)
	}
	if !strings.Contains(err.Error(), "h3: activate failed: switch-to-configuration exited 1") {
		t.Errorf("message %q does not name host and step", err)
	}
	// h1..h4 may have started (limit 2); nothing after h4 may start.
	if len(ex.done) > 4 {
		t.Fatalf("activated %v after h3 failed; scheduling must stop", ex.done)
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
	ex := &fakeExec{delay: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
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

// TestStepsInProgramOrder checks that the plan is the same whatever the
// scheduling: steps come in program order, not completion order.
func TestStepsInProgramOrder(t *testing.T) {
	var want string
	for i := 0; i < 5; i++ {
		steps, err := deploy(t, context.Background(), load(t, `
def deploy(ctx):
    c = nix_build(ctx.hosts)
    parallel(lambda h: push(h, c[h.name]), ctx.hosts)
    parallel(lambda h: activate(h, c[h.name]), ctx.hosts, limit = 3)
`), &fakeExec{delay: time.Duration(i) * time.Millisecond}, 10)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, s := range steps {
			fmt.Fprintf(&b, "%s %s\n", s.Host, s.Action)
		}
		if i == 0 {
			want = b.String()
		} else if b.String() != want {
			t.Fatalf("run %d order differs:\n%s\nwant\n%s", i, b.String(), want)
		}
	}
	if !strings.HasPrefix(want, "h1 build\nh2 build\n") || !strings.Contains(want, "h20 push\nh1 activate\n") {
		t.Fatalf("unexpected order:\n%s", want)
	}
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
if h.target != "root@10.0.0.5:22" or not h.deployable or h.tags != ("a",) or h.vars["k"] != [1]:
    fail("fields: %s %s %s" % (h.target, h.tags, h.vars))
`)
	var web *runtime.Host
	for _, h := range prog.Hosts() {
		if h.Name == "web" {
			web = h
		}
	}
	if web == nil || web.Vars.Len() != 1 {
		t.Fatalf("web not declared")
	}
	if err := web.Vars.SetKey(nil, nil); err == nil {
		t.Fatalf("vars must be frozen")
	}
}
