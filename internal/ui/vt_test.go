package ui_test

import (
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/fleet-deploy/fleet/internal/ui"
)

// term is a small terminal emulator for tests: it understands what the
// live view writes (text, \r, \n, cursor up and down, erase to the end
// of the screen or line, colours, which it ignores) and keeps every line
// ever shown, scrollback included. Its cursor cannot go above the top
// of the screen (the last rows lines), like a real terminal's.
type term struct {
	mu         sync.Mutex
	cols, rows int
	lines      [][]rune
	row, col   int
	writes     int
	maxRegion  int // the most lines the cursor went up at once
	raw        []byte
}

const wideTail = -1 // the second cell of a double-width rune

func newTerm(cols, rows int) *term { return &term{cols: cols, rows: rows, lines: [][]rune{nil}} }

func (t *term) size() (int, int) { return t.cols, t.rows }

func (t *term) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.writes++
	t.raw = append(t.raw, p...)
	s := string(p)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == 0x1b && i+1 < len(s) && s[i+1] == '[':
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			if j == len(s) {
				return len(p), nil
			}
			t.csi(s[i+2:j], s[j])
			i = j + 1
		case c == '\r':
			t.col = 0
			i++
		case c == '\n':
			t.row++
			t.col = 0
			for len(t.lines) <= t.row {
				t.lines = append(t.lines, nil)
			}
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			t.put(r)
			i += n
		}
	}
	return len(p), nil
}

func (t *term) top() int { return max(0, len(t.lines)-t.rows) }

func (t *term) csi(params string, final byte) {
	n := 1
	if v, err := strconv.Atoi(params); err == nil {
		n = v
	}
	switch final {
	case 'A':
		t.maxRegion = max(t.maxRegion, n)
		t.row = max(t.top(), t.row-n)
	case 'B':
		t.row = min(len(t.lines)-1, t.row+n)
	case 'J': // erase to the end of the screen
		t.lines[t.row] = clip(t.lines[t.row], t.col)
		t.lines = t.lines[:t.row+1]
	case 'K':
		t.lines[t.row] = clip(t.lines[t.row], t.col)
	}
}

func clip(l []rune, n int) []rune {
	if len(l) > n {
		return l[:n]
	}
	return l
}

func (t *term) put(r rune) {
	w := 1
	if ui.Width(string(r)) == 2 {
		w = 2
	}
	if t.col+w > t.cols { // wrap
		t.row++
		t.col = 0
		for len(t.lines) <= t.row {
			t.lines = append(t.lines, nil)
		}
	}
	l := t.lines[t.row]
	for len(l) < t.col+w {
		l = append(l, ' ')
	}
	l[t.col] = r
	if w == 2 {
		l[t.col+1] = wideTail
	}
	t.lines[t.row] = l
	t.col += w
}

// text is everything the terminal shows and showed, scrollback first.
func (t *term) text() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	for _, l := range t.lines {
		for _, r := range l {
			if r != wideTail {
				b.WriteRune(r)
			}
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n ") + "\n"
}

// screen is what the terminal shows now: its last rows lines.
func (t *term) screen() []string {
	lines := strings.Split(strings.TrimRight(t.text(), "\n"), "\n")
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(lines) > t.rows {
		lines = lines[len(lines)-t.rows:]
	}
	return lines
}
