package e2e

import (
	"encoding/json"
	osexec "os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// TestPushRoundTrip pushes fresh closures through `nix-store --serve
// --write` to hosts with empty stores and checks what arrived against
// this machine's store: every path there, whole (nix-store --verify-path
// checks the NAR hash fleet sent), with the same references; the bytes
// reported are the closure's NAR size, progress never beyond it. A
// second run finds everything there and sends nothing.
func TestPushRoundTrip(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	big := `{"fleet": {"test": {"payload": {"count": 6, "sizeKB": 512}}}}`
	file := rolloutDir(t, l, "1.0", map[string]string{"b": big}, "")
	r := fleet(t, runArgs(l, file)...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	evs := events(t, r.stdout)
	results := pushResults(evs)
	for name, closure := range closures(evs) {
		h := l.Host(name)
		paths := strings.Fields(local(t, "nix-store", "--query", "--requisites", closure))
		var size int64
		for _, n := range strings.Fields(local(t, append([]string{"nix-store", "--query", "--size"}, paths...)...)) {
			v, _ := strconv.ParseInt(n, 10, 64)
			size += v
		}
		res := results[name]
		if res.Paths != len(paths) || res.Missing != len(paths) || res.Bytes != size {
			t.Errorf("%s: push result %+v, want %d paths, all missing, %d bytes", name, res, len(paths), size)
		}
		for _, p := range paths {
			want := local(t, "nix-store", "--query", "--references", p)
			got := exec(t, h, "nix-store --verify-path "+p+" && nix-store --query --references "+p)
			if got != want {
				t.Errorf("%s: %s has references\n%s\nthere, here\n%s", name, p, got, want)
			}
		}
		storeIsWhole(t, h)
	}
	for _, p := range progress(t, r.stdout) {
		if p.Done > p.Total || p.Total != results[p.Host].Bytes {
			t.Errorf("%s: progress %d of %d, the push sent %d", p.Host, p.Done, p.Total, results[p.Host].Bytes)
		}
	}

	r = fleet(t, runArgs(l, file)...)
	if r.code != 0 {
		t.Fatalf("again: exit %d\n%s", r.code, r.stderr)
	}
	for name, res := range pushResults(events(t, r.stdout)) {
		if res.Missing != 0 || res.Bytes != 0 || res.Paths == 0 {
			t.Errorf("%s: second push %+v, want nothing sent", name, res)
		}
	}
}

type pushResult struct {
	Paths, Missing int
	Bytes          int64
}

func pushResults(evs []event) map[string]pushResult {
	m := map[string]pushResult{}
	for _, e := range evs {
		if e.Event == "step_end" && e.Step.Action == "push" && e.Step.Result != nil {
			m[e.Host] = pushResult{e.Step.Result.Paths, e.Step.Result.Missing, e.Step.Result.Bytes}
		}
	}
	return m
}

type progressEvent struct {
	Host, Action, Unit string
	Done, Total        int64
}

// progress returns the push's step_progress events.
func progress(t *testing.T, out string) []progressEvent {
	var ps []progressEvent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var p progressEvent
		var kind struct{ Event string }
		json.Unmarshal([]byte(line), &kind)
		if kind.Event == "step_progress" && json.Unmarshal([]byte(line), &p) == nil && p.Action == "push" {
			if p.Unit != "bytes" {
				t.Errorf("progress in %q", p.Unit)
			}
			ps = append(ps, p)
		}
	}
	return ps
}

// local runs a command here and returns its output, trimmed.
func local(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := osexec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	return strings.TrimSpace(string(out))
}
