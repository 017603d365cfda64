package e2e

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// withPackages is an inline module giving a host store paths named
// after packages ("tool-1.0"), in environment.systemPackages.
func withPackages(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(`(pkgs.writeText \"` + n + `\" \"` + n + `\") `)
	}
	return `nix_expr("{ pkgs, ... }: { environment.systemPackages = [ ` + b.String() + `]; }")`
}

func labArgs(l *lab.Lab, cmd string, file string, extra ...string) []string {
	args := []string{cmd, "--ssh-config", l.SSHConfig, "--override-input", "nixpkgs=" + filepath.Join(root, "testdata/mini-nixpkgs")}
	return append(append(args, extra...), file)
}

// TestDiff deploys v1 (b with tool-1.0), then changes b's module (tool
// 2.0 and a new package): fleet diff shows b changing, with exactly
// those entries, and a and c unchanged; plan --diff prints the same
// lines after the plan; nothing is deployed.
func TestDiff(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c"}})
	r := fleet(t, runArgs(l, fleetDir(t, l, "1.0", map[string]string{"b": withPackages("tool-1.0")}))...)
	if r.code != 0 {
		t.Fatalf("first deploy: exit %d\n%s", r.code, r.stderr)
	}
	v1 := closures(events(t, r.stdout))
	file := fleetDir(t, l, "1.0", map[string]string{"b": withPackages("tool-2.0", "extra-0.5")})

	r = fleet(t, labArgs(l, "diff", file, "--json")...)
	if r.code != 0 {
		t.Fatalf("diff: exit %d\n%s", r.code, r.stderr)
	}
	var doc struct {
		Version int `json:"version"`
		Hosts   []struct {
			Host    string `json:"host"`
			Current string `json:"current"`
			Changes bool   `json:"changes"`
			Added   []struct {
				Name     string   `json:"name"`
				Versions []string `json:"versions"`
			} `json:"added"`
			Removed []any `json:"removed"`
			Changed []struct {
				Name string   `json:"name"`
				Old  []string `json:"old"`
				New  []string `json:"new"`
			} `json:"changed"`
			Rebuilt      []string `json:"rebuilt"`
			PathsAdded   int      `json:"paths_added"`
			PathsRemoved int      `json:"paths_removed"`
			BytesAdded   int64    `json:"bytes_added"`
			BytesRemoved int64    `json:"bytes_removed"`
			SizeDelta    int64    `json:"size_delta"`
		} `json:"hosts"`
		Summary struct{ Hosts, Change, Unchanged, Failed int } `json:"summary"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != 1 || doc.Summary.Hosts != 3 || doc.Summary.Change != 1 || doc.Summary.Unchanged != 2 || len(doc.Hosts) != 3 {
		t.Fatalf("summary %+v", doc)
	}
	for _, h := range doc.Hosts {
		if h.Current != v1[h.Host] {
			t.Errorf("%s: current %s, want %s", h.Host, h.Current, v1[h.Host])
		}
		if h.Host != "b" {
			if h.Changes {
				t.Errorf("%s changes: %+v", h.Host, h)
			}
			continue
		}
		if !h.Changes || len(h.Added) != 1 || h.Added[0].Name != "extra" || !reflect.DeepEqual(h.Added[0].Versions, []string{"0.5"}) || len(h.Removed) != 0 {
			t.Errorf("b: added %+v, removed %+v", h.Added, h.Removed)
		}
		if len(h.Changed) != 1 || h.Changed[0].Name != "tool" || !reflect.DeepEqual(h.Changed[0].Old, []string{"1.0"}) || !reflect.DeepEqual(h.Changed[0].New, []string{"2.0"}) {
			t.Errorf("b: changed %+v", h.Changed)
		}
		// The toplevel and etc are rebuilt at the same version.
		if !reflect.DeepEqual(h.Rebuilt, []string{"etc-b", "nixos-system-b"}) {
			t.Errorf("b: rebuilt %v", h.Rebuilt)
		}
		// New: toplevel, etc, tool-2.0, extra-0.5; gone: the old three
		// and tool-1.0. Each package file is its name (3 to 9 bytes).
		if h.PathsAdded != 4 || h.PathsRemoved != 3 || h.BytesAdded <= 0 || h.BytesRemoved <= 0 || h.SizeDelta != h.BytesAdded-h.BytesRemoved {
			t.Errorf("b: paths +%d -%d, bytes +%d -%d, delta %d", h.PathsAdded, h.PathsRemoved, h.BytesAdded, h.BytesRemoved, h.SizeDelta)
		}
	}

	r = fleet(t, labArgs(l, "diff", file, "--color", "never")...)
	want := []string{"a: no change", "b: 1 added, 0 removed, 1 changed; +", "  + extra 0.5", "  ~ tool 1.0 -> 2.0", "  rebuilt: etc-b, nixos-system-b", "c: no change", "1 of 3 hosts change; 2 unchanged"}
	if r.code != 0 || !hasLines(r.stdout, want) {
		t.Errorf("diff: exit %d, want the lines %q", r.code, want)
	}
	diffText := r.stdout

	r = fleet(t, labArgs(l, "plan", file, "--diff", "--color", "never")...)
	i := strings.Index(r.stdout, "a: no change")
	if r.code != 0 || i < 0 || !strings.Contains(r.stdout[:i], "activate") || !strings.HasSuffix(r.stdout, diffText) {
		t.Errorf("plan --diff: exit %d: want the plan, then the diff's lines:\n%s", r.code, diffText)
	}
	for name, c := range v1 {
		if got := current(t, l.Host(name)); got != c {
			t.Errorf("%s runs %s after diff and plan, want still %s", name, got, c)
		}
	}

	// c unreachable: the others are still diffed, c is failed, exit 1.
	if err := l.Host("c").StopSSHD(); err != nil {
		t.Fatal(err)
	}
	r = fleet(t, labArgs(l, "diff", file, "--json")...)
	var partial struct {
		Hosts   []struct{ Host string } `json:"hosts"`
		Failed  map[string]string       `json:"failed"`
		Summary struct{ Hosts, Change, Unchanged, Failed int }
	}
	if err := json.Unmarshal([]byte(r.stdout), &partial); err != nil {
		t.Fatal(err)
	}
	if r.code != 1 || len(partial.Hosts) != 2 || partial.Failed["c"] == "" || partial.Summary.Failed != 1 || partial.Summary.Change != 1 || !strings.Contains(r.stderr, "c: diff failed") {
		t.Errorf("diff with c down: exit %d, %+v", r.code, partial)
	}
}

// hasLines reports whether text has each of want, as a line or a line's
// beginning, in order.
func hasLines(text string, want []string) bool {
	lines := strings.Split(text, "\n")
	for _, w := range want {
		for len(lines) > 0 && !strings.HasPrefix(lines[0], w) {
			lines = lines[1:]
		}
		if len(lines) == 0 {
			return false
		}
		lines = lines[1:]
	}
	return true
}

// TestDeployClosures builds with fleet build --out, deploys the file
// with fleet run --closures (no evaluation: no --override-input), and
// refuses a file naming a path no store has before contacting a host.
func TestDeployClosures(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	file := fleetDir(t, l, "closures-1", nil)
	out := filepath.Join(t.TempDir(), "closures.json")
	r := fleet(t, labArgs(l, "build", file, "--out", out)...)
	if r.code != 0 {
		t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
	}
	var doc struct {
		Version  int     `json:"version"`
		Revision *string `json:"revision"`
		Hosts    map[string]struct{ Closure, System string }
	}
	data, _ := os.ReadFile(out)
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != 1 || len(doc.Hosts) != 2 || doc.Revision != nil || doc.Hosts["a"].System != "x86_64-linux" || !strings.Contains(doc.Hosts["a"].Closure, "nixos-system-a-closures-1") {
		t.Fatalf("closures file %s", data)
	}
	for _, name := range []string{"a", "b"} {
		if activations(t, l.Host(name)) != 0 {
			t.Errorf("fleet build touched %s", name)
		}
	}

	r = fleet(t, "run", "--json", "--ssh-config", l.SSHConfig, "--closures", out, file)
	if r.code != 0 {
		t.Fatalf("run --closures: exit %d\n%s", r.code, r.stderr)
	}
	cl := closures(events(t, r.stdout))
	for _, name := range []string{"a", "b"} {
		if cl[name] != doc.Hosts[name].Closure || current(t, l.Host(name)) != doc.Hosts[name].Closure {
			t.Errorf("%s: built %s, runs %s, want the file's %s", name, cl[name], current(t, l.Host(name)), doc.Hosts[name].Closure)
		}
	}

	// A closure no store has: exit 2 before any host is contacted. Host
	// a's port is a listener that counts connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	text, _ := os.ReadFile(file)
	os.WriteFile(file, []byte(strings.Replace(string(text), "target_host = addr,", "target_host = addr, target_port = "+strconv.Itoa(port)+" if name == \"a\" else None,", 1)), 0o644)
	bad := filepath.Join(t.TempDir(), "bad.json")
	missing := "/nix/store/" + strings.Repeat("0", 32) + "-nixos-system-a-gone"
	os.WriteFile(bad, []byte(`{"version": 1, "revision": null, "hosts": {
  "a": {"closure": "`+missing+`", "system": "x86_64-linux"},
  "b": {"closure": "`+doc.Hosts["b"].Closure+`", "system": "x86_64-linux"}}}`), 0o644)
	sshdLog := func(h *lab.Host) int {
		st, err := os.Stat(h.Root + "/sshd.log")
		if err != nil {
			return 0
		}
		return int(st.Size())
	}
	logBefore := sshdLog(l.Host("a")) + sshdLog(l.Host("b"))
	r = fleet(t, "run", "--json", "--ssh-config", l.SSHConfig, "--closures", bad, file)
	if r.code != 2 || !strings.Contains(r.stderr, missing+" (closure of a) is not in this machine's store") {
		t.Errorf("run --closures with a missing path: exit %d, want 2 and a message naming it", r.code)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections to a", n)
	}
	if logAfter := sshdLog(l.Host("a")) + sshdLog(l.Host("b")); logAfter != logBefore {
		t.Errorf("sshd logged %d bytes", logAfter-logBefore)
	}
	for _, name := range []string{"a", "b"} {
		if got := current(t, l.Host(name)); got != doc.Hosts[name].Closure || activations(t, l.Host(name)) != 1 {
			t.Errorf("%s runs %s after the refused run", name, got)
		}
	}
	// A selected host absent from the file: exit 2 too.
	os.WriteFile(bad, []byte(`{"version": 1, "revision": null, "hosts": {"a": {"closure": "`+doc.Hosts["a"].Closure+`", "system": "x86_64-linux"}}}`), 0o644)
	if r = fleet(t, "run", "--ssh-config", l.SSHConfig, "--closures", bad, file); r.code != 2 || !strings.Contains(r.stderr, "host b is selected but not in the file") {
		t.Errorf("run --closures without b: exit %d", r.code)
	}
}

// TestOrdered deploys router -> app1, app2 with ordered(): router's
// activation has ended before either app starts, the apps run together.
func TestOrdered(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"router", "app1", "app2"}})
	file := fleetDir(t, l, "ordered-1", map[string]string{"router": `{"fleet": {"test": {"activationDelay": 2}}}`})
	text, _ := os.ReadFile(file)
	os.WriteFile(file, []byte(`load("@fleet//rollout.star", "ordered")
`+string(text)+`
def deploy(ctx):
    closures = nix_build(ctx.hosts)
    parallel(lambda h: push(h, closures[h.name]), ctx.hosts)
    ordered(ctx.hosts, lambda h: activate(h, closures[h.name], goal = ctx.goal), after = {"app1": ["router"], "app2": ["router"]})
`), 0o644)

	r := fleet(t, labArgs(l, "plan", file, "--color", "never")...)
	if r.code != 0 || !strings.Contains(r.stdout, "order 1/2") || !strings.Contains(r.stdout, "order 2/2") {
		t.Errorf("plan does not show the order:\n%s", r.stdout)
	}

	r = fleet(t, runArgs(l, file)...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	at := map[string]int{}
	for i, e := range events(t, r.stdout) {
		if e.Step != nil && e.Step.Action == "activate" {
			at[e.Event+" "+e.Host] = i
		}
	}
	for _, app := range []string{"app1", "app2"} {
		if at["step_start "+app] < at["step_end router"] {
			t.Errorf("%s started (event %d) before router finished (event %d)", app, at["step_start "+app], at["step_end router"])
		}
	}
	if at["step_start app2"] > at["step_end app1"] {
		t.Errorf("app1 and app2 did not run together: %v", at)
	}
	// The hosts' own logs: router's activation line is no later than
	// the apps'.
	stamp := func(name string) int {
		f := strings.Fields(exec(t, l.Host(name), "tail -n 1 /nix/var/log/switch-to-configuration.log"))
		n, _ := strconv.Atoi(f[0])
		return n
	}
	if r, a1, a2 := stamp("router"), stamp("app1"), stamp("app2"); a1 < r || a2 < r {
		t.Errorf("activation times: router %d, app1 %d, app2 %d", r, a1, a2)
	}

	// router fails with on_failure = "continue": app1 and app2 are not
	// started, and are failed hosts of the run with the reason.
	text, _ = os.ReadFile(file)
	broken := strings.Replace(string(text), `"activationDelay": 2`, `"failActivation": True`, 1)
	broken = strings.Replace(broken, `after = {"app1": ["router"], "app2": ["router"]})`, `after = {"app1": ["router"], "app2": ["router"]}, on_failure = "continue")`, 1)
	os.WriteFile(file, []byte(broken), 0o644)
	apps := activations(t, l.Host("app1")) + activations(t, l.Host("app2"))
	r = fleet(t, runArgs(l, file)...)
	evs := events(t, r.stdout)
	last := evs[len(evs)-1]
	if r.code != 1 || last.Event != "summary" || !reflect.DeepEqual(last.Failed, map[string]string{"router": "activate", "app1": "rollout", "app2": "rollout"}) {
		t.Errorf("router broken: exit %d, summary %+v", r.code, last)
	}
	for _, app := range []string{"app1", "app2"} {
		if want := app + ": rollout failed: not started: it depends on router, which failed"; !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if n := activations(t, l.Host("app1")) + activations(t, l.Host("app2")); n != apps {
		t.Errorf("the apps were activated although router failed")
	}

	// A cycle: a clear error in the plan, naming the cycle and the
	// ordered() call.
	cyc := strings.Replace(string(mustRead(t, file)), `after = {"app1": ["router"], "app2": ["router"]}`, `after = {"app1": ["router"], "router": ["app2"], "app2": ["app1"]}`, 1)
	os.WriteFile(file, []byte(cyc), 0o644)
	r = fleet(t, "plan", file)
	if r.code != 1 || !strings.Contains(r.stderr, "ordered: dependency cycle: router -> app2 -> app1 -> router") || !strings.Contains(r.stderr, "fleet.star:14:12: in deploy") {
		t.Errorf("cycle: exit %d\n%s", r.code, r.stderr)
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
