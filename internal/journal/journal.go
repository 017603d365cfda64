// Package journal keeps fleet's deploy history: one JSON line per host
// and event, appended to $XDG_STATE_HOME/fleet/journal.jsonl. Each record
// is written with a single write and synced before the step goes on, so
// a run killed at any point leaves a journal whose every complete line is
// a valid record; a torn last line (power loss mid-write) is skipped by
// Read.
package journal

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
)

// Record is one line of the journal.
type Record struct {
	V        int                `json:"v"`
	Time     time.Time          `json:"time"`
	Run      string             `json:"run"`
	Host     string             `json:"host"`
	Event    string             `json:"event"`             // "activating" (before) or "result" (after)
	Goal     string             `json:"goal,omitempty"`    // activation goal
	Closure  string             `json:"closure,omitempty"` // the system deployed
	Previous string             `json:"previous,omitempty"`
	Current  string             `json:"current,omitempty"`
	Result   string             `json:"result,omitempty"` // switched, unchanged, failed, interrupted, not-activated
	Step     string             `json:"step,omitempty"`   // the step that failed
	Error    string             `json:"error,omitempty"`
	Steps    map[string]float64 `json:"steps,omitempty"` // seconds per action
	// Generation is the system profile's generation after the step;
	// Warning a caveat of a success ("switched, with failed units").
	Generation int    `json:"generation,omitempty"`
	Warning    string `json:"warning,omitempty"`
}

// DefaultDir is where the journal lives unless --state-dir says.
func DefaultDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "fleet")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "fleet-state")
	}
	return filepath.Join(home, ".local", "state", "fleet")
}

// File is the journal's path in dir.
func File(dir string) string { return filepath.Join(dir, "journal.jsonl") }

// Writer appends records; it is a runtime.Observer of a run.
type Writer struct {
	f   *os.File
	run string

	mu      sync.Mutex
	hosts   map[string]*hostState
	order   []string
	lastErr error
}

type hostState struct {
	steps    map[string]float64
	closure  string
	goal     string
	failed   string
	errMsg   string
	finished bool // a result record is written
}

// Open opens (creating) the journal in dir for the run named run.
func Open(dir, run string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	f, err := os.OpenFile(File(dir), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &Writer{f: f, run: run, hosts: map[string]*hostState{}}, nil
}

func (w *Writer) host(name string) *hostState {
	hs, ok := w.hosts[name]
	if !ok {
		hs = &hostState{steps: map[string]float64{}}
		w.hosts[name] = hs
		w.order = append(w.order, name)
	}
	return hs
}

// write appends r as one line with one write, then syncs. Callers hold
// w.mu.
func (w *Writer) write(r Record) {
	r.V, r.Run = 1, w.run
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	b, err := json.Marshal(r)
	if err != nil {
		w.lastErr = err
		return
	}
	if _, err := w.f.Write(append(b, '\n')); err != nil {
		w.lastErr = err
		return
	}
	if err := w.f.Sync(); err != nil {
		w.lastErr = err
	}
}

// StepStarted journals the intent to activate, before it happens.
func (w *Writer) StepStarted(s *runtime.Step) {
	if s.Host == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	hs := w.host(s.Host)
	if s.Action == "activate" && s.Goal != "dry-activate" {
		hs.goal, hs.closure = s.Goal, s.Closure
		w.write(Record{Host: s.Host, Event: "activating", Goal: s.Goal, Closure: s.Closure})
	}
}

// StepFinished journals the outcome of an activation or rollback.
func (w *Writer) StepFinished(s *runtime.Step, err error, d time.Duration) {
	if s.Host == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	hs := w.host(s.Host)
	hs.steps[string(s.Action)] += d.Seconds()
	if err != nil && hs.failed == "" {
		hs.failed, hs.errMsg = string(s.Action), firstLine(err.Error())
	}
	if (s.Action != "activate" && s.Action != "rollback") || s.Goal == "dry-activate" {
		return
	}
	r := Record{Host: s.Host, Event: "result", Goal: s.Goal, Closure: s.Closure, Steps: copySteps(hs.steps)}
	if s.Action == "rollback" {
		r.Goal = "switch" // what a rollback does (fleet rollback, rollback())
	}
	switch {
	case err != nil && errors.Is(err, context.Canceled):
		// "activation still running on HOST", or nothing started.
		r.Result, r.Step, r.Error = "interrupted", string(s.Action), firstLine(err.Error())
	case err != nil:
		r.Result, r.Step, r.Error = "failed", string(s.Action), firstLine(err.Error())
	case s.Result != nil && s.Result.Previous == s.Result.Current && s.Goal != "boot":
		r.Result, r.Previous, r.Current = "unchanged", s.Result.Previous, s.Result.Current
	default:
		r.Result = "switched"
		if s.Action == "rollback" {
			r.Result = "rolled-back"
		}
		if s.Result != nil {
			r.Previous, r.Current = s.Result.Previous, s.Result.Current
		}
	}
	if s.Result != nil && err == nil {
		r.Generation, r.Warning = s.Result.Generation, s.Result.Warning
	}
	hs.finished = true
	w.write(r)
}

// Log is ignored: the journal keeps outcomes, not chatter.
func (w *Writer) Log(host, msg string) {}

// Close writes a result for every host that took part but got no
// activation result (it failed earlier, or the run was interrupted) and
// closes the file.
func (w *Writer) Close(runErr error, interrupted bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, name := range w.order {
		hs := w.hosts[name]
		if hs.finished {
			continue
		}
		r := Record{Host: name, Event: "result", Goal: hs.goal, Closure: hs.closure, Steps: copySteps(hs.steps)}
		switch {
		case hs.failed != "":
			r.Result, r.Step, r.Error = "failed", hs.failed, hs.errMsg
		case interrupted:
			r.Result = "interrupted"
		default:
			r.Result = "not-activated"
		}
		w.write(r)
	}
	err := w.f.Close()
	if w.lastErr != nil {
		return fmt.Errorf("journal: %w", w.lastErr)
	}
	return err
}

func copySteps(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = float64(int64(v*1000)) / 1000
	}
	return out
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

// Read returns every complete record of the journal in dir, oldest
// first. A torn line is skipped; a missing journal is empty.
func Read(dir string) ([]Record, error) {
	f, err := os.Open(File(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.V == 1 {
			out = append(out, r)
		}
	}
	return out, sc.Err()
}
