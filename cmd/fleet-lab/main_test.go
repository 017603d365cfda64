package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/lab/labtest"
)

// With FLEET_LAB_TEST_AS_MAIN=1 the test binary is fleet-lab itself (the
// end-to-end test below runs it like that).
func TestMain(m *testing.M) {
	if os.Getenv("FLEET_LAB_TEST_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stderr))
	}
	os.Exit(m.Run())
}

func TestParse(t *testing.T) {
	var stderr bytes.Buffer
	c, code := parse([]string{"--hosts", "envy, lenovo,rpi4-a", "--alias", "10.0.0.10=envy", "--alias", "x=lenovo,y=rpi4-a", "--dir", "/tmp/d", "--", "echo", "-n", "hi"}, &stderr)
	if c == nil {
		t.Fatalf("parse failed (%d): %s", code, stderr.String())
	}
	if strings.Join(c.hosts, " ") != "envy lenovo rpi4-a" || c.dir != "/tmp/d" || strings.Join(c.cmd, " ") != "echo -n hi" {
		t.Errorf("got %+v", c)
	}
	if len(c.aliases) != 3 || c.aliases["10.0.0.10"] != "envy" || c.aliases["y"] != "rpi4-a" {
		t.Errorf("aliases %v", c.aliases)
	}

	c, _ = parse([]string{"-n", "2"}, &stderr)
	if c == nil || strings.Join(c.hosts, " ") != "host1 host2" || len(c.cmd) != 0 {
		t.Errorf("-n 2: %+v", c)
	}
	for _, bad := range [][]string{{"-n", "0"}, {"--alias", "novalue"}, {"--bogus"}} {
		if c, code := parse(bad, &stderr); c != nil || code != 2 {
			t.Errorf("parse(%q) = %+v, %d; want usage error", bad, c, code)
		}
	}
}

func TestEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 || len(lab.MissingPrograms()) > 0 {
		labtest.Skip(t, fmt.Sprintf("fleet-lab end-to-end test: need root (uid %d) and the lab's programs (missing: %v)", os.Geteuid(), lab.MissingPrograms()))
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := `set -e
test -n "$FLEET_LAB_DIR" -a -f "$FLEET_LAB_KEY" -a -f "$FLEET_LAB_KNOWN_HOSTS"
echo "hosts=$FLEET_LAB_HOSTS"
ssh -F "$FLEET_LAB_SSH_CONFIG" -o BatchMode=yes nixos@10.0.0.10 'hostname; sudo -n id -u'
echo "$FLEET_LAB_DIR" > "$OUT"
exit 7`
	out := t.TempDir() + "/dir"
	cmd := exec.Command(exe, "-q", "--hosts", "envy,lenovo", "--alias", "10.0.0.10=lenovo", "--", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "FLEET_LAB_TEST_AS_MAIN=1", "OUT="+out)
	got, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 7 {
		t.Fatalf("exit code %d (%v), want 7; output:\n%s", code, err, got)
	}
	if want := "hosts=envy lenovo\nlenovo\n0\n"; string(got) != want {
		t.Errorf("output %q, want %q", got, want)
	}
	dir, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(strings.TrimSpace(string(dir))); !os.IsNotExist(err) {
		t.Errorf("lab dir %s not removed: %v", dir, err)
	}
}
