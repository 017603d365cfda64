package builtins

import (
	"fmt"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

func init() {
	register(&Builtin{
		Name: "sleep",
		Doc: `sleep(seconds)

Waits, e.g. between rollout batches. An interrupt ends the wait (and the
rollout). A plan shows the pause without waiting. Only inside
deploy(ctx).`,
		Fn: sleepFn,
	})
}

func sleepFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var secs starlark.Value
	if err := starlark.UnpackPositionalArgs("sleep", args, kwargs, 1, &secs); err != nil {
		return nil, err
	}
	f, ok := starlark.AsFloat(secs)
	if !ok || f < 0 || f > 86400 {
		return nil, fmt.Errorf("sleep(): want a number of seconds between 0 and 86400, got %s", secs)
	}
	s, err := deploySession(th, "sleep")
	if err != nil {
		return nil, err
	}
	st := s.Begin(th, &runtime.Step{Action: "sleep", Seconds: f})
	start := time.Now()
	err = s.Executor().Sleep(s.SoftContext(), time.Duration(f*float64(time.Second)))
	if err != nil {
		err = &runtime.Interrupted{What: "the rest of sleep()"}
	}
	s.End(st, nil, time.Since(start))
	return starlark.None, err
}
