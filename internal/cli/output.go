package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/fatih/color"
	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

// newRunOutput shows a run as internal/ui renders it: a live view on a
// terminal, timestamped lines otherwise, JSON events with --json. The
// colour flag was applied by setup (color.NoColor).
func newRunOutput(c *cli.Context, sel *runtime.Selection) (*ui.Renderer, error) {
	mode := ui.Auto
	if c.Bool("json") {
		mode = ui.JSON
	}
	return ui.New(ui.Options{
		Out:      c.App.Writer,
		Mode:     mode,
		Color:    !color.NoColor,
		Verbose:  c.Bool("verbose"),
		LogDir:   c.String("log-dir"),
		Command:  "run",
		Goal:     c.String("goal"),
		Parallel: c.Int("parallel"),
	}, sel)
}

// row writes one row of a tabwriter table (history, status, hosts),
// every cell sanitized: the journal and the hosts' answers hold what
// hosts said (the targets of their links, their errors) exactly, and a
// table shows it escaped, one row per line.
func row(w io.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = ui.Sanitize(c)
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}
