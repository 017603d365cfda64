package cli

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/fleet-deploy/fleet/internal/journal"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

var stateDirFlag = &cli.StringFlag{Name: "state-dir", Usage: "where the deploy journal lives (default $XDG_STATE_HOME/fleet)"}

func stateDir(c *cli.Context) string {
	if d := c.String("state-dir"); d != "" {
		return d
	}
	return journal.DefaultDir()
}

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "show past deploys from the journal",
		Description: `Every fleet run journals, per host, the intent to activate and its
outcome: time, goal, system before and after, result, step timings.
A host whose activation started but has no outcome was interrupted
hard (its system is either the old or the new one; fleet status tells).

Examples:
  fleet history
  fleet history --on 'web*' --json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "on", Usage: "only hosts matching these comma separated names or globs"},
			jsonFlag, stateDirFlag, colorFlag,
			&cli.IntFlag{Name: "last", Usage: "only the last N entries", Value: 50},
		},
		Action: func(c *cli.Context) error {
			recs, err := journal.Read(stateDir(c))
			if err != nil {
				return err
			}
			entries := historyEntries(recs)
			if on := c.String("on"); on != "" {
				var hosts []*runtime.Host
				seen := map[string]bool{}
				for _, e := range entries {
					if !seen[e.Host] {
						seen[e.Host] = true
						hosts = append(hosts, &runtime.Host{Name: e.Host})
					}
				}
				matched, err := runtime.Match(hosts, on)
				if err != nil {
					return err
				}
				keep := map[string]bool{}
				for i, h := range hosts {
					keep[h.Name] = matched[i]
				}
				var kept []historyEntry
				for _, e := range entries {
					if keep[e.Host] {
						kept = append(kept, e)
					}
				}
				entries = kept
			}
			if n := c.Int("last"); n > 0 && len(entries) > n {
				entries = entries[len(entries)-n:]
			}
			if c.Bool("json") {
				if entries == nil {
					entries = []historyEntry{}
				}
				return writeJSON(c.App.Writer, entries)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tHOST\tGOAL\tRESULT\tSYSTEM\tSTEPS")
			for _, e := range entries {
				sys := short(e.Current)
				if e.Previous != "" && e.Previous != e.Current {
					sys = short(e.Previous) + " -> " + short(e.Current)
				} else if e.Current == "" {
					sys = short(e.Closure)
				}
				if e.Generation != 0 {
					sys += fmt.Sprintf(" (generation %d)", e.Generation)
				}
				if e.Warning != "" {
					sys += "; " + e.Warning
				}
				res := e.Result
				if e.Step != "" {
					res += " (" + e.Step + ")"
				}
				row(tw, e.Time.Local().Format("2006-01-02 15:04:05"), e.Host, e.Goal, res, sys, steps(e.Steps))
			}
			return tw.Flush()
		},
	}
}

// historyEntry is one host of one run: its outcome, or "interrupted?"
// when only the intent was journaled.
type historyEntry struct {
	journal.Record
}

func historyEntries(recs []journal.Record) []historyEntry {
	type key struct{ run, host string }
	var out []historyEntry
	index := map[key]int{}
	for _, r := range recs {
		k := key{r.Run, r.Host}
		i, ok := index[k]
		if !ok {
			index[k] = len(out)
			if r.Event == "activating" {
				r.Result = "no outcome (killed?)"
			}
			out = append(out, historyEntry{r})
			continue
		}
		if r.Event == "result" {
			out[i] = historyEntry{r}
		}
	}
	return out
}

func steps(m map[string]float64) string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %.1fs", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
