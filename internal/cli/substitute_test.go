package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanSubstitute: the plan marks "(substitute)" the pushes of hosts
// with substitute = True, and with --substitute-on-destination every
// push; the JSON plan says "substitute": true on those steps alone.
func TestPlanSubstitute(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }\n"), 0o644)
	file := filepath.Join(dir, "fleet.star")
	os.WriteFile(file, []byte(`host(name = "near", target_host = "192.0.2.1", substitute = True, attr = ".#nixosConfigurations.near")
host(name = "far", target_host = "192.0.2.2", attr = ".#nixosConfigurations.far")
`), 0o644)
	plan := func(args ...string) string {
		var out, errb bytes.Buffer
		if code := Main(append(append([]string{"fleet", "plan"}, args...), file), &out, &errb); code != 0 {
			t.Fatalf("plan %s: exit %d\n%s%s", args, code, out.String(), errb.String())
		}
		return out.String()
	}
	pushes := func(out string) map[string]bool { // host -> marked
		m := map[string]bool{}
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 2 && f[2] == "push" {
				m[f[1]] = strings.Contains(l, " (substitute)")
			}
		}
		return m
	}
	for _, tc := range []struct {
		args      []string
		near, far bool
	}{
		{nil, true, false},
		{[]string{"--substitute-on-destination"}, true, true},
	} {
		got := pushes(plan(tc.args...))
		if len(got) != 2 || got["near"] != tc.near || got["far"] != tc.far {
			t.Errorf("plan %s: pushes marked %v, want near %v, far %v", tc.args, got, tc.near, tc.far)
		}
	}
	js := plan("--json")
	if strings.Count(js, `"substitute": true`) != 1 {
		t.Errorf(`plan --json: want "substitute": true on near's push alone:\n%s`, js)
	}
}
