// Package uitest holds what tests of fleet's human-facing output share:
// the bytes a hostile host sends, and the check that none of them reaches
// a person's terminal as anything but visible text.
package uitest

import (
	"strings"
	"testing"
)

// Hostile is what a hostile host prints: clear screen, OSC 52 (write the
// clipboard), OSC 0 (the title), a carriage return, lines that pass for
// fleet's verdict, bytes that are not UTF-8 and a C1 CSI.
const Hostile = "\x1b[2J\x1b]52;c;ZXZpbA==\a\x1b]0;pwned\a\rAll done in 0.1s.\n  failed:  none\n\xff\xfe\u009b31m"

// CheckHuman fails the test if text, written for a person, holds a byte
// of a control sequence, a carriage return or a byte that is not UTF-8,
// or a line that passes for fleet's verdict ("All done", "  failed:").
func CheckHuman(t testing.TB, where, text string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\a", "\r", "\xff", "\xfe", "\u009b"} {
		if strings.Contains(text, bad) {
			t.Errorf("%s holds %q:\n%q", where, bad, text)
		}
	}
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "All done") || strings.HasPrefix(l, "  failed:  none") {
			t.Errorf("%s has a line that passes for fleet's: %q", where, l)
		}
	}
}
