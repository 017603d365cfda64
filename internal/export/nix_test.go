package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/internal/executor"
	"github.com/fleet-deploy/fleet/internal/export"
	"github.com/fleet-deploy/fleet/internal/lab/labtest"
	"github.com/fleet-deploy/fleet/internal/nixconf"
	"github.com/fleet-deploy/fleet/internal/nixgen"
	"github.com/fleet-deploy/fleet/runtime"
)

var root = func() string {
	r, _ := filepath.Abs("../..")
	return r
}()

// Every nix command here reads internal/nixconf's settings only.
func TestMain(m *testing.M) { os.Exit(nixconf.Isolated(m.Run)) }

func requireNix(t *testing.T) {
	t.Helper()
	labtest.RequireNix(t)
}

// overrides are the homelab's inputs, offline.
func overrides() map[string]string {
	return map[string]string{
		"nixpkgs":      filepath.Join(root, "testdata/mini-nixpkgs"),
		"sops-nix":     filepath.Join(root, "testdata/mini-nixpkgs/sops-nix"),
		"disko":        filepath.Join(root, "testdata/lab/stub-inputs"),
		"home-manager": filepath.Join(root, "testdata/lab/stub-inputs"),
	}
}

func overrideArgs() []string {
	var args []string
	o := overrides()
	names := make([]string, 0, len(o))
	for n := range o {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		args = append(args, "--override-input", n, "path:"+o[n])
	}
	return args
}

