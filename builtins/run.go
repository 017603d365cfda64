package builtins

import (
	"fmt"
	"strings"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

func init() {
	register(&Builtin{
		Name: "run",
		Doc: `run(host, argv, check=True)

Runs a command on the host. argv is a list of strings, passed as separate
words (quoted for the remote shell by fleet; no shell syntax is
interpreted). Returns struct(host, stdout, stderr, exit_code); with
check=True (the default) a non-zero exit status fails the step. Only
inside deploy(ctx).`,
		Fn: runFn,
	})
}

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
	s, err := deploySession(th, "run")
	if err != nil {
		return nil, err
	}
	st := s.Begin(th, &runtime.Step{Host: h.Name, Action: "run", Argv: argv, Target: h.Target()})
	start := time.Now()
	r, err := s.Executor().Run(s.Context(), h, argv)
	if err == nil && !s.DryRun() {
		st.Result = &runtime.StepResult{ExitCode: r.ExitCode}
	}
	if err == nil && check && r.ExitCode != 0 {
		err = &runtime.HostError{Host: h.Name, Step: "run", Err: fmt.Errorf("%s exited with status %d", argv[0], r.ExitCode), Log: tail(r.Stderr, 20)}
	}
	s.End(st, err, time.Since(start))
	if err != nil {
		return nil, err
	}
	return result("run", starlark.StringDict{
		"host":      h,
		"stdout":    starlark.String(r.Stdout),
		"stderr":    starlark.String(r.Stderr),
		"exit_code": starlark.MakeInt(r.ExitCode),
	}), nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
