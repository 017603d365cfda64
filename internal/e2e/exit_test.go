package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// runSummary is the last event of fleet run, rollback and upload-keys
// --json.
type runSummary struct {
	Event   string            `json:"event"`
	Result  string            `json:"result"`
	Changed []string          `json:"changed"`
	Failed  map[string]string `json:"failed"`
	Skipped map[string]string `json:"skipped"`
	Hosts   []struct {
		Host   string `json:"host"`
		Result string `json:"result"`
	} `json:"hosts"`
}

// want is what a run's summary must say: its result, the changed hosts
// (comma list), the failed ones (host:step, comma list, sorted), the
// skipped ones and each named host's row. changed "?" is not checked.
type want struct {
	result, changed, failed, skipped string
	rows                             map[string]string
}

func (w want) check(t *testing.T, stdout string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var s runSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil || s.Event != "summary" {
		t.Fatalf("last line is not a summary (%v): %q", err, lines[len(lines)-1])
	}
	var failed, skipped []string
	for h, st := range s.Failed {
		failed = append(failed, h+":"+st)
	}
	for h := range s.Skipped {
		skipped = append(skipped, h)
	}
	sort.Strings(failed)
	sort.Strings(skipped)
	rows := map[string]string{}
	for _, h := range s.Hosts {
		rows[h.Host] = h.Result
	}
	changed := strings.Join(s.Changed, ",")
	if w.changed == "?" { // depends on timing
		changed = "?"
	}
	if s.Result != w.result || changed != w.changed || strings.Join(failed, ",") != w.failed || strings.Join(skipped, ",") != w.skipped {
		t.Errorf("summary: result %q changed %v failed %v skipped %v; want %q, %q, %q, %q", s.Result, s.Changed, failed, skipped, w.result, w.changed, w.failed, w.skipped)
	}
	for h, r := range w.rows {
		if rows[h] != r {
			t.Errorf("summary row %s: %q, want %q", h, rows[h], r)
		}
	}
}

// jsonHas checks a command's --json document: decoded into a generic
// value, f says what is wrong with it ("" if nothing).
func jsonHas(f func(v any) string) func(t *testing.T, stdout string) {
	return func(t *testing.T, stdout string) {
		t.Helper()
		var v any
		if err := json.Unmarshal([]byte(stdout), &v); err != nil {
			t.Fatalf("--json output is not one JSON document: %v\n%s", err, stdout)
		}
		if msg := f(v); msg != "" {
			t.Errorf("%s\n%s", msg, stdout)
		}
	}
}

// perHost maps a JSON array of objects with "host" to the values of key.
func perHost(v any, key string) map[string]any {
	out := map[string]any{}
	arr, _ := v.([]any)
	for _, x := range arr {
		if m, ok := x.(map[string]any); ok {
			out[fmt.Sprint(m["host"])] = m[key]
		}
	}
	return out
}

