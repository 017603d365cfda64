// Package builtins defines the functions fleet.star can call, listed
// in one table (see Universe). Each builtin lives in its own file,
// validates every argument with a message that names it, and a builtin
// that touches machines then makes one call: Run.Step (or Run.Batch),
// which records the step and reaches the world through the run's
// Executor.
package builtins

import (
	"fmt"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Builtin is a documented builtin function.
type Builtin struct {
	Name string
	// Doc is the reference text: a signature line, a blank line, and
	// the description. docs/builtins.md is generated from it.
	Doc string
	Fn  func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)
}

// table is every builtin of fleet, sorted by name: the one list to read
// to know what a fleet.star can call, and the order of the reference.
var table = []*Builtin{
	{Name: "activate", Doc: activateDoc, Fn: activateFn},
	{Name: "attempt", Doc: attemptDoc, Fn: attemptFn},
	{Name: "check", Doc: checkDoc, Fn: checkFn},
	{Name: "colmena_hive", Doc: colmenaHiveDoc, Fn: colmenaHiveFn},
	{Name: "colmena_node", Doc: colmenaNodeDoc, Fn: colmenaNodeFn},
	{Name: "fail", Doc: failDoc, Fn: failFn},
	{Name: "host", Doc: hostDoc, Fn: hostFn},
	{Name: "inventory", Doc: inventoryDoc, Fn: inventoryFn},
	{Name: "log", Doc: logDoc, Fn: logFn},
	{Name: "nix_build", Doc: nixBuildDoc, Fn: nixBuildFn},
	{Name: "nix_expr", Doc: nixExprDoc, Fn: nixExprFn},
	{Name: "nixos_system", Doc: nixosSystemDoc, Fn: nixosSystemFn},
	{Name: "parallel", Doc: parallelDoc, Fn: parallelFn},
	{Name: "path", Doc: pathDoc, Fn: pathFn},
	{Name: "push", Doc: pushDoc, Fn: pushFn},
	{Name: "reboot", Doc: rebootDoc, Fn: rebootFn},
	{Name: "rollback", Doc: rollbackDoc, Fn: rollbackFn},
	{Name: "run", Doc: runDoc, Fn: runFn},
	{Name: "secret", Doc: secretDoc, Fn: secretFn},
	{Name: "sleep", Doc: sleepDoc, Fn: sleepFn},
	{Name: "upload_keys", Doc: uploadKeysDoc, Fn: uploadKeysFn},
}

// All returns every builtin, sorted by name.
func All() []*Builtin { return append([]*Builtin(nil), table...) }

// Universe returns the predeclared names of every fleet.star module:
// fleet's builtins plus struct and json, like starlark.Universe for
// Starlark's own. Each call makes a new dict, which the caller may
// extend (tests add helpers).
func Universe() starlark.StringDict {
	u := starlark.StringDict{
		"struct": starlark.NewBuiltin("struct", starlarkstruct.Make),
		"json":   json.Module,
	}
	for _, b := range table {
		u[b.Name] = starlark.NewBuiltin(b.Name, b.Fn)
	}
	return u
}

// runOf returns the run of th; builtins only run inside one.
func runOf(th *starlark.Thread, fn string) (*runtime.Run, error) {
	r := runtime.RunOf(th)
	if r == nil {
		return nil, fmt.Errorf("%s(): not on a fleet thread (internal error)", fn)
	}
	return r, nil
}

// step performs st on the run of th: see runtime.Run.Step.
func step(th *starlark.Thread, st *runtime.Step, do runtime.StepFunc) error {
	r, err := runOf(th, string(st.Action))
	if err != nil {
		return err
	}
	return r.Step(th, st, do)
}

// deployRun is runOf for builtins that need the run's settings before
// their step: it refuses to run while fleet.star loads.
func deployRun(th *starlark.Thread, fn string) (*runtime.Run, error) {
	r, err := runOf(th, fn)
	if err != nil {
		return nil, err
	}
	if err := r.CheckDeploy(fn); err != nil {
		return nil, err
	}
	return r, nil
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
