package e2e

import (
	"os"
	osexec "os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// TestAskSudoPassword deploys as a target user whose sudo wants a
// password: without --ask-sudo-password the run fails saying so; with
// it, the password (one line of stdin, as in CI) is typed to sudo and
// the deploy succeeds, the password nowhere in the output.
func TestAskSudoPassword(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a"}})
	file := rolloutDir(t, l, "1.0", nil, "")
	text := strings.Replace(readFile(t, file), `target_host = name,`, `target_host = name, target_user = "`+lab.OpsUser+`",`, 1)
	writeFile(t, file, text)

	r := fleet(t, runArgs(l, file)...)
	if r.code != 1 || !strings.Contains(r.stderr, "needs a password") {
		t.Fatalf("without the password: exit %d\n%s", r.code, r.stderr)
	}
	cmd := osexec.Command(binary(t), append(runArgs(l, file), "--ask-sudo-password")...)
	cmd.Stdin = strings.NewReader(lab.OpsPassword + "\n")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no terminal to ask on
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("with the password: %v\n%s", err, out)
	}
	if strings.Contains(string(out), lab.OpsPassword) {
		t.Errorf("the password appears in the output")
	}
	cl := closures(events(t, jsonLines(string(out))))
	if got := current(t, l.Host("a")); got != cl["a"] || got == "" {
		t.Errorf("a runs %q, want %q", got, cl["a"])
	}
}

func jsonLines(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "{") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
