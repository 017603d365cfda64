package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "deploy: build, push and activate the selected hosts",
		ArgsUsage: "[FILE]",
		Flags:     commonFlags(),
		Action: func(c *cli.Context) error {
			if _, err := setup(c); err != nil {
				return err
			}
			return cli.Exit(fmt.Sprintf("fleet run: real deploys are not built yet; `fleet plan` shows what a run would do"), exitUsage)
		},
	}
}
