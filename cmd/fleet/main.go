// Command fleet deploys NixOS machines from a Starlark file.
//
//	fleet plan fleet.star          # what a deploy would do, touching nothing
//	fleet run --on @server         # deploy the hosts tagged server
package main

import (
	"os"

	"github.com/fleet-deploy/fleet/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr)) }
