package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/internal/tail"
	"github.com/fleet-deploy/fleet/runtime"
)

// RunOutputMax is how much of a run()'s stdout and of its stderr is
// kept: the last RunOutputMax bytes of each. A host that prints
// gigabytes must not take this machine's memory.
const RunOutputMax = 1 << 20

// Run runs argv on h as the target user. A non-zero exit status is a
// result, not an error; failing to run it at all is an error.
func (e *Executor) Run(ctx context.Context, h *runtime.Host, argv []string) (*runtime.RunResult, error) {
	out, errb := tail.NewBuffer(RunOutputMax), tail.NewBuffer(RunOutputMax)
	code, err := e.Exec(ctx, h, argv, out, errb)
	if err != nil {
		return nil, hostErr(h, "run", err)
	}
	return &runtime.RunResult{Stdout: out.String(), Stderr: errb.String(), ExitCode: code}, nil
}

// Exec runs argv on h as the target user, streaming its output, and
// returns its exit status (fleet exec). Failing to reach the host is an
// error.
func (e *Executor) Exec(ctx context.Context, h *runtime.Host, argv []string, stdout, stderr io.Writer) (int, error) {
	m, err := e.machine(h)
	if err != nil {
		return 0, err
	}
	err = m.host.Run(ctx, remote.Cmd{Argv: argv, Stdout: stdout, Stderr: stderr}) // as the user: no sudo
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		return ee.Code, nil
	}
	return 0, err
}

// SystemState is what a host runs.
type SystemState struct {
	Current    string // /run/current-system
	Booted     string // /run/booted-system, if the host has one
	Profile    string // the system profile's target
	Generation int    // the system profile's generation
}

// stateScript prints the three links, one per line (empty if absent).
const stateScript = `readlink /run/current-system; echo; readlink /run/booted-system; echo; readlink -f /nix/var/nix/profiles/system; echo; readlink /nix/var/nix/profiles/system; echo`

// State asks h what it runs.
func (e *Executor) State(ctx context.Context, h *runtime.Host) (*SystemState, error) {
	m, err := e.machine(h)
	if err != nil {
		return nil, err
	}
	out, err := m.run(ctx, asUser, nil, "sh", "-c", stateScript)
	if err != nil {
		return nil, err
	}
	// Each readlink prints a line or nothing, each echo an empty line.
	var vals []string
	cur := ""
	for _, l := range strings.Split(out, "\n") {
		if l == "" {
			vals = append(vals, cur)
			cur = ""
			continue
		}
		cur = strings.TrimSpace(l)
	}
	for len(vals) < 4 {
		vals = append(vals, "")
	}
	st := &SystemState{Current: vals[0], Booted: vals[1], Profile: vals[2]}
	if m := genRE.FindStringSubmatch(vals[3]); m != nil {
		fmt.Sscan(m[1], &st.Generation)
	}
	return st, nil
}
