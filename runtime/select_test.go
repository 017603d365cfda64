package runtime

import (
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	hosts := []*Host{
		{Name: "clawfinger", Tags: []string{"pc"}},
		{Name: "envy", TargetHost: "10.0.0.10", Tags: []string{"server"}},
		{Name: "lenovo", TargetHost: "10.0.0.61", Tags: []string{"server"}},
		{Name: "rpi4-a", TargetHost: "10.0.0.11", Tags: []string{"rpi"}},
		{Name: "rpi4-b", TargetHost: "10.0.0.12", Tags: []string{"rpi"}},
	}
	tests := []struct {
		on       string
		selected string
		err      string
	}{
		{on: "", selected: "envy lenovo rpi4-a rpi4-b"},
		{on: "envy,lenovo", selected: "envy lenovo"},
		{on: "lenovo,envy", selected: "envy lenovo"}, // inventory order
		{on: "rpi*", selected: "rpi4-a rpi4-b"},
		{on: "@server", selected: "envy lenovo"},
		{on: "@rpi, envy", selected: "envy rpi4-a rpi4-b"},
		{on: "rpi4-?", selected: "rpi4-a rpi4-b"},
		{on: "clawfinger", selected: ""},
		{on: "envy,envy", selected: "envy"},
		{on: "envyy", err: `"envyy" matches no host (did you mean envy?)`},
		{on: "@servr", err: `tag "@servr" matches no host (did you mean @server?)`},
		{on: "@", err: `invalid tag "@"`},
		{on: "a,", err: "empty term"},
		{on: "x y", err: "invalid character ' '"},
		{on: "$(reboot)", err: "invalid character '$'"},
		{on: "[", err: "invalid pattern"},
		{on: "db*", err: `"db*" matches no host`},
	}
	for _, tt := range tests {
		t.Run(tt.on, func(t *testing.T) {
			sel, err := Select(hosts, tt.on)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Select(%q) error = %v, want %q", tt.on, err, tt.err)
				}
				if _, ok := err.(*UsageError); !ok {
					t.Fatalf("error is %T, want *UsageError (exit 2)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, h := range sel.Selected {
				names = append(names, h.Name)
			}
			if got := strings.Join(names, " "); got != tt.selected {
				t.Errorf("selected %q, want %q", got, tt.selected)
			}
			if sel.Deployable != 4 {
				t.Errorf("deployable = %d, want 4", sel.Deployable)
			}
			if len(sel.Selected)+len(sel.Skipped) != len(hosts) {
				t.Errorf("every host must be selected or skipped")
			}
		})
	}
}

func FuzzSelector(f *testing.F) {
	for _, s := range []string{"envy,lenovo", "@server", "rpi*", "[a-", "a,,b", "$(x)", "@"} {
		f.Add(s)
	}
	hosts := []*Host{{Name: "envy", TargetHost: "x", Tags: []string{"server"}}, {Name: "rpi4-a", TargetHost: "y"}}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := Select(hosts, s)
		if err != nil {
			if _, ok := err.(*UsageError); !ok {
				t.Fatalf("error %v is %T, want *UsageError", err, err)
			}
			return
		}
		if len(sel.Selected)+len(sel.Skipped) != len(hosts) {
			t.Fatalf("lost a host")
		}
		for _, term := range strings.Split(s, ",") {
			for _, r := range strings.TrimSpace(term) {
				if strings.ContainsRune(";$`'\"\n \t\\", r) {
					t.Fatalf("accepted shell metacharacter %q in %q", r, s)
				}
			}
		}
	})
}

func TestSortSteps(t *testing.T) {
	steps := []*Step{
		{Host: "c", key: []int{2}},
		{Host: "b2", key: []int{1, 1, 0}},
		{Host: "a", key: []int{0}},
		{Host: "b1", key: []int{1, 0, 0}},
		{Host: "b1x", key: []int{1, 0, 1}},
	}
	sortSteps(steps)
	var got []string
	for _, s := range steps {
		got = append(got, s.Host)
	}
	if strings.Join(got, " ") != "a b1 b1x b2 c" {
		t.Fatalf("order %v", got)
	}
}
