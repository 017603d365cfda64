package cli

import (
	"fmt"

	"github.com/fleet-deploy/fleet/internal/executor"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

// target is what every command that reaches hosts starts from: the
// program the file declares, the hosts --on selects, and the executor
// options the command's flags give.
type target struct {
	prog *runtime.Program
	sel  *runtime.Selection
	opts executor.Options
}

// reach loads file ("" for the command's FILE argument), applies --on and
// reads the executor flags, checking every flag before anything is shown
// or touched: a usage error comes first.
func reach(c *cli.Context, file string) (*target, error) {
	if file == "" {
		f, err := fileArg(c)
		if err != nil {
			return nil, err
		}
		file = f
	}
	if hasFlag(c, parallelFlag.Name) && c.Int("parallel") < 1 {
		return nil, &runtime.UsageError{Msg: fmt.Sprintf("--parallel %d: must be at least 1", c.Int("parallel"))}
	}
	prog, err := load(c, file)
	if err != nil {
		return nil, err
	}
	sel, err := prog.Select(c.String("on"))
	if err != nil {
		return nil, err
	}
	opts, err := executorOptions(c)
	if err != nil {
		return nil, err
	}
	return &target{prog: prog, sel: sel, opts: opts}, nil
}

// hasFlag reports whether the running command defines the flag name.
func hasFlag(c *cli.Context, name string) bool {
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}
