package mininix_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab/labtest"
	"github.com/fleet-deploy/fleet/internal/nixconf"
)

// Every nix command here reads internal/nixconf's settings only.
func TestMain(m *testing.M) { os.Exit(nixconf.Isolated(m.Run)) }

// sshdPath is the PATH that Debian's sshd gives a session; the activation
// script must work with it.
const sshdPath = "/usr/local/bin:/usr/bin:/bin:/usr/games"

// fixtureDir returns the absolute path of testdata/mini-nixpkgs, skipping
// the test (loudly) if nix is not available.
func fixtureDir(t *testing.T) string {
	t.Helper()
	labtest.RequireNix(t)
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "mini-nixpkgs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "flake.nix")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// run runs a command with extraConfig as NIX_CONFIG, over nixconf's settings.
func run(t *testing.T, extraConfig string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+extraConfig)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

type built struct {
	DrvPath string            `json:"drvPath"`
	Outputs map[string]string `json:"outputs"`
}

// build runs `nix build --json --no-link --impure --expr expr`.
func build(t *testing.T, extraConfig, expr string) (built, string, error) {
	t.Helper()
	stdout, stderr, err := run(t, extraConfig, "nix", "build", "--json", "--no-link", "--impure", "--expr", expr)
	if err != nil {
		return built{}, stderr, err
	}
	var res []built
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || len(res) != 1 || res[0].Outputs["out"] == "" {
		t.Fatalf("unexpected output of nix build --json: %q (%v)", stdout, err)
	}
	return res[0], stderr, nil
}

func mustBuild(t *testing.T, expr string) string {
	t.Helper()
	b, stderr, err := build(t, "", expr)
	if err != nil {
		t.Fatalf("nix build failed: %v\n%s\nexpression:\n%s", err, stderr, expr)
	}
	return b.Outputs["out"]
}

// closure returns `nix-store -qR path`.
func closure(t *testing.T, path string) []string {
	t.Helper()
	stdout, stderr, err := run(t, "", "nix-store", "-qR", path)
	if err != nil {
		t.Fatalf("nix-store -qR %s: %v\n%s", path, err, stderr)
	}
	return strings.Fields(stdout)
}

// nixStr quotes s as a Nix string literal.
func nixStr(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "\n", `\n`).Replace(s) + `"`
}

// nixPath is a Nix path expression for the absolute path p.
func nixPath(p string) string { return "(/. + " + nixStr(p) + ")" }