// homelabFlake copies examples/homelab to a temp dir and gives its flake
// nixosConfigurations = import ./<exportPath>, as the export's header says.
func homelabFlake(t *testing.T, exportPath string) string {
	t.Helper()
	dir := t.TempDir()
	labtest.CopyDir(t, filepath.Join(root, "examples/homelab"), dir)
	text, err := os.ReadFile(filepath.Join(dir, "flake.nix"))
	if err != nil {
		t.Fatal(err)
	}
	const old = "outputs = { self, ... }: { };"
	if !strings.Contains(string(text), old) {
		t.Fatalf("examples/homelab/flake.nix has no %q", old)
	}
	flake := strings.Replace(string(text), old,
		"outputs = { self, nixpkgs, ... }@inputs: {\n    nixosConfigurations = import "+exportPath+" { inherit inputs self; };\n  };", 1)
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func load(t *testing.T, file string) *runtime.Program {
	t.Helper()
	prog, err := runtime.Load(context.Background(), file, builtins.Universe())
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// instantiate returns the toplevel derivations nixgen.Build gives
// hosts, by name.
func instantiate(t *testing.T, hosts []*runtime.Host, ov map[string]string) map[string]string {
	t.Helper()
	expr, attrs, err := nixgen.Build(hosts, ov)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "build.nix")
	if err := os.WriteFile(f, []byte(expr), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{f}
	for _, a := range attrs {
		args = append(args, "-A", a)
	}
	drvs := strings.Fields(run(t, "nix-instantiate", args...))
	if len(drvs) != len(hosts) {
		t.Fatalf("nix-instantiate printed %d paths for %d hosts", len(drvs), len(hosts))
	}
	out := map[string]string{}
	for i, h := range hosts {
		out[h.Name] = drvs[i]
	}
	return out
}

type toplevel struct {
	Drv string `json:"drv"`
	Out string `json:"out"`
}

// flakeToplevels evaluates every nixosConfigurations entry of the flake
// in dir, as a flake is evaluated: pure, from its store copy.
func flakeToplevels(t *testing.T, dir string, extra ...string) map[string]toplevel {
	t.Helper()
	args := append([]string{"eval", "--json"}, extra...)
	args = append(args, "path:"+dir+"#nixosConfigurations", "--apply",
		"cs: builtins.mapAttrs (n: c: { drv = c.config.system.build.toplevel.drvPath; out = c.config.system.build.toplevel.outPath; }) cs")
	var got map[string]toplevel
	if err := json.Unmarshal([]byte(run(t, "nix", args...)), &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestNixRoundTrip: the flake that imports `fleet export nix` of the
// homelab has a nixosConfigurations entry for every host, clawfinger
// too, whose toplevel is the very derivation fleet builds for it, and
// the closure fleet's executor builds is its output.
func TestNixRoundTrip(t *testing.T) {
	requireNix(t)
	for _, tc := range []struct{ name, out, importPath string }{
		{"next to flake.nix", "fleet-export.nix", "./fleet-export.nix"},
		{"in a subdirectory", "nix/hosts.nix", "./nix/hosts.nix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := homelabFlake(t, tc.importPath)
			prog := load(t, filepath.Join(dir, "fleet.star"))
			hosts := prog.Hosts()
			out := filepath.Join(dir, tc.out)
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				t.Fatal(err)
			}
			res, err := export.Nix(hosts, export.NixOptions{
				Flake: export.DefaultFlake(hosts, dir), Dir: filepath.Dir(out), Name: filepath.Base(out),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Warnings) > 0 {
				t.Errorf("warnings: %q", res.Warnings)
			}
			if strings.Contains(res.Text, dir) || strings.Contains(res.Text, root) {
				t.Errorf("the export holds absolute paths of the checkout:\n%s", res.Text)
			}
			if !strings.Contains(res.Text, "import "+tc.importPath+" { inherit inputs self; }") {
				t.Errorf("header does not show the import of %s:\n%s", tc.importPath, res.Text)
			}
			if err := export.WriteFile(out, []byte(res.Text)); err != nil {
				t.Fatal(err)
			}

			want := instantiate(t, hosts, overrides())
			got := flakeToplevels(t, dir, overrideArgs()...)
			if len(got) != len(hosts) {
				t.Errorf("nixosConfigurations has %d entries, want %d (every host): %v", len(got), len(hosts), got)
			}
			for _, h := range hosts {
				if got[h.Name].Drv != want[h.Name] {
					t.Errorf("%s: the export's toplevel is %s, fleet builds %s", h.Name, got[h.Name].Drv, want[h.Name])
				}
			}
			if t.Failed() || tc.out != "fleet-export.nix" {
				return
			}
			// The same closures, built by fleet's executor.
			ex := executor.New(executor.Options{Overrides: overrides()})
			defer ex.Close()
			built, err := ex.Build(context.Background(), hosts)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hosts {
				if built[h.Name] != got[h.Name].Out {
					t.Errorf("%s: fleet built %s, the export's toplevel is %s", h.Name, built[h.Name], got[h.Name].Out)
				}
			}
		})
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNixPathsAndAttrs: path() values anywhere (modules, inline modules,
// host vars read through inventory()) become paths relative to the file,
// so the flake reads them in pure mode; attr= hosts of the flake itself
// are aliases, or left out when they are the flake's own entry.
//
// (A path a module turns into a string without copying it to the store,
// toString ./x, names the checkout under fleet and the flake's store
// copy under the flake: such systems differ, here as with any flake.)
func TestNixPathsAndAttrs(t *testing.T) {
	requireNix(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"flake.nix": `{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
  outputs = { self, nixpkgs, ... }@inputs: {
    nixosConfigurations = {
      own = nixpkgs.lib.nixosSystem { system = "x86_64-linux"; modules = [ { networking.hostName = "own"; } ]; };
    } // import ./fleet-export.nix { inherit inputs self; };
  };
}
`,
		"motd.txt": "hello from a file\n",
		"mod.nix":  "{ hosts, ... }: { environment.etc.peer.text = builtins.readFile hosts.a.vars.motd; }\n",
		"mod2.nix": "{ environment.etc.motd.text = \"from mod2\"; }\n",
		"fleet.star": `
host(name = "a", vars = {"motd": path("./motd.txt")}, nixos = nixos_system(
    modules = [path("./mod.nix"), {"imports": [path("./mod2.nix")]}],
    special_args = {"hosts": inventory(), "name": "a"},
))
host(name = "own", attr = ".#nixosConfigurations.own")
host(name = "alias", attr = ".#nixosConfigurations.own", target_host = "10.0.0.1")
`,
	})
	prog := load(t, filepath.Join(dir, "fleet.star"))
	hosts := prog.Hosts()
	res, err := export.Nix(hosts, export.NixOptions{Flake: dir})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res.Text, dir) {
		t.Errorf("absolute paths in the export:\n%s", res.Text)
	}
	if strings.Join(res.Hosts, ",") != "a,alias" || len(res.Warnings) != 1 || !strings.HasPrefix(res.Warnings[0], "own: left out: it is the flake's own nixosConfigurations.own;") {
		t.Errorf("hosts %q, warnings %q", res.Hosts, res.Warnings)
	}
	for _, want := range []string{
		"# own: left out: it is the flake's own nixosConfigurations.own",
		"alias = self.nixosConfigurations.own;",
		"(./mod.nix)",
	} {
		if !strings.Contains(res.Text, want) {
			t.Errorf("export lacks %q:\n%s", want, res.Text)
		}
	}
	if err := export.WriteFile(filepath.Join(dir, "fleet-export.nix"), []byte(res.Text)); err != nil {
		t.Fatal(err)
	}
	ov := map[string]string{"nixpkgs": filepath.Join(root, "testdata/mini-nixpkgs")}
	want := instantiate(t, hosts[:1], ov)
	got := flakeToplevels(t, dir, "--override-input", "nixpkgs", "path:"+ov["nixpkgs"])
	if got["a"].Drv != want["a"] {
		t.Errorf("a: the export's toplevel is %s, fleet builds %s", got["a"].Drv, want["a"])
	}
	if got["alias"] != got["own"] || got["own"].Drv == "" {
		t.Errorf("alias %v, own %v", got["alias"], got["own"])
	}
}

// TestNixOtherFlake: a host of another flake is read with
// builtins.getFlake, which pure evaluation refuses: the export warns.
func TestNixOtherFlake(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"flake.nix":       "{ outputs = { self }: { }; }\n",
		"other/flake.nix": "{ outputs = { self }: { }; }\n",
		"fleet.star": `
host(name = "a", nixos = nixos_system(flake = "."))
host(name = "b", nixos = nixos_system(flake = "./other"))
host(name = "c", attr = "./other#nixosConfigurations.c")
host(name = "d", attr = ".#packages.x86_64-linux.d")
`,
	})
	prog := load(t, filepath.Join(dir, "fleet.star"))
	hosts := prog.Hosts()
	if got := export.DefaultFlake(hosts, dir); got != dir {
		t.Errorf("DefaultFlake = %s, want %s (hosts use two flakes)", got, dir)
	}
	res, err := export.Nix(hosts, export.NixOptions{Flake: dir})
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	for _, want := range []string{
		`flake0 = builtins.getFlake "path:` + other + `";`,
		"let inputs = flake0.inputs; self = flake0; lib = inputs.nixpkgs.lib; in",
		"c = flake0.nixosConfigurations.c;",
		`# d: left out: attr = ".#packages.x86_64-linux.d" is not a nixosConfigurations entry.`,
	} {
		if !strings.Contains(res.Text, want) {
			t.Errorf("export lacks %q:\n%s", want, res.Text)
		}
	}
	if strings.Join(res.Hosts, ",") != "a,b,c" {
		t.Errorf("hosts %q", res.Hosts)
	}
	if len(res.Warnings) != 3 || !strings.Contains(res.Warnings[0], "b: its flake ./other is not the exported flake") {
		t.Errorf("warnings %q", res.Warnings)
	}
	// Nix parses it.
	if _, err := exec.LookPath("nix-instantiate"); err == nil {
		f := filepath.Join(dir, "fleet-export.nix")
		export.WriteFile(f, []byte(res.Text))
		run(t, "nix-instantiate", "--parse", f)
	}
}
