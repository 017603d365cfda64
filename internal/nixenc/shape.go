package nixenc

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// CheckShape reports what Encode would reject in the shape of v,
// without encoding it: a list, tuple, dict or struct nested more than
// MaxDepth deep, or one that contains itself. fleet's builtins call it
// when a script hands them a value, so that the mistake is reported at
// the call (file:line:col) while the script loads, not when the Nix
// file is generated during a deploy. depth is how deep v lies in the
// value finally encoded (a host's vars lie inside the host's attribute
// set, at depth 1). Other values, Nixers included, are not looked into:
// their checks come with their encoding. The path in the error names
// only the first levels of a deep value.
func CheckShape(name string, v starlark.Value, depth int) error {
	e := encoder{root: name, depth: depth, short: true}
	return e.walk(v)
}

func (e *encoder) walk(v starlark.Value) error {
	if _, ok := v.(Nixer); ok {
		return nil
	}
	switch v := v.(type) {
	case *starlark.List:
		return e.walkList(v, v, v.Len(), v.Index)
	case starlark.Tuple:
		return e.walkList(v, nil, len(v), v.Index)
	case *starlark.Dict:
		if err := e.enter(v, v); err != nil {
			return err
		}
		defer e.leave(v)
		for _, kv := range v.Items() {
			k, ok := starlark.AsString(kv[0])
			if !ok { // Encode rejects the key
				k = kv[0].String()
			}
			if err := e.walkAt(segment{kind: 'k', name: k}, kv[1]); err != nil {
				return err
			}
		}
	case *starlarkstruct.Struct:
		if err := e.enter(v, v); err != nil {
			return err
		}
		defer e.leave(v)
		for name, f := range v.Entries() {
			if err := e.walkAt(segment{kind: '.', name: name}, f); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *encoder) walkList(v starlark.Value, id any, n int, index func(int) starlark.Value) error {
	if err := e.enter(v, id); err != nil {
		return err
	}
	defer e.leave(id)
	for i := 0; i < n; i++ {
		if err := e.walkAt(segment{kind: '[', index: i}, index(i)); err != nil {
			return err
		}
	}
	return nil
}

func (e *encoder) walkAt(s segment, v starlark.Value) error {
	e.path = append(e.path, s)
	defer func() { e.path = e.path[:len(e.path)-1] }()
	return e.walk(v)
}

// shortPathLevels is how many levels of a path a short one names.
const shortPathLevels = 6

// elided is the tail of a short path: how many levels it leaves out.
func elided(n int) string { return fmt.Sprintf("[... %d more levels]", n) }
