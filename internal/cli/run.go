package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleet-deploy/fleet/internal/executor"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

var (
	sshConfigFlag = &cli.StringSliceFlag{Name: "ssh-config", Usage: "ssh_config `FILE` to use instead of ~/.ssh/config and /etc/ssh/ssh_config (repeatable)"}
	acceptNewFlag = &cli.BoolFlag{Name: "accept-new-host-keys", Usage: "trust and record the key of a host seen for the first time (StrictHostKeyChecking accept-new); a changed key is always refused"}
	overrideFlag  = &cli.StringSliceFlag{Name: "override-input", Usage: "`NAME=FLAKE`: use FLAKE as input NAME of the flakes nixos_system() evaluates, like nix --override-input (repeatable)"}
	buildersFlag  = &cli.StringFlag{Name: "builders", Usage: "Nix remote builders, passed to Nix as --builders"}
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "deploy: build, push and activate the selected hosts",
		ArgsUsage: "[FILE]",
		Description: `Evaluates fleet.star and runs its deploy(ctx) (or the default strategy:
build all, push all, activate all) for real: Nix builds on this machine,
closures go over one SSH connection per host, activation runs
switch-to-configuration on each host.

Examples:
  fleet run --on envy,lenovo
  fleet run --goal boot --on @server -p 4
  fleet run --ssh-config lab.ssh_config --override-input nixpkgs=./mini-nixpkgs`,
		Flags: commonFlags(jsonFlag, sshConfigFlag, acceptNewFlag, overrideFlag, buildersFlag),
		Action: func(c *cli.Context) error {
			prog, err := setup(c)
			if err != nil {
				return err
			}
			sel, err := prog.Select(c.String("on"))
			if err != nil {
				return err
			}
			opts, err := executorOptions(c)
			if err != nil {
				return err
			}
			obs := newRunObserver(c.App.Writer, c.Bool("json"), c.Bool("verbose"), sel)
			if c.Bool("verbose") && !c.Bool("json") {
				opts.Log = func(line string) { obs.Log("nix", line) }
			}
			ex := executor.New(opts)
			defer ex.Close()
			_, err = prog.Deploy(c.Context, sel, runtime.RunOptions{
				Executor: ex, Observer: obs, Goal: c.String("goal"), Parallel: c.Int("parallel"), Stop: stopChan(c),
			})
			interrupted := c.Context.Err() != nil || errors.Is(err, context.Canceled)
			select {
			case <-stopChan(c):
				interrupted = true
			default:
			}
			obs.summary(err, interrupted)
			return err
		},
	}
}

func executorOptions(c *cli.Context) (executor.Options, error) {
	o := executor.Options{Builders: c.String("builders")}
	if files := c.StringSlice("ssh-config"); len(files) > 0 {
		for _, f := range files {
			if _, err := os.Stat(f); err != nil {
				return o, &runtime.UsageError{Msg: fmt.Sprintf("--ssh-config %s: no such file", f)}
			}
		}
		o.SSH.ConfigFiles = files
	}
	if c.Bool("accept-new-host-keys") {
		o.SSH.StrictHostKeyChecking = "accept-new"
	}
	for _, kv := range c.StringSlice("override-input") {
		name, ref, ok := strings.Cut(kv, "=")
		if !ok || name == "" || ref == "" {
			return o, &runtime.UsageError{Msg: fmt.Sprintf("--override-input %q: want NAME=FLAKE", kv)}
		}
		if !strings.Contains(ref, ":") { // a local directory, as Nix reads it

			abs, err := filepath.Abs(ref)
			if err != nil {
				return o, err
			}
			ref = abs
		}
		if o.Overrides == nil {
			o.Overrides = map[string]string{}
		}
		o.Overrides[name] = ref
	}
	return o, nil
}
