package executor

import (
	"fmt"
	"slices"
	"testing"

	"github.com/fleet-deploy/fleet/runtime"
)

func TestChunks(t *testing.T) {
	hosts := make([]*runtime.Host, 5)
	for i := range hosts {
		hosts[i] = &runtime.Host{Name: fmt.Sprintf("h%d", i)}
	}
	for _, tc := range []struct {
		n    int
		want []int
	}{{1, []int{1, 1, 1, 1, 1}}, {2, []int{2, 2, 1}}, {5, []int{5}}, {7, []int{5}}} {
		var sizes []int
		var names []string
		for _, c := range chunks(hosts, tc.n) {
			sizes = append(sizes, len(c))
			for _, h := range c {
				names = append(names, h.Name)
			}
		}
		if !slices.Equal(sizes, tc.want) || fmt.Sprint(names) != "[h0 h1 h2 h3 h4]" {
			t.Errorf("chunks(5 hosts, %d) = sizes %v, order %v; want %v in order", tc.n, sizes, names, tc.want)
		}
	}
	if got := chunks(nil, 3); len(got) != 0 {
		t.Errorf("chunks(nil) = %v", got)
	}
	e := New(Options{EvalLimit: 3})
	if e.evalLimit() != 3 {
		t.Errorf("evalLimit = %d, want the option's 3", e.evalLimit())
	}
	if d := New(Options{}).evalLimit(); d < 1 {
		t.Errorf("default evalLimit = %d", d)
	}
}
