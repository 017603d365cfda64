package colmena_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/internal/colmena"
	"github.com/fleet-deploy/fleet/internal/lab/labtest"
	"github.com/fleet-deploy/fleet/internal/nixgen"
	"github.com/fleet-deploy/fleet/runtime"
)

var root = func() string {
	r, _ := filepath.Abs("../..")
	return r
}()

// fixtures are the hives of testdata/colmena-*, one per style; each
// directory's expected.json is its inventory as colmena's documented
// semantics give it, written by hand.
var fixtures = []struct {
	name string
	file bool // a non-flake hive.nix
}{
	{"colmena-plain", false},       // attribute sets, user@host, targetUser null, nodeNixpkgs
	{"colmena-factory", false},     // genAttrs factory, specialArgs, nodeSpecialArgs, nodes
	{"colmena-defaults", false},    // defaults with mkDefault of config, mkIf of config
	{"colmena-modulespath", false}, // modulesPath imports, keys of all three sources, targetHost null
	{"colmena-flakeparts", false},  // outputs built by part modules
	{"colmena-makehive", false},    // only colmenaHive (a stand-in for colmena.lib.makeHive)
	{"colmena-hivenix", true},      // non-flake hive.nix, meta.nixpkgs a path
}

// render copies testdata/NAME to a temp dir and writes its templates:
// @NIXPKGS@ is a path: reference to testdata/mini-nixpkgs, @MINI@ its
// path. A flake is locked, as a hive is.
func render(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	labtest.CopyDir(t, filepath.Join(root, "testdata", name), dir)
	r := strings.NewReplacer(
		"@NIXPKGS@", "path:"+filepath.Join(root, "testdata/mini-nixpkgs"),
		"@MINI@", filepath.Join(root, "testdata/mini-nixpkgs"))
	for _, f := range []string{"flake.nix", "hive.nix"} {
		tmpl, err := os.ReadFile(filepath.Join(dir, f+".template"))
		if err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(r.Replace(string(tmpl))), 0o644); err != nil {
			t.Fatal(err)
		}
		if f == "flake.nix" {
			run(t, "nix", "flake", "lock", "path:"+dir)
		}
	}
	return dir
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

// invHost is a host of the inventory: what fleet hosts --json says of it
// (its target split into its parts, null where fleet.star leaves it to
// ssh_config), its note and its keys.
type invHost struct {
	Name          string   `json:"name"`
	System        string   `json:"system"`
	Deployable    bool     `json:"deployable"`
	TargetHost    *string  `json:"target_host"`
	TargetUser    *string  `json:"target_user"`
	TargetPort    *int     `json:"target_port"`
	AllowLocal    bool     `json:"allow_local"`
	BuildOnTarget bool     `json:"build_on_target"`
	Tags          []string `json:"tags"`
	Keys          []invKey `json:"keys"`
	Note          string   `json:"note"`
}

type invKey struct {
	Dest   string `json:"dest"`
	Owner  string `json:"owner"`
	Group  string `json:"group"`
	Mode   string `json:"mode"`
	Upload string `json:"upload"`
	// Source: "text: CONTENT", "file: PATH" (relative to the hive's
	// directory) or "command: WORDS".
	Source string `json:"source"`
}

func inventory(hosts []*runtime.Host, dir string) []invHost {
	out := []invHost{}
	for _, h := range hosts {
		j := invHost{Name: h.Name, System: h.System, Deployable: h.Deployable(),
			AllowLocal: h.AllowLocal, BuildOnTarget: h.BuildOnTarget, Tags: append([]string{}, h.Tags...),
			Keys: []invKey{}, Note: h.Note()}
		if h.TargetHost != "" {
			j.TargetHost = &h.TargetHost
		}
		if h.TargetUser != "" {
			j.TargetUser = &h.TargetUser
		}
		if h.TargetPort != 0 {
			j.TargetPort = &h.TargetPort
		}
		for _, k := range h.Keys {
			key := invKey{Dest: k.Dest, Owner: k.Owner, Group: k.Group, Mode: k.Mode, Upload: k.Upload}
			if text, ok := k.Text(); ok {
				key.Source = "text: " + string(text)
			} else if k.File != "" {
				rel, _ := filepath.Rel(dir, k.File)
				key.Source = "file: " + rel
			} else {
				key.Source = "command: " + strings.Join(k.Command, " ")
			}
			j.Keys = append(j.Keys, key)
		}
		out = append(out, j)
	}
	return out
}

// expected reads testdata/NAME/expected.json.
func expected(t *testing.T, name string) []invHost {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "testdata", name, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want []invHost
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("%s/expected.json: %v", name, err)
	}
	return want
}

func load(t *testing.T, file, text string) []*runtime.Host {
	t.Helper()
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	prog, err := runtime.Load(context.Background(), file, builtins.Universe())
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return prog.Hosts()
}

