package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/fleet-deploy/fleet/internal/executor"
	"github.com/fleet-deploy/fleet/internal/export"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

var (
	outFlag      = &cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the closures file (docs/closures.md) to `FILE` instead of stdout"}
	closuresFlag = &cli.StringFlag{Name: "closures", Usage: "deploy the closures of `FILE` (written by fleet build --out) instead of evaluating fleet.star's systems"}
)

func buildCommand() *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "build the selected hosts' systems and write their closures; deploys nothing",
		ArgsUsage: "[FILE]",
		Description: `Builds every selected host's system as fleet run would (one evaluation
per chunk of hosts; build_on_target hosts build on the host) and writes
the closures file of docs/closures.md: each host's closure and system,
and the git revision of the repository holding FILE. fleet run
--closures deploys exactly those closures later, elsewhere, without
evaluating anything: build in CI, deploy what CI built.

Exit status 1 if a host fails to build; then no file is written.

Examples:
  fleet build --out closures.json
  fleet run --closures closures.json --on @server`,
		Flags: []cli.Flag{onFlag, parallelFlag, colorFlag, verboseFlag, outFlag, sshConfigFlag, acceptNewFlag, askSudoFlag, overrideFlag, buildersFlag, evalLimitFlag},
		Action: func(c *cli.Context) error {
			t, err := reach(c, "")
			if err != nil {
				return err
			}
			hosts := deployable(t.sel.Selected)
			if len(hosts) == 0 {
				return &runtime.UsageError{Msg: "fleet build: no deployable host selected"}
			}
			if err := preflight(c.Context, hosts, t.opts.Overrides, true); err != nil {
				return err
			}
			if c.Bool("verbose") {
				t.opts.Log = func(l string) { fmt.Fprintln(c.App.ErrWriter, l) }
			}
			ex := executor.New(t.opts)
			defer ex.Close()
			built, err := ex.Build(c.Context, hosts)
			if err != nil {
				return hostFailures(err)
			}
			file, _ := fileArg(c)
			abs, _ := filepath.Abs(file)
			doc, err := json.MarshalIndent(executor.NewClosures(c.Context, abs, hosts, built), "", "  ")
			if err != nil {
				return err
			}
			doc = append(doc, '\n')
			out := c.String("out")
			if out == "" || out == "-" {
				_, err = c.App.Writer.Write(doc)
				return err
			}
			if err := export.WriteFile(out, doc); err != nil {
				return err
			}
			for _, h := range hosts {
				fmt.Fprintf(c.App.ErrWriter, "%s %s\n", h.Name, built[h.Name])
			}
			fmt.Fprintf(c.App.ErrWriter, "fleet build: %d closures written to %s\n", len(built), out)
			return nil
		},
	}
}

// hostFailures gathers the HostErrors of err so that every failed host
// is reported, not the first.
func hostFailures(err error) error {
	var hf runtime.HostFailures
	var walk func(error)
	walk = func(err error) {
		var he *runtime.HostError
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		} else if errors.As(err, &he) {
			hf.Errs = append(hf.Errs, he)
		}
	}
	walk(err)
	if len(hf.Errs) == 0 {
		return err
	}
	slices.SortFunc(hf.Errs, func(a, b *runtime.HostError) int {
		if a.Host < b.Host {
			return -1
		}
		if a.Host > b.Host {
			return 1
		}
		return 0
	})
	return &hf
}

// givenClosures reads --closures, if set, for the selected deployable
// hosts: every one must be in the file, for its system, and its closure
// in this machine's store or a substituter's. Any of that wrong is a
// usage error (exit 2), before any host is touched.
func givenClosures(c *cli.Context, hosts []*runtime.Host) (map[string]string, error) {
	file := c.String("closures")
	if file == "" {
		return nil, nil
	}
	cl, err := executor.ReadClosures(file)
	if err != nil {
		return nil, &runtime.UsageError{Msg: fmt.Sprintf("--closures %v", err)}
	}
	m, err := cl.For(hosts)
	if err != nil {
		return nil, &runtime.UsageError{Msg: fmt.Sprintf("--closures %s: %v", file, err)}
	}
	return m, nil
}
