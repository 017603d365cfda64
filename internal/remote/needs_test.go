package remote

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSourceChoice: fleet reads ssh_config itself unless the files use
// what only OpenSSH evaluates; then (ssh installed) it asks `ssh -G`.
func TestSourceChoice(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "canon.conf"), []byte("CanonicalizeHostname yes\nCanonicalDomains fleet.test\n"), 0o644)
	for _, tc := range []struct {
		name, config string
		openssh      bool
	}{
		{"plain", "Host web*\n  User alice\n  Port 2222\nHost *\n  IdentityFile ~/.ssh/id_ed25519\n", false},
		{"known Match criteria", "Match host 10.* user root exec \"true\"\n  ProxyJump bastion\nMatch final all\n  User bob\n", false},
		{"CanonicalizeHostname no", "CanonicalizeHostname no\n", false},
		{"CanonicalizeHostname", "Host *\n  CanonicalizeHostname always\n", true},
		{"Match tagged", "Match tagged prod\n  User ops\n", true},
		{"Match localnetwork", "Match !localnetwork 10.0.0.0/8\n  ProxyJump gw\n", true},
		{"through an Include", "Include " + filepath.Join(dir, "*.conf") + "\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "config")
			os.WriteFile(cfg, []byte(tc.config), 0o644)
			env := newLocalEnv()
			files, err := loadConfig([]string{cfg}, env)
			if err != nil {
				t.Fatal(err)
			}
			if got := needsOpenSSH(files, env); got != tc.openssh {
				t.Errorf("needsOpenSSH = %v, want %v", got, tc.openssh)
			}
			src, err := newSource(Options{ConfigFiles: []string{cfg}}, env)
			if err != nil {
				t.Fatal(err)
			}
			defer src.close()
			if want := tc.openssh && findSSH(Options{}) != ""; src.fromSSH() != want {
				t.Errorf("asks ssh -G = %v, want %v", src.fromSSH(), want)
			}
		})
	}
}
