package ui_test

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
)

var sgr = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// waitScreen polls the terminal until its screen has a line with all
// the parts.
func waitScreen(t *testing.T, tm *term, parts ...string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := tm.screen()
		if lineWith(s, parts...) != "" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the screen never showed a line with %q:\n%s", parts, strings.Join(s, "\n"))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func lineWith(lines []string, parts ...string) string {
	for _, l := range lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return l
		}
	}
	return ""
}

// TestLiveView runs the renderer on a fake terminal: in the middle of
// b's push the screen has one line per host, b's with bytes and
// throughput; at the end the live region is gone, every step stayed as
// one line, b's failure with its log, and the summary table.
func TestLiveView(t *testing.T) {
	c := newClock()
	tm := newTerm(120, 30)
	var mid []string
	ex := &fakeExec{clock: c, fail: map[string]bool{"b": true}, during: func(h string) {
		if h == "b" {
			mid = waitScreen(t, tm, "⠋ b ", "push", "1.0 MiB of 3.0 MiB")
		}
	}}
	sum, _ := deploy(t, ui.Options{Out: tm, Mode: ui.Live, Color: true, Now: c.Now, Size: tm.size, Refresh: 2 * time.Millisecond}, ex)
	if sum.Result != "failed" {
		t.Errorf("result %q", sum.Result)
	}

	for _, want := range [][]string{
		{"a ✅", "Pushed system closure (5 of 12 paths, 3.0 MiB)"},   // a's push, collapsed
		{"⠋", "b", "push", "1.0 MiB of 3.0 MiB (33%), 170.7 KiB/s"}, // b's push, live
		{"✓ a", "push", "5 of 12 paths"},                            // a, idle
		{"✓ c", "build"},                                            // c waits for its push
		{"1 busy · 2 waiting · 0 failed · 4 steps done"},            // the status line
	} {
		if lineWith(mid, want...) == "" {
			t.Errorf("mid-run screen lacks a line with %q:\n%s", want, strings.Join(mid, "\n"))
		}
	}

	text := tm.text()
	for _, want := range []string{
		"Selected 3 out of 3 hosts.",
		"  skip laptop  no target_host",
		"\n  - deploying 3 hosts",
		"\n  a ✅ 0.0s Built nnnnnnn-nixos-system-a-2.0\n",
		"\n  b ❌ 0.0s activate failed: switch-to-configuration switch: exit status 1",
		"\n  b | activation failed on purpose",
		"\n  c ✅ 0.0s Activation successful (switch)",
		"Failed after 1m15s.",
		"  changed: a, c",
		"  failed:  b (activate)",
		"  first failure: b activate: switch-to-configuration switch: exit status 1",
		"  HOST  RESULT             BUILD  PUSH  ACTIVATE  GENERATION",
		"  a     changed            0.0s   0.0s  0.0s      ooooooo…1.0 → nnnnnnn…2.0",
		"  b     failed (activate)  0.0s   0.0s  0.0s      -",
	} {
		if !strings.Contains(normalize(text), want) {
			t.Errorf("final screen lacks %q:\n%s", want, text)
		}
	}
	// The live region was erased each time and at the end: none of it
	// is left in the scrollback.
	if strings.Contains(text, "steps done") || strings.Contains(text, "⠋") {
		t.Errorf("the live region is left on the screen:\n%s", text)
	}
	if !sgr.MatchString(string(tm.raw)) {
		t.Errorf("no colour with Color on")
	}
}

// TestLiveNoColor: without colour the layout is the same live view,
// with cursor movement but not one colour code.
func TestLiveNoColor(t *testing.T) {
	c := newClock()
	tm := newTerm(100, 30)
	ex := &fakeExec{clock: c, during: func(h string) { waitScreen(t, tm, h+" ", "push", "MiB of") }}
	deploy(t, ui.Options{Out: tm, Mode: ui.Live, Color: false, Now: c.Now, Size: tm.size, Refresh: 2 * time.Millisecond}, ex)
	raw := string(tm.raw)
	if m := sgr.FindString(raw); m != "" {
		t.Errorf("colour code %q without colour", m)
	}
	if !strings.Contains(raw, "\x1b[J") {
		t.Errorf("no live redraw")
	}
	if !strings.Contains(tm.text(), "All done in 1m15s.") {
		t.Errorf("final screen:\n%s", tm.text())
	}
}

// TestLiveNarrow: on a narrow terminal live lines are cut to its width
// and never wrap (a wrapped line would break the redraw).
func TestLiveNarrow(t *testing.T) {
	c := newClock()
	tm := newTerm(30, 12)
	var mid []string
	ex := &fakeExec{clock: c, during: func(h string) {
		if h == "b" {
			mid = waitScreen(t, tm, "⠋ b ", "push")
		}
	}}
	deploy(t, ui.Options{Out: tm, Mode: ui.Live, Color: true, Now: c.Now, Size: tm.size, Refresh: 2 * time.Millisecond}, ex)
	if l := lineWith(mid, "⠋", "b", "push"); !strings.HasSuffix(l, "…") || ui.Width(l) > 29 {
		t.Errorf("b's live line %q is not cut to the width", l)
	}
	if text := tm.text(); strings.Contains(text, "steps done") || strings.Contains(text, "busy ·") {
		t.Errorf("the live region is left on the screen:\n%s", text)
	}
}

