// Package e2e deploys with fleet to a lab of real sshd + Nix hosts
// (internal/lab): real builds, real pushes, real activations. The tests
// run fleet's CLI in-process, inside the lab's private network namespace.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/cli"
	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/lab/labtest"
)

func TestMain(m *testing.M) {
	// Journals of test runs stay out of the real state directory.
	state, _ := os.MkdirTemp("", "fleet-e2e-state")
	os.Setenv("XDG_STATE_HOME", state)
	code := labtest.Main(m) // with internal/nixconf's Nix settings
	os.RemoveAll(state)
	os.Exit(code)
}

var root = func() string {
	r, _ := filepath.Abs("../..")
	return r
}()

// overrides point the homelab's flake inputs at offline stand-ins.
func overrides() []string {
	return []string{
		"--override-input", "nixpkgs=" + filepath.Join(root, "testdata/mini-nixpkgs"),
		"--override-input", "sops-nix=" + filepath.Join(root, "testdata/mini-nixpkgs/sops-nix"),
		"--override-input", "disko=" + filepath.Join(root, "testdata/lab/stub-inputs"),
		"--override-input", "home-manager=" + filepath.Join(root, "testdata/lab/stub-inputs"),
	}
}

func startLab(t *testing.T, opts lab.Options) *lab.Lab {
	t.Helper()
	labtest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := lab.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

type result struct {
	stdout, stderr string
	code           int
}

// fleet runs the CLI in-process.
func fleet(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(append([]string{"fleet"}, args...), &out, &errb)
	t.Logf("fleet %s\n-> exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return result{out.String(), errb.String(), code}
}

// event is the subset of `fleet run --json` events the tests read.
type event struct {
	Event string `json:"event"`
	Host  string `json:"host"`
	Error string `json:"error"`
	Step  *struct {
		Host    string   `json:"host"`
		Action  string   `json:"action"`
		Goal    string   `json:"goal"`
		Target  string   `json:"target"`
		Closure string   `json:"closure"`
		Argv    []string `json:"argv"`
		Result  *struct {
			Paths   int    `json:"paths"`
			Missing int    `json:"missing"`
			Bytes   int64  `json:"bytes"`
			Current string `json:"current"`
		} `json:"result"`
	} `json:"step"`
	Changed []string          `json:"changed"`
	Failed  map[string]string `json:"failed"`
}

func events(t *testing.T, out string) []event {
	t.Helper()
	var evs []event
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("bad event %q: %v", sc.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs
}

// closures returns host -> closure from the build step_end events.
func closures(evs []event) map[string]string {
	m := map[string]string{}
	for _, e := range evs {
		if e.Event == "step_end" && e.Step.Action == "build" && e.Error == "" {
			m[e.Host] = e.Step.Closure
		}
	}
	return m
}

func pushes(evs []event) map[string]int {
	m := map[string]int{}
	for _, e := range evs {
		if e.Event == "step_end" && e.Step.Action == "push" && e.Step.Result != nil {
			m[e.Host] = e.Step.Result.Missing
		}
	}
	return m
}

func current(t *testing.T, h *lab.Host) string {
	t.Helper()
	cur, err := h.CurrentSystem()
	if err != nil {
		t.Fatal(err)
	}
	return cur
}

func exec(t *testing.T, h *lab.Host, script string) string {
	t.Helper()
	out, err := h.Exec(context.Background(), script)
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", h.Name, script, err, out)
	}
	return strings.TrimSpace(out)
}

func activations(t *testing.T, h *lab.Host) int {
	out := exec(t, h, "cat /nix/var/log/switch-to-configuration.log 2>/dev/null || true")
	if out == "" {
		return 0
	}
	return len(strings.Split(out, "\n"))
}

// TestHomelab deploys the seed's homelab (examples/homelab, unchanged)
// to the lab, its 10.0.0.x addresses mapped to lab hosts by ssh_config.
func TestHomelab(t *testing.T) {
	l := startLab(t, lab.Options{
		Hosts:   []string{"envy", "lenovo", "rpi4-a"},
		Aliases: map[string]string{"10.0.0.10": "envy", "10.0.0.61": "lenovo", "10.0.0.11": "rpi4-a"},
	})
	file := filepath.Join(root, "examples/homelab/fleet.star")
	base := append([]string{"run", "--json", "--ssh-config", l.SSHConfig}, overrides()...)
	envy, lenovo, rpi := l.Host("envy"), l.Host("lenovo"), l.Host("rpi4-a")

	// --on envy,lenovo touches only those two.
	r := fleet(t, append(base, "--on", "envy,lenovo", file)...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	evs := events(t, r.stdout)
	cl := closures(evs)
	if len(cl) != 2 || cl["envy"] == "" || cl["lenovo"] == "" || cl["envy"] == cl["lenovo"] {
		t.Fatalf("closures %v", cl)
	}
	if got := current(t, envy); got != cl["envy"] {
		t.Errorf("envy runs %q, want %q", got, cl["envy"])
	}
	if got := current(t, lenovo); got != cl["lenovo"] {
		t.Errorf("lenovo runs %q, want %q", got, cl["lenovo"])
	}
	if got := current(t, rpi); got != "" || activations(t, rpi) != 0 {
		t.Errorf("rpi4-a was not selected but runs %q", got)
	}
	if out := exec(t, rpi, "ls /nix/store 2>/dev/null | wc -l"); out != "0" {
		t.Errorf("rpi4-a's store received %s paths", out)
	}
	// Each host received its own closure into its own store, and the
	// profile is a real generation.
	for _, c := range []struct {
		h           *lab.Host
		mine, else_ string
	}{{envy, cl["envy"], cl["lenovo"]}, {lenovo, cl["lenovo"], cl["envy"]}} {
		exec(t, c.h, "test -x "+c.mine+"/bin/switch-to-configuration && nix-store --verify-path "+c.mine)
		if out := exec(t, c.h, "test -e "+c.else_+" && echo yes || echo no"); out != "no" {
			t.Errorf("%s has the other host's closure", c.h.Name)
		}
		if got := exec(t, c.h, "readlink -f /nix/var/nix/profiles/system"); got != c.mine {
			t.Errorf("%s system profile -> %q", c.h.Name, got)
		}
		if got := exec(t, c.h, "readlink /nix/var/lab/boot/default"); got != c.mine {
			t.Errorf("%s boot entry -> %q", c.h.Name, got)
		}
		if !strings.Contains(c.mine, "nixos-system-"+c.h.Name+"-25.11") {
			t.Errorf("closure %s is not %s's system", c.mine, c.h.Name)
		}
	}
	// Every module got the whole inventory (special_args "hosts").
	var conf struct {
		Networking struct{ Hosts map[string]string } `json:"networking"`
	}
	if err := json.Unmarshal([]byte(exec(t, envy, "cat "+cl["envy"]+"/config.json")), &conf); err != nil {
		t.Fatal(err)
	}
	if h := conf.Networking.Hosts; h["lenovo"] != "10.0.0.61" || h["rpi4-a"] != "10.0.0.11" || len(h) != 3 {
		t.Errorf("envy's view of the inventory: %v", h)
	}
	var started []string
	for _, e := range evs {
		if e.Event == "step_start" {
			started = append(started, e.Host)
		}
	}
	for _, h := range started {
		if h != "envy" && h != "lenovo" {
			t.Errorf("a step ran on %s", h)
		}
	}

	// Everything: rpi4-a (aarch64-linux) too; clawfinger has no target.
	r = fleet(t, append(base, file)...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	evs = events(t, r.stdout)
	cl2 := closures(evs)
	if cl2["envy"] != cl["envy"] || cl2["rpi4-a"] == "" || strings.Contains(r.stdout, `"host":"clawfinger","step"`) {
		t.Fatalf("closures %v", cl2)
	}
	if got := current(t, rpi); got != cl2["rpi4-a"] {
		t.Errorf("rpi4-a runs %q, want %q", got, cl2["rpi4-a"])
	}
	if p := pushes(evs); p["envy"] != 0 || p["rpi4-a"] < 2 {
		t.Errorf("copied paths %v: envy had everything, rpi4-a nothing", p)
	}

	// Redeploy without change: nothing copied, and no host switched again
	// (they run the closure and their last switch succeeded).
	before := activations(t, lenovo)
	r = fleet(t, append(base, file)...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	evs = events(t, r.stdout)
	for h, n := range pushes(evs) {
		if n != 0 {
			t.Errorf("no-op redeploy copied %d paths to %s", n, h)
		}
	}
	if len(pushes(evs)) != 3 {
		t.Errorf("pushes %v", pushes(evs))
	}
	if after := activations(t, lenovo); after != before {
		t.Errorf("lenovo activations %d -> %d: an unchanged host was switched again", before, after)
	}

	// The plan is what run did: same steps, same order of program.
	p := fleet(t, "plan", "--json", "--ssh-config", l.SSHConfig, file)
	var plan struct {
		Steps []struct{ Host, Action, Goal, Target string }
	}
	if err := json.Unmarshal([]byte(p.stdout), &plan); err != nil {
		t.Fatal(err)
	}
	var planned, ran []string
	for _, s := range plan.Steps {
		planned = append(planned, fmt.Sprint(s.Host, " ", s.Action, " ", s.Goal, " ", s.Target))
	}
	for _, e := range evs {
		if e.Event == "step_start" {
			ran = append(ran, fmt.Sprint(e.Step.Host, " ", e.Step.Action, " ", e.Step.Goal, " ", e.Step.Target))
		}
	}
	// Hosts run side by side, so the run's events interleave them as
	// they are scheduled; each host's own steps must come in the plan's
	// (program) order.
	if !reflect.DeepEqual(stepsByHost(planned), stepsByHost(ran)) {
		t.Errorf("plan:\n%s\nrun:\n%s", strings.Join(planned, "\n"), strings.Join(ran, "\n"))
	}
}

// stepsByHost groups "host ..." lines by host, keeping their order.
func stepsByHost(lines []string) map[string][]string {
	out := map[string][]string{}
	for _, l := range lines {
		host, _, _ := strings.Cut(l, " ")
		out[host] = append(out[host], l)
	}
	return out
}
