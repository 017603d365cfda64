package e2e

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// fleetDir writes a small fleet.star of lab hosts a, b, c into a temp
// dir. Each host is a nixos_system of mini-nixpkgs; extra[name] is an
// extra inline module (e.g. to break its activation), version changes
// every closure.
func fleetDir(t *testing.T, l *lab.Lab, version string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("flake.nix", `{ inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11"; outputs = { self, nixpkgs }: { }; }`+"\n")
	var b strings.Builder
	b.WriteString("def node(name, addr, system = \"x86_64-linux\", extra = {}):\n")
	b.WriteString("    return host(name = name, target_host = addr, system = system, nixos = nixos_system(\n")
	b.WriteString("        modules = [{\"system\": {\"nixos\": {\"version\": \"" + version + "\"}}}, extra],\n")
	b.WriteString("        special_args = {\"name\": name}))\n\n")
	for _, h := range l.Hosts {
		e := extra[h.Name]
		if e == "" {
			e = "{}"
		}
		fmt.Fprintf(&b, "node(%q, %q, extra = %s)\n", h.Name, h.Name, e)
	}
	write("fleet.star", b.String())
	return filepath.Join(dir, "fleet.star")
}

func runArgs(l *lab.Lab, file string, extra ...string) []string {
	args := []string{"run", "--json", "--ssh-config", l.SSHConfig,
		"--override-input", "nixpkgs=" + filepath.Join(root, "testdata/mini-nixpkgs")}
	return append(append(args, extra...), file)
}

