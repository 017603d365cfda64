package tail

import (
	"slices"
	"testing"
)

func TestLines(t *testing.T) {
	tests := []struct {
		s     string
		n     int
		want  string
		split []string
	}{
		{"", 3, "", nil},
		{"\n\n", 3, "", nil},
		{"a", 3, "a", []string{"a"}},
		{"a\nb\nc\n", 2, "b\nc", []string{"b", "c"}},
		{"a\nb\nc", 3, "a\nb\nc", []string{"a", "b", "c"}},
		{"a\nb\nc", 5, "a\nb\nc", []string{"a", "b", "c"}},
		{"a\n\nc\n\n", 2, "\nc", []string{"", "c"}},
		{"  a  \n b \n", 1, " b ", []string{" b "}},
		{"a\nb", 0, "", nil},
	}
	for _, tt := range tests {
		if got := Lines(tt.s, tt.n); got != tt.want {
			t.Errorf("Lines(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
		if got := Split(tt.s, tt.n); !slices.Equal(got, tt.split) {
			t.Errorf("Split(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.split)
		}
	}
}
