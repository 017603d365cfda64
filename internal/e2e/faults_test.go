package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/runtime"
)

// storeIsWhole checks that every path the host's store calls valid is
// complete: an interrupted import must leave no half path behind.
func storeIsWhole(t *testing.T, h *lab.Host) {
	t.Helper()
	out := exec(t, h, `cd /nix/store 2>/dev/null || exit 0
for p in /nix/store/*; do
  case "$p" in *.lock|*'*') continue;; esac
  if nix-store --check-validity "$p" 2>/dev/null; then nix-store --verify-path "$p" >/dev/null 2>&1 || echo "CORRUPT $p"; fi
done`)
	if strings.Contains(out, "CORRUPT") {
		t.Errorf("%s's store holds damaged valid paths:\n%s", h.Name, out)
	}
}

// TestSSHDKilledMidPush kills b's sshd while a large closure streams to
// it: b fails with a clear error naming the step, its store holds no
// half-imported path, a finishes.
func TestSSHDKilledMidPush(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	big := `{"fleet": {"test": {"payload": {"count": 40, "sizeKB": 2048}}}}`
	file := rolloutDir(t, l, "1.0", map[string]string{"b": big}, "")
	// Build first, so that the push is what the kill interrupts.
	if r := fleet(t, "run", "--json", "--goal", "dry-activate", "--on", "a", "--ssh-config", l.SSHConfig,
		"--override-input", "nixpkgs="+filepath.Join(root, "testdata/mini-nixpkgs"), file); r.code != 0 {
		t.Fatalf("warm-up: exit %d\n%s", r.code, r.stderr)
	}
	b := l.Host("b")
	done := make(chan result, 1)
	go func() { done <- fleet(t, runArgs(l, file)...) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		// The import is under way once the store holds a payload path.
		if o, _ := b.Exec(context.Background(), "ls /nix/store 2>/dev/null | grep -c payload"); strings.TrimSpace(o) != "0" && strings.TrimSpace(o) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the push never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.StopSSHD()
	r := <-done
	if r.code != 1 || !strings.Contains(r.stderr, "b: push failed") {
		t.Fatalf("exit %d, want 1 naming b's push:\n%s", r.code, r.stderr)
	}
	if cur := current(t, b); cur != "" {
		t.Errorf("b was activated: %s", cur)
	}
	storeIsWhole(t, b)
	if cl := closures(events(t, r.stdout)); current(t, l.Host("a")) != cl["a"] {
		t.Errorf("a was not deployed")
	}
}

// TestDiskFullDuringImport gives b a 24 MiB /nix: the second, larger
// system does not fit; the error names host and step, and b still runs
// its previous generation.
func TestDiskFullDuringImport(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"b"}})
	b := l.Host("b")
	exec(t, b, "mount -t tmpfs -o size=24m tmpfs /nix && mkdir -p /nix/var/nix/profiles /nix/store")
	v1 := deployAll(t, l, "1.0")
	big := `{"fleet": {"test": {"payload": {"count": 16, "sizeKB": 2048}}}}`
	r := fleet(t, runArgs(l, rolloutDir(t, l, "2.0", map[string]string{"b": big}, ""))...)
	if r.code != 1 || !strings.Contains(r.stderr, "b: push failed") || !strings.Contains(strings.ToLower(r.stderr), "no space left") {
		t.Fatalf("exit %d, want 1 with b's push and the disk full:\n%s", r.code, r.stderr)
	}
	if cur := current(t, b); cur != v1["b"] {
		t.Errorf("b runs %s, want %s", cur, v1["b"])
	}
	exec(t, b, "nix-store --verify-path "+v1["b"])
	if got := exec(t, b, "readlink -f /nix/var/nix/profiles/system"); got != v1["b"] {
		t.Errorf("profile %s", got)
	}
}

