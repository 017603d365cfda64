package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// rolloutDir writes a fleet.star for the lab hosts with the given
// deploy(ctx) body; version changes every closure; extra[name] is an
// extra inline module. Every system resumes the host's sshd when it is
// activated (the broken one of the dead-man test stops it).
func rolloutDir(t *testing.T, l *lab.Lab, version string, extra map[string]string, deploy string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(`{ inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11"; outputs = { self, nixpkgs }: { }; }`+"\n"), 0o644)
	var b strings.Builder
	b.WriteString(`load("@fleet//rollout.star", "canary", "rolling")

RESUME_SSHD = {"fleet": {"test": {"postActivation": "kill -CONT $(cat /run/sshd.pid) 2>/dev/null || true"}}}

def node(name, extra):
    return host(name = name, target_host = name, nixos = nixos_system(
        modules = [{"system": {"nixos": {"version": "` + version + `"}}}, extra or RESUME_SSHD],
        special_args = {"name": name}))

`)
	for _, h := range l.Hosts {
		fmt.Fprintf(&b, "node(%q, %s)\n", h.Name, orNone(extra[h.Name]))
	}
	b.WriteString("\n" + deploy)
	file := filepath.Join(dir, "fleet.star")
	os.WriteFile(file, []byte(b.String()), 0o644)
	return file
}

func orNone(s string) string {
	if s == "" {
		return "None"
	}
	return s
}

func deployAll(t *testing.T, l *lab.Lab, version string) map[string]string {
	t.Helper()
	r := fleet(t, runArgs(l, rolloutDir(t, l, version, nil, ""))...)
	if r.code != 0 {
		t.Fatalf("deploy %s: exit %d\n%s", version, r.code, r.stderr)
	}
	return closures(events(t, r.stdout))
}

