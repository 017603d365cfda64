package runtime

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"go.starlark.net/starlark"
)

// Limits keep a runaway script from hanging or exhausting the deploying
// machine: loading must finish within MaxLoadSteps Starlark steps, any
// single thread (of the load or of deploy(ctx)) within MaxSteps, and the
// heap may grow by at most MaxMemory while a Run - the load or a deploy -
// lasts. Each is a clear error, not a crash.
var (
	MaxLoadSteps uint64 = 200_000_000
	MaxSteps     uint64 = 2_000_000_000
	MaxMemory    uint64 = 1 << 30
)

// limit applies the step limit to th.
func limit(th *starlark.Thread, steps uint64, what string) {
	th.SetMaxExecutionSteps(steps)
	th.OnMaxSteps = func(th *starlark.Thread) {
		th.Cancel(fmt.Sprintf("%s did not finish within %d steps (an endless loop?)", what, steps))
	}
}

// watchMemory calls exceed with the reason when the heap grows by more
// than MaxMemory, until ctx is done or the returned stop is called; stop
// reports whether that happened (a script may finish right after one
// huge allocation).
func watchMemory(ctx context.Context, exceed func(reason string)) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	var exceeded atomic.Bool
	done := make(chan struct{})
	// Growth, not the total: the process may hold other work's garbage.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	check := func() bool {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > base && ms.HeapAlloc-base > MaxMemory {
			exceeded.Store(true)
			exceed(memoryMsg())
			return true
		}
		return false
	}
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if check() {
				return
			}
		}
	}()
	return func() error {
		cancel()
		<-done
		if exceeded.Load() || check() {
			return fmt.Errorf("%s", memoryMsg())
		}
		return nil
	}
}

func memoryMsg() string {
	return fmt.Sprintf("the script uses more than %d MiB of memory", MaxMemory>>20)
}
