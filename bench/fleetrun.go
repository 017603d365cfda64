// How the benchmarks run fleet (`fleet run --json` against the lab, with
// nixpkgs replaced by testdata/mini-nixpkgs) and where its wall time went,
// read from its --json events.

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

func (b *bench) overrideArgs() []string {
	return []string{"--override-input", "nixpkgs=" + filepath.Join(cfg.root, "testdata/mini-nixpkgs")}
}

func (b *bench) fleetRun(file string, extra ...string) command {
	return b.fleetRunVia(b.lab.SSHConfig, file, extra...)
}

// fleetRunVia is fleetRun with another ssh_config (the WAN's proxies).
func (b *bench) fleetRunVia(sshConfig, file string, extra ...string) command {
	argv := append([]string{cfg.fleet, "run", "--json", "-p", "10", "--ssh-config", sshConfig}, b.overrideArgs()...)
	argv = append(append(argv, extra...), file)
	return command{dir: filepath.Dir(file), argv: argv}
}

// runFleet runs a fleet run command and parses its events.
func runFleet(ctx context.Context, c command) (result, phases, error) {
	r := c.run(ctx)
	if err := r.failed(); err != nil {
		return r, phases{}, fmt.Errorf("fleet run: %w", err)
	}
	evs, err := parseEvents(r.stdout)
	if err != nil {
		return r, phases{}, err
	}
	return r, fleetPhases(r, evs), nil
}

type fleetEvent struct {
	Event     string    `json:"event"`
	Time      time.Time `json:"time"`
	Host      string    `json:"host"`
	ElapsedMS int64     `json:"elapsed_ms"`
	Error     string    `json:"error"`
	Step      *struct {
		Action  string `json:"action"`
		Closure string `json:"closure"`
		Result  *struct {
			Paths   int   `json:"paths"`
			Missing int   `json:"missing"`
			Bytes   int64 `json:"bytes"`
		} `json:"result"`
	} `json:"step"`
	Changed []string          `json:"changed"`
	Failed  map[string]string `json:"failed"`
}

func parseEvents(out string) ([]fleetEvent, error) {
	var evs []fleetEvent
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e fleetEvent
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("bad event %q: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs, sc.Err()
}

// phases is where the wall time of one `fleet run` went, from its
// --json events.
type phases struct {
	load      time.Duration // process start to run_start: start-up, Starlark load, selection
	build     time.Duration // run_start to the last build step_end: one nix-build (eval + build)
	push      time.Duration // first push step_start to last push step_end
	activate  time.Duration // first activate step_start to last activate step_end
	tail      time.Duration // summary to process exit
	pushSum   time.Duration // sum over hosts of the push steps' elapsed_ms
	actSum    time.Duration // sum over hosts of the activate steps' elapsed_ms
	pushBytes int64
	pushMS    int64
	missing   int
	closures  map[string]string
	steps     map[string]int
}

func fleetPhases(r result, evs []fleetEvent) phases {
	p := phases{closures: map[string]string{}, steps: map[string]int{}}
	var runStart, summary time.Time
	first := map[string]time.Time{}
	last := map[string]time.Time{}
	for _, e := range evs {
		switch e.Event {
		case "run_start":
			runStart = e.Time
		case "summary":
			summary = e.Time
		case "step_start":
			if e.Step != nil {
				if t, ok := first[e.Step.Action]; !ok || e.Time.Before(t) {
					first[e.Step.Action] = e.Time
				}
			}
		case "step_end":
			if e.Step == nil {
				continue
			}
			a := e.Step.Action
			p.steps[a]++
			if e.Time.After(last[a]) {
				last[a] = e.Time
			}
			d := time.Duration(e.ElapsedMS) * time.Millisecond
			switch a {
			case "build":
				if e.Error == "" {
					p.closures[e.Host] = e.Step.Closure
				}
			case "push":
				p.pushSum += d
				if e.Step.Result != nil {
					p.pushBytes += e.Step.Result.Bytes
					p.missing += e.Step.Result.Missing
				}
				p.pushMS += e.ElapsedMS
			case "activate":
				p.actSum += d
			}
		}
	}
	if !runStart.IsZero() {
		p.load = runStart.Sub(r.started)
		if t, ok := last["build"]; ok {
			p.build = t.Sub(runStart)
		}
	}
	if t, ok := first["push"]; ok {
		p.push = last["push"].Sub(t)
	}
	if t, ok := first["activate"]; ok {
		p.activate = last["activate"].Sub(t)
	}
	if !summary.IsZero() {
		p.tail = r.started.Add(r.wall).Sub(summary)
	}
	return p
}
