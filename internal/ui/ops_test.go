package ui_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
)

// TestSummaryOfOperations: the summary's rows and lists for what fleet
// rollback, reboot(if_needed) and --skip-unreachable do, in text and in
// JSON events that keep to the schema:
//   - a host whose failed check a rollout rolled back to the system it
//     started from is failed and not changed (deploy-rs#179);
//   - a host only a rollback changed is "rolled back";
//   - a host a reboot step restarted is in rebooted, one that needed no
//     reboot is not;
//   - a selected host left out as unreachable is "unreachable, skipped".
func TestSummaryOfOperations(t *testing.T) {
	_, sel := load(t)
	if len(sel.Selected) != 3 {
		t.Fatalf("the test fleet has %d hosts, want 3", len(sel.Selected))
	}
	a, b, c := sel.Selected[0].Name, sel.Selected[1].Name, sel.Selected[2].Name
	// c did not answer: fleet run --skip-unreachable left it out.
	sel.Selected = sel.Selected[:2]
	sel.Skipped = append(sel.Skipped, runtime.Skip{Host: c, Reason: runtime.Unreachable + ": dial tcp: connection refused"})
	var out syncBuffer
	r, err := ui.New(ui.Options{Out: &out, Mode: ui.JSON, Goal: "switch", Parallel: 1}, sel)
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := storePath('o', "nixos-system-1.0"), storePath('n', "nixos-system-2.0")
	step := func(host string, action runtime.Action, res *runtime.StepResult, err error) {
		st := &runtime.Step{Host: host, Action: action, Closure: v2}
		r.StepStarted(st)
		st.Result = res
		r.StepFinished(st, err, time.Second)
	}
	step(a, "activate", &runtime.StepResult{Previous: v1, Current: v2}, nil)
	step(a, "reboot", &runtime.StepResult{Reason: "kernel, initrd and kernel-modules unchanged"}, nil)
	step(a, "check", nil, &runtime.HostError{Host: a, Step: "check", Err: errors.New("unhealthy")})
	step(a, "rollback", &runtime.StepResult{Previous: v2, Current: v1}, nil)
	step(b, "rollback", &runtime.StepResult{Previous: v2, Current: v1}, nil)
	step(b, "reboot", &runtime.StepResult{Rebooted: true, Reason: "kernel changed"}, nil)
	sum := r.Finish(&runtime.HostFailures{Errs: []*runtime.HostError{{Host: a, Step: "check", Err: errors.New("unhealthy")}}}, false)

	rows := map[string]string{}
	for _, h := range sum.Hosts {
		rows[h.Host] = h.Result
	}
	want := map[string]string{a: "failed", b: "rolled back", c: "unreachable, skipped"}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows %v, want %v", rows, want)
	}
	if len(sum.Changed) != 0 || !reflect.DeepEqual(sum.Rebooted, []string{b}) || !reflect.DeepEqual(sum.Skipped, map[string]string{c: "dial tcp: connection refused"}) {
		t.Errorf("changed %v, rebooted %v, skipped %v", sum.Changed, sum.Rebooted, sum.Skipped)
	}
	loadSchema(t).check(t, out.String())
	if !strings.Contains(out.String(), `"reason":"kernel changed"`) {
		t.Errorf("the reboot's reason is not in its step_end")
	}
}
