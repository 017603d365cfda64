// Package tail keeps the end of a command's output: the last lines of a
// log, for an error message or a report, where the whole log would bury
// the line that says what went wrong.
package tail

import (
	"strings"
	"sync"
)

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

// Buffer is an io.Writer that keeps only the last Max bytes written to
// it, so that a command's output can be kept for an error message or a
// result without letting a host that prints gigabytes take this
// machine's memory. It is safe for concurrent use. The zero Buffer keeps
// nothing; make one with NewBuffer.
type Buffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped int64
}

// NewBuffer returns a Buffer that keeps the last max bytes.
func NewBuffer(max int) *Buffer { return &Buffer{max: max} }

// Write keeps the end of p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if len(p) >= b.max {
		b.dropped += int64(len(b.buf) + len(p) - b.max)
		b.buf = append(b.buf[:0], p[len(p)-b.max:]...)
		return n, nil
	}
	if over := len(b.buf) + len(p) - b.max; over > 0 {
		b.dropped += int64(over)
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

// Bytes returns a copy of what is kept.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		return nil
	}
	return append([]byte(nil), b.buf...)
}

// String is what is kept, as text.
func (b *Buffer) String() string { return string(b.Bytes()) }

// Dropped is how many bytes were written but not kept.
func (b *Buffer) Dropped() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}
