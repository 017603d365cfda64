// Package builtins defines the functions fleet.star can call. Each
// builtin lives in its own file, validates every argument with a message
// that names it, and reaches the world only through the session's
// Executor.
package builtins

import (
	"fmt"
	"sort"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Builtin is a documented builtin function.
type Builtin struct {
	Name string
	// Doc is the reference text: a signature line, a blank line, and
	// the description. docs/ is generated from it.
	Doc string
	Fn  func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)
}

var registry = map[string]*Builtin{}

func register(b *Builtin) {
	if _, dup := registry[b.Name]; dup {
		panic("builtin registered twice: " + b.Name)
	}
	registry[b.Name] = b
}

// All returns every builtin, sorted by name.
func All() []*Builtin {
	var all []*Builtin
	for _, b := range registry {
		all = append(all, b)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all
}

// Universe is the set of predeclared names of every fleet.star module:
// fleet's builtins plus struct and json.
func Universe() starlark.StringDict {
	u := starlark.StringDict{
		"struct": starlark.NewBuiltin("struct", starlarkstruct.Make),
		"json":   json.Module,
	}
	for name, b := range registry {
		u[name] = starlark.NewBuiltin(name, b.Fn)
	}
	return u
}

// session returns the session of th; builtins only run inside one.
func session(th *starlark.Thread, fn string) (*runtime.Session, error) {
	s := runtime.SessionOf(th)
	if s == nil {
		return nil, fmt.Errorf("%s(): no fleet session (internal error)", fn)
	}
	return s, nil
}

// deploySession is session for builtins that touch machines: it refuses
// to run while fleet.star loads.
func deploySession(th *starlark.Thread, fn string) (*runtime.Session, error) {
	s, err := session(th, fn)
	if err != nil {
		return nil, err
	}
	if err := s.CheckDeploy(fn); err != nil {
		return nil, err
	}
	return s, nil
}

// hostArg checks that v is a host.
func hostArg(fn, param string, v starlark.Value) (*runtime.Host, error) {
	h, ok := v.(*runtime.Host)
	if !ok {
		return nil, fmt.Errorf("%s(): %s must be a host (from host(...)), got %s", fn, param, v.Type())
	}
	return h, nil
}

// deployableArg checks that v is a host fleet can reach.
func deployableArg(fn string, v starlark.Value) (*runtime.Host, error) {
	h, err := hostArg(fn, "host", v)
	if err != nil {
		return nil, err
	}
	if !h.Deployable() {
		return nil, fmt.Errorf("%s(): host %q has no target_host, so fleet cannot reach it", fn, h.Name)
	}
	return h, nil
}

// hostsArg accepts a list or tuple of hosts.
func hostsArg(fn string, v starlark.Value) ([]*runtime.Host, error) {
	it, ok := v.(starlark.Iterable)
	if !ok {
		return nil, fmt.Errorf("%s(): hosts must be a list of hosts, got %s", fn, v.Type())
	}
	var hosts []*runtime.Host
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for i := 0; iter.Next(&x); i++ {
		h, ok := x.(*runtime.Host)
		if !ok {
			return nil, fmt.Errorf("%s(): hosts[%d] must be a host, got %s", fn, i, x.Type())
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// stringList accepts a list or tuple of strings.
func stringList(fn, param string, v starlark.Value) ([]string, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	seq, ok := v.(starlark.Indexable)
	if _, isString := v.(starlark.String); !ok || isString {
		return nil, fmt.Errorf("%s(): %s must be a list of strings, got %s", fn, param, v.Type())
	}
	out := make([]string, seq.Len())
	for i := range out {
		s, ok := starlark.AsString(seq.Index(i))
		if !ok {
			return nil, fmt.Errorf("%s(): %s[%d] must be a string, got %s", fn, param, i, seq.Index(i).Type())
		}
		out[i] = s
	}
	return out, nil
}

// result builds a frozen struct returned by a step builtin.
func result(name string, fields starlark.StringDict) *starlarkstruct.Struct {
	s := starlarkstruct.FromStringDict(starlark.String(name), fields)
	s.Freeze()
	return s
}
