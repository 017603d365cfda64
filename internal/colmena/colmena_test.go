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

func requireNix(t *testing.T) {
	t.Helper()
	labtest.RequireNix(t)
}

// hive writes testdata/colmena-hive to a temp dir as a flake whose
// nixpkgs is testdata/mini-nixpkgs; edit changes its flake.nix.
func hive(t *testing.T, edit func(string) string) string {
	t.Helper()
	src := filepath.Join(root, "testdata/colmena-hive")
	dir := t.TempDir()
	labtest.CopyDir(t, src, dir)
	tmpl, err := os.ReadFile(filepath.Join(dir, "flake.nix.template"))
	if err != nil {
		t.Fatal(err)
	}
	flake := strings.ReplaceAll(string(tmpl), "@NIXPKGS@", "path:"+filepath.Join(root, "testdata/mini-nixpkgs"))
	if edit != nil {
		flake = edit(flake)
	}
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644); err != nil {
		t.Fatal(err)
	}
	// A hive has its flake.lock (builtins.getFlake, which fleet builds
	// with, does not write one).
	run(t, "nix", "flake", "lock", "path:"+dir)
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

func ptr[T any](v T) *T { return &v }

// TestRead reads the fixture's three nodes: an attribute set, a function
// of colmena's arguments, and one without targetHost (colmena's default,
// its name), with defaults, mkDefault and mkForce merged.
func TestRead(t *testing.T) {
	requireNix(t)
	dir := hive(t, nil)
	h, err := colmena.Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	db := &colmena.Node{Name: "db", HasConfig: true, System: "x86_64-linux", TargetHost: ptr("db.example.com"),
		TargetUser: "root", BuildOnTarget: true, Tags: []string{"managed", "db", "prod"}}
	db.Keys = []colmena.Key{{Name: "db-password", DestDir: "/run/keys", User: "postgres", Group: "root", Permissions: "0400", UploadAt: "pre-activation"}}
	db.Keys[0].Source.KeyCommand = []string{"pass", "show", "db"}
	want := []*colmena.Node{
		db,
		{Name: "laptop", HasConfig: true, System: "aarch64-linux", TargetHost: ptr("laptop"), TargetHostDefault: true,
			TargetUser: "root", AllowLocal: true, Tags: []string{"pc"}, Keys: []colmena.Key{}},
		{Name: "web", HasConfig: true, System: "x86_64-linux", TargetHost: ptr("10.0.0.20"), TargetUser: "deploy",
			TargetPort: 2222, Tags: []string{"managed", "web", "prod"}, Keys: []colmena.Key{}},
	}
	if !reflect.DeepEqual(h.Nodes, want) {
		got, _ := json.MarshalIndent(h.Nodes, "", "  ")
		t.Errorf("nodes:\n%s", got)
	}
	if strings.Join(h.Configs, ",") != "db,laptop,web" || h.Dir != dir {
		t.Errorf("configs %q, dir %s", h.Configs, h.Dir)
	}
}

// TestSameSystems: the fleet.star init writes for the fixture declares
// the nodes with their targets and tags, and the closures fleet builds
// for them are the toplevels of the hive's nixosConfigurations - the
// nodes as colmena evaluates them.
func TestSameSystems(t *testing.T) {
	requireNix(t)
	dir := hive(t, nil)
	h, err := colmena.Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if notes := h.Notes(); len(notes) != 0 {
		t.Errorf("notes: %q", notes)
	}
	text := h.Generate(dir)
	file := filepath.Join(dir, "fleet.star")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	prog, err := runtime.Load(context.Background(), file, builtins.Universe())
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	hosts := prog.Hosts()
	var got []string
	for _, h := range hosts {
		got = append(got, strings.Join([]string{h.Name, h.System, h.Target(), strings.Join(h.Tags, ","),
			h.FlakeAttr, flag(h.AllowLocal, "allow_local"), flag(h.BuildOnTarget, "build_on_target"), strings.Join(keyDests(h), ",")}, " "))
	}
	want := []string{
		"db x86_64-linux root@db.example.com:22 managed,db,prod .#nixosConfigurations.db - build_on_target /run/keys/db-password",
		"laptop aarch64-linux root@laptop:22 pc .#nixosConfigurations.laptop allow_local - ",
		"web x86_64-linux deploy@10.0.0.20:2222 managed,web,prod .#nixosConfigurations.web - - ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("hosts:\n%s\nwant:\n%s\nfleet.star:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), text)
	}

	// What fleet builds...
	expr, attrs, err := nixgen.Build(hosts, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "build.nix")
	os.WriteFile(f, []byte(expr), 0o644)
	args := []string{f}
	for _, a := range attrs {
		args = append(args, "-A", a)
	}
	drvs := strings.Fields(run(t, "nix-instantiate", args...))
	// ... is what the hive's nixosConfigurations are.
	var configs map[string]string
	out := run(t, "nix", "eval", "--json", "path:"+dir+"#nixosConfigurations", "--apply",
		"cs: builtins.mapAttrs (n: c: c.config.system.build.toplevel.drvPath) cs")
	if err := json.Unmarshal([]byte(out), &configs); err != nil {
		t.Fatal(err)
	}
	if len(drvs) != len(hosts) || len(configs) != 3 {
		t.Fatalf("%d derivations for %d hosts, %d nixosConfigurations", len(drvs), len(hosts), len(configs))
	}
	for i, h := range hosts {
		if drvs[i] != configs[h.Name] {
			t.Errorf("%s: fleet builds %s, nixosConfigurations.%s is %s", h.Name, drvs[i], h.Name, configs[h.Name])
		}
	}
}

