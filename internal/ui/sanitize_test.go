package ui

import "testing"

func TestSanitize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"naïve — ü", "naïve — ü"},
		{"\x1b[2J", `\x1b[2J`},
		{"\x1b]52;c;ZXZpbA==\a", `\x1b]52;c;ZXZpbA==\x07`},
		{"ok\rAll done", `ok\rAll done`},
		{"a\nfailed: none", `a\nfailed: none`},
		{"tab\there", `tab\there`},
		{"\xff\xfe", `\xff\xfe`},
		{"\u009b31m", `\x9b31m`},
		{"\x7f", `\x7f`},
	} {
		if got := Sanitize(tc.in); got != tc.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
