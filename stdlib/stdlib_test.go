package stdlib_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

// TestStar runs every test_* function of testdata/*_test.star as a dry
// run: the file is loaded once and each test gets a run of its own (its
// own steps), a ctx whose hosts are the file's deployable hosts, and
// test helpers: eq(a, b); fails(fn, text), which calls fn and wants an
// error containing text; and steps(), the steps its run recorded so far
// as "host action [group]" strings.
func TestStar(t *testing.T) {
	files, err := filepath.Glob("testdata/*_test.star")
	if err != nil || len(files) == 0 {
		t.Fatalf("no .star tests: %v", err)
	}
	for _, file := range files {
		prog := load(t, file)
		var names []string
		for name := range prog.Globals() {
			if strings.HasPrefix(name, "test_") {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			t.Run(filepath.Base(file)+"/"+name, func(t *testing.T) {
				sel, err := prog.Select("")
				if err != nil {
					t.Fatal(err)
				}
				_, err = prog.Call(context.Background(), name, sel, runtime.RunOptions{
					Executor: runtime.DryExecutor{}, Goal: "switch", Parallel: 10, DryRun: true,
				})
				var hf *runtime.HostFailures
				if err != nil && !errors.As(err, &hf) { // failed hosts are the point of some tests
					if se, ok := err.(*runtime.ScriptError); ok {
						t.Fatal(se.Detail())
					}
					t.Fatal(err)
				}
			})
		}
	}
}

func load(t *testing.T, file string) *runtime.Program {
	t.Helper()
	u := builtins.Universe()
	u["eq"] = starlark.NewBuiltin("eq", eq)
	u["steps"] = starlark.NewBuiltin("steps", steps)
	u["fails"] = starlark.NewBuiltin("fails", fails)
	prog, err := runtime.Load(context.Background(), file, u)
	if err != nil {
		if se, ok := err.(*runtime.ScriptError); ok {
			t.Fatal(se.Detail())
		}
		t.Fatal(err)
	}
	return prog
}

func eq(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var got, want starlark.Value
	if err := starlark.UnpackPositionalArgs("eq", args, kwargs, 2, &got, &want); err != nil {
		return nil, err
	}
	ok, err := starlark.Equal(got, want)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("got  %s\nwant %s", got, want)
	}
	return starlark.None, nil
}

func steps(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var out []starlark.Value
	for _, st := range runtime.RunOf(th).Steps() {
		s := st.Host + " " + string(st.Action)
		if st.Group != "" {
			s += " [" + st.Group + "]"
		}
		out = append(out, starlark.String(s))
	}
	return starlark.NewList(out), nil
}

func fails(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var fn starlark.Callable
	var want string
	if err := starlark.UnpackPositionalArgs("fails", args, kwargs, 2, &fn, &want); err != nil {
		return nil, err
	}
	_, err := starlark.Call(th, fn, nil, nil)
	if err == nil {
		return nil, fmt.Errorf("%s did not fail, want an error containing %q", fn.Name(), want)
	}
	if !strings.Contains(err.Error(), want) {
		return nil, fmt.Errorf("error %q does not contain %q", err, want)
	}
	return starlark.None, nil
}