// drvs are the derivations of the systems fleet builds for hosts.
func drvs(t *testing.T, hosts []*runtime.Host, overrides map[string]string) map[string]string {
	t.Helper()
	expr, attrs, err := nixgen.Build(hosts, overrides)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "build.nix")
	os.WriteFile(f, []byte(expr), 0o644)
	args := []string{f}
	for _, a := range attrs {
		args = append(args, "-A", a)
	}
	paths := strings.Fields(run(t, "nix-instantiate", args...))
	if len(paths) != len(hosts) {
		t.Fatalf("%d derivations for %d hosts", len(paths), len(hosts))
	}
	out := map[string]string{}
	for i, h := range hosts {
		out[h.Name] = paths[i]
	}
	return out
}

// TestFixtures: for every fixture hive, the three-line colmena_hive file
// and the expanded file `init --from-colmena --expand` writes declare the
// hive's expected inventory, and both build the same systems.
func TestFixtures(t *testing.T) {
	labtest.RequireNix(t)
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			dir := render(t, fx.name)
			src := colmena.Source{Flake: dir}
			if fx.file {
				src = colmena.Source{File: filepath.Join(dir, "hive.nix")}
			}
			h, err := colmena.Read(context.Background(), src)
			if err != nil {
				t.Fatal(err)
			}
			checkNotes(t, h.Notes())
			want := expected(t, fx.name)
			three := h.Generate(dir)
			if n := strings.Count(three, "\n"); n != 3 {
				t.Errorf("colmena_hive file has %d lines:\n%s", n, three)
			}
			threeHosts := load(t, filepath.Join(dir, "fleet.star"), three)
			expanded := h.Expand(dir)
			expandedHosts := load(t, filepath.Join(dir, "expanded.star"), expanded)
			for _, c := range []struct {
				what  string
				hosts []*runtime.Host
				text  string
			}{{"colmena_hive", threeHosts, three}, {"--expand", expandedHosts, expanded}} {
				if got := inventory(c.hosts, dir); !reflect.DeepEqual(got, want) {
					g, _ := json.MarshalIndent(got, "", "  ")
					w, _ := json.MarshalIndent(want, "", "  ")
					t.Errorf("%s: inventory\n%s\nwant\n%s\nfleet.star:\n%s", c.what, g, w, c.text)
				}
			}
			built, expandedBuilt := drvs(t, threeHosts, nil), drvs(t, expandedHosts, nil)
			if !reflect.DeepEqual(built, expandedBuilt) {
				t.Errorf("the expanded file builds %v, colmena_hive %v", expandedBuilt, built)
			}
		})
	}
}

// TestOverrideInput: a hive whose nixpkgs input cannot be fetched (not
// locked, no network), in a git work tree, read and built with
// --override-input: the same inventory and the same systems as the
// fixture with its input locked.
func TestOverrideInput(t *testing.T) {
	labtest.RequireNix(t)
	const name = "colmena-plain"
	locked := render(t, name)
	dir := t.TempDir()
	labtest.CopyDir(t, filepath.Join(root, "testdata", name), dir)
	tmpl, err := os.ReadFile(filepath.Join(dir, "flake.nix.template"))
	if err != nil {
		t.Fatal(err)
	}
	flake := strings.ReplaceAll(string(tmpl), "@NIXPKGS@", "github:NixOS/nixpkgs/nixos-25.11")
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "git", "-C", dir, "init", "-q")
	run(t, "git", "-C", dir, "add", "-A")
	overrides := map[string]string{"nixpkgs": filepath.Join(root, "testdata/mini-nixpkgs")}
	h, err := colmena.Read(context.Background(), colmena.Source{Flake: dir, Overrides: overrides})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "fleet.star")
	os.WriteFile(file, []byte(h.Generate(dir)), 0o644)
	u := builtins.Universe()
	builtins.WithOverrides(u, overrides)
	prog, err := runtime.Load(context.Background(), file, u)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := inventory(prog.Hosts(), dir), expected(t, name); !reflect.DeepEqual(got, want) {
		t.Errorf("inventory %+v, want %+v", got, want)
	}
	if got, want := drvs(t, prog.Hosts(), overrides), lockedDrvs(t, locked); !reflect.DeepEqual(got, want) {
		t.Errorf("with --override-input fleet builds %v, with the input locked %v", got, want)
	}
}

// lockedDrvs are the systems fleet builds for the hive of dir, its
// inputs locked.
func lockedDrvs(t *testing.T, dir string) map[string]string {
	t.Helper()
	h, err := colmena.Read(context.Background(), colmena.Source{Flake: dir})
	if err != nil {
		t.Fatal(err)
	}
	return drvs(t, load(t, filepath.Join(dir, "fleet.star"), h.Generate(dir)), nil)
}

// TestErrors: what is not a hive says so.
func TestErrors(t *testing.T) {
	labtest.RequireNix(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }\n"), 0o644)
	for _, tc := range []struct {
		src  colmena.Source
		want string
	}{
		{colmena.Source{Flake: dir}, "the flake has no `colmena' or `colmenaHive' output (a colmena hive)"},
		{colmena.Source{Flake: filepath.Join(dir, "nope")}, "no flake.nix there"},
		{colmena.Source{File: filepath.Join(dir, "hive.nix")}, "no such file"},
	} {
		if _, err := colmena.Read(context.Background(), tc.src); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.src, err, tc.want)
		}
	}
}
