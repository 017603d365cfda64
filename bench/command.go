// The command runner: every program a benchmark times (fleet, the
// baselines, single operations) is a command, run to completion with its
// output, wall time, CPU time and max RSS kept in a result, and printed in
// the report as a line one can paste into a shell.

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/fleet-deploy/fleet/internal/shell"
	"github.com/fleet-deploy/fleet/internal/tail"
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
		fmt.Fprintf(&b, "cd %s && ", shell.Quote(c.dir))
	}
	for _, kv := range c.env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "%s=%s ", k, shell.Quote(v))
	}
	for i, a := range c.argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(shell.Quote(a))
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
	return fmt.Errorf("exit %d (%v): %s", r.code, r.err, tail.Lines(r.stderr+r.stdout, 15))
}

// timeBin reports a child's real max RSS: Go starts children with vfork,
// and the kernel then starts the child's ru_maxrss at the parent's RSS, so
// wait4's value is this (big) process's, not the child's; a small
// intermediate process, /usr/bin/time, reports the child's own. "" if it
// is not installed.
var timeBin = func() string {
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		return "/usr/bin/time"
	}
	return ""
}()

// withMaxRSS runs c under /usr/bin/time (if installed), whose report
// maxRSSMB reads; the child's stdout is unchanged.
func withMaxRSS(c command) command {
	if timeBin == "" {
		return c
	}
	c.argv = append([]string{timeBin, "-f", "BENCHTIME %M"}, c.argv...)
	return c
}

// maxRSSMB is the command's max RSS in MB: /usr/bin/time's report if it
// ran under withMaxRSS, else wait4's (an overestimate, see timeBin). For a
// command that starts others it is the largest process's.
func (r result) maxRSSMB() float64 {
	kb := r.maxRSSKB
	for _, l := range strings.Split(r.stderr, "\n") {
		if v, ok := strings.CutPrefix(l, "BENCHTIME "); ok {
			fmt.Sscan(v, &kb)
		}
	}
	return float64(kb) * 1024 / 1e6
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
