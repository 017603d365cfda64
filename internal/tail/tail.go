// Package tail keeps the end of a command's output: the last lines of a
// log, for an error message or a report, where the whole log would bury
// the line that says what went wrong.
package tail

import "strings"

// Lines returns the last n lines of s joined by newlines, without the
// trailing newlines of s. It returns s's lines unchanged when s has n or
// fewer, and "" when s is empty or only newlines.
//
//	Lines("a\nb\nc\n", 2) // "b\nc"
func Lines(s string, n int) string {
	return strings.Join(Split(s, n), "\n")
}

// Split is Lines as a slice: the last n lines of s, without their
// newlines; nil when s is empty or only newlines.
func Split(s string, n int) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" || n <= 0 {
		return nil
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
