package ui_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
)

// TestSteplessFailure: a host that failed without a failed step of its
// own (ordered() did not start it) is a failed host of the summary,
// under the step of its error.
func TestSteplessFailure(t *testing.T) {
	_, sel := load(t)
	var out syncBuffer
	r, err := ui.New(ui.Options{Out: &out, Mode: ui.JSON, Goal: "switch", Parallel: 1}, sel)
	if err != nil {
		t.Fatal(err)
	}
	name := sel.Selected[0].Name
	err = &runtime.HostFailures{Errs: []*runtime.HostError{{Host: name, Step: "rollout", Err: errors.New("not started: it depends on x, which failed")}}}
	sum := r.Finish(err, false)
	if !reflect.DeepEqual(sum.Failed, map[string]string{name: "rollout"}) || sum.Hosts[0].Result != "failed" || sum.Hosts[0].FailedStep != "rollout" {
		t.Errorf("summary %+v", sum)
	}
}