// TestHostileInputs: names, tags, vars, module paths, special args and
// key destinations full of shell syntax are rejected with an error or
// travel as inert data; nothing is executed, here or on the host.
func TestHostileInputs(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a"}})
	local := filepath.Join(t.TempDir(), "pwned")
	payloads := []string{
		"$(touch " + local + ")", "`touch " + local + "`", "; touch " + local, "\ntouch " + local,
		"${touch " + local + "}", "'; touch " + local + "; '", `"; touch ` + local + `; "`,
		"$(touch /tmp/pwned)", "`touch /tmp/pwned`", "; touch /tmp/pwned #",
	}
	// Rejected outright: exit 2, nothing touched.
	for _, p := range payloads[:4] {
		for _, field := range []string{"name", "tags", "target_host", "target_user"} {
			val := `"` + p + `"`
			if field == "tags" {
				val = "[" + val + "]"
			}
			src := "host(name = \"a\", target_host = \"a\", attr = \".#nixosConfigurations.a\")\n"
			src = strings.Replace(src, field+` = "a"`, field+" = "+starlarkQuote(p), 1)
			if field == "tags" || field == "target_user" {
				src = "host(name = \"a\", target_host = \"a\", " + field + " = " + strings.Replace(val, `"`+p+`"`, starlarkQuote(p), 1) + ", attr = \".#nixosConfigurations.a\")\n"
			}
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(src), 0o644)
			r := fleet(t, "run", "--ssh-config", l.SSHConfig, filepath.Join(dir, "fleet.star"))
			if r.code != 2 || !strings.Contains(r.stderr, "fleet.star:1:") {
				t.Errorf("%s = %q: exit %d, want 2 with file:line\n%s", field, p, r.code, r.stderr)
			}
		}
	}
	// Carried as data: vars, special args, a module directory named
	// after a payload, key destinations. The deploy succeeds and the
	// values arrive verbatim.
	dir := t.TempDir()
	modDir := filepath.Join(dir, "mods", "$(touch "+local+")")
	os.MkdirAll(modDir, 0o755)
	os.WriteFile(filepath.Join(modDir, "default.nix"), []byte("{ special, ... }: { fleet.hostile = special; }\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(`{ inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11"; outputs = { self, nixpkgs }: { }; }`), 0o644)
	var list []string
	for _, p := range payloads {
		list = append(list, starlarkQuote(p))
	}
	src := `PAYLOADS = [` + strings.Join(list, ", ") + `]
host(name = "a", target_host = "a", vars = {"x": PAYLOADS},
     keys = [secret("/run/keys/" + p.replace("/", "_").replace("\n", "_"), text = p) for p in PAYLOADS],
     nixos = nixos_system(modules = [path("./mods/$(touch ` + local + `)"), {"fleet": {"vars": PAYLOADS}}],
                          special_args = {"name": "a", "special": PAYLOADS}))
`
	os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(src), 0o644)
	r := fleet(t, runArgs(l, filepath.Join(dir, "fleet.star"))...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	a := l.Host("a")
	cl := closures(events(t, r.stdout))
	conf := exec(t, a, "cat "+cl["a"]+"/config.json")
	for _, p := range payloads[:3] {
		if !strings.Contains(conf, strings.ReplaceAll(p, "/", `\/`)) && !strings.Contains(conf, p) {
			t.Errorf("payload %q did not arrive as data in the system's config", p)
		}
	}
	if n := exec(t, a, "ls /run/keys | wc -l"); n != "10" {
		t.Errorf("%s keys on a, want 10", n)
	}
	if _, err := os.Stat(local); err == nil {
		t.Fatalf("a payload ran on this machine")
	}
	if out := exec(t, a, "test -e /tmp/pwned && echo pwned || echo clean"); out != "clean" {
		t.Fatalf("a payload ran on the host")
	}
}

func starlarkQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// TestStarlarkAbuse: a script that never ends, recurses without end,
// allocates without end, loads in a cycle or reads outside its
// directory gets a clear error and exit 2, and no host is touched.
func TestStarlarkAbuse(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a"}})
	defer func(m, s, ls uint64) { runtime.MaxMemory, runtime.MaxSteps, runtime.MaxLoadSteps = m, s, ls }(runtime.MaxMemory, runtime.MaxSteps, runtime.MaxLoadSteps)
	runtime.MaxMemory, runtime.MaxSteps, runtime.MaxLoadSteps = 512<<20, 50_000_000, 50_000_000
	inv := "host(name = \"a\", target_host = \"a\", attr = \".#nixosConfigurations.a\")\n"
	cases := map[string]struct{ src, want string }{
		"loop":      {inv + "x = 0\nwhile True:\n    x += 1\n", "did not finish within"},
		"deploy":    {inv + "def deploy(ctx):\n    while True:\n        pass\n", "did not finish within"},
		"recursion": {inv + "def f(n):\n    return f(n + 1)\nf(0)\n", "Starlark stack overflow"},
		"huge":      {inv + "x = [0] * 50000000\ny = [x, x]\n", "more than 512 MiB of memory"},
		"cycle":     {"load(\"./b.star\", \"b\")\n", "load cycle"},
		"outside":   {"load(\"../../../../../etc/passwd\", \"x\")\n", "outside the project directory"},
	}
	for name, c := range cases {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(c.src), 0o644)
		os.WriteFile(filepath.Join(dir, "b.star"), []byte("load(\"./fleet.star\", \"x\")\nb = 1\n"), 0o644)
		r := fleet(t, "run", "--ssh-config", l.SSHConfig, filepath.Join(dir, "fleet.star"))
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "goroutine ") {
			t.Errorf("%s: exit %d, want 2 with %q:\n%.2000s", name, r.code, c.want, r.stderr)
		}
	}
	if out := exec(t, l.Host("a"), "ls /nix/store 2>/dev/null | wc -l"); out != "0" {
		t.Errorf("a was touched")
	}
}
