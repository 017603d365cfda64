package builtins

import (
	"context"
	"fmt"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const sleepDoc = `sleep(seconds)

Waits, e.g. between rollout batches. An interrupt ends the wait (and the
rollout). A plan shows the pause without waiting. Only inside
deploy(ctx).`

func sleepFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var secs starlark.Value
	if err := starlark.UnpackPositionalArgs("sleep", args, kwargs, 1, &secs); err != nil {
		return nil, err
	}
	f, ok := starlark.AsFloat(secs)
	if !ok || f < 0 || f > 86400 {
		return nil, fmt.Errorf("sleep(): want a number of seconds between 0 and 86400, got %s", secs)
	}
	r, err := runOf(th, "sleep")
	if err != nil {
		return nil, err
	}
	// An interrupted sleep is not a failed step: the step ends well and
	// the interrupt stops the rollout.
	interrupted := false
	err = r.Step(th, &runtime.Step{Action: runtime.ActionSleep, Seconds: f},
		func(_ context.Context, ex runtime.Executor) (*runtime.StepResult, error) {
			interrupted = ex.Sleep(r.SoftContext(), seconds(f)) != nil
			return nil, nil
		})
	if err == nil && interrupted {
		err = &runtime.Interrupted{What: "the rest of sleep()"}
	}
	return starlark.None, err
}

// seconds converts a script's number of seconds.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