// TestActivationFailure breaks b's activation: the run exits 1 naming b
// and the step, a and c get the new system, b keeps running the old one
// and its boot entry and profile still point at the old one.
func TestActivationFailure(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c"}})
	r := fleet(t, runArgs(l, fleetDir(t, l, "1.0", nil))...)
	if r.code != 0 {
		t.Fatalf("first deploy: exit %d\n%s", r.code, r.stderr)
	}
	old := closures(events(t, r.stdout))

	r = fleet(t, runArgs(l, fleetDir(t, l, "2.0", map[string]string{"b": `{"fleet": {"test": {"failActivation": True}}}`}))...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (a host failed)", r.code)
	}
	for _, want := range []string{"b: activate failed", "switch-to-configuration switch", "activation failed on purpose"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	evs := events(t, r.stdout)
	next := closures(evs)
	for _, name := range []string{"a", "c"} {
		if got := current(t, l.Host(name)); got != next[name] || got == old[name] {
			t.Errorf("%s runs %s, want the new %s", name, got, next[name])
		}
	}
	b := l.Host("b")
	if got := current(t, b); got != old["b"] {
		t.Errorf("b runs %s, want its previous system %s", got, old["b"])
	}
	if got := exec(t, b, "readlink -f /nix/var/nix/profiles/system"); got != old["b"] {
		t.Errorf("b's system profile is %s: a failed activation must not leave the next boot on the new system", got)
	}
	if got := exec(t, b, "readlink /nix/var/lab/boot/default"); got != old["b"] {
		t.Errorf("b's boot entry is %s", got)
	}
	last := events(t, r.stdout)[len(evs)-1]
	if last.Event != "summary" || last.Failed["b"] != "activate" || strings.Join(last.Changed, ",") != "a,c" {
		t.Errorf("summary %+v", last)
	}
}

// TestUnreachableHost stops b's sshd: b fails fast with a clear error,
// a and c are deployed.
func TestUnreachableHost(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c"}})
	if err := l.Host("b").StopSSHD(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := fleet(t, runArgs(l, fleetDir(t, l, "1.0", nil))...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("took %v", d)
	}
	if !strings.Contains(r.stderr, "b: push failed") || !strings.Contains(r.stderr, "127.0.0.3:22") {
		t.Errorf("stderr does not name host, step and address:\n%s", r.stderr)
	}
	cl := closures(events(t, r.stdout))
	for _, name := range []string{"a", "c"} {
		if got := current(t, l.Host(name)); got != cl[name] {
			t.Errorf("%s runs %q, want %q", name, got, cl[name])
		}
	}
	if got := current(t, l.Host("b")); got != "" {
		t.Errorf("b changed: %q", got)
	}
}

// TestForeignSystem: without a builder for aarch64-linux the build fails
// with a message that says what to do, and no host is touched.
func TestForeignSystem(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a"}})
	t.Setenv("NIX_CONFIG", "extra-platforms =\n")                          // over internal/nixconf's settings
	dir := fleetDir(t, l, fmt.Sprintf("9.%d", time.Now().UnixNano()), nil) // never built before
	text, _ := os.ReadFile(dir)
	os.WriteFile(dir, []byte(strings.Replace(string(text), `node("a", "a", extra = {})`, `node("a", "a", system = "aarch64-linux")`, 1)), 0o644)
	r := fleet(t, runArgs(l, dir)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	for _, want := range []string{"a: build failed", "cannot build aarch64-linux", "--builders", "build_on_target"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if activations(t, l.Host("a")) != 0 {
		t.Errorf("a was activated")
	}
}

// TestBuildOnTarget: a build_on_target host is evaluated here and built
// on the host; the system never exists in this machine's store.
func TestBuildOnTarget(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	file := fleetDir(t, l, fmt.Sprintf("7.%d", time.Now().UnixNano()), nil)
	text, _ := os.ReadFile(file)
	os.WriteFile(file, []byte(strings.Replace(string(text), "target_host = addr,", "target_host = addr, build_on_target = (name == \"b\"),", 1)), 0o644)
	r := fleet(t, runArgs(l, file)...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	cl := closures(events(t, r.stdout))
	for _, name := range []string{"a", "b"} {
		if got := current(t, l.Host(name)); got != cl[name] || got == "" {
			t.Errorf("%s runs %q, want %q", name, got, cl[name])
		}
	}
	if _, err := os.Stat(cl["b"]); err == nil {
		t.Errorf("b's system %s was built here, not on b", cl["b"])
	}
	if _, err := os.Stat(cl["a"]); err != nil {
		t.Errorf("a's system was not built here: %v", err)
	}
}

// TestConnectionDropDuringActivation cuts every SSH connection to b while
// its activation runs: the activation finishes on the host, and fleet
// reconnects, collects its outcome and reports success.
func TestConnectionDropDuringActivation(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"b"}})
	b := l.Host("b")
	file := fleetDir(t, l, "1.0", map[string]string{"b": `{"fleet": {"test": {"activationDelay": 4}}}`})
	done := make(chan result, 1)
	go func() { done <- fleet(t, runArgs(l, file)...) }()
	// Wait until the activation is under way on b, then drop sshd.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if out, _ := b.Exec(context.Background(), "ls /run/fleet 2>/dev/null"); strings.TrimSpace(out) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("activation never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := b.StopSSHD(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := b.StartSSHD(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	cl := closures(events(t, r.stdout))
	if got := current(t, b); got != cl["b"] {
		t.Errorf("b runs %q, want %q", got, cl["b"])
	}
	if n := activations(t, b); n != 1 {
		t.Errorf("%d activations, want exactly 1 (no re-run after reconnecting)", n)
	}
}

// TestLocalDeployment runs fleet on a host itself (inside b's namespaces:
// its hostname, /run and /nix) for a host with allow_local: it deploys
// without SSH (b's sshd is stopped) into the local store and /run.
func TestLocalDeployment(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"b"}})
	b := l.Host("b")
	bin := filepath.Join(b.Root, "tmp", "fleet")
	if out, err := goBuild(bin); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	proj := filepath.Join(b.Root, "tmp", "proj")
	os.MkdirAll(proj, 0o755)
	os.WriteFile(filepath.Join(proj, "flake.nix"), []byte(`{ inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11"; outputs = { self, nixpkgs }: { }; }`), 0o644)
	os.WriteFile(filepath.Join(proj, "fleet.star"), []byte(`
host(name = "b", target_host = "b", target_user = "nixos", allow_local = True,
     nixos = nixos_system(modules = [{"networking": {"hostName": "b"}}]))
`), 0o644)
	if err := b.StopSSHD(); err != nil {
		t.Fatal(err)
	}
	// The checkout may live under /tmp, which the host does not see: give
	// it its own copy of mini-nixpkgs.
	if out, err := osexec.Command("cp", "-r", filepath.Join(root, "testdata/mini-nixpkgs"), filepath.Join(b.Root, "tmp", "mini-nixpkgs")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	// The host's own /etc/nix/nix.conf is the lab's (internal/nixconf).
	script := "cd /tmp/proj && /tmp/fleet run --json --override-input nixpkgs=/tmp/mini-nixpkgs fleet.star"
	out, err := b.Exec(context.Background(), script)
	if err != nil {
		t.Fatalf("local run: %v\n%s", err, out)
	}
	var stdout strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "{") {
			stdout.WriteString(line + "\n")
		}
	}
	cl := closures(events(t, stdout.String()))
	if cl["b"] == "" || current(t, b) != cl["b"] {
		t.Fatalf("b runs %q, want %q\n%s", current(t, b), cl["b"], out)
	}
	if got := exec(t, b, "readlink -f /nix/var/nix/profiles/system"); got != cl["b"] {
		t.Errorf("profile -> %q", got)
	}
}

