package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSecretTags: plans show a secret as a keyed tag, the same in every
// plan with one state directory and different in another; neither the
// content nor its plain SHA-256 (whole or the 64 bits fleet once
// showed) appears in any output, and the key is the state directory's
// own, mode 0600.
func TestSecretTags(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }\n"), 0o644)
	file := filepath.Join(dir, "fleet.star")
	os.WriteFile(file, []byte(`host(name = "a", target_host = "a", nixos = nixos_system(), keys = [secret("/run/keys/pin", text = "4711")])`+"\n"), 0o644)
	sum := sha256.Sum256([]byte("4711"))
	unsalted := hex.EncodeToString(sum[:])
	if unsalted[:16] != "de650d61f5bd166a" {
		t.Fatalf("sha256 of 4711: %s", unsalted)
	}
	tagRE := regexp.MustCompile(`hmac-sha256:[0-9a-f]{16}\b`)
	plan := func(state string, args ...string) (tag, all string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := Main(append([]string{"fleet", "plan", "--state-dir", state}, append(args, file)...), &out, &errb); code != 0 {
			t.Fatalf("plan %v: exit %d\n%s", args, code, errb.String())
		}
		all = out.String() + errb.String()
		for _, bad := range []string{"4711", unsalted[:16], "sha256:"} {
			if strings.Contains(strings.ReplaceAll(all, "hmac-sha256:", ""), bad) {
				t.Errorf("plan %v shows %q:\n%s", args, bad, all)
			}
		}
		return tagRE.FindString(all), all
	}
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	tagA, all := plan(a, "--json")
	var p struct {
		Steps []struct {
			Key struct{ Hash string } `json:"key"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(all[:strings.LastIndex(all, "}")+1]), &p); err != nil || len(p.Steps) == 0 {
		t.Fatalf("plan --json: %v\n%s", err, all)
	}
	var keyed string
	for _, s := range p.Steps {
		if s.Key.Hash != "" {
			keyed = s.Key.Hash
		}
	}
	if keyed == "" || keyed != tagA {
		t.Errorf("the key step's hash is %q, tag %q", keyed, tagA)
	}
	for _, args := range [][]string{nil, {"--events"}, {"--json"}} {
		if tag, all := plan(a, args...); tag != tagA {
			t.Errorf("plan %v with the same state dir: tag %q, want %q\n%s", args, tag, tagA, all)
		}
	}
	if tagB, _ := plan(b, "--json"); tagB == "" || tagB == tagA {
		t.Errorf("two state dirs, tags %q and %q: want two different tags", tagA, tagB)
	}
	st, err := os.Stat(filepath.Join(a, "secret-tag.key"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Errorf("key file: %v %v", st, err)
	}
	if st, err := os.Stat(a); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v", st, err)
	}

	// A plan without secrets leaves the state directory alone.
	os.WriteFile(file, []byte(`host(name = "a", target_host = "a", nixos = nixos_system())`+"\n"), 0o644)
	c := filepath.Join(t.TempDir(), "c")
	plan(c)
	if _, err := os.Stat(c); !os.IsNotExist(err) {
		t.Errorf("a plan without secrets made the state dir: %v", err)
	}
}
