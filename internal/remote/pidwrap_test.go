package remote

import (
	"bytes"
	"testing"
)

func TestPidWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		pid    int
		out    string
	}{
		{"marker first", []string{pidMarker + "123\nerr\n"}, 123, "err\n"},
		{"split marker", []string{"fleet-re", "mote-pid 4", "5\n", "x"}, 45, "x"},
		{"start-up noise before", []string{"mesg: ttyname failed\n", pidMarker + "7\nrest"}, 7, "mesg: ttyname failed\nrest"},
		{"no marker, partial line", []string{"sh: 1: exec: nope: not found"}, 0, "sh: 1: exec: nope: not found"},
		{"not a number", []string{pidMarker + "x\nmore\n"}, 0, pidMarker + "x\nmore\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		p := &pidWriter{w: &buf, got: make(chan struct{})}
		for _, w := range tt.writes {
			if n, err := p.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("%s: Write = %d, %v", tt.name, n, err)
			}
		}
		p.flush()
		if p.value() != tt.pid || buf.String() != tt.out {
			t.Errorf("%s: pid %d out %q, want %d %q", tt.name, p.value(), buf.String(), tt.pid, tt.out)
		}
	}
	// Giving up after maxPidSearch bytes without the line.
	var buf bytes.Buffer
	p := &pidWriter{w: &buf, got: make(chan struct{})}
	p.Write(bytes.Repeat([]byte("noise\n"), maxPidSearch/6+1))
	select {
	case <-p.got:
	default:
		t.Error("still looking after maxPidSearch bytes")
	}
}
