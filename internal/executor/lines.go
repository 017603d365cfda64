package executor

import (
	"bytes"
	"strings"
	"sync"

	"github.com/fleet-deploy/fleet/internal/tail"
)

// lineWriter is the stderr of a command fleet watches: it keeps the end
// of what is written to it (the last keep bytes, for an error message)
// and calls fn, if set, with every complete line as it arrives — Nix's
// build log forwarded to the view, an activation's "waiting for the
// lock" lines. A "line" longer than 64 KiB is passed on in pieces, so a
// host or a build that never ends a line cannot grow it without bound.
// It is safe for concurrent use.
type lineWriter struct {
	fn func(string)

	mu      sync.Mutex
	kept    *tail.Buffer
	partial []byte
}

// maxLine is the longest line passed to fn in one piece.
const maxLine = 64 << 10

func newLineWriter(keep int, fn func(string)) *lineWriter {
	return &lineWriter{fn: fn, kept: tail.NewBuffer(keep)}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kept.Write(p)
	if w.fn == nil {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.fn(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > maxLine {
		w.fn(string(w.partial))
		w.partial = nil
	}
	return len(p), nil
}

// flush passes on a last line without its newline.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fn != nil && len(w.partial) > 0 {
		w.fn(string(w.partial))
		w.partial = nil
	}
}

// String is what is kept.
func (w *lineWriter) String() string { return w.kept.String() }

// withoutSessionLines drops an activation session's own lines (who holds
// the host lock) from its stderr, leaving the switch's output.
func withoutSessionLines(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(l, "fleet-waiting ") || strings.HasPrefix(l, "fleet-locked ") {
			continue
		}
		b.WriteString(l)
	}
	return b.String()
}
