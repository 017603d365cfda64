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

func TestBuffer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     int
		writes  []string
		want    string
		dropped int64
	}{
		{"fits", 8, []string{"abc", "def"}, "abcdef", 0},
		{"exactly", 6, []string{"abc", "def"}, "abcdef", 0},
		{"over by the second write", 4, []string{"abc", "def"}, "cdef", 2},
		{"one write larger than max", 3, []string{"ab", "cdefgh"}, "fgh", 5},
		{"many small writes", 3, []string{"a", "b", "c", "d", "e"}, "cde", 2},
		{"nothing kept", 0, []string{"abc"}, "", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuffer(tc.max)
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := b.String(); got != tc.want || b.Dropped() != tc.dropped {
				t.Errorf("kept %q, dropped %d; want %q, %d", got, b.Dropped(), tc.want, tc.dropped)
			}
		})
	}
}