func flag(b bool, name string) string {
	if b {
		return name
	}
	return "-"
}

func keyDests(h *runtime.Host) []string {
	var out []string
	for _, k := range h.Keys {
		out = append(out, k.Dest)
	}
	return out
}

// TestColmenaOnly: a node without nixosConfigurations becomes a
// commented TODO; the file still passes fleet check, without it.
func TestColmenaOnly(t *testing.T) {
	requireNix(t)
	dir := hive(t, func(s string) string {
		return strings.Replace(s, "colmenaOnly = [ ];", `colmenaOnly = [ "db" ];`, 1)
	})
	h, err := colmena.Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	text := h.Generate(dir)
	for _, want := range []string{
		"# TODO(colmena): node \"db\" is only in the colmena hive: the flake has no\n# nixosConfigurations.db,",
		"# host(\n#     name = \"db\",\n",
		"#     target_host = \"db.example.com\",\n",
		"#     attr = \".#nixosConfigurations.db\",\n# )\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("fleet.star lacks %q:\n%s", want, text)
		}
	}
	if notes := h.Notes(); len(notes) != 1 || !strings.Contains(notes[0], "db: the flake has no nixosConfigurations.db") {
		t.Errorf("notes %q", notes)
	}
	file := filepath.Join(dir, "fleet.star")
	os.WriteFile(file, []byte(text), 0o644)
	prog, err := runtime.Load(context.Background(), file, builtins.Universe())
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if n := len(prog.Hosts()); n != 2 {
		t.Errorf("%d hosts, want 2", n)
	}
}

// TestUnreadable: settings that need config, and nodes that cannot be
// evaluated outside colmena, are reported, not guessed; the other nodes
// are read.
func TestUnreadable(t *testing.T) {
	requireNix(t)
	dir := hive(t, func(s string) string {
		s = strings.Replace(s, "deployment.buildOnTarget = true;", "deployment.buildOnTarget = config.services.postgresql.enable;", 1)
		s = strings.Replace(s, "db = { name, nodes, pkgs, lib, ... }:", "db = { name, nodes, pkgs, lib, config, ... }:", 1)
		s = strings.Replace(s, "laptop = { lib, ... }:", "laptop = { lib, nodes, ... }:", 1)
		return strings.Replace(s, "deployment.allowLocalDeployment = lib.mkDefault true;",
			"deployment.allowLocalDeployment = nodes.web.config.no.such.option;", 1)
	})
	h, err := colmena.Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*colmena.Node{}
	for _, n := range h.Nodes {
		byName[n.Name] = n
	}
	if n := byName["db"]; n == nil || strings.Join(n.Unreadable, ",") != "buildOnTarget" || n.BuildOnTarget || *n.TargetHost != "db.example.com" {
		t.Errorf("db: %+v", n)
	}
	if n := byName["laptop"]; n == nil || !strings.Contains(n.Err, "attribute 'no' missing") {
		t.Errorf("laptop: %+v", n)
	}
	if n := byName["web"]; n == nil || n.Err != "" || *n.TargetHost != "10.0.0.20" {
		t.Errorf("web: %+v", n)
	}
	text := h.Generate(dir)
	for _, want := range []string{
		"# TODO(colmena): deployment.buildOnTarget could not be read without colmena",
		"# TODO(colmena): the node's deployment settings could not be read without",
		"#   attribute 'no' missing\nhost(\n    name = \"laptop\",\n    attr = \".#nixosConfigurations.laptop\",\n)\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("fleet.star lacks %q:\n%s", want, text)
		}
	}
}

// TestNoHive: a flake without a colmena output is an error that says so;
// so is a flake without its flake.lock.
func TestNoHive(t *testing.T) {
	requireNix(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }\n"), 0o644)
	_, err := colmena.Read(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "the flake has no `colmena' output") {
		t.Errorf("err = %v", err)
	}
	unlocked := hive(t, nil)
	os.Remove(filepath.Join(unlocked, "flake.lock"))
	_, err = colmena.Read(context.Background(), unlocked)
	if err == nil || !strings.Contains(err.Error(), "run `nix flake lock` in "+unlocked+" first") {
		t.Errorf("err = %v", err)
	}
	if _, err := colmena.Read(context.Background(), filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "no flake.nix there") {
		t.Errorf("err = %v", err)
	}
}

// TestFlakeRef: how fleet.star names the flake, from where it is written.
func TestFlakeRef(t *testing.T) {
	for _, tc := range []struct{ hive, dir, want string }{
		{"/a/b", "/a/b", "."},
		{"/a/b/c", "/a/b", "./c"},
		{"/a/c", "/a/b", "../c"},
		{"", "/a/b", "github:me/infra"},
	} {
		h := &colmena.Hive{Flake: "github:me/infra", Dir: tc.hive}
		if got := h.FlakeRef(tc.dir); got != tc.want {
			t.Errorf("FlakeRef(%s) from %s = %q, want %q", tc.hive, tc.dir, got, tc.want)
		}
	}
}
