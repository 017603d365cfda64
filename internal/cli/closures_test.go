package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClosuresFile: plan --closures shows the file's closures; run
// --closures refuses, with exit 2 and before any host is reached, a
// file that lacks a selected host, was built for another system, names
// a path no store has, or is not a closures file.
func TestClosuresFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("flake.nix", "{ outputs = { self }: { }; }\n")
	// Unroutable targets: a run that got as far as a host would fail
	// with exit 1, not 2.
	file := write("fleet.star", `host(name = "a", target_host = "192.0.2.1", attr = ".#nixosConfigurations.a")
host(name = "b", target_host = "192.0.2.2", attr = ".#nixosConfigurations.b", system = "aarch64-linux")
`)
	const pa, pb = "/nix/store/00000000000000000000000000000000-nixos-system-a-1", "/nix/store/11111111111111111111111111111111-nixos-system-b-1"
	good := write("good.json", `{"version": 1, "revision": null, "hosts": {
  "a": {"closure": "`+pa+`", "system": "x86_64-linux"},
  "b": {"closure": "`+pb+`", "system": "aarch64-linux"}}}`)
	fleetCLI := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := Main(append([]string{"fleet"}, args...), &out, &errb)
		return out.String(), errb.String(), code
	}

	out, stderr, code := fleetCLI("plan", "--closures", good, file)
	if code != 0 || !strings.Contains(out, pa) || !strings.Contains(out, pb) || strings.Contains(out, "<closure:") {
		t.Errorf("plan --closures: exit %d\n%s%s", code, out, stderr)
	}

	for _, tc := range []struct {
		name, closures string
		args           []string
		want           string
	}{
		{"missing host", `{"version": 1, "revision": "abc", "hosts": {"a": {"closure": "` + pa + `", "system": "x86_64-linux"}}}`, nil,
			"host b is selected but not in the file (it has a)"},
		{"system", `{"version": 1, "revision": null, "hosts": {"a": {"closure": "` + pa + `", "system": "aarch64-linux"}}}`, []string{"--on", "a"},
			"host a: the file's closure was built for aarch64-linux, the host is x86_64-linux"},
		{"not in the store", "", []string{"--on", "a"},
			pa + " (closure of a) is not in this machine's store and no substituter has it"},
		{"version", `{"version": 2, "hosts": {}}`, nil, "version 2, this fleet reads version 1"},
		{"not a store path", `{"version": 1, "hosts": {"a": {"closure": "/tmp/x", "system": "x86_64-linux"}}}`, nil, `closure "/tmp/x" is not a store path`},
		{"no file", "-", nil, "no such file"},
	} {
		f := good
		switch tc.closures {
		case "":
		case "-":
			f = filepath.Join(dir, "absent.json")
		default:
			f = write(tc.name+".json", tc.closures)
		}
		args := append(append([]string{"run", "--closures", f}, tc.args...), file)
		_, stderr, code := fleetCLI(args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, want 2 and %q:\n%s", tc.name, code, tc.want, stderr)
		}
	}
}
