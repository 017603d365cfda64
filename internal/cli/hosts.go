package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

func hostsCommand() *cli.Command {
	return &cli.Command{
		Name:      "hosts",
		Usage:     "list the inventory",
		ArgsUsage: "[FILE]",
		Description: `Prints every host of fleet.star: name, system, SSH target, tags and
whether fleet can deploy it. --on filters the list.

Examples:
  fleet hosts
  fleet hosts --on @server --json`,
		Flags: []cli.Flag{onFlag, colorFlag, jsonFlag, sshConfigFlag, overrideFlag},
		Action: func(c *cli.Context) error {
			prog, err := setup(c)
			if err != nil {
				return err
			}
			hosts := prog.Hosts()
			matched, err := runtime.Match(hosts, c.String("on"))
			if err != nil {
				return err
			}
			hosts = filterHosts(hosts, matched)
			if c.Bool("json") {
				type hostJSON struct {
					Name       string   `json:"name"`
					System     string   `json:"system"`
					Target     *string  `json:"target"`
					Tags       []string `json:"tags"`
					Deployable bool     `json:"deployable"`
					Note       string   `json:"note,omitempty"`
				}
				out := []hostJSON{}
				for _, h := range hosts {
					j := hostJSON{Name: h.Name, System: h.System, Tags: h.Tags, Deployable: h.Deployable(), Note: h.Note()}
					if j.Tags == nil {
						j.Tags = []string{}
					}
					if h.Deployable() {
						t := h.Target()
						j.Target = &t
					}
					out = append(out, j)
				}
				return writeJSON(c.App.Writer, out)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSYSTEM\tTARGET\tTAGS\tDEPLOYABLE")
			for _, h := range hosts {
				tags := strings.Join(h.Tags, ",")
				if tags == "" {
					tags = "-"
				}
				dep := "no"
				if h.Deployable() {
					dep = "yes"
				}
				if n := h.Note(); n != "" {
					dep += " (" + n + ")"
				}
				row(tw, h.Name, h.System, h.Target(), tags, dep)
			}
			return tw.Flush()
		},
	}
}

func filterHosts(hosts []*runtime.Host, keep []bool) []*runtime.Host {
	var out []*runtime.Host
	for i, h := range hosts {
		if keep[i] {
			out = append(out, h)
		}
	}
	return out
}
