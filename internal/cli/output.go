package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fatih/color"
	"github.com/fleet-deploy/fleet/runtime"
)

// runObserver prints a run as it happens: one line per finished step,
// host first, like colmena; or, with --json, one JSON event per line.
type runObserver struct {
	w       io.Writer
	json    bool
	verbose bool
	width   int // host column
	start   time.Time

	mu      sync.Mutex
	changed map[string]bool   // hosts now running another system than before
	failed  map[string]string // host -> failed step
	hosts   []string
}

// event is one line of `fleet run --json`.
type event struct {
	Event     string            `json:"event"` // run_start, host_skipped, step_start, step_end, log, summary
	Time      string            `json:"time"`
	Host      string            `json:"host,omitempty"`
	Step      *runtime.Step     `json:"step,omitempty"`
	ElapsedMS int64             `json:"elapsed_ms,omitempty"`
	Error     string            `json:"error,omitempty"`
	Message   string            `json:"message,omitempty"`
	Selected  []string          `json:"selected,omitempty"`
	Skipped   []runtime.Skip    `json:"skipped,omitempty"`
	Changed   []string          `json:"changed,omitempty"`
	Failed    map[string]string `json:"failed,omitempty"`
}

func newRunObserver(w io.Writer, asJSON, verbose bool, sel *runtime.Selection) *runObserver {
	o := &runObserver{w: w, json: asJSON, verbose: verbose, start: time.Now(), changed: map[string]bool{}, failed: map[string]string{}}
	for _, h := range sel.Selected {
		o.width = max(o.width, len(h.Name))
		o.hosts = append(o.hosts, h.Name)
	}
	if asJSON {
		names := append([]string{}, o.hosts...)
		o.emit(event{Event: "run_start", Selected: names, Skipped: sel.Skipped})
		return o
	}
	printSelection(w, sel)
	return o
}

func (o *runObserver) emit(e event) {
	e.Time = time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(e)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.w.Write(append(b, '\n'))
}

func (o *runObserver) StepStarted(s *runtime.Step) {
	if o.json {
		o.emit(event{Event: "step_start", Host: s.Host, Step: s})
	}
}

func (o *runObserver) StepFinished(s *runtime.Step, err error, d time.Duration) {
	o.mu.Lock()
	if err != nil {
		if _, ok := o.failed[s.Host]; !ok {
			o.failed[s.Host] = s.Action
		}
	} else if s.Action == "activate" && s.Result != nil && s.Result.Current != s.Result.Previous {
		o.changed[s.Host] = true
	}
	o.mu.Unlock()
	if o.json {
		e := event{Event: "step_end", Host: s.Host, Step: s, ElapsedMS: d.Milliseconds()}
		if err != nil {
			e.Error = err.Error()
		}
		o.emit(e)
		return
	}
	mark := color.GreenString("✅")
	msg := done(s)
	if err != nil {
		mark = color.RedString("❌")
		msg = fmt.Sprintf("%s failed: %v", s.Action, hostCause(err))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, "%*s %s %s %s\n", o.width+2, s.Host, mark, round(d), msg)
}

// hostCause is the message of the HostError in err without the host and
// step, which the line already shows.
func hostCause(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, " failed: "); i >= 0 && !strings.Contains(msg[:i], "\n") {
		msg = msg[i+len(" failed: "):]
	}
	return msg
}

func (o *runObserver) Log(host, msg string) {
	if o.json {
		o.emit(event{Event: "log", Host: host, Message: msg})
		return
	}
	if host == "" {
		host = "(log)"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, "%*s %s\n", o.width+2, host, msg)
}

// done says what a successful step did, in colmena's words.
func done(s *runtime.Step) string {
	switch s.Action {
	case "build":
		return fmt.Sprintf("Built %q", s.Closure)
	case "push":
		if r := s.Result; r != nil {
			if r.Missing == 0 {
				return fmt.Sprintf("Pushed system closure (all %d paths already there)", r.Paths)
			}
			return fmt.Sprintf("Pushed system closure (%d of %d paths, %s)", r.Missing, r.Paths, bytesize(r.Bytes))
		}
		return "Pushed system closure"
	case "activate":
		if s.Goal == "dry-activate" {
			return "Dry activation successful"
		}
		return fmt.Sprintf("Activation successful (%s)", s.Goal)
	case "run":
		return fmt.Sprintf("Ran %s", strings.Join(quoteAll(s.Argv), " "))
	}
	return s.Action
}

// summary ends the run's output: what changed, what failed.
func (o *runObserver) summary(err error, interrupted bool) {
	o.mu.Lock()
	var changed, failed []string
	for h := range o.changed {
		changed = append(changed, h)
	}
	for h, step := range o.failed {
		failed = append(failed, h+" ("+step+")")
	}
	failedMap := map[string]string{}
	for h, s := range o.failed {
		failedMap[h] = s
	}
	o.mu.Unlock()
	sort.Strings(changed)
	sort.Strings(failed)
	if o.json {
		e := event{Event: "summary", Changed: changed, Failed: failedMap, ElapsedMS: time.Since(o.start).Milliseconds()}
		if changed == nil {
			e.Changed = []string{}
		}
		if err != nil {
			e.Error = err.Error()
		}
		o.emit(e)
		return
	}
	status := color.New(color.Bold, color.FgGreen).Sprint("✅ All done!")
	switch {
	case interrupted:
		status = color.New(color.Bold, color.FgYellow).Sprint("⚠️  Interrupted.")
	case err != nil:
		status = color.New(color.Bold, color.FgRed).Sprint("❌ Failed.")
	}
	fmt.Fprintf(o.w, "%*s %s %s\n", o.width+2, "", round(time.Since(o.start)), status)
	fmt.Fprintf(o.w, "%*s changed: %s\n", o.width+2, "", list(changed))
	if len(failed) > 0 {
		fmt.Fprintf(o.w, "%*s failed:  %s\n", o.width+2, "", list(failed))
	}
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func round(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

func bytesize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
