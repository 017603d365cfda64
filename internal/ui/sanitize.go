package ui

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/fleet-deploy/fleet/runtime"
)

// Sanitize makes bytes that came from a host safe to show a person: every
// control character (C0, DEL, C1 — escape sequences, carriage returns,
// line breaks) and every byte that is not UTF-8 becomes a visible escape
// (\x1b, \r, \n, \t, \xff), so that no host can move the cursor, clear the
// screen, set the clipboard or the title, or start a line that looks like
// fleet's. Printable text, including non-ASCII, is kept as it is.
//
// Every text view applies it where a host's (or a script's) string
// becomes text for a person, before colouring; --json never does, it
// carries the exact string.
func Sanitize(s string) string {
	clean := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || isControl(r) {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case isControl(r):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029
}

// SanitizeLines splits text of many lines (a log, a message) at its line
// breaks and sanitizes every line, for a view that shows one line per
// line. Trailing line breaks end the text; they add no empty lines.
func SanitizeLines(s string) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = Sanitize(l)
	}
	return lines
}

// HostText renders text that host sent, of one line or more, for a
// person, one string per line: head and the first line, then every
// further line as "  host | line", all sanitized. However many lines a
// host sends, none of them can start at the left margin and pass for
// one of fleet's ("All done", "error:").
func HostText(host, head, text string) []string {
	lines := SanitizeLines(text)
	out := []string{head + lines[0]}
	for _, l := range lines[1:] {
		out = append(out, HostLine(host, l))
	}
	return out
}

// HostLine is one line of a host's output, sanitized, under its name.
func HostLine(host, line string) string {
	return "  " + Sanitize(host) + " | " + Sanitize(line)
}

// HostError renders a failed step for a person, one string per line:
// "host: step failed: cause", then the rest of the cause and the last
// lines of the step's log, each as HostLine. It says what
// runtime.HostError.Error says, made safe to print.
func HostError(he *runtime.HostError) []string {
	cause := "<nil>"
	if he.Err != nil {
		cause = he.Err.Error()
	}
	out := HostText(he.Host, fmt.Sprintf("%s: %s failed: ", Sanitize(he.Host), Sanitize(he.Step)), cause)
	if strings.TrimRight(he.Log, "\n") != "" {
		for _, l := range SanitizeLines(he.Log) {
			out = append(out, HostLine(he.Host, l))
		}
	}
	return out
}
