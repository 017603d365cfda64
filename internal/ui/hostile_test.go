package ui_test

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/internal/ui/uitest"
)

const hostile = uitest.Hostile

// TestHostileBytes feeds what a hostile host sends (a crafted
// /run/current-system, a failing activation's error and log, a line of
// Nix's output) through every view: the plain and the live view, the
// log files and the summary show it escaped, and never at the start of a
// line; the JSON events carry it exactly.
func TestHostileBytes(t *testing.T) {
	fail := map[string]bool{"b": true}
	t.Run("plain", func(t *testing.T) {
		c := newClock()
		var out strings.Builder
		dir := t.TempDir()
		sum, _ := deploy(t, ui.Options{Out: &out, Mode: ui.Plain, Verbose: true, LogDir: dir, Now: c.Now}, &fakeExec{clock: c, fail: fail, hostile: hostile})
		if sum.Result != "failed" {
			t.Fatalf("result %q", sum.Result)
		}
		checkText(t, "plain output", out.String())
		for _, want := range []string{
			`a activate ok `, `a-1.0\x1b[2J`, // the crafted previous system, on the step's line
			`b activate |   failed:  none`, // a line of b's log, under b's name
			`  first failure: b activate: switch-to-configuration switch: \x1b[2J`,
			"  a     changed ", // the summary table
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("plain output lacks %q:\n%s", want, out.String())
			}
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if filepath.Base(f) == "a.log" || filepath.Base(f) == "b.log" {
				checkText(t, filepath.Base(f), string(b))
			}
		}
		if len(files) != 4 {
			t.Errorf("log files %v", files)
		}
	})
	t.Run("live", func(t *testing.T) {
		c := newClock()
		tm := newTerm(400, 40)
		deploy(t, ui.Options{Out: tm, Mode: ui.Live, Verbose: true, Now: c.Now, Size: tm.size, Refresh: time.Millisecond}, &fakeExec{clock: c, fail: fail, hostile: hostile})
		// The live view's own redraws are the only escapes it writes.
		redraw := regexp.MustCompile(`\r\x1b\[[0-9]+A\x1b\[J`)
		checkText(t, "live output", redraw.ReplaceAllString(string(tm.raw), ""))
		checkText(t, "live screen", tm.text())
		if !strings.Contains(tm.text(), `  b |   failed:  none`) {
			t.Errorf("b's log is not under its name:\n%s", tm.text())
		}
	})
	t.Run("json", func(t *testing.T) {
		c := newClock()
		pr, pw := io.Pipe()
		go func() {
			deploy(t, ui.Options{Out: pw, Mode: ui.JSON, Verbose: true, Now: c.Now}, &fakeExec{clock: c, fail: fail, hostile: hostile})
			pw.Close()
		}()
		// encoding/json's rendering of the host's string: exact, but
		// for the bytes that are not UTF-8 (U+FFFD each).
		var exact string
		b, _ := json.Marshal(hostile)
		json.Unmarshal(b, &exact)
		var sawErr, sawLog, sawPrev bool
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.ContainsAny(sc.Text(), "\x1b\a\r") {
				t.Errorf("raw control byte in an event: %q", sc.Text())
			}
			var ev struct {
				Event, Host, Error, Message string
				Log                         []string
				Hosts                       []struct{ Host, Previous string }
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatal(err)
			}
			sawErr = sawErr || ev.Event == "step_end" && ev.Error == "switch-to-configuration switch: "+exact
			sawLog = sawLog || ev.Event == "step_end" && strings.Join(ev.Log, "\n") == exact
			for _, h := range ev.Hosts {
				sawPrev = sawPrev || h.Host == "a" && strings.HasSuffix(h.Previous, "-nixos-system-a-1.0"+exact)
			}
		}
		if !sawErr || !sawLog || !sawPrev {
			t.Errorf("the events do not carry the host's bytes exactly: error %v, log %v, previous %v", sawErr, sawLog, sawPrev)
		}
	})
}

// checkText is uitest.CheckHuman, and the host's bytes must be shown,
// escaped.
func checkText(t *testing.T, where, text string) {
	t.Helper()
	uitest.CheckHuman(t, where, text)
	if !strings.Contains(text, `\x1b[2J\x1b]52;c;ZXZpbA==\x07\x1b]0;pwned\x07\rAll done in 0.1s.`) {
		t.Errorf("%s does not show the host's bytes escaped:\n%s", where, text)
	}
}
