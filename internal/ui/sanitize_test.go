package ui

import (
	"errors"
	"slices"
	"testing"

	"github.com/fleet-deploy/fleet/runtime"
)

func TestSanitize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"naïve — ü", "naïve — ü"},
		{"\x1b[2J", `\x1b[2J`},
		{"\x1b]52;c;ZXZpbA==\a", `\x1b]52;c;ZXZpbA==\x07`},
		{"\x1b]0;title\a", `\x1b]0;title\x07`},
		{"ok\rAll done", `ok\rAll done`},
		{"a\nfailed: none", `a\nfailed: none`},
		{"tab\there", `tab\there`},
		{"\xff\xfe", `\xff\xfe`},
		{"\u009b31m", `\x9b31m`},
		{"\x7f", `\x7f`},
		{"a\u2028b", `a\u2028b`},
		{`\x1b`, `\x1b`}, // already escaped: kept, so Sanitize is idempotent
	} {
		if got := Sanitize(tc.in); got != tc.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHostText(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []string
		want []string
	}{
		{"one line", SanitizeLines("a\x1b[2J\n"), []string{`a\x1b[2J`}},
		{"lines", SanitizeLines("a\r\n\nb\n\n"), []string{`a\r`, "", "b"}},
		{"empty", SanitizeLines(""), []string{""}},
		{"host text", HostText("h", "error: h: ", "boom\nAll done in 0.1s.\n  failed:  none"),
			[]string{"error: h: boom", "  h | All done in 0.1s.", "  h |   failed:  none"}},
		{"host name", HostText("h\xff", "", "a\nb"), []string{"a", `  h\xff | b`}},
		{"host error", HostError(&runtime.HostError{Host: "b", Step: "activate", Err: errors.New("exit 1\n\x1b]0;t\a"), Log: "x\rAll done\n"}),
			[]string{"b: activate failed: exit 1", `  b | \x1b]0;t\x07`, `  b | x\rAll done`}},
		{"host error without log", HostError(&runtime.HostError{Host: "b", Step: "push", Err: errors.New("refused")}),
			[]string{"b: push failed: refused"}},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}