func goBuild(out string) ([]byte, error) {
	cmd := osexec.Command("go", "build", "-o", out, "./cmd/fleet")
	cmd.Dir = root
	return cmd.CombinedOutput()
}

// TestBuildFailureNamesHost: one host's configuration does not evaluate;
// the error names that host only, with Nix's message, and no host is
// touched.
func TestBuildFailureNamesHost(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	file := fleetDir(t, l, "1.0", map[string]string{"b": `{"system": {"nixos": {"version": "2.0"}}}`})
	r := fleet(t, runArgs(l, file)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "b: build failed") || strings.Contains(r.stderr, "a: build failed") ||
		!strings.Contains(r.stderr, "system.nixos.version") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	for _, h := range l.Hosts {
		if activations(t, h) != 0 {
			t.Errorf("%s was activated", h.Name)
		}
	}
}

// TestAttrAndRun: a host built from an existing flake output (attr=),
// and run() with hostile arguments that must arrive verbatim.
func TestAttrAndRun(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a"}})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(fmt.Sprintf(`{
  inputs.nixpkgs.url = "path:%s";
  outputs = { self, nixpkgs }: {
    nixosConfigurations.a = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [ { networking.hostName = "a"; system.nixos.version = "attr"; } ];
    };
  };
}
`, filepath.Join(root, "testdata/mini-nixpkgs"))), 0o644)
	lock := osexec.Command("nix", "--extra-experimental-features", "nix-command flakes", "flake", "lock")
	lock.Dir = dir
	if out, err := lock.CombinedOutput(); err != nil {
		t.Fatalf("nix flake lock: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(`
host(name = "a", target_host = "a", attr = ".#nixosConfigurations.a")

HOSTILE = ["a'b", "$(touch /tmp/pwned)", "`+"`id`"+`", "x;y", "new\nline", "${HOME}", "*", ""]

def deploy(ctx):
    closures = nix_build(ctx.hosts)
    for h in ctx.hosts:
        push(h, closures[h.name])
        activate(h, closures[h.name])
        r = run(h, ["printf", "%s|"] + HOSTILE)
        if r.stdout != "|".join(HOSTILE) + "|":
            fail("run mangled its arguments: %r" % r.stdout)
        r = run(h, ["sh", "-c", "exit 3"], check = False)
        if r.exit_code != 3:
            fail("exit code %d" % r.exit_code)
        log("ran fine", host = h)
`), 0o644)
	r := fleet(t, "run", "--json", "--ssh-config", l.SSHConfig, filepath.Join(dir, "fleet.star"))
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	a := l.Host("a")
	cur := current(t, a)
	if !strings.HasSuffix(cur, "-nixos-system-a-attr") {
		t.Errorf("a runs %q", cur)
	}
	if out := exec(t, a, "ls /tmp/pwned 2>/dev/null || echo clean"); out != "clean" {
		t.Errorf("a hostile argument was executed")
	}
	if !strings.Contains(r.stdout, `"message":"ran fine"`) {
		t.Errorf("no log event")
	}
}
