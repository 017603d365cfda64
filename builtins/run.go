package builtins

import (
	"context"
	"fmt"
	"strings"

	"github.com/fleet-deploy/fleet/internal/tail"
	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const runDoc = `run(host, argv, check=True)

Runs a command on the host. argv is a list of strings, passed as separate
words (quoted for the remote shell by fleet; no shell syntax is
interpreted). Returns struct(host, stdout, stderr, exit_code); stdout
and stderr keep the last MiB of each (a host that prints gigabytes does
not take this machine's memory). With check=True (the default) a
non-zero exit status fails the step. Only inside deploy(ctx).`

func runFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hostV, argvV starlark.Value
	check := true
	if err := starlark.UnpackArgs("run", args, kwargs, "host", &hostV, "argv", &argvV, "check?", &check); err != nil {
		return nil, err
	}
	h, err := deployableArg("run", hostV)
	if err != nil {
		return nil, err
	}
	if _, ok := argvV.(starlark.String); ok {
		return nil, fmt.Errorf("run(): argv must be a list of words such as [\"systemctl\", \"is-active\", \"nginx\"], not a string")
	}
	argv, err := stringList("run", "argv", argvV)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("run(): argv is empty")
	}
	for i, a := range argv {
		if strings.ContainsRune(a, 0) {
			return nil, fmt.Errorf("run(): argv[%d] contains a NUL byte", i)
		}
	}
	var rr *runtime.RunResult
	err = step(th, &runtime.Step{Host: h.Name, Action: runtime.ActionRun, Argv: argv, Target: h.Target()},
		func(ctx context.Context, ex runtime.Executor) (res *runtime.StepResult, err error) {
			if rr, err = ex.Run(ctx, h, argv); err != nil {
				return nil, err
			}
			if check && rr.ExitCode != 0 {
				err = &runtime.HostError{Host: h.Name, Step: "run", Err: fmt.Errorf("%s exited with status %d", argv[0], rr.ExitCode), Log: tail.Lines(rr.Stderr, 20)}
			}
			return &runtime.StepResult{ExitCode: rr.ExitCode}, err
		})
	if err != nil {
		return nil, err
	}
	return result("run", starlark.StringDict{
		"host":      h,
		"stdout":    starlark.String(rr.Stdout),
		"stderr":    starlark.String(rr.Stderr),
		"exit_code": starlark.MakeInt(rr.ExitCode),
	}), nil
}
