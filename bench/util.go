package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// result of one command.
type result struct {
	stdout, stderr string
	wall           time.Duration
	started        time.Time
	maxRSSKB       int64         // of the child (getrusage RUSAGE_CHILDREN via wait4)
	cpu            time.Duration // user+sys of the child and the children it waited for
	code           int
	err            error
}

// command is a program to run, with the environment added to ours.
type command struct {
	dir  string
	env  []string
	argv []string
}

// String is the command as one can paste it into a shell.
func (c command) String() string {
	var b strings.Builder
	if c.dir != "" {
		fmt.Fprintf(&b, "cd %s && ", shq(c.dir))
	}
	for _, kv := range c.env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "%s=%s ", k, shq(v))
	}
	for i, a := range c.argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(shq(a))
	}
	return b.String()
}

func (c command) run(ctx context.Context) result {
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), c.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	r := result{started: time.Now()}
	err := cmd.Run()
	r.wall = time.Since(r.started)
	r.stdout, r.stderr, r.err = out.String(), errb.String(), err
	if ps := cmd.ProcessState; ps != nil {
		r.code = ps.ExitCode()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.maxRSSKB = ru.Maxrss
		}
		r.cpu = ps.UserTime() + ps.SystemTime()
	} else {
		r.code = -1
	}
	return r
}

func (r result) failed() error {
	if r.err == nil && r.code == 0 {
		return nil
	}
	return fmt.Errorf("exit %d (%v): %s", r.code, r.err, tailLines(r.stderr+r.stdout, 15))
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func shq(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-=./,:@+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ---- statistics ----

type stats struct{ med, min, max float64 }

func summarize(xs []float64) stats {
	if len(xs) == 0 {
		return stats{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{med: med, min: s[0], max: s[len(s)-1]}
}

// ---- fleet run --json ----

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

// ---- machine ----

type machine struct {
	nproc, cpu, kernel, nix, ssh, goVersion, os, ansible, mem string
	loadStart                                                 string
}

func machineDetails() machine {
	m := machine{goVersion: runtime.Version()}
	out := func(name string, args ...string) string {
		o, _ := exec.Command(name, args...).CombinedOutput()
		return strings.TrimSpace(string(o))
	}
	m.nproc = out("nproc")
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	m.kernel = out("uname", "-sr")
	m.nix = out("nix", "--version")
	m.ssh = out("ssh", "-V")
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.os = strings.Trim(v, `"`)
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.mem = strings.Join(strings.Fields(strings.SplitN(string(data), "\n", 2)[0])[1:], " ")
	}
	if p, err := exec.LookPath("ansible-playbook"); err == nil {
		m.ansible = strings.SplitN(out(p, "--version"), "\n", 2)[0]
	}
	m.loadStart = loadavg()
	return m
}

func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
