package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/internal/journal"
	"github.com/fleet-deploy/fleet/internal/ui/uitest"
	"github.com/fleet-deploy/fleet/runtime"
)

const hostile = uitest.Hostile

// TestReportSanitizes: whatever error carries a host's bytes, report
// prints them escaped, and the host's lines after the first under its
// name.
func TestReportSanitizes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.star")
	os.WriteFile(file, []byte("host(name = \"a\xff\x1b[2Jb\", target_host = \"x\")\n"), 0o644)
	_, loadErr := runtime.Load(context.Background(), file, builtins.Universe())
	if loadErr == nil {
		t.Fatal("a host name that is not UTF-8 was accepted")
	}
	he := &runtime.HostError{Host: "b", Step: "activate", Err: errors.New("switch-to-configuration switch: " + hostile), Log: hostile}
	for _, tc := range []struct {
		name string
		err  error
		code int
		want []string
	}{
		{"host failures", &runtime.HostFailures{Errs: []*runtime.HostError{he}}, exitHostFailed,
			[]string{`error: b: activate failed: switch-to-configuration switch: \x1b[2J\x1b]52;c;ZXZpbA==\x07\x1b]0;pwned\x07\rAll done in 0.1s.`, "  b |   failed:  none", `  b | \xff\xfe\x9b31m`}},
		{"host error", he, exitHostFailed, []string{"error: b: activate failed: ", "  b |   failed:  none"}},
		{"other", errors.New("nix: " + strings.ReplaceAll(hostile, "\n", " ")), exitUsage, []string{`fleet: nix: \x1b[2J`}},
		{"script error", loadErr, exitUsage, []string{"\"a\ufffd\\x1b[2Jb\" is not valid", `host(name = "a\xff\x1b[2Jb"`}},
	} {
		var out bytes.Buffer
		if code := report(context.Background(), tc.err, &out); code != tc.code {
			t.Errorf("%s: exit %d, want %d", tc.name, code, tc.code)
		}
		text := out.String()
		uitest.CheckHuman(t, tc.name, text)
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: lacks %q:\n%s", tc.name, w, text)
			}
		}
	}
}

// TestHistorySanitizes: the journal keeps a crafted /run/current-system
// exactly; fleet history shows it escaped, in one row, and --json
// exactly.
func TestHistorySanitizes(t *testing.T) {
	dir := t.TempDir()
	jw, err := journal.Open(dir, "run1")
	if err != nil {
		t.Fatal(err)
	}
	prev := "/nix/store/" + strings.Repeat("o", 32) + "-nixos-system-a" + hostile
	st := &runtime.Step{Host: "a", Action: "activate", Goal: "switch", Closure: "/nix/store/" + strings.Repeat("n", 32) + "-nixos-system-a"}
	jw.StepStarted(st)
	st.Result = &runtime.StepResult{Previous: prev, Current: st.Closure}
	jw.StepFinished(st, nil, time.Second)
	jb := &runtime.Step{Host: "b", Action: "activate", Goal: "switch", Closure: st.Closure}
	jw.StepStarted(jb)
	jw.StepFinished(jb, errors.New(strings.ReplaceAll(hostile, "\n", " ")), time.Second)
	if err := jw.Close(nil, false); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"fleet", "history", "--state-dir", dir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	uitest.CheckHuman(t, "history", out.String())
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Errorf("%d lines, want a header and two rows:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), `a\x1b[2J\x1b]52;c;ZXZpbA==\x07`) {
		t.Errorf("the crafted system is not shown escaped:\n%s", out.String())
	}
	out.Reset()
	Main([]string{"fleet", "history", "--json", "--state-dir", dir}, &out, &errb)
	var recs []journal.Record
	if err := json.Unmarshal(out.Bytes(), &recs); err != nil || len(recs) != 2 {
		t.Fatalf("%v: %s", err, out.String())
	}
	var exact string
	b, _ := json.Marshal(prev)
	json.Unmarshal(b, &exact)
	if recs[0].Previous != exact {
		t.Errorf("--json previous %q, want %q", recs[0].Previous, exact)
	}
}

// TestExecSanitizes: fleet exec shows every line of a host's output
// under its name, escaped, and its error the same way.
func TestExecSanitizes(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	p := &prefixWriter{w: &out, mu: &mu, prefix: "h0 | "}
	for _, chunk := range []string{hostile[:3], hostile[3:40], hostile[40:] + "\n" + hostile} { // cut mid-sequence
		p.Write([]byte(chunk))
	}
	p.flush()
	printExec(&out, []execResult{{Host: "h1", ExitCode: -1, Error: "ssh: " + hostile}}, false)
	uitest.CheckHuman(t, "exec", out.String())
	for _, want := range []string{`h0 | \x1b[2J\x1b]52;c;ZXZpbA==\x07\x1b]0;pwned\x07\rAll done in 0.1s.` + "\n", "h0 |   failed:  none\n", `error: h1: ssh: \x1b[2J`, "  h1 |   failed:  none\n", "1 hosts; unreachable: h1\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("exec output lacks %q:\n%s", want, out.String())
		}
	}
}
