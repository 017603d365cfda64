package nixenc

import (
	"strings"
	"testing"

	"go.starlark.net/starlark"
)

// TestCheckShape: CheckShape refuses exactly the nesting and the cycles
// Encode refuses, counting from the depth it is given, names a long path
// by its first levels, and leaves the rest to Encode.
func TestCheckShape(t *testing.T) {
	nest := func(n int, leaf starlark.Value) starlark.Value {
		v := leaf
		for i := 0; i < n; i++ {
			switch i % 4 {
			case 0:
				v = list(v)
			case 1:
				v = dict("k", v)
			case 2:
				v = starlark.Tuple{v}
			default:
				v = strct("f", v)
			}
		}
		return v
	}
	tests := []struct {
		name  string
		v     starlark.Value
		depth int
		err   string // "" for none
	}{
		{"scalar", starlark.MakeInt(1), 0, ""},
		{"at the limit", nest(MaxDepth, starlark.None), 0, ""},
		{"one too deep", nest(MaxDepth+1, starlark.None), 0, `v[0].f[0]["k"][0].f[... 94 more levels]: value nested more than 100 levels deep`},
		{"at the limit below a level", nest(MaxDepth-1, starlark.None), 1, ""},
		{"too deep below a level", nest(MaxDepth, starlark.None), 1, `v.f[0]["k"][0].f[0][... 93 more levels]: value nested more than 100 levels deep`},
		{"short path kept whole", dict("a", list(starlark.None)), MaxDepth - 1, `v["a"]: value nested more than 100 levels deep`},
		{"cycle", eval(t, "x = {}\nx['me'] = [x]", "x"), 0, `v["me"][0]: cyclic reference: this dict contains itself`},
		{"a Nixer is not entered", nest(MaxDepth, rawNix{expr: "1"}), 0, ""},
		// Encode's other checks wait for the encoding.
		{"function", dict("f", starlark.Universe["len"]), 0, ""},
		{"non-string key", dict(starlark.MakeInt(1), list()), MaxDepth - 1, `v["1"]: value nested more than 100 levels deep`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckShape("v", tt.v, tt.depth)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Fatalf("CheckShape = %q, want %q", got, tt.err)
			}
			if tt.depth != 0 || strings.Contains(tt.name, "function") {
				return
			}
			// Encode agrees on whether the shape is acceptable.
			if _, encErr := EncodeNamed("v", tt.v); (encErr != nil) != (err != nil) {
				t.Fatalf("CheckShape: %v, but Encode: %v", err, encErr)
			}
		})
	}
}
