package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleet-deploy/fleet/internal/colmena"
	"github.com/fleet-deploy/fleet/internal/export"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "write a starter fleet.star, or one for an existing colmena hive",
		ArgsUsage: "[--from-colmena [FLAKE | HIVE.nix]]",
		Description: `Without flags, writes a commented starter fleet.star (a host factory, two
example hosts, a rolling deploy(ctx)) and, when there is none, a
flake.nix next to it.

With --from-colmena, reads the colmena hive of FLAKE (its colmenaHive
or colmena output) or of a non-flake HIVE.nix (default: the current
directory's flake.nix, else its hive.nix) as colmena evaluates it, and
writes the fleet.star that deploys it as it is: three lines,
colmena_hive(flake = "."), which reads the hive whenever fleet loads the
file. With --expand, the file has a host() of its own for every node
instead, its deployment settings written out and its system built by a
mk_system factory (colmena_node): the same inventory, to read and edit.
What fleet does differently from colmena for a node is printed, and
written as comments with --expand. See docs/from-colmena.md.

An existing fleet.star is never overwritten without --force. The written
file is checked as fleet check would.

Examples:
  fleet init && fleet plan
  fleet init --from-colmena && fleet hosts
  fleet init --from-colmena ../infra -o infra.star
  fleet init --from-colmena --expand --override-input nixpkgs=../nixpkgs`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "from-colmena", Usage: "deploy the colmena hive of FLAKE or HIVE.nix (default .)"},
			&cli.BoolFlag{Name: "expand", Usage: "with --from-colmena: a host() per node, not colmena_hive()"},
			overrideFlag,
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing fleet.star"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE`", Value: "fleet.star"},
			colorFlag,
		},
		Action: func(c *cli.Context) error {
			if err := setColor(c.String("color"), c.App.Writer); err != nil {
				return err
			}
			out := c.String("output")
			args := c.Args().Slice()
			fromColmena := c.Bool("from-colmena")
			switch {
			case !fromColmena && len(args) > 0:
				return &runtime.UsageError{Msg: fmt.Sprintf("fleet init: unexpected %q (a FLAKE goes with --from-colmena)", args)}
			case len(args) > 1:
				return &runtime.UsageError{Msg: fmt.Sprintf("fleet init: want at most one FLAKE, got %q", args)}
			}
			if _, err := os.Stat(out); err == nil && !c.Bool("force") {
				return &runtime.UsageError{Msg: fmt.Sprintf("%s exists: not overwriting it (--force to replace it)", out)}
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			absOut, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			dir := filepath.Dir(absOut)
			var text string
			var notes, wrote []string
			if fromColmena {
				src := colmenaSource(args)
				if src.Overrides, err = overrides(c); err != nil {
					return err
				}
				hive, err := colmena.Read(c.Context, src)
				if err != nil {
					return err
				}
				if len(hive.Nodes) == 0 {
					return fmt.Errorf("the colmena hive has no nodes")
				}
				text, notes = hive.Generate(dir), hive.Notes()
				if c.Bool("expand") {
					text = hive.Expand(dir)
				}
			} else {
				text = starter
				if _, err := os.Stat(filepath.Join(dir, "flake.nix")); errors.Is(err, fs.ErrNotExist) {
					if err := export.WriteFile(filepath.Join(dir, "flake.nix"), []byte(starterFlake)); err != nil {
						return err
					}
					wrote = append(wrote, filepath.Join(filepath.Dir(out), "flake.nix"))
				}
			}
			if err := export.WriteFile(absOut, []byte(text)); err != nil {
				return err
			}
			wrote = append([]string{out}, wrote...)
			for _, w := range wrote {
				fmt.Fprintf(c.App.Writer, "wrote %s\n", w)
			}
			for _, n := range notes {
				fmt.Fprintf(c.App.ErrWriter, "fleet init: note: %s\n", n)
			}
			prog, err := runtime.Load(c.Context, out, universe(c))
			if err != nil {
				fmt.Fprintf(c.App.ErrWriter, "fleet init: %s does not pass fleet check yet; fix it, then run fleet check:\n", out)
				return err
			}
			sel, err := prog.Select("")
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: ok, %d hosts (%d deployable); next: fleet hosts, fleet plan\n", prog.File, len(prog.Hosts()), sel.Deployable)
			return nil
		},
	}
}

