package builtins

import (
	"fmt"
	"sync"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
	"golang.org/x/sync/semaphore"
)

const parallelDoc = `parallel(fn, items, limit=ctx.parallel, collect=False, name=None)

Calls fn(item) for every item, up to limit at a time, each on its own
Starlark thread (fn and items are frozen first, so threads share nothing
mutable). Returns the results in item order. The first failure stops
scheduling new items, waits for those running and is raised; with
collect=True every item runs and the result is a list of
struct(item, ok, value, error). An interrupt stops scheduling at once.
name labels the steps inside in plans and output (e.g. "wave 1/3").`

func parallelFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		fn      starlark.Callable
		itemsV  starlark.Iterable
		limitV  starlark.Value = starlark.None
		collect bool
		nameV   starlark.Value = starlark.None
	)
	if err := starlark.UnpackArgs("parallel", args, kwargs,
		"fn", &fn, "items", &itemsV, "limit?", &limitV, "collect?", &collect, "name?", &nameV); err != nil {
		return nil, err
	}
	r, err := runOf(th, "parallel")
	if err != nil {
		return nil, err
	}
	var items []starlark.Value
	iter := itemsV.Iterate()
	var x starlark.Value
	for iter.Next(&x) {
		items = append(items, x)
	}
	iter.Done()

	limit := r.Parallel()
	if limitV != starlark.None {
		l, err := starlark.AsInt32(limitV)
		if err != nil || l < 1 {
			return nil, fmt.Errorf("parallel(): limit must be a positive int or None, got %s", limitV)
		}
		limit = l
	}
	if limit < 1 {
		limit = max(len(items), 1)
	}
	name := ""
	if nameV != starlark.None {
		n, ok := starlark.AsString(nameV)
		if !ok {
			return nil, fmt.Errorf("parallel(): name must be a string, got %s", nameV.Type())
		}
		name = n
	}

	// Threads must share nothing mutable.
	fn.Freeze()
	for _, it := range items {
		it.Freeze()
	}

	slot := r.Slot(th)
	stopping := r.SoftContext()
	results := make([]starlark.Value, len(items))
	errs := make([]error, len(items))
	started := make([]bool, len(items))
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed bool
	)
	sem := semaphore.NewWeighted(int64(limit))
	for i, item := range items {
		if sem.Acquire(stopping, 1) != nil {
			break // interrupted: nothing new starts
		}
		// The first `limit` items start together whatever happens to
		// the others; later ones only if nothing has failed while they
		// waited for a slot. This keeps runs reproducible.
		mu.Lock()
		stop := failed && !collect && i >= limit
		mu.Unlock()
		if stop || stopping.Err() != nil {
			sem.Release(1)
			break
		}
		started[i] = true
		wg.Add(1)
		go func(i int, item starlark.Value) {
			defer wg.Done()
			defer sem.Release(1)
			nt, done := r.Fork(th, slot, i, name, limit)
			defer done()
			v, err := starlark.Call(nt, fn, starlark.Tuple{item}, nil)
			mu.Lock()
			results[i], errs[i] = v, err
			if err != nil {
				failed = true
			}
			mu.Unlock()
			if err != nil && collect {
				r.ItemFailed(item, err)
			}
		}(i, item)
	}
	wg.Wait()

	if !collect {
		for i, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("parallel(): item %d (%s): %w", i, short(items[i]), err)
			}
		}
	}
	if stopping.Err() != nil {
		return nil, &runtime.Interrupted{What: "parallel()'s remaining items"}
	}
	if !collect {
		return starlark.NewList(results), nil
	}
	out := make([]starlark.Value, len(items))
	for i, item := range items {
		var errV starlark.Value = starlark.None
		ok := errs[i] == nil && started[i]
		if errs[i] != nil {
			errV = starlark.String(errs[i].Error())
		}
		v := results[i]
		if v == nil {
			v = starlark.None
		}
		out[i] = result("outcome", starlark.StringDict{
			"item": item, "ok": starlark.Bool(ok), "value": v, "error": errV,
		})
	}
	return starlark.NewList(out), nil
}

// short renders an item for an error message.
func short(v starlark.Value) string {
	s := v.String()
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
