package builtins_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/runtime"
)

// TestSecretWarnings: a secret(text = ...) literal in a .star file, or a
// file = secret, that Nix copies into the store with a host's flake is
// warned about at load, once per secret() call, at its position; what
// Nix does not copy (outside the flake, untracked or ignored in a git
// work tree) is not, nor is a text computed at load (no literal holds
// it).
func TestSecretWarnings(t *testing.T) {
	const lib = "def mk(dest, t):\n    return secret(dest, text = t)\n"
	const flake = "{ outputs = { self }: { }; }\n"
	for _, tc := range []struct {
		name  string
		git   []string          // files to git add (nil: no work tree)
		files map[string]string // besides flake/flake.nix and blob.key files
		main  string            // the main file's path
		want  []string          // warnings, "POS: substring"
	}{
		{
			name:  "path flake holds fleet.star and the file",
			files: map[string]string{"flake/in.key": "k"},
			main:  "flake/fleet.star",
			want: []string{
				`fleet.star:3:11: secret("/run/keys/t"): its text is written in ` + "flake/fleet.star, which lies in the flake DIR/flake, which Nix copies whole",
				`fleet.star:3:50: secret("/run/keys/f"): its file DIR/flake/in.key lies in the flake DIR/flake`,
			},
		},
		{
			name:  "fleet.star outside the flake, file inside",
			files: map[string]string{"flake/in.key": "k"},
			main:  "fleet.star",
			want:  []string{`fleet.star:3:50: secret("/run/keys/f"): its file DIR/flake/in.key lies in the flake DIR/flake`},
		},
		{
			name:  "git: fleet.star and key ignored",
			git:   []string{"flake/flake.nix", ".gitignore"},
			files: map[string]string{"flake/in.key": "k", ".gitignore": "*.key\nfleet.star\n"},
			main:  "flake/fleet.star",
		},
		{
			name:  "git: fleet.star and key tracked",
			git:   []string{"flake/flake.nix", "flake/fleet.star", "flake/in.key", "flake/lib.star"},
			files: map[string]string{"flake/in.key": "k"},
			main:  "flake/fleet.star",
			want: []string{
				`fleet.star:3:11: secret("/run/keys/t"): its text is written in flake/fleet.star, which lies in the flake DIR/flake, whose files git tracks Nix copies (git+file://DIR)`,
				`fleet.star:3:50: secret("/run/keys/f"): its file DIR/flake/in.key lies in the flake DIR/flake, whose files git tracks`,
			},
		},
		{
			name:  "git: a tracked lib makes the secret, the literal is in an untracked fleet.star",
			git:   []string{"flake/flake.nix", "flake/lib.star"},
			files: map[string]string{"flake/in.key": "k"},
			main:  "flake/fleet.star",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"flake/flake.nix": flake, "flake/lib.star": lib}
			for f, text := range tc.files {
				files[f] = text
			}
			flakeRel, _ := filepath.Rel(filepath.Dir(filepath.Join(dir, tc.main)), filepath.Join(dir, "flake"))
			libRel, _ := filepath.Rel(filepath.Dir(filepath.Join(dir, tc.main)), filepath.Join(dir, "flake/lib.star"))
			keyRel, _ := filepath.Rel(filepath.Dir(filepath.Join(dir, tc.main)), filepath.Join(dir, "flake/in.key"))
			files[tc.main] = `load("` + libRel + `", "mk")
[host(name = "h%d" % i, target_host = "h%d" % i, nixos = nixos_system(flake = "` + flakeRel + `"), keys = [
    secret("/run/keys/t", text = "LIT\n"), secret("/run/keys/f", file = "` + keyRel + `"),
    mk("/run/keys/m", "LIT2"), secret("/run/keys/computed", text = "ab" + "cd")]) for i in range(3)]
`
			for f, text := range files {
				os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
				if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.git != nil {
				for _, args := range [][]string{{"init", "-q"}, append([]string{"add"}, tc.git...)} {
					if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
						t.Fatalf("git %v: %v\n%s", args, err, out)
					}
				}
			}
			wd, _ := os.Getwd()
			os.Chdir(dir)
			defer os.Chdir(wd)
			prog, err := runtime.Load(context.Background(), tc.main, builtins.Universe())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range prog.Warnings() {
				got = append(got, w.String())
			}
			// The literal in fleet.star handed to lib.star's secret() call:
			// warned at that call, as the text is in a file Nix copies.
			want := append([]string(nil), tc.want...)
			if len(want) > 0 && strings.HasPrefix(tc.main, "flake/") {
				want = append(want, `lib.star:2:18: secret("/run/keys/m"): its text is written in flake/fleet.star`)
			}
			if len(got) != len(want) {
				t.Fatalf("warnings:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
			}
			for i, w := range want {
				w = strings.ReplaceAll(w, "DIR", dir)
				if !strings.Contains(got[i], w) || !strings.Contains(got[i], `command = ["sops", "-d", ...]`) {
					t.Errorf("warning %d:\n%s\nwant ~\n%s", i, got[i], w)
				}
			}
		})
	}
}
