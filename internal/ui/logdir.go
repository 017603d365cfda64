package ui

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/fleet-deploy/fleet/runtime"
)

// RunLog is the file of a log directory that holds the lines of no
// single host. Host names start with a letter or digit, so it cannot
// clash with one.
const RunLog = "_run.log"

// logDir keeps one file per host in a directory, in the plain view's
// format, with every line that concerns the host: its steps, their
// progress and failures, its log() messages, and the output of Nix
// while it is being built (with or without -v). At most maxOpen files
// are open at once, so that a run of thousands of hosts does not run
// out of file descriptors.
type logDir struct {
	dir     string
	open    map[string]*os.File
	created map[string]bool
	err     error // the first write error, reported once
}

const maxOpen = 64

func newLogDir(dir string, sel *runtime.Selection) (*logDir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &runtime.UsageError{Msg: fmt.Sprintf("--log-dir %s: %v", dir, err)}
	}
	d := &logDir{dir: dir, open: map[string]*os.File{}, created: map[string]bool{}}
	// Start every file of the run afresh, so that a host's file never
	// holds lines of an earlier run.
	for _, name := range append([]string{RunLog}, hostNames(sel)...) {
		if _, err := d.file(name); err != nil {
			return nil, &runtime.UsageError{Msg: fmt.Sprintf("--log-dir %s: %v", dir, err)}
		}
	}
	return d, nil
}

func hostNames(sel *runtime.Selection) []string {
	var out []string
	for _, h := range sel.Selected {
		out = append(out, h.Name+".log")
	}
	return out
}

func (d *logDir) file(name string) (*os.File, error) {
	if f, ok := d.open[name]; ok {
		return f, nil
	}
	if len(d.open) >= maxOpen {
		for n, f := range d.open {
			f.Close()
			delete(d.open, n)
			break
		}
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if !d.created[name] {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(filepath.Join(d.dir, name), flags, 0o644)
	if err != nil {
		return nil, err
	}
	d.created[name] = true
	d.open[name] = f
	return f, nil
}

// write appends lines to the file of host ("" for the run's).
func (d *logDir) write(host string, lines ...string) {
	name := RunLog
	if host != "" {
		name = host + ".log"
	}
	f, err := d.file(name)
	if err == nil {
		for _, l := range lines {
			if _, err = f.WriteString(l); err != nil {
				break
			}
		}
	}
	if err != nil && d.err == nil {
		d.err = err
		fmt.Fprintf(os.Stderr, "fleet: --log-dir: %v\n", err)
	}
}

func (d *logDir) runStart(r *Renderer) {
	line := plainLine(r, false, "", "run", "start", "", fmt.Sprintf("%s of %d hosts", r.o.Command, len(r.sel.Selected)))
	d.write("", line)
	for _, s := range r.sel.Skipped {
		d.write("", plainLine(r, false, s.Host, "skip", "", "", s.Reason))
	}
}

func (d *logDir) stepStart(r *Renderer, s *stepState) {
	d.write(s.step.Host, plainLine(r, false, s.step.Host, string(s.step.Action), "start", "", Describe(s.step)))
}

func (d *logDir) stepProgress(r *Renderer, s *stepState) {
	if l := progressLine(r, false, s, &s.shownLog); l != "" {
		d.write(s.step.Host, l)
	}
}

func (d *logDir) stepEnd(r *Renderer, s *stepState) {
	d.write(s.step.Host, endLines(r, false, s)...)
}

func (d *logDir) log(r *Renderer, host, source, msg string) {
	if source == "nix" && host == "" {
		// Nix builds many hosts in one invocation: its output goes to
		// every host being built, and to the run's file.
		for _, h := range r.building() {
			d.write(h, logLines(r, false, h, source, msg)...)
		}
	}
	d.write(host, logLines(r, false, host, source, msg)...)
}

func (d *logDir) finish(r *Renderer, sum *Summary) {
	for _, h := range sum.Hosts {
		res := h.Result
		if h.FailedStep != "" {
			res += " (" + h.FailedStep + ")"
		}
		detail := res
		if g := generation(h.Previous, h.Current); g != "" {
			detail += ", " + g
		}
		d.write(h.Host, plainLine(r, false, h.Host, "summary", "", "", detail))
	}
	d.write("", plainLine(r, false, "", "summary", "", Duration(sum.Elapsed), sum.Result))
	for n, f := range d.open {
		f.Close()
		delete(d.open, n)
	}
}
