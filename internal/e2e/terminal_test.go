package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/ui/uitest"
)

// terminalAttack is what a hostile host sends (uitest.Hostile), as a file.
const terminalAttack = uitest.Hostile + "\n"

// terminalEscaped is how a text view shows terminalAttack's first line.
const terminalEscaped = `\x1b[2J\x1b]52;c;ZXZpbA==\x07\x1b]0;pwned\x07\rAll done in 0.1s.`

// exactJSON is s as encoding/json carries it: exact, but for the bytes
// that are not UTF-8 (U+FFFD each).
func exactJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	json.Unmarshal(b, &out)
	return out
}

// craft points h's /run/current-system at a path whose name ends with
// terminalAttack's first line (no newline: a link's target is one line in
// every report of it), as a host's root could.
func craft(t *testing.T, h *lab.Host) string {
	t.Helper()
	target := "/nix/store/" + strings.Repeat("0", 32) + "-nixos-system-" + h.Name + strings.Split(terminalAttack, "\n")[0] + "\xff"
	link := filepath.Join(h.Root, "run/current-system")
	os.Remove(link)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return target
}

// TestHostileHost: a host sends escape sequences, carriage returns,
// fake "All done" lines and bytes that are not UTF-8 — a's
// /run/current-system is a crafted link, b's activation prints them
// (and then dies), exec echoes them. The plain output, the log files,
// the error lines, fleet exec, fleet history and fleet status show them
// escaped and never at the start of a line; --json carries them exactly.
func TestHostileHost(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	a, b := l.Host("a"), l.Host("b")
	if err := os.WriteFile(filepath.Join(b.Root, "run/hostile"), []byte(terminalAttack), 0o644); err != nil {
		t.Fatal(err)
	}
	file := fleetDir(t, l, "1.0", map[string]string{
		"b": `{"fleet": {"test": {"postActivation": "cat \"$root/run/hostile\"; kill -KILL $$"}}}`,
	})
	state := t.TempDir()
	logs := t.TempDir()
	mini := "nixpkgs=" + filepath.Join(root, "testdata/mini-nixpkgs")

	// The plain output, the log files and the error lines.
	crafted := craft(t, a)
	r := fleet(t, "run", "--ssh-config", l.SSHConfig, "--override-input", mini, "--state-dir", state, "--log-dir", logs, file)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (b's activation dies)", r.code)
	}
	uitest.CheckHuman(t, "plain output", r.stdout)
	uitest.CheckHuman(t, "stderr", r.stderr)
	for _, want := range []string{
		"a activate ok ", "-nixos-system-a" + terminalEscaped + `\xff → `, // the crafted system a ran
		"b activate | " + terminalEscaped, "b activate |   failed:  none", // b's log, under its name
		"  a     changed ", "-nixos-system-a" + terminalEscaped, // the summary table
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plain output lacks %q", want)
		}
	}
	if !strings.Contains(r.stderr, "error: b: activate failed: ") || !strings.Contains(r.stderr, "  b | "+terminalEscaped+"\n") || !strings.Contains(r.stderr, "  b |   failed:  none\n") {
		t.Errorf("the error lines do not show b's log escaped, under b's name:\n%s", r.stderr)
	}
	for _, name := range []string{"a.log", "b.log"} {
		text, err := os.ReadFile(filepath.Join(logs, name))
		if err != nil {
			t.Fatal(err)
		}
		uitest.CheckHuman(t, name, string(text))
		if !strings.Contains(string(text), terminalEscaped) {
			t.Errorf("%s lacks the host's bytes, escaped:\n%s", name, text)
		}
	}

	// --json: the exact bytes.
	crafted = craft(t, a)
	r = fleet(t, runArgs(l, file, "--state-dir", state)...)
	if r.code != 1 {
		t.Fatalf("--json: exit %d, want 1", r.code)
	}
	var sawLog, sawPrev bool
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev struct {
			Event string
			Host  string
			Log   []string
			Step  struct{ Result struct{ Previous string } }
			Hosts []struct{ Host, Previous string }
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("bad event %q: %v", line, err)
		}
		if ev.Event == "step_end" && ev.Host == "b" && strings.Contains(strings.Join(ev.Log, "\n")+"\n", exactJSON(terminalAttack)) {
			sawLog = true
		}
		for _, h := range ev.Hosts {
			sawPrev = sawPrev || h.Host == "a" && h.Previous == exactJSON(crafted)
		}
	}
	if !sawLog || !sawPrev {
		t.Errorf("--json does not carry the host's bytes exactly: b's log %v, a's previous system %v", sawLog, sawPrev)
	}

	// fleet history: the journal keeps the crafted system, history shows
	// it escaped; --json exactly.
	r = fleet(t, "history", "--state-dir", state)
	uitest.CheckHuman(t, "history", r.stdout)
	if n := strings.Count(r.stdout, "\n"); r.code != 0 || n != 5 || !strings.Contains(r.stdout, terminalEscaped) {
		t.Errorf("history: exit %d, %d lines (want a header and four rows), the crafted system escaped:\n%s", r.code, n, r.stdout)
	}
	r = fleet(t, "history", "--json", "--state-dir", state)
	var hist []struct{ Host, Previous string }
	json.Unmarshal([]byte(r.stdout), &hist)
	var prevs []string
	for _, e := range hist {
		if e.Host == "a" {
			prevs = append(prevs, e.Previous)
		}
	}
	if len(prevs) != 2 || prevs[0] != exactJSON(crafted) || prevs[1] != exactJSON(crafted) {
		t.Errorf("history --json %+v: want a's previous system %q exactly", hist, exactJSON(crafted))
	}

	// fleet status: what a runs, as its link says.
	crafted = craft(t, a)
	r = fleet(t, "status", "--ssh-config", l.SSHConfig, "--override-input", mini, file)
	uitest.CheckHuman(t, "status", r.stdout)
	if !strings.Contains(r.stdout, "-nixos-system-a"+terminalEscaped) {
		t.Errorf("status does not show a's crafted system escaped:\n%s", r.stdout)
	}
	r = fleet(t, "status", "--json", "--ssh-config", l.SSHConfig, "--override-input", mini, file)
	var rows []struct{ Host, Running string }
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 2 || rows[0].Running != exactJSON(crafted) {
		t.Errorf("status --json: %v %+v, want a running %q", err, rows, exactJSON(crafted))
	}

	// A script's run(): its output logged, and its failure uncaught,
	// which report prints with the script's traceback.
	text, _ := os.ReadFile(file)
	os.WriteFile(file, append(text, []byte(`
def deploy(ctx):
    for h in ctx.hosts:
        if h.name == "b":
            log(run(h, ["cat", "/run/hostile"]).stdout, host = h)
            run(h, ["sh", "-c", "cat /run/hostile >&2; exit 3"])
`)...), 0o644)
	r = fleet(t, "run", "--ssh-config", l.SSHConfig, "--override-input", mini, "--state-dir", state, file)
	uitest.CheckHuman(t, "run() output", r.stdout)
	uitest.CheckHuman(t, "run() error", r.stderr)
	if r.code != 1 || !strings.Contains(r.stdout, "b log                   "+terminalEscaped+"\n") || !strings.Contains(r.stdout, "b log                     failed:  none\n") {
		t.Errorf("exit %d, want 1; run()'s output is not logged escaped, under b's name:\n%s", r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, "b: run failed: sh exited with status 3") || !strings.Contains(r.stderr, "  b | "+terminalEscaped+"\n") || !strings.Contains(r.stderr, "  b |   failed:  none\n") {
		t.Errorf("the error does not show run()'s stderr escaped, under b's name:\n%s", r.stderr)
	}

	// fleet exec: every line of the output under the host's name.
	echo := []string{"--", "sh", "-c", `cat /run/hostile; cat /run/hostile >&2`}
	r = fleet(t, append([]string{"exec", "--on", "b", "--ssh-config", l.SSHConfig, file}, echo...)...)
	uitest.CheckHuman(t, "exec", r.stdout+r.stderr)
	for _, want := range []string{"b | " + terminalEscaped + "\n", "b |   failed:  none\n", "b ! " + terminalEscaped + "\n", "1 hosts; exit 0: b\n"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("exec: exit %d, output lacks %q", r.code, want)
		}
	}
	r = fleet(t, append([]string{"exec", "--json", "--on", "b", "--ssh-config", l.SSHConfig, file}, echo...)...)
	var res []struct{ Stdout, Stderr string }
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res) != 1 || res[0].Stdout != exactJSON(terminalAttack) || res[0].Stderr != exactJSON(terminalAttack) {
		t.Errorf("exec --json: %v %+v, want the exact bytes", err, res)
	}
}
