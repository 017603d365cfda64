package ui_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/ui"
)

// TestPlainGolden: the plain view of a run in which b's activation
// fails, as a log reader sees it.
func TestPlainGolden(t *testing.T) {
	c := newClock()
	var out bytes.Buffer
	sum, err := deploy(t, ui.Options{Out: &out, Mode: ui.Plain, Now: c.Now}, &fakeExec{clock: c, fail: map[string]bool{"b": true}})
	if err == nil || sum.Result != "failed" {
		t.Fatalf("run: %v, summary %+v", err, sum)
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Errorf("escape codes in plain output:\n%q", out.String())
	}
	golden(t, "run.plain", normalize(out.String()))
}

// TestJSONGolden: the same run as JSON events.
func TestJSONGolden(t *testing.T) {
	c := newClock()
	var out bytes.Buffer
	deploy(t, ui.Options{Out: &out, Mode: ui.JSON, Now: c.Now}, &fakeExec{clock: c, fail: map[string]bool{"b": true}})
	golden(t, "run.jsonl", normalize(out.String()))
}