// TestLiveManyHosts: 500 hosts pushing at once, 20,000 progress
// reports: the live region fits the terminal (busy hosts first, the
// rest counted), and redraws are coalesced.
func TestLiveManyHosts(t *testing.T) {
	const n = 500
	sel := &runtime.Selection{Deployable: n}
	for i := range n {
		sel.Selected = append(sel.Selected, &runtime.Host{Name: fmt.Sprintf("host%03d", i)})
	}
	tm := newTerm(100, 24)
	start := time.Now()
	r, err := ui.New(ui.Options{Out: tm, Mode: ui.Live, Size: tm.size, Refresh: 20 * time.Millisecond}, sel)
	if err != nil {
		t.Fatal(err)
	}
	steps := make([]*runtime.Step, n)
	for i, h := range sel.Selected {
		steps[i] = &runtime.Step{Host: h.Name, Action: "push", Target: "root@" + h.Name + ":22"}
		r.StepStarted(steps[i])
	}
	for k := range 40 {
		for i, st := range steps {
			if i%2 == 0 || k < 20 {
				r.StepProgress(st, int64(k)<<20, 40<<20, "bytes")
			}
		}
		time.Sleep(time.Millisecond)
	}
	mid := waitScreen(t, tm, "more hosts")
	for i, st := range steps {
		if i >= 10 {
			r.StepFinished(st, nil, time.Second)
		}
	}
	r.StepFinished(steps[3], fmt.Errorf("connection refused"), time.Second)
	waitScreen(t, tm, "first failure: host003 push: connection refused")
	for _, st := range steps[:10] {
		if st != steps[3] {
			r.StepFinished(st, nil, time.Second)
		}
	}
	r.Finish(fmt.Errorf("1 failed"), false)
	elapsed := time.Since(start)

	if len(mid) > 24 || tm.maxRegion > 23 {
		t.Errorf("live region of %d lines on a 24-line terminal", tm.maxRegion)
	}
	if lineWith(mid, "… and 479 more hosts (500 busy in all)") == "" {
		t.Errorf("mid-run screen:\n%s", strings.Join(mid, "\n"))
	}
	// Steps that end print one line each, at once; redraws happen at
	// most every 20ms whatever the number of reports.
	if max := int(elapsed/(20*time.Millisecond)) + 10; tm.writes > max {
		t.Errorf("%d writes in %v: redraws are not coalesced", tm.writes, elapsed)
	}
	text := tm.text()
	// The run failed: hosts pushed but never activated are not "ok".
	if !strings.Contains(text, "  host499  not activated ") || !strings.Contains(text, "  host003  failed (push)") {
		t.Errorf("summary table lacks hosts:\n%s", text[max(0, len(text)-3000):])
	}
}

// TestPTY runs the renderer on a real pseudo-terminal: Auto picks the
// live view there, NO_COLOR turns colour off but not the live view, and
// the screen ends with the summary.
func TestPTY(t *testing.T) {
	for _, noColor := range []bool{true, false} {
		t.Run(fmt.Sprintf("NO_COLOR=%v", noColor), func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Skipf("no pty: %v", err)
			}
			defer ptmx.Close()
			if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 30, Cols: 110}); err != nil {
				t.Fatal(err)
			}
			if noColor {
				t.Setenv("NO_COLOR", "1")
			} else {
				t.Setenv("NO_COLOR", "")
			}
			t.Setenv("TERM", "xterm-256color")
			if !ui.IsTerminal(tty) {
				t.Fatal("a pty is not a terminal")
			}
			color, ok := ui.ColorEnabled("auto", tty)
			if !ok || color == noColor {
				t.Fatalf("ColorEnabled(auto, pty) = %v with NO_COLOR=%v", color, noColor)
			}
			if on, _ := ui.ColorEnabled("auto", io.Discard); on {
				t.Errorf("colour on a non-terminal")
			}
			got := make(chan []byte)
			go func() {
				b, _ := io.ReadAll(ptmx) // ends with EIO when tty closes
				got <- b
			}()
			c := newClock()
			// Each push lasts long enough for a few redraws.
			pause := func(string) { time.Sleep(20 * time.Millisecond) }
			deploy(t, ui.Options{Out: tty, Color: color, Now: c.Now, Refresh: 2 * time.Millisecond}, &fakeExec{clock: c, fail: map[string]bool{"b": true}, during: pause})
			tty.Close()
			raw := <-got

			if !strings.Contains(string(raw), "\x1b[J") {
				t.Errorf("Auto did not pick the live view on a terminal:\n%q", raw)
			}
			if hasColor := sgr.Match(raw); hasColor == noColor {
				t.Errorf("colour codes: %v, NO_COLOR=%v", hasColor, noColor)
			}
			tm := newTerm(110, 30)
			tm.Write(raw)
			screen := strings.Join(tm.screen(), "\n")
			for _, want := range []string{"b | activation failed on purpose", "Failed after 1m15s.", "  changed: a, c", "  HOST  RESULT", "  c     changed"} {
				if !strings.Contains(screen, want) {
					t.Errorf("final screen lacks %q:\n%s", want, screen)
				}
			}
		})
	}
}
