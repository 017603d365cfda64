package ui

import (
	"io"
	"os"

	"golang.org/x/term"
)

const reset = "\x1b[0m"

// style colours text when colour is on, and does nothing otherwise.
type style bool

func (s style) wrap(code, text string) string {
	if !s || text == "" {
		return text
	}
	return "\x1b[" + code + "m" + text + reset
}

func (s style) bold(t string) string   { return s.wrap("1", t) }
func (s style) dim(t string) string    { return s.wrap("2", t) }
func (s style) red(t string) string    { return s.wrap("31", t) }
func (s style) green(t string) string  { return s.wrap("32", t) }
func (s style) yellow(t string) string { return s.wrap("33", t) }
func (s style) cyan(t string) string   { return s.wrap("36", t) }

// IsTerminal reports whether w is a terminal that understands cursor
// movement: a character device that is a tty, and TERM is not "dumb".
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb"
}

// ColorEnabled applies a --color mode (auto, always, never) to w:
// "auto" colours a terminal unless NO_COLOR is set (to anything but the
// empty string). It reports ok=false for an unknown mode.
func ColorEnabled(mode string, w io.Writer) (on, ok bool) {
	switch mode {
	case "always":
		return true, true
	case "never":
		return false, true
	case "auto", "":
		return os.Getenv("NO_COLOR") == "" && IsTerminal(w), true
	}
	return false, false
}

// terminalSize returns the size of w when it is a terminal, else 0, 0.
func terminalSize(w io.Writer) (int, int) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, 0
	}
	cols, rows, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0, 0
	}
	return cols, rows
}