// TestExitStatus runs every command on one lab, in order, and asserts
// the exit status a CI sees and what its --json output says: on
// success, on partial failure (one host fails, the others do not), for
// a rollout whose check fails and rolls the host back (exit 1, never 0:
// deploy-rs#179), on interrupt (130) and on usage errors (2). The cases
// share the lab and run in order; each states what it relies on.
func TestExitStatus(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c"}})
	a, c := l.Host("a"), l.Host("c")
	ssh := []string{"--ssh-config", l.SSHConfig}
	slow := `{"fleet": {"test": {"activationDelay": 2, "postActivation": "kill -CONT $(cat /run/sshd.pid) 2>/dev/null || true"}}}`
	v1 := rolloutDir(t, l, "1.0", nil, "")
	v2 := rolloutDir(t, l, "2.0", map[string]string{"b": `{"fleet": {"test": {"failActivation": True}}}`}, "")
	v3 := rolloutDir(t, l, "3.0", nil, `
def deploy(ctx):
    closures = nix_build(ctx.hosts)
    parallel(lambda h: push(h, closures[h.name]), ctx.hosts)
    rolling(ctx.hosts, lambda h: activate(h, closures[h.name]),
            check = lambda h: check(h, cmd = ["false"], retries = 0),
            on_failure = "rollback")
`)
	v4 := rolloutDir(t, l, "4.0", map[string]string{"a": slow, "b": slow, "c": slow}, "")
	v5 := rolloutDir(t, l, "5.0", nil, "") // new to every host, whatever the interrupt left
	out := filepath.Join(t.TempDir(), "closures.json")
	// This test's journal alone: fleet history shows what it ran.
	state := t.TempDir()
	run := func(file string, extra ...string) []string {
		return runArgs(l, file, append([]string{"--state-dir", state}, extra...)...)
	}
	rollback := func(file string, extra ...string) []string {
		return append(append([]string{"rollback", "--json", "--state-dir", state}, append(ssh, extra...)...), file)
	}
	with := func(cmd, file string, extra ...string) []string {
		return append(append(append([]string{cmd}, ssh...), extra...), file)
	}
	overridden := func(cmd, file string, extra ...string) []string { return labArgs(l, cmd, file, extra...) }
	// generation of a's system profile that runs closure.
	genOf := func(closure string) string {
		return exec(t, a, `for l in /nix/var/nix/profiles/system-*-link; do [ "$(readlink -f $l)" = `+closure+` ] && basename $l; done | sed 's/system-\(.*\)-link/\1/' | tail -1`)
	}
	var v4a string // a's v4 closure, once deployed

	cases := []struct {
		name      string
		before    func(t *testing.T)
		args      func() []string
		interrupt string // SIGINT once stdout has a line with this (a's step_start: its step is in flight and finishes)
		code      int
		summary   *want                             // a run's summary event
		json      func(t *testing.T, stdout string) // any other --json output
		after     func(t *testing.T, r result)
	}{
		{name: "run/success", args: func() []string { return run(v1) }, code: 0,
			summary: &want{result: "ok", changed: "a,b,c", rows: map[string]string{"a": "changed"}}},
		{name: "plan/success", args: func() []string { return []string{"plan", "--json", v1} }, code: 0,
			json: jsonHas(func(v any) string {
				if m, _ := v.(map[string]any); m == nil || m["steps"] == nil {
					return "no steps"
				}
				return ""
			})},
		{name: "plan/usage", args: func() []string { return []string{"plan", "--json", "--goal", "nope", v1} }, code: 2,
			after: func(t *testing.T, r result) {
				if r.stdout != "" {
					t.Errorf("stdout %q", r.stdout)
				}
			}},
		{name: "run/usage", args: func() []string { return run(v1, "--reboot", "sometimes") }, code: 2,
			after: func(t *testing.T, r result) {
				if r.stdout != "" {
					t.Errorf("a usage error printed events: %q", r.stdout)
				}
			}},
		{name: "status/success", args: func() []string { return overridden("status", v1, "--json") }, code: 0,
			json: jsonHas(func(v any) string {
				for h, s := range perHost(v, "status") {
					if s != "up-to-date" {
						return h + " is " + fmt.Sprint(s)
					}
				}
				return ""
			})},
		{name: "diff/success", args: func() []string { return overridden("diff", v1, "--json") }, code: 0,
			json: jsonHas(func(v any) string {
				if m, _ := v.(map[string]any); m == nil || fmt.Sprint(m["failed"]) != "map[]" {
					return "failed hosts"
				}
				return ""
			})},
		{name: "build/success", args: func() []string { return overridden("build", v1, "--out", out) }, code: 0,
			after: func(t *testing.T, r result) {
				if _, err := os.Stat(out); err != nil {
					t.Error(err)
				}
			}},
		{name: "hosts/success", args: func() []string { return []string{"hosts", "--json", v1} }, code: 0,
			json: jsonHas(func(v any) string {
				if arr, _ := v.([]any); len(arr) != 3 {
					return "want 3 hosts"
				}
				return ""
			})},
		{name: "generations/success", args: func() []string { return with("generations", v1, "--json") }, code: 0,
			json: jsonHas(func(v any) string {
				for h, e := range perHost(v, "error") {
					if e != nil {
						return h + ": " + fmt.Sprint(e)
					}
				}
				return ""
			})},
		{name: "doctor/success", args: func() []string { return overridden("doctor", v1, "--json") }, code: 0,
			json: jsonHas(doctorOK(true))},
		{name: "exec/success", args: func() []string { return append(with("exec", v1, "--json"), "--", "true") }, code: 0,
			json: jsonHas(func(v any) string {
				if codes := perHost(v, "exit_code"); len(codes) != 3 || codes["a"] != 0.0 || codes["c"] != 0.0 {
					return fmt.Sprint(codes)
				}
				return ""
			})},
		{name: "upload-keys/success", args: func() []string {
			return append([]string{"upload-keys", "--json", "--state-dir", state}, append(ssh, v1)...)
		}, code: 0,
			summary: &want{result: "ok"}},
		{name: "history/success", args: func() []string { return []string{"history", "--json", "--state-dir", state} }, code: 0,
			json: jsonHas(func(v any) string {
				if res := perHost(v, "result"); len(res) != 3 || res["a"] != "switched" {
					return fmt.Sprintf("want the first run's three hosts switched: %v", res)
				}
				return ""
			})},

		{name: "run/partial failure", args: func() []string { return run(v2) }, code: 1,
			summary: &want{result: "failed", changed: "a,c", failed: "b:activate", rows: map[string]string{"b": "failed"}}},
		{name: "status/partial failure", args: func() []string { return overridden("status", v1, "--json") }, code: 1,
			json: jsonHas(func(v any) string {
				if st := perHost(v, "status"); st["a"] != "drifted" || st["b"] != "up-to-date" {
					return fmt.Sprint(st)
				}
				return ""
			})},
		{name: "run/rollback after a failed check", args: func() []string { return run(v3) }, code: 1,
			summary: &want{result: "failed", failed: "a:check", rows: map[string]string{"a": "failed", "b": "not activated"}},
			after: func(t *testing.T, r result) {
				if !strings.Contains(r.stdout, `"action":"rollback"`) {
					t.Error("no rollback step")
				}
			}},
		{name: "run/interrupt", args: func() []string { return run(v4) }, interrupt: `{"host":"a","action":"activate"`, code: 130,
			summary: &want{result: "interrupted", changed: "?"},
			after:   func(t *testing.T, r result) { v4a = current(t, a) }},
		{name: "rollback/success", args: func() []string { return rollback(v4, "--on", "a") }, code: 0,
			summary: &want{result: "ok", rows: map[string]string{"a": "rolled back"}}},
		{name: "history/rollback", args: func() []string { return []string{"history", "--json", "--state-dir", state, "--on", "a"} }, code: 0,
			json: jsonHas(func(v any) string {
				if res := perHost(v, "result"); res["a"] != "rolled-back" {
					return fmt.Sprintf("a's last entry is %v, want rolled-back", res["a"])
				}
				return ""
			})},
		{name: "rollback/interrupt", args: func() []string { return rollback(v4, "--on", "a", "--to", genOf(v4a)) },
			interrupt: `{"host":"a","action":"rollback"`, code: 130, summary: &want{result: "interrupted"}},
		{name: "rollback/usage", args: func() []string { return rollback(v4, "--to", "-1", "--on", "a") }, code: 2},

		{name: "run/unreachable", before: func(t *testing.T) {
			if err := c.StopSSHD(); err != nil {
				t.Fatal(err)
			}
		}, args: func() []string { return run(v5) }, code: 1,
			summary: &want{result: "failed", failed: "c:connect", rows: map[string]string{"a": "not started", "c": "failed"}}},
		{name: "run/skip unreachable", args: func() []string { return run(v5, "--skip-unreachable") }, code: 0,
			summary: &want{result: "ok", changed: "a,b", skipped: "c", rows: map[string]string{"c": "unreachable, skipped"}}},
		{name: "rollback/partial failure", args: func() []string { return rollback(v1, "--on", "a,c") }, code: 1,
			summary: &want{result: "failed", failed: "c:rollback", rows: map[string]string{"a": "rolled back"}}},
		{name: "generations/partial failure", args: func() []string { return with("generations", v1, "--json") }, code: 1,
			json: jsonHas(func(v any) string {
				if e := perHost(v, "error"); e["a"] != nil || e["c"] == nil {
					return fmt.Sprint(e)
				}
				return ""
			})},
		{name: "diff/partial failure", args: func() []string { return overridden("diff", v1, "--json") }, code: 1,
			json: jsonHas(func(v any) string {
				if m, _ := v.(map[string]any); m == nil || fmt.Sprint(m["failed"]) == "map[]" {
					return "c not failed"
				}
				return ""
			})},
		{name: "doctor/partial failure", args: func() []string { return overridden("doctor", v1, "--json") }, code: 1,
			json: jsonHas(doctorOK(false))},
		{name: "exec/partial failure", args: func() []string { return append(with("exec", v1, "--json"), "--", "true") }, code: 1,
			json: jsonHas(func(v any) string {
				if codes, errs := perHost(v, "exit_code"), perHost(v, "error"); codes["a"] != 0.0 || errs["a"] != nil || errs["c"] == nil {
					return fmt.Sprint(codes, errs)
				}
				return ""
			})},
		{name: "status/unreachable", args: func() []string { return overridden("status", v1, "--json") }, code: 1,
			json: jsonHas(func(v any) string {
				if st := perHost(v, "status"); st["c"] != "unreachable" {
					return fmt.Sprint(st)
				}
				return ""
			})},
	}
	for _, tc := range cases {
		ok := t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			args := tc.args()
			var r result
			if tc.interrupt != "" {
				r = fleetInterrupted(t, args, tc.interrupt)
			} else {
				r = fleet(t, args...)
			}
			if r.code != tc.code {
				t.Fatalf("fleet %s: exit %d, want %d\n%s", strings.Join(args, " "), r.code, tc.code, r.stderr)
			}
			if tc.summary != nil {
				tc.summary.check(t, r.stdout)
			}
			if tc.json != nil {
				tc.json(t, r.stdout)
			}
			if tc.after != nil {
				tc.after(t, r)
			}
		})
		if !ok {
			break // the cases after rely on this one's outcome
		}
	}
}

// doctorOK checks fleet doctor --json's verdict.
func doctorOK(ok bool) func(v any) string {
	return func(v any) string {
		if m, _ := v.(map[string]any); m == nil || m["ok"] != ok {
			return fmt.Sprintf("want ok = %v", ok)
		}
		return ""
	}
}

// fleetInterrupted runs the fleet binary with args and interrupts it
// (SIGINT) as soon as a line of its stdout contains ready.
func fleetInterrupted(t *testing.T, args []string, ready string) result {
	t.Helper()
	cmd := osexec.Command(binary(t), args...)
	cmd.Args[0] = "fleet"
	var errb strings.Builder
	cmd.Stderr = &errb
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	sc := bufio.NewScanner(pipe)
	sent := false
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if !sent && strings.Contains(sc.Text(), ready) {
			cmd.Process.Signal(syscall.SIGINT)
			sent = true
		}
	}
	io.Copy(io.Discard, pipe)
	cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	t.Logf("fleet %s (interrupted: %v)\n-> exit %d\n%s%s", strings.Join(args, " "), sent, code, out.String(), errb.String())
	return result{out.String(), errb.String(), code}
}
