package e2e

import (
	"encoding/json"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// TestStatus: after deploying 2 of 3 hosts, status says exactly that;
// after a change to the file, the deployed hosts have drifted; an
// unreachable host is reported as such.
func TestStatus(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c"}})
	v1 := rolloutDir(t, l, "1.0", nil, "")
	if r := fleet(t, append(runArgs(l, v1), "--on", "a,b")...); r.code != 0 {
		t.Fatalf("deploy: exit %d\n%s", r.code, r.stderr)
	}
	status := func(file string) (map[string]string, int) {
		r := fleet(t, "status", "--json", "--ssh-config", l.SSHConfig,
			"--override-input", "nixpkgs="+root+"/testdata/mini-nixpkgs", file)
		var rows []struct{ Host, Status string }
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
			t.Fatalf("%v: %s %s", err, r.stdout, r.stderr)
		}
		m := map[string]string{}
		for _, row := range rows {
			m[row.Host] = row.Status
		}
		return m, r.code
	}
	got, code := status(v1)
	if got["a"] != "up-to-date" || got["b"] != "up-to-date" || got["c"] != "never-deployed" || code != 1 {
		t.Errorf("status %v exit %d", got, code)
	}
	l.Host("b").StopSSHD()
	got, _ = status(rolloutDir(t, l, "2.0", nil, ""))
	if got["a"] != "drifted" || got["b"] != "unreachable" || got["c"] != "never-deployed" {
		t.Errorf("status after a change: %v", got)
	}
}