// hostExpr is the expression fleet's callers use: lib.nixosSystem of the
// fixture flake (via getFlake), with nixpkgs and sops-nix available as
// specialArgs.inputs. specialArgs and modules are Nix expressions.
func hostExpr(fixture, system, specialArgs, modules string) string {
	return fmt.Sprintf(`let
  nixpkgs = builtins.getFlake %s;
  sops-nix = builtins.getFlake %s;
  lib = nixpkgs.lib;
  inputs = { inherit nixpkgs sops-nix; };
in
(nixpkgs.lib.nixosSystem {
  system = %s;
  specialArgs = { inherit inputs; } // (%s);
  modules = %s;
}).config.system.build.toplevel`,
		nixStr("path:"+fixture), nixStr("path:"+fixture+"/sops-nix"), nixStr(system), specialArgs, modules)
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lookup returns the value at a dotted path of a decoded JSON object.
func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// hostModules are the path modules of TestNixosSystem.
var hostModules = map[string]string{
	"common/default.nix": `{ lib, ... }:
{
  imports = [ ./users.nix ];
  services.app.enable = lib.mkDefault true;
  services.app.port = lib.mkDefault 80;
  time.timeZone = "UTC";
}
`,
	"common/users.nix": `{
  users.users.root.keys = [ "ssh-ed25519 common" ];
}
`,
	"hosts/app1.nix": `{ config, lib, pkgs, modulesPath, ... }:
{
  imports = [ ../common (modulesPath + "/profiles/minimal.nix") ];
  networking.hostName = "app1";
  services.app.port = 8080;
  users.users.root.keys = [ "ssh-ed25519 app1" ];
  environment.systemPackages = [ pkgs.hello ];
  environment.etc."app.conf".text = "port=${toString config.services.app.port}\n";
}
`,
}

func TestNixosSystem(t *testing.T) {
	t.Parallel()
	fix := fixtureDir(t)
	dir := t.TempDir()
	writeFiles(t, dir, hostModules)

	tests := []struct {
		name        string
		specialArgs string
		modules     string
		host        string
		version     string
		config      map[string]string // dotted path in config.json -> its JSON
		absent      []string          // dotted paths that must not be in config.json
		files       map[string]string // file in the toplevel -> content
	}{{
		name: "attrset module",
		modules: `[ {
		  networking.hostName = "web1";
		  services.nginx.enable = true;
		  services.nginx.virtualHosts."example.org".root = "/srv/www";
		} ]`,
		host:    "web1",
		version: "25.11",
		config: map[string]string{
			"networking.hostName":        `"web1"`,
			"services.nginx":             `{"enable":true,"virtualHosts":{"example.org":{"root":"/srv/www"}}}`,
			"environment.etc":            `{"hostname":{"text":"web1\n"}}`,
			"environment.systemPackages": `[]`,
			"system.nixos.version":       `"25.11"`,
			"system.build":               `{"etc":"<derivation etc-web1>","toplevel":"<derivation nixos-system-web1-25.11>"}`,
			"fleet.test":                 `{"activationDelay":0,"failActivation":false,"payload":{"count":0,"sizeKB":1024},"postActivation":"","unitsFailed":false}`,
		},
		files: map[string]string{"nixos-version": "25.11", "etc/hostname": "web1\n"},
	}, {
		name:        "function module reading specialArgs",
		specialArgs: `{ name = "db1"; version = "24.05"; role = "database"; }`,
		modules: `[ ({ config, lib, name, role, ... }: {
		  services.postgresql.enable = role == "database";
		  environment.etc."role".text = "${name}:${role}:${config.networking.hostName}\n";
		}) ]`,
		host:    "db1",
		version: "24.05",
		config: map[string]string{
			"networking.hostName":        `"db1"`,
			"system.nixos.version":       `"24.05"`,
			"services.postgresql.enable": `true`,
			"environment.etc.role.text":  `"db1:database:db1\n"`,
		},
		files: map[string]string{"nixos-version": "24.05", "etc/role": "db1:database:db1\n", "etc/hostname": "db1\n"},
	}, {
		name: "path module with imports",
		// common is imported twice (here and by app1.nix): a module imported
		// by path is included once, so its list entry is not duplicated.
		specialArgs: `{ name = "ignored"; }`,
		modules:     fmt.Sprintf(`[ %s %s ]`, nixPath(filepath.Join(dir, "hosts/app1.nix")), nixPath(filepath.Join(dir, "common"))),
		host:        "app1",
		version:     "25.11",
		config: map[string]string{
			"networking.hostName":        `"app1"`,
			"services.app":               `{"enable":true,"port":8080}`,
			"time.timeZone":              `"UTC"`,
			"users.users.root.keys":      `["ssh-ed25519 app1","ssh-ed25519 common"]`,
			"documentation.enable":       `false`,
			"environment.systemPackages": `["<derivation hello-2.12>"]`,
		},
		files: map[string]string{"etc/app.conf": "port=8080\n", "etc/hostname": "app1\n"},
	}, {
		name:        "mkDefault mkForce mkIf mkMerge",
		specialArgs: `{ name = "mk"; }`,
		modules: `[
		  ({ config, lib, ... }: {
		    networking.hostName = lib.mkForce "forced";
		    services.web.enable = true;
		    services.web.port = lib.mkDefault 80;
		    services.proxy = lib.mkIf config.services.web.enable {
		      upstream = "127.0.0.1:${toString config.services.web.port}";
		    };
		    services.unused = lib.mkIf false { enable = true; };
		    services.list = lib.mkMerge [ (lib.mkAfter [ "c" ]) [ "b" ] (lib.mkBefore [ "a" ]) ];
		  })
		  { networking.hostName = "plain"; services.web.port = 8081; }
		  { config.services.web.port = 8081; options = { }; }
		]`,
		host:    "forced",
		version: "25.11",
		config: map[string]string{
			"networking.hostName": `"forced"`,
			"services.web":        `{"enable":true,"port":8081}`,
			"services.proxy":      `{"upstream":"127.0.0.1:8081"}`,
			"services.list":       `["a","b","c"]`,
		},
		absent: []string{"services.unused"},
		files:  map[string]string{"etc/hostname": "forced\n"},
	}, {
		name:        "sops-nix module from inputs",
		specialArgs: `{ name = "vault"; }`,
		modules: `[ ({ inputs, ... }: {
		  imports = [ inputs.sops-nix.nixosModules.sops ];
		  sops.secrets.db-password = { };
		  sops.secrets.api-token = { };
		}) ]`,
		host:    "vault",
		version: "25.11",
		config: map[string]string{
			"sops.enabled":         `true`,
			"sops.defaultSopsFile": `null`,
			"sops.secrets":         `{"api-token":{},"db-password":{}}`,
		},
		files: map[string]string{"etc/sops-nix/secrets": "api-token\ndb-password\n"},
	}}

	closures := map[string][]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specialArgs := tt.specialArgs
			if specialArgs == "" {
				specialArgs = "{ }"
			}
			out := mustBuild(t, hostExpr(fix, "x86_64-linux", specialArgs, tt.modules))

			if want := "-nixos-system-" + tt.host + "-" + tt.version; !strings.HasSuffix(out, want) {
				t.Errorf("toplevel %s: want name ending in %q", out, want)
			}
			var config map[string]any
			if err := json.Unmarshal([]byte(readFile(t, filepath.Join(out, "config.json"))), &config); err != nil {
				t.Fatalf("config.json: %v", err)
			}
			for path, want := range tt.config {
				got, ok := lookup(config, path)
				if !ok {
					t.Errorf("config.json: %s missing", path)
					continue
				}
				var wantV any
				if err := json.Unmarshal([]byte(want), &wantV); err != nil {
					t.Fatalf("bad test want %q: %v", want, err)
				}
				if !reflect.DeepEqual(got, wantV) {
					gotJSON, _ := json.Marshal(got)
					t.Errorf("config.json: %s = %s, want %s", path, gotJSON, want)
				}
			}
			for _, path := range tt.absent {
				if v, ok := lookup(config, path); ok {
					t.Errorf("config.json: %s = %v, want it absent", path, v)
				}
			}
			for name, want := range tt.files {
				if got := readFile(t, filepath.Join(out, name)); got != want {
					t.Errorf("%s: got %q, want %q", name, got, want)
				}
			}
			if got, want := readFile(t, filepath.Join(out, "etc/fleet/config.json")), readFile(t, filepath.Join(out, "config.json")); got != want {
				t.Errorf("etc/fleet/config.json differs from config.json")
			}

			cl := closure(t, out)
			if len(cl) < 2 {
				t.Errorf("closure of %s has %d paths, want >= 2: %v", out, len(cl), cl)
			}
			etcLink, err := os.Readlink(filepath.Join(out, "etc"))
			if err != nil {
				t.Fatal(err)
			}
			if etcDrv := filepath.Dir(etcLink); !strings.HasSuffix(etcDrv, "-etc-"+tt.host) || !contains(cl, etcDrv) {
				t.Errorf("etc -> %s: want a separate store path etc-%s in the closure %v", etcLink, tt.host, cl)
			}
			closures[tt.name] = cl
		})
	}

	// Every host's closure is different from every other's (no shared
	// toplevel or etc path).
	names := make([]string, 0, len(closures))
	for n := range closures {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, a := range names {
		for _, b := range names[i+1:] {
			for _, p := range closures[a] {
				if contains(closures[b], p) && (strings.Contains(p, "-etc-") || strings.Contains(p, "-nixos-system-")) {
					t.Errorf("hosts %q and %q share %s", a, b, p)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestEvalErrors(t *testing.T) {
	t.Parallel()
	fix := fixtureDir(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.nix": `{ networking.domain = "a.example"; }` + "\n",
		"b.nix": `{ lib, ... }: { imports = [ ./c.nix ]; networking.domain = lib.mkDefault "ignored"; }` + "\n",
		"c.nix": `{ networking.domain = "c.example"; }` + "\n",
	})
	tests := []struct {
		name    string
		modules string
		want    []string // substrings of stderr
	}{{
		name:    "conflicting scalars in path modules",
		modules: fmt.Sprintf("[ %s %s ]", nixPath(filepath.Join(dir, "a.nix")), nixPath(filepath.Join(dir, "b.nix"))),
		want: []string{
			"The option `networking.domain' has conflicting definition values",
			filepath.Join(dir, "a.nix") + `': "a.example"`,
			filepath.Join(dir, "c.nix") + `': "c.example"`,
		},
	}, {
		name:    "conflicting scalars in inline modules",
		modules: `[ { services.web.port = 80; } ({ lib, ... }: { services.web.port = lib.mkDefault 1; }) { services.web.port = 443; } ]`,
		want:    []string{"The option `services.web.port' has conflicting definition values", "modules[0]': 80", "modules[2]': 443"},
	}, {
		name:    "conflicting mkForce",
		modules: `[ { networking.hostName = lib.mkForce "a"; } { networking.hostName = lib.mkForce "b"; } ]`,
		want:    []string{"The option `networking.hostName' has conflicting definition values"},
	}, {
		name:    "list and scalar",
		modules: `[ { boot.kernelModules = [ "kvm" ]; } { boot.kernelModules = "kvm"; } ]`,
		want:    []string{"The option `boot.kernelModules' has definitions of different types"},
	}, {
		name:    "reading an option only defined under mkIf false",
		modules: `[ ({ config, lib, ... }: { services.a = lib.mkIf false { port = 1; }; services.b.port = config.services.a.port; }) ]`,
		want:    []string{"The option `services.a.port' is used but not defined."},
	}, {
		name:    "non-boolean mkIf condition",
		modules: `[ { services.a = lib.mkIf "yes" { enable = true; }; } ]`,
		want:    []string{"mkIf condition for option `services.a.enable' is a string, not a boolean"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, stderr, err := build(t, "", hostExpr(fix, "x86_64-linux", "{ }", tt.modules))
			if err == nil {
				t.Fatalf("build succeeded (%s), want an evaluation error", b.Outputs["out"])
			}
			for _, want := range tt.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, stderr)
				}
			}
		})
	}
}

// TestForeignSystem: the system derivations are for the given system, so
// Nix refuses to build an aarch64-linux system on x86_64 unless told
// extra-platforms = aarch64-linux (the builder, /bin/sh, then just runs).
func TestForeignSystem(t *testing.T) {
	t.Parallel()
	fix := fixtureDir(t)
	var foreign string
	switch runtime.GOARCH {
	case "amd64":
		foreign = "aarch64-linux"
	case "arm64":
		foreign = "x86_64-linux"
	default:
		t.Skipf("no foreign system defined for GOARCH=%s", runtime.GOARCH)
	}
	// A fresh host name, so the outputs are not already valid in the store
	// (Nix does not check the platform of something it need not build).
	host := fmt.Sprintf("foreign-%d", time.Now().UnixNano())
	expr := hostExpr(fix, foreign, fmt.Sprintf("{ name = %s; }", nixStr(host)), "[ ]")

	// Override whatever nix.conf says: no extra platforms.
	_, stderr, err := build(t, "extra-platforms =\n", expr)
	if err == nil {
		t.Fatalf("building a %s system succeeded without extra-platforms", foreign)
	}
	if want := "a '" + foreign + "' with features {} is required to build"; !strings.Contains(stderr, want) {
		t.Errorf("stderr does not contain %q:\n%s", want, stderr)
	}

	b, stderr, err := build(t, "extra-platforms = "+foreign+"\n", expr)
	if err != nil {
		t.Fatalf("building a %s system with extra-platforms = %s: %v\n%s", foreign, foreign, err, stderr)
	}
	if drv := readFile(t, b.DrvPath); !strings.Contains(drv, `"system","`+foreign+`"`) {
		t.Errorf("%s does not have system = %s:\n%s", b.DrvPath, foreign, drv)
	}
	if out := b.Outputs["out"]; !strings.HasSuffix(out, "-nixos-system-"+host+"-25.11") {
		t.Errorf("unexpected toplevel %s", out)
	}
}

// TestPayload: fleet.test.payload = { count; sizeKB; } adds count store
// paths of sizeKB KiB each to the closure, different per host.
func TestPayload(t *testing.T) {
	t.Parallel()
	fix := fixtureDir(t)
	const count, sizeKB = 3, 4
	payloadOf := func(host string) []string {
		out := mustBuild(t, hostExpr(fix, "x86_64-linux", fmt.Sprintf("{ name = %s; }", nixStr(host)),
			fmt.Sprintf("[ { fleet.test.payload = { count = %d; sizeKB = %d; }; } ]", count, sizeKB)))
		cl := closure(t, out)
		var payload []string
		for _, p := range cl {
			if strings.Contains(p, "-fleet-payload-") {
				payload = append(payload, p)
			}
		}
		if len(cl) != 2+count || len(payload) != count {
			t.Fatalf("closure of %s has %d paths (%d payload), want %d (%d payload): %v", out, len(cl), len(payload), 2+count, count, cl)
		}
		listed := strings.Fields(readFile(t, filepath.Join(out, "payload")))
		sort.Strings(listed)
		sort.Strings(payload)
		if !reflect.DeepEqual(listed, payload) {
			t.Errorf("toplevel's payload file lists %v, closure has %v", listed, payload)
		}
		contents := map[string]bool{}
		for _, p := range payload {
			data := readFile(t, p)
			if len(data) != sizeKB*1024 {
				t.Errorf("%s has %d bytes, want %d", p, len(data), sizeKB*1024)
			}
			if !strings.HasPrefix(data, "fleet payload host="+host+" index=") {
				t.Errorf("%s starts with %q", p, data[:40])
			}
			contents[data] = true
		}
		if len(contents) != count {
			t.Errorf("payload paths of %s are not distinct", host)
		}
		return payload
	}
	a, b := payloadOf("payload-a"), payloadOf("payload-b")
	for _, p := range a {
		if contains(b, p) {
			t.Errorf("hosts share payload path %s", p)
		}
	}
}

// TestFlakeExample builds the flake's own example, as README.md shows.
func TestFlakeExample(t *testing.T) {
	t.Parallel()
	fix := fixtureDir(t)
	stdout, stderr, err := run(t, "", "nix", "build", "--json", "--no-link",
		"path:"+fix+"#nixosConfigurations.example.config.system.build.toplevel")
	if err != nil {
		t.Fatalf("nix build: %v\n%s", err, stderr)
	}
	var res []built
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || len(res) != 1 {
		t.Fatalf("nix build --json: %q (%v)", stdout, err)
	}
	out := res[0].Outputs["out"]
	if got := readFile(t, filepath.Join(out, "etc/motd")); got != "Welcome to example\n" {
		t.Errorf("etc/motd = %q", got)
	}
	if cl := closure(t, out); len(cl) != 3 { // toplevel, etc, hello
		t.Errorf("closure %v, want 3 paths", cl)
	}
}
