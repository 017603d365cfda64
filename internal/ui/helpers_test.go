package ui_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// clock is a fake clock that only the fake executor moves, so that
// timestamps, elapsed times and throughput are the same on every run.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 14, 14, 2, 3, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeExec deploys nothing: it is runtime.DryExecutor with real-looking
// store paths, a push that reports its progress, and an activation of
// the hosts in fail that fails with a log.
type fakeExec struct {
	runtime.DryExecutor
	clock *clock
	fail  map[string]bool
	// during, when set, runs in the middle of every push (the TTY test
	// looks at the screen there).
	during func(host string)
	r      *ui.Renderer // set by deploy: Build logs Nix's output there
	// hostile, when set, is what the hosts send: it ends the name of
	// the system they ran before (a crafted /run/current-system), and
	// is the error and the log of a failing activation and a line of
	// Nix's output.
	hostile string
}

func storePath(hash byte, name string) string {
	return "/nix/store/" + strings.Repeat(string(hash), 32) + "-" + name
}

func (f *fakeExec) Build(ctx context.Context, hosts []*runtime.Host) (map[string]string, error) {
	out := map[string]string{}
	for _, h := range hosts {
		if f.r != nil {
			f.r.NixLog("building '/nix/store/" + strings.Repeat("d", 32) + "-nixos-system-" + h.Name + "-2.0.drv'...")
			if f.hostile != "" {
				f.r.NixLog(f.hostile)
			}
		}
		out[h.Name] = storePath('n', "nixos-system-"+h.Name+"-2.0")
	}
	f.clock.advance(42 * time.Second)
	return out, nil
}

func (f *fakeExec) Push(ctx context.Context, h *runtime.Host, closure string, progress runtime.ProgressFunc) (*runtime.PushResult, error) {
	const total = 3 << 20
	f.clock.advance(6 * time.Second)
	progress.Report(1<<20, total, "bytes")
	if f.during != nil {
		f.during(h.Name)
	}
	f.clock.advance(2 * time.Second)
	progress.Report(total, total, "bytes")
	return &runtime.PushResult{Paths: 12, Missing: 5, Bytes: total}, nil
}

func (f *fakeExec) Activate(ctx context.Context, h *runtime.Host, closure string, o runtime.ActivateOptions) (*runtime.ActivateResult, error) {
	f.clock.advance(3 * time.Second)
	if f.fail[h.Name] && f.hostile != "" {
		return nil, &runtime.HostError{Host: h.Name, Step: "activate", Err: errors.New("switch-to-configuration switch: " + f.hostile), Log: f.hostile}
	}
	if f.fail[h.Name] {
		return nil, &runtime.HostError{Host: h.Name, Step: "activate",
			Err: errors.New("switch-to-configuration switch: exit status 1"),
			Log: "stopping the following units: nginx.service\nactivating the configuration...\nactivation failed on purpose\n"}
	}
	return &runtime.ActivateResult{Previous: storePath('o', "nixos-system-"+h.Name+"-1.0"+f.hostile), Current: closure}, nil
}

var fleetFile = func() string {
	p, _ := filepath.Abs("testdata/fleet/fleet.star")
	return p
}()

// load evaluates the test fleet and selects its deployable hosts.
func load(t *testing.T) (*runtime.Program, *runtime.Selection) {
	t.Helper()
	prog, err := runtime.Load(context.Background(), fleetFile, builtins.Universe())
	if err != nil {
		t.Fatal(err)
	}
	sel, err := prog.Select("")
	if err != nil {
		t.Fatal(err)
	}
	return prog, sel
}

// deploy runs the test fleet on a fake executor, one step at a time (so
// that the output is in a stable order), b failing, with o's output.
// It returns the run's error.
func deploy(t *testing.T, o ui.Options, ex *fakeExec) (*ui.Summary, error) {
	t.Helper()
	prog, sel := load(t)
	o.Goal, o.Parallel = "switch", 1
	r, err := ui.New(o, sel)
	if err != nil {
		t.Fatal(err)
	}
	ex.r = r
	_, err = prog.Deploy(context.Background(), sel, runtime.RunOptions{Executor: ex, Observer: r, Goal: "switch", Parallel: 1})
	return r.Finish(err, false), err
}

// normalize replaces the durations the runtime measured (the fake
// clock does not reach them) with 0.
func normalize(s string) string {
	s = regexp.MustCompile(`\b\d+\.\ds\b`).ReplaceAllString(s, "0.0s")
	s = regexp.MustCompile(`"elapsed_ms":\d+`).ReplaceAllString(s, `"elapsed_ms":0`)
	return regexp.MustCompile(`"steps_ms":\{[^}]*\}`).ReplaceAllStringFunc(s, func(m string) string {
		return regexp.MustCompile(`:\d+`).ReplaceAllString(m, ":0")
	})
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// syncBuffer is a bytes.Buffer safe for the live view's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	n  int // writes
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
