package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// TestKeys uploads keys from text, file and command, pre- and
// post-activation: owner, group, mode and content are exact, and no
// secret shows in the run's output, its plan, or any process's argv on
// the host. A key whose command fails stops that host before activation.
func TestKeys(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	dir := t.TempDir()
	binary := make([]byte, 4096)
	rand.Read(binary)
	binary = append(binary, []byte("\x00SECRET-FILE-MARK\xff")...)
	os.WriteFile(filepath.Join(dir, "blob.key"), binary, 0o600)
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(`{ inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11"; outputs = { self, nixpkgs }: { }; }`), 0o644)
	os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(`
def node(name, keys):
    return host(name = name, target_host = name, target_user = "nixos", keys = keys,
                nixos = nixos_system(modules = [], special_args = {"name": name}))

node("a", [
    secret("/run/keys/text", text = "SECRET-TEXT-MARK\n\x01\x02"),
    secret("/run/keys/blob", file = "blob.key", owner = "nixos", group = "nixos", mode = "0440"),
    secret("/var/lib/app/cmd.key", command = ["sh", "-c", "printf SECRET-CMD-MARK"], mode = "600", upload = "post-activation"),
])
node("b", [secret("/run/keys/broken", command = ["false"])])
`), 0o644)
	file := filepath.Join(dir, "fleet.star")

	// Watch every process's argv on a while the deploy runs.
	ctx, stop := context.WithCancel(context.Background())
	var ps strings.Builder
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			out, _ := l.Host("a").Exec(context.Background(), "ps -eo args")
			ps.WriteString(out)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	logDir := t.TempDir()
	r := fleet(t, append(runArgs(l, file), "-v", "--log-dir", logDir)...)
	stop()
	wg.Wait()
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (b's key command fails)", r.code)
	}
	if !strings.Contains(r.stderr, "b: upload-key failed: key /run/keys/broken: command false failed") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	if activations(t, l.Host("b")) != 0 {
		t.Errorf("b was activated although its key failed")
	}
	a := l.Host("a")
	if current(t, a) == "" {
		t.Fatalf("a was not deployed")
	}
	want := map[string]struct {
		stat    string
		content []byte
	}{
		"/run/keys/text":       {"root root 600", []byte("SECRET-TEXT-MARK\n\x01\x02")},
		"/run/keys/blob":       {"nixos nixos 440", binary},
		"/var/lib/app/cmd.key": {"root root 600", []byte("SECRET-CMD-MARK")},
	}
	for dest, w := range want {
		if got := exec(t, a, "stat -c '%U %G %a' "+dest); got != w.stat {
			t.Errorf("%s: %s, want %s", dest, got, w.stat)
		}
		sum := sha256.Sum256(w.content)
		if got := exec(t, a, "sha256sum "+dest+" | cut -d' ' -f1"); got != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: content differs", dest)
		}
	}
	if out := exec(t, a, "ls -a /run/keys /var/lib/app | grep fleet-key || true"); out != "" {
		t.Errorf("temporary files left: %s", out)
	}
	plan := fleet(t, "plan", "--json", file)
	plainPlan := fleet(t, "plan", file)
	var logs strings.Builder
	entries, _ := os.ReadDir(logDir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(logDir, e.Name()))
		logs.Write(b)
	}
	if logs.Len() == 0 {
		t.Errorf("no logs in --log-dir")
	}
	marks := []string{"SECRET-TEXT-MARK", "SECRET-FILE-MARK", "SECRET-CMD-MARK"}
	// Nor the unsalted SHA-256 of any content, whole or the 64 bits
	// fleet once showed (secret(text = "4711") -> sha256:de650d61f5bd166a).
	for _, content := range [][]byte{want["/run/keys/text"].content, binary, want["/var/lib/app/cmd.key"].content} {
		sum := sha256.Sum256(content)
		marks = append(marks, hex.EncodeToString(sum[:])[:16])
	}
	for _, mark := range marks {
		for what, text := range map[string]string{"output": r.stdout + r.stderr, "plan": plan.stdout + plan.stderr,
			"plain plan": plainPlan.stdout + plainPlan.stderr, "log dir": logs.String(), "ps on the host": ps.String()} {
			if strings.Contains(text, mark) {
				t.Errorf("%s appears in the %s", mark, what)
			}
		}
	}
	if !strings.Contains(plan.stdout, `"dest": "/run/keys/text"`) || !strings.Contains(plan.stdout, `"hash": "hmac-sha256:`) {
		t.Errorf("plan does not show the key's dest and keyed tag:\n%s", plan.stdout)
	}
	// upload-keys does only that: new content arrives, nothing is activated.
	os.WriteFile(filepath.Join(dir, "blob.key"), []byte("rotated"), 0o600)
	before := activations(t, a)
	if r := fleet(t, "upload-keys", "--on", "a", "--ssh-config", l.SSHConfig, file); r.code != 0 {
		t.Fatalf("upload-keys: exit %d\n%s", r.code, r.stderr)
	}
	if got := exec(t, a, "cat /run/keys/blob"); got != "rotated" || activations(t, a) != before {
		t.Errorf("after upload-keys: %q, activations %d -> %d", got, before, activations(t, a))
	}
	if !strings.Contains(ps.String(), "fleet-key") {
		t.Logf("note: the upload was too quick for ps to see (%d bytes of ps output)", ps.Len())
	}
}
