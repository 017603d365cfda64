package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fleet-deploy/fleet/internal/export"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

var (
	outputFlag = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` instead of stdout"}
	flakeFlag  = &cli.StringFlag{Name: "flake", Usage: "(nix) the `DIR` of the flake that imports the file (default: the one flake all hosts use, else the directory of fleet.star)"}
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write the inventory for other tools: nixosConfigurations (nix) or JSON",
		ArgsUsage: "nix|json [FILE]",
		Description: `fleet export nix writes a Nix file that gives a flake
nixosConfigurations.NAME for every host of fleet.star, deployable or not,
evaluated exactly as fleet run evaluates them (nix build, nixos-rebuild,
nixos-anywhere can then use the flake). In flake.nix:

  nixosConfigurations = import ./fleet-export.nix { inherit inputs self; };

Paths in it are relative to the file (-o; with stdout, to the flake's
directory), so write it inside the flake. The header says more.

fleet export json prints the inventory as JSON: name, system, target,
tags, vars, deployable and how each host is built.

Examples:
  fleet export nix -o fleet-export.nix
  fleet export json --on @server | jq -r '.hosts[].target'`,
		Flags: []cli.Flag{onFlag, colorFlag, outputFlag, flakeFlag},
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) == 0 || len(args) > 2 || (args[0] != "nix" && args[0] != "json") {
				return &runtime.UsageError{Msg: fmt.Sprintf("fleet export: want nix|json [FILE], got %q", args)}
			}
			format, file := args[0], "fleet.star"
			if len(args) == 2 {
				file = args[1]
			}
			if format == "json" && c.IsSet("flake") {
				return &runtime.UsageError{Msg: "fleet export json: --flake is for fleet export nix"}
			}
			prog, err := load(c, file)
			if err != nil {
				return err
			}
			all := prog.Hosts()
			matched, err := runtime.Match(all, c.String("on"))
			if err != nil {
				return err
			}
			hosts := filterHosts(all, matched)
			out := c.String("output")
			if out == "-" {
				out = ""
			}
			var data []byte
			count := len(hosts)
			switch format {
			case "json":
				inv, err := export.JSON(hosts, all)
				if err != nil {
					return err
				}
				var b bytes.Buffer
				if err := writeJSON(&b, inv); err != nil {
					return err
				}
				data = b.Bytes()
			case "nix":
				abs, err := filepath.Abs(file)
				if err != nil {
					return err
				}
				o := export.NixOptions{Source: filepath.Base(file)}
				if f := c.String("flake"); f != "" {
					if o.Flake, err = filepath.Abs(f); err != nil {
						return err
					}
					if _, err := os.Stat(filepath.Join(o.Flake, "flake.nix")); err != nil {
						return &runtime.UsageError{Msg: fmt.Sprintf("--flake %s: no flake.nix there", f)}
					}
				} else {
					o.Flake = export.DefaultFlake(all, filepath.Dir(abs))
				}
				if out != "" {
					absOut, err := filepath.Abs(out)
					if err != nil {
						return err
					}
					o.Dir, o.Name = filepath.Dir(absOut), filepath.Base(absOut)
				}
				res, err := export.Nix(hosts, o)
				if err != nil {
					return err
				}
				for _, w := range res.Warnings {
					fmt.Fprintf(c.App.ErrWriter, "fleet export: warning: %s\n", w)
				}
				data, count = []byte(res.Text), len(res.Hosts)
			}
			if out == "" {
				_, err := c.App.Writer.Write(data)
				return err
			}
			if err := export.WriteFile(out, data); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "fleet export: wrote %s (%d hosts)\n", out, count)
			return nil
		},
	}
}
