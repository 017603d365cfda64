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
// single thread within MaxSteps, and the process must stay under
// MaxMemory while a script runs. Each is a clear error, not a crash.
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

// watchMemory cancels th when the heap grows by more than MaxMemory, until the
// returned stop is called; stop reports whether that happened (a script
// may finish right after one huge allocation).
func watchMemory(ctx context.Context, th *starlark.Thread) (stop func() error) {
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
			th.Cancel(memoryMsg())
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