// TestCanaryHealthCheckRollback: the canary's HTTP health check fails;
// the rollout stops after the canary, the canary is rolled back to its
// previous generation, no other host changes, exit 1.
func TestCanaryHealthCheckRollback(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c"}})
	v1 := deployAll(t, l, "1.0")
	var mu sync.Mutex
	asked := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.URL.Query().Get("host")
		mu.Lock()
		asked[h]++
		mu.Unlock()
		if h == "a" {
			http.Error(w, "canary unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()
	file := rolloutDir(t, l, "2.0", nil, fmt.Sprintf(`
def deploy(ctx):
    closures = nix_build(ctx.hosts)
    parallel(lambda h: push(h, closures[h.name]), ctx.hosts)
    canary(ctx.hosts, lambda h: activate(h, closures[h.name]), first = 1,
           check = lambda h: check(h, http = "%s/health?host=" + h.name, retries = 2, interval = 0.2),
           on_failure = "rollback",
           then = lambda rest, step: rolling(rest, step, batch = 1))
`, srv.URL))
	r := fleet(t, runArgs(l, file)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	for _, want := range []string{"rollout stopped after canary", "a (a: health check failed", "503", "not started: b, c"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	for name, want := range v1 {
		if got := current(t, l.Host(name)); got != want {
			t.Errorf("%s runs %s, want its previous system %s", name, got, want)
		}
	}
	if got := exec(t, l.Host("a"), "readlink -f /nix/var/nix/profiles/system"); got != v1["a"] {
		t.Errorf("a's profile is %s after the rollback", got)
	}
	if n := activations(t, l.Host("b")); n != 1 {
		t.Errorf("b was activated %d times, want only the first deploy", n)
	}
	if asked["a"] != 3 || asked["b"] != 0 {
		t.Errorf("health checks asked: %v (a: 3 attempts, b: none)", asked)
	}
}

// TestDeadManRollback: the new system stops sshd's listener after
// activation, so fleet cannot confirm it over a fresh connection; the
// host rolls itself back within the window and is reachable again.
func TestDeadManRollback(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a"}})
	v1 := deployAll(t, l, "1.0")
	broken := `{"fleet": {"test": {"postActivation": "kill -STOP $(cat /run/sshd.pid)"}}}`
	file := rolloutDir(t, l, "2.0", map[string]string{"a": broken}, `
def deploy(ctx):
    closures = nix_build(ctx.hosts)
    for h in ctx.hosts:
        push(h, closures[h.name])
        activate(h, closures[h.name], confirm = 4)
`)
	start := time.Now()
	r := fleet(t, runArgs(l, file)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	for _, want := range []string{"a: activate failed", "not confirmed within 4s", "runs " + v1["a"] + " again"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if got := current(t, l.Host("a")); got != v1["a"] {
		t.Errorf("a runs %s, want %s", got, v1["a"])
	}
	if got := exec(t, l.Host("a"), "readlink -f /nix/var/nix/profiles/system"); got != v1["a"] {
		t.Errorf("a's profile is %s", got)
	}
	if d := time.Since(start); d > 90*time.Second {
		t.Errorf("took %v", d)
	}
	// Reachable again.
	if r := fleet(t, "exec", "--ssh-config", l.SSHConfig, inventory(t, l, 1), "--", "true"); r.code != 0 {
		t.Errorf("a is not reachable after its rollback: exit %d", r.code)
	}
}

// TestRollingBudget: 25% batches over 8 hosts, one broken, one failure
// allowed: the other seven are deployed and the summary names h3.
func TestRollingBudget(t *testing.T) {
	names := []string{"h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8"}
	l := startLab(t, lab.Options{Hosts: names})
	v1 := deployAll(t, l, "1.0")
	file := rolloutDir(t, l, "2.0", map[string]string{"h3": `{"fleet": {"test": {"failActivation": True}}}`}, `
def deploy(ctx):
    closures = nix_build(ctx.hosts)
    parallel(lambda h: push(h, closures[h.name]), ctx.hosts)
    rolling(ctx.hosts, lambda h: activate(h, closures[h.name]), batch = "25%", max_failures = 1)
`)
	r := fleet(t, runArgs(l, file)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	evs := events(t, r.stdout)
	v2 := closures(evs)
	for _, name := range names {
		got := current(t, l.Host(name))
		want := v2[name]
		if name == "h3" {
			want = v1[name]
		}
		if got != want {
			t.Errorf("%s runs %s, want %s", name, got, want)
		}
	}
	last := evs[len(evs)-1]
	if last.Event != "summary" || len(last.Failed) != 1 || last.Failed["h3"] != "activate" ||
		strings.Join(last.Changed, ",") != "h1,h2,h4,h5,h6,h7,h8" {
		t.Errorf("summary: changed %v failed %v", last.Changed, last.Failed)
	}
}

var fleetBin struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// binary builds the fleet command once, for tests that signal it.
func binary(t *testing.T) string {
	fleetBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "fleet-e2e-bin")
		if err != nil {
			fleetBin.err = err
			return
		}
		fleetBin.path = filepath.Join(dir, "fleet")
		fleetBin.out, fleetBin.err = goBuild(fleetBin.path)
	})
	if fleetBin.err != nil {
		t.Fatalf("go build: %v\n%s", fleetBin.err, fleetBin.out)
	}
	return fleetBin.path
}

// TestInterruptDuringRollout: SIGINT while the second of four batches
// activates. That activation finishes; nothing new starts; no host is
// left between generations; the summary names the changed hosts; exit
// 130.
func TestInterruptDuringRollout(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c", "d"}})
	v1 := deployAll(t, l, "1.0")
	slow := `{"fleet": {"test": {"activationDelay": 2, "postActivation": "kill -CONT $(cat /run/sshd.pid) 2>/dev/null || true"}}}`
	file := rolloutDir(t, l, "2.0", map[string]string{"a": slow, "b": slow, "c": slow, "d": slow}, `
def deploy(ctx):
    closures = nix_build(ctx.hosts)
    parallel(lambda h: push(h, closures[h.name]), ctx.hosts)
    rolling(ctx.hosts, lambda h: activate(h, closures[h.name]), batch = 1)
`)
	before := exec(t, l.Host("b"), "ls /run/fleet | wc -l")
	cmd := osexec.Command(binary(t), runArgs(l, file)...)
	cmd.Args[0] = "fleet"
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for b's activation to start, then interrupt.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if o, _ := l.Host("b").Exec(context.Background(), "ls /run/fleet | wc -l"); strings.TrimSpace(o) != before {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("b never started activating\n%s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	t.Logf("exit %d (%v)\n%s\n%s", code, err, out.String(), errb.String())
	if code != 130 {
		t.Fatalf("exit %d, want 130", code)
	}
	v2 := closures(events(t, out.String()))
	want := map[string]string{"a": v2["a"], "b": v2["b"], "c": v1["c"], "d": v1["d"]}
	for name, w := range want {
		h := l.Host(name)
		if got := current(t, h); got != w {
			t.Errorf("%s runs %s, want %s", name, got, w)
		}
		if prof := exec(t, h, "readlink -f /nix/var/nix/profiles/system"); prof != current(t, h) {
			t.Errorf("%s is between generations: profile %s, running %s", name, prof, current(t, h))
		}
	}
	evs := events(t, out.String())
	last := evs[len(evs)-1]
	if last.Event != "summary" || strings.Join(last.Changed, ",") != "a,b" {
		t.Errorf("summary changed = %v, want a,b", last.Changed)
	}
	// c and d were pushed, never activated: not "ok".
	var sum struct {
		Hosts []struct{ Host, Result string }
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatal(err)
	}
	var results []string
	for _, h := range sum.Hosts {
		results = append(results, h.Host+"="+h.Result)
	}
	if got, want := strings.Join(results, " "), "a=changed b=changed c=not activated d=not activated"; got != want {
		t.Errorf("summary hosts: %s, want %s", got, want)
	}
	if !strings.Contains(errb.String(), "letting the steps in flight finish") {
		t.Errorf("stderr: %s", errb.String())
	}
}
