package executor

import (
	"reflect"
	"testing"
	"time"
)

// TestParseGenerations reads generationsScript's output: generations in
// number order (the shell's glob sorts 10 before 2), the profile's one
// current, the one whose system runs running; links that are not
// system-N-link are ignored.
func TestParseGenerations(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []Generation
	}{
		{"none", "profile \nrunning \n", nil},
		{"three, the second running, the tenth current", `gen system-10-link 1700000200 /nix/store/c-sys-3
gen system-1-link 1700000000 /nix/store/a-sys-1
gen system-2-link 1700000100 /nix/store/b-sys-2
gen system-x-link 1700000300 /nix/store/d
profile system-10-link
running /nix/store/b-sys-2
`, []Generation{
			{Number: 1, Date: time.Unix(1700000000, 0).UTC(), Closure: "/nix/store/a-sys-1"},
			{Number: 2, Date: time.Unix(1700000100, 0).UTC(), Closure: "/nix/store/b-sys-2", Running: true},
			{Number: 10, Date: time.Unix(1700000200, 0).UTC(), Closure: "/nix/store/c-sys-3", Current: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseGenerations(tt.out); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
