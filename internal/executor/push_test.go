package executor

import (
	"context"
	"reflect"
	"testing"

	"github.com/fleet-deploy/fleet/runtime"
)

// TestPushBuiltOnTarget: a system built on its host is not copied, only
// looked for in the host's store.
func TestPushBuiltOnTarget(t *testing.T) {
	h := &runtime.Host{Name: "web", TargetHost: "web", BuildOnTarget: true}
	tests := []opCase{
		{name: "there", gens: twoGens, want: state{sys2, 2, twoGens}},
		{name: "missing", gens: oneGen, want: state{sys1, 1, oneGen}, err: "web: push failed: " + sys2 + " is not in the host's store"},
		{name: "unreachable", gens: oneGen, want: state{sys1, 1, oneGen}, err: "web: push failed: fake: ssh connection lost",
			fault: func(f *fakeHost, _ context.CancelFunc) { f.down = 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, e, _, ctx := tt.setup(t)
			res, err := e.Push(ctx, h, sys2, nil)
			tt.check(t, f, err)
			if want := (&runtime.PushResult{Paths: 1}); !reflect.DeepEqual(res, want) {
				t.Errorf("result %+v, want %+v", res, want)
			}
			if got := commands(f); len(got) > 1 {
				t.Errorf("commands %q, want one look-up", got)
			}
		})
	}
}
