package nixgen_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/internal/nixgen"
	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

// These tests read the generated text; internal/export's tests evaluate
// it with Nix.

// nixos is a nixos_system() host of flake with modules and special_args.
func nixos(name, flake string, modules []starlark.Value, special map[string]starlark.Value) *runtime.Host {
	args := starlark.NewDict(len(special))
	for k, v := range special {
		args.SetKey(starlark.String(k), v)
	}
	return &runtime.Host{
		Name: name, System: "x86_64-linux", TargetUser: "root", TargetPort: 22,
		Vars:  starlark.NewDict(0),
		NixOS: &runtime.NixosSystem{Flake: flake, FlakeShown: ".", Modules: starlark.NewList(modules), SpecialArgs: args},
	}
}

var modulesRE = regexp.MustCompile(`(?m)^ *modules = (.*);$`)

// modules is the modules = ...; of the one host of expr.
func modules(t *testing.T, expr string) string {
	t.Helper()
	m := modulesRE.FindAllStringSubmatch(expr, -1)
	if len(m) != 1 {
		t.Fatalf("%d modules lines in\n%s", len(m), expr)
	}
	return m[0][1]
}

// TestPaths: path() is an absolute path where fleet builds and a path
// relative to the file in the export, a literal when Nix can read it
// as one, else a quoted string appended to a path.
func TestPaths(t *testing.T) {
	for _, tc := range []struct{ abs, build, file, warning string }{
		{abs: "/flake/hosts/a.nix", build: "/flake/hosts/a.nix", file: "../hosts/a.nix"},
		{abs: "/flake/nix/a.nix", build: "/flake/nix/a.nix", file: "./a.nix"},
		{abs: "/flake/nix", build: "/flake/nix", file: "./."},
		{abs: "/flake", build: "/flake", file: "./.."},
		{abs: "/flake/my file.nix", build: `/. + "/flake/my file.nix"`, file: `./. + "/../my file.nix"`},
		{abs: "/flake/a${b}\"c", build: `/. + "/flake/a\${b}\"c"`, file: `./. + "/../a\${b}\"c"`},
		{abs: "/flake/a//b", build: `/. + "/flake/a//b"`, file: "../a/b"},
		{abs: "/elsewhere/x.nix", build: "/elsewhere/x.nix", file: "../../elsewhere/x.nix",
			warning: "/elsewhere/x.nix is outside the flake /flake: a flake cannot read it in pure evaluation"},
	} {
		t.Run(tc.abs, func(t *testing.T) {
			h := nixos("a", "/flake", []starlark.Value{&runtime.Path{Abs: tc.abs, Written: "x"}}, nil)
			expr, _, err := nixgen.Build([]*runtime.Host{h}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := modules(t, expr), "[ ("+tc.build+") ]"; got != want {
				t.Errorf("build: modules = %s, want %s", got, want)
			}
			f, err := nixgen.Export([]*runtime.Host{h}, nixgen.FileOptions{Flake: "/flake", Dir: "/flake/nix"})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := modules(t, f.Text), "[ ("+tc.file+") ]"; got != want {
				t.Errorf("file: modules = %s, want %s", got, want)
			}
			if got := strings.Join(f.Warnings, "\n"); got != tc.warning {
				t.Errorf("warnings %q, want %q", got, tc.warning)
			}
		})
	}
}

// TestOneCall: both policies write a host's nixosSystem call alike; the
// build selects its toplevel, in the scope of the fetched flake.
func TestOneCall(t *testing.T) {
	inline := starlark.NewDict(1)
	inline.SetKey(starlark.String("networking.hostName"), starlark.String("a"))
	h := nixos("a", "/flake", []starlark.Value{&runtime.NixExpr{Code: "inputs.x.nixosModules.y # c"}, inline},
		map[string]starlark.Value{"name": starlark.String("a"), "n": starlark.MakeInt(3)})
	const call = `inputs.nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      specialArgs = { inherit inputs self; } // { n = 3; name = "a"; };
      modules = [ (inputs.x.nixosModules.y # c
) { "networking.hostName" = "a"; } ];
    }`
	expr, attrs, err := nixgen.Build([]*runtime.Host{h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "  h0 =\n    let inputs = flake0.inputs; self = flake0; lib = inputs.nixpkgs.lib; in\n    (" + call + ").config.system.build.toplevel;\n"; !strings.Contains(expr, want) {
		t.Errorf("build lacks\n%s\nin\n%s", want, expr)
	}
	if !strings.Contains(expr, "  flake0 = builtins.getFlake \"path:/flake\";\n") || strings.Join(attrs, ",") != "h0" {
		t.Errorf("attrs %q of\n%s", attrs, expr)
	}
	f, err := nixgen.Export([]*runtime.Host{h}, nixgen.FileOptions{Flake: "/flake"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "  a =\n    let inputs = inputs'; lib = inputs.nixpkgs.lib; in\n    " + call + ";\n"; !strings.Contains(f.Text, want) {
		t.Errorf("file lacks\n%s\nin\n%s", want, f.Text)
	}
	if f.Import != "./fleet-export.nix" || strings.Join(f.Hosts, ",") != "a" || len(f.Warnings) != 0 {
		t.Errorf("import %q, hosts %q, warnings %q", f.Import, f.Hosts, f.Warnings)
	}
}

// TestFlakes: each flake is fetched once; with overrides its inputs are
// replaced; attr= hosts select their toplevel.
func TestFlakes(t *testing.T) {
	a := nixos("a", "/one", nil, nil)
	b := nixos("b", "/one", nil, nil)
	c := &runtime.Host{Name: "c", System: "x86_64-linux", FlakeAttr: "github:o/r#nixosConfigurations.c",
		Flake: "github:o/r", AttrPath: "nixosConfigurations.c"}
	d := &runtime.Host{Name: "d", System: "x86_64-linux", FlakeAttr: "/one#packages.x86_64-linux.d",
		Flake: "/one", AttrPath: "packages.x86_64-linux.d"}
	expr, attrs, err := nixgen.Build([]*runtime.Host{a, b, c, d}, map[string]string{"nixpkgs": "/np", "my-lib": "github:o/lib"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`  flake0 = builtins.getFlake "path:/one";` + "\n" +
			`  inputs0 = let o = { my-lib = builtins.getFlake "github:o/lib"; nixpkgs = builtins.getFlake "path:/np"; }; declared = (import (/. + "/one/flake.nix")).inputs or {}; in builtins.mapAttrs (n: _: o.${n} or flake0.inputs.${n}) declared // o;` + "\n" +
			`  flake1 = builtins.getFlake "github:o/r";` + "\n" +
			`  inputs1 = flake1.inputs // { my-lib = builtins.getFlake "github:o/lib"; nixpkgs = builtins.getFlake "path:/np"; };` + "\n" +
			"in\n",
		"  h1 =\n    let inputs = inputs0; self = flake0; lib",
		"  # c: github:o/r#nixosConfigurations.c\n  h2 = flake1.nixosConfigurations.c.config.system.build.toplevel;\n",
		"  h3 = flake0.packages.x86_64-linux.d;\n",
	} {
		if !strings.Contains(expr, want) {
			t.Errorf("build lacks\n%s\nin\n%s", want, expr)
		}
	}
	if strings.Join(attrs, ",") != "h0,h1,h2,h3" {
		t.Errorf("attrs %q", attrs)
	}

	f, err := nixgen.Export([]*runtime.Host{a, c, d}, nixgen.FileOptions{Flake: "/two"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  # Not the importing flake: fetched by reference, which pure evaluation\n  # refuses unless the reference is locked (use --impure otherwise).\n  flake0 = builtins.getFlake \"path:/one\";\n",
		"  flake1 = builtins.getFlake \"github:o/r\";\nin\n",
		"let inputs = flake0.inputs; self = flake0; lib",
		`  # c: attr = "github:o/r#nixosConfigurations.c"` + "\n  c = flake1.nixosConfigurations.c;\n",
		`  # d: left out: attr = "/one#packages.x86_64-linux.d" is not a nixosConfigurations entry.`,
	} {
		if !strings.Contains(f.Text, want) {
			t.Errorf("file lacks\n%s\nin\n%s", want, f.Text)
		}
	}
	if strings.Join(f.Hosts, ",") != "a,c" || len(f.Warnings) != 3 {
		t.Errorf("hosts %q, warnings %q", f.Hosts, f.Warnings)
	}
}

func load(t *testing.T, star string) []*runtime.Host {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(star), 0o644)
	prog, err := runtime.Load(context.Background(), filepath.Join(dir, "fleet.star"), builtins.Universe())
	if err != nil {
		t.Fatal(err)
	}
	return prog.Hosts()
}

// TestInventory: inventory() is every host, those declared after it
// too, inline where fleet builds and bound once in the file.
func TestInventory(t *testing.T) {
	hosts := load(t, `
host(name = "a", target_host = "10.0.0.1", tags = ["x"], vars = {"n": 1}, nixos = nixos_system(special_args = {"hosts": inventory()}))
host(name = "b", nixos = nixos_system(special_args = {"hosts": inventory(), "a": inventory()}))
`)
	const inv = `({ a = { allowLocal = false; deployable = true; name = "a"; system = "x86_64-linux"; tags = [ "x" ]; targetHost = "10.0.0.1"; targetPort = 22; targetUser = "root"; vars = { n = 1; }; }; ` +
		`b = { allowLocal = false; deployable = false; name = "b"; system = "x86_64-linux"; tags = [ ]; targetHost = null; targetPort = 22; targetUser = "root"; vars = { }; }; })`
	expr, _, err := nixgen.Build(hosts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(expr, inv); n != 3 {
		t.Errorf("the inventory is written %d times, want 3, in\n%s", n, expr)
	}
	f, err := nixgen.Export(hosts, nixgen.FileOptions{Flake: hosts[0].NixOS.Flake})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(f.Text, inv); n != 1 || strings.Count(f.Text, "(fleetInventory)") != 3 {
		t.Errorf("the inventory is written %d times, want once, in\n%s", n, f.Text)
	}
}

// TestErrors: what cannot be written fails with the host and the
// position of the value.
func TestErrors(t *testing.T) {
	cyclic := starlark.NewList(nil)
	cyclic.Append(cyclic)
	for _, tc := range []struct {
		name string
		host *runtime.Host
		want string
	}{
		{"function", nixos("a", "/f", nil, map[string]starlark.Value{"f": starlark.Universe["len"]}),
			`host a: special_args["f"]: `},
		{"cycle", nixos("a", "/f", nil, map[string]starlark.Value{"l": cyclic}),
			`host a: special_args["l"][0]: cyclic reference: this list contains itself`},
		{"nul", nixos("a", "/f", []starlark.Value{&runtime.Path{Abs: "/f/a\x00", Written: "a"}}, nil),
			`host a: modules[0]: NixExpr: `},
		{"nothing", &runtime.Host{Name: "a"}, "host a: nothing to build"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := nixgen.Build([]*runtime.Host{tc.host}, nil)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("build: %v, want %s...", err, tc.want)
			}
			_, err = nixgen.Export([]*runtime.Host{tc.host}, nixgen.FileOptions{Flake: "/f"})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("file: %v, want %s...", err, tc.want)
			}
		})
	}
}

// TestSelfReference: a host whose vars hold inventory() contains
// itself: an error where fleet builds (the inventory is written inline),
// a recursive binding in the file.
func TestSelfReference(t *testing.T) {
	hosts := load(t, `host(name = "a", vars = {"all": inventory()}, nixos = nixos_system(special_args = {"hosts": inventory()}))`)
	_, _, err := nixgen.Build(hosts, nil)
	if err == nil || !strings.Contains(err.Error(), "contains itself") {
		t.Errorf("build: %v", err)
	}
	f, err := nixgen.Export(hosts, nixgen.FileOptions{Flake: hosts[0].NixOS.Flake})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.Text, "vars = { all = (fleetInventory); };") {
		t.Errorf("file:\n%s", f.Text)
	}
}

// TestComments: a description with a line break stays one comment line.
func TestComments(t *testing.T) {
	h := nixos("a", "/f", nil, map[string]starlark.Value{"x\ny": starlark.True})
	expr, _, err := nixgen.Build([]*runtime.Host{h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(expr, "  # a: nixos_system(flake=\".\", modules=0, special_args=[x y])\n") {
		t.Errorf("build:\n%s", expr)
	}
}

// TestGitFlakes: a flake directory or an --override-input directory in
// a git work tree is fetched as git+file: (only what git tracks reaches
// the store); an untracked flake.nix is an error that says to git add it.
func TestGitFlakes(t *testing.T) {
	repo := t.TempDir()
	for _, f := range []string{"hosts/flake.nix", "np/flake.nix", "new/flake.nix"} {
		os.MkdirAll(filepath.Join(repo, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(repo, f), []byte("{ outputs = _: { }; }\n"), 0o644)
	}
	git := func(args ...string) {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", "hosts", "np")
	h := nixos("a", filepath.Join(repo, "hosts"), nil, nil)
	expr, _, err := nixgen.Build([]*runtime.Host{h}, map[string]string{"nixpkgs": filepath.Join(repo, "np")})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`flake0 = builtins.getFlake "git+file://` + repo + `?dir=hosts";`,
		`nixpkgs = builtins.getFlake "git+file://` + repo + `?dir=np";`,
	} {
		if !strings.Contains(expr, want) {
			t.Errorf("lacks %s in\n%s", want, expr)
		}
	}
	_, _, err = nixgen.Build([]*runtime.Host{nixos("b", filepath.Join(repo, "new"), nil, nil)}, nil)
	if err == nil || !strings.Contains(err.Error(), "host b: flake: "+filepath.Join(repo, "new", "flake.nix")+" is not tracked by git") ||
		!strings.Contains(err.Error(), "git -C "+repo+" add new/flake.nix") {
		t.Errorf("untracked flake.nix: %v", err)
	}
	_, _, err = nixgen.Build([]*runtime.Host{h}, map[string]string{"nixpkgs": filepath.Join(repo, "new")})
	if err == nil || !strings.Contains(err.Error(), "--override-input nixpkgs: ") {
		t.Errorf("untracked override: %v", err)
	}
}