// colmenaSource is the hive init --from-colmena reads: args[0], a flake
// or a .nix file, or as colmena looks for it, ./flake.nix then ./hive.nix.
func colmenaSource(args []string) colmena.Source {
	if len(args) == 1 {
		if strings.HasSuffix(args[0], ".nix") {
			return colmena.Source{File: args[0]}
		}
		return colmena.Source{Flake: args[0]}
	}
	if _, err := os.Stat("flake.nix"); err != nil {
		if _, err := os.Stat("hive.nix"); err == nil {
			return colmena.Source{File: "hive.nix"}
		}
	}
	return colmena.Source{Flake: "."}
}

// starterFlake is written next to a starter fleet.star when there is no
// flake.nix: nixos_system() evaluates nixpkgs.lib.nixosSystem of it.
const starterFlake = `{
  description = "NixOS machines deployed with fleet (fleet.star)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  # fleet evaluates inputs.nixpkgs.lib.nixosSystem itself, from fleet.star.
  # For tools that want nixosConfigurations (nixos-rebuild, nixos-anywhere):
  #   fleet export nix -o fleet-export.nix
  # then: outputs = { self, nixpkgs, ... }@inputs: {
  #   nixosConfigurations = import ./fleet-export.nix { inherit inputs self; };
  # };
  outputs = { self, nixpkgs, ... }: { };
}
`

// starter is the fleet.star `fleet init` writes.
const starter = `# fleet.star: your machines, how each one's NixOS system is built, and how
# a deploy rolls out. It is Starlark (a small Python); fleet evaluates it.
#
#   fleet hosts            the inventory
#   fleet check            evaluate this file, report errors
#   fleet plan             what fleet run would do, touching nothing
#   fleet run --on web1    build, push and activate (--on @web: by tag)
#
# Every builtin (host, nixos_system, path, nix_expr, nix_build, push,
# activate, parallel, check, ...) is documented in fleet's docs/builtins.md;
# the rollout strategies in README.md and @fleet//rollout.star.

load("@fleet//rollout.star", "canary", "rolling")

# The host factory: one function that says what every machine has in
# common, called once per machine. Change it freely.
def mk_host(name, address = None, user = "root", system = "x86_64-linux", tags = [], modules = []):
    return host(
        name = name,
        system = system,
        tags = tags,
        # Without target_host a host is in the inventory (fleet hosts,
        # fleet export) but never deployed.
        target_host = address,
        target_user = user,  # not root: fleet activates with sudo
        # The system: inputs.nixpkgs.lib.nixosSystem of the flake in this
        # directory (flake.nix), with these modules.
        nixos = nixos_system(
            flake = ".",
            modules = [
                # Your machine's files, e.g. hardware-configuration.nix:
                #   path("./hosts/" + name),
                # A module from a flake input:
                #   nix_expr("inputs.sops-nix.nixosModules.sops"),
                # A module written inline, as a dict:
                {
                    "networking": {"hostName": name},
                    "services": {"openssh": {"enable": True}},
                    "system": {"stateVersion": "25.11"},
                },
            ] + modules,
            # Passed to every module, like specialArgs: { name, ... }: ...
            special_args = {"name": name, "hosts": inventory()},
        ),
    )

# Two example machines (192.0.2.x is a documentation range: use yours).
mk_host("web1", address = "192.0.2.10", tags = ["web"])
mk_host("db1", address = "192.0.2.20", user = "deploy", tags = ["db"])

# How a deploy rolls out. Without deploy(ctx) fleet runs its default
# strategy (@fleet//default.star): build, push and activate every selected
# host at once, as colmena apply does. This one builds everything in one
# Nix evaluation and copies the closures in parallel, then activates one
# canary host first and the others one by one, stopping at the first
# failure.
def deploy(ctx):
    closures = nix_build(ctx.hosts)

    def ship(h):
        push(h, closures[h.name])
        upload_keys(h, "pre-activation")  # host(keys = [secret(...)]), if any

    def switch(h):
        activate(h, closures[h.name], goal = ctx.goal)
        upload_keys(h, "post-activation")

    parallel(ship, ctx.hosts, limit = ctx.parallel)
    canary(ctx.hosts, switch, first = 1, then = lambda rest, step: rolling(rest, step, batch = 1))
`
