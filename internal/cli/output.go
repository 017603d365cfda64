package cli

import (
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
