package builtins_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/internal/nixenc"
	"github.com/fleet-deploy/fleet/internal/nixgen"
	"github.com/fleet-deploy/fleet/runtime"
)

// TestNestingCheckedWhereWritten: a value nested deeper than Nix's
// encoding takes (nixenc.MaxDepth) is refused by the builtin it is
// given to, with file:line:col, so that check and plan fail and not the
// deploy. The deepest value accepted still generates: the check and the
// encoding count the same levels.
func TestNestingCheckedWhereWritten(t *testing.T) {
	const nest = `
def nest(n):
    v = None
    for i in range(n):
        v = [v]
    return v
`
	tests := []struct {
		name string
		call string // %d: how many lists to nest
		max  int    // the most lists the encoding takes there
		want string // the error after file:line:col
	}{
		// special_args is a dict: the lists lie at levels 1...
		{"special_args", `host(name = "a", target_host = "a.lan", nixos = nixos_system(special_args = {"x": nest(%d)}))`,
			nixenc.MaxDepth - 1, `nixos_system(): special_args["x"][0][0][0][0][0][... 94 more levels]: value nested more than 100 levels deep`},
		// modules is a list of dicts: levels 2...
		{"modules", `host(name = "a", target_host = "a.lan", nixos = nixos_system(modules = [{"x": nest(%d)}]))`,
			nixenc.MaxDepth - 2, `nixos_system(): modules[0]["x"][0][0][0][0][... 94 more levels]: value nested more than 100 levels deep`},
		// vars lie in the host's attribute set: levels 2...
		{"vars", `b = host(name = "b", vars = {"x": nest(%d)}, attr = ".#nixosConfigurations.b")
host(name = "a", target_host = "a.lan", nixos = nixos_system(special_args = {"b": b}))`,
			nixenc.MaxDepth - 2, `host("b"): vars["x"][0][0][0][0][0][... 93 more levels]: value nested more than 100 levels deep`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }"), 0o644); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "fleet.star")
			loadDepth := func(n int) (*runtime.Program, error) {
				src := nest + fmt.Sprintf(tt.call, n) + "\n"
				if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
				return runtime.Load(context.Background(), file, builtins.Universe())
			}

			prog, err := loadDepth(tt.max)
			if err != nil {
				t.Fatalf("%d levels: %v", tt.max, err)
			}
			if _, _, err := nixgen.Build(prog.Hosts(), nil); err != nil {
				t.Fatalf("%d levels load but do not generate: %v", tt.max, err)
			}

			_, err = loadDepth(tt.max + 1)
			if err == nil {
				t.Fatalf("%d levels: no error", tt.max+1)
			}
			pos, msg, _ := strings.Cut(err.Error(), ": ")
			if !strings.HasPrefix(pos, file+":") || strings.Count(pos, ":") != 2 || msg != tt.want {
				t.Errorf("%d levels:\n got %s\nwant %s:LINE:COL: %s", tt.max+1, err, file, tt.want)
			}
		})
	}
}
