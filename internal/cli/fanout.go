package cli

import (
	"context"
	"sync"

	"github.com/fleet-deploy/fleet/runtime"
	"golang.org/x/sync/semaphore"
)

// eachHost calls fn(i, h) for every host, in parallel, at most limit at
// once (at least one). A host whose turn has not come when ctx is done is
// not started: notStarted(i, h) is called for it instead, so that the
// command can say "interrupted" rather than guess. It returns when every
// call has returned.
func eachHost(ctx context.Context, limit int, hosts []*runtime.Host, fn, notStarted func(i int, h *runtime.Host)) {
	sem := semaphore.NewWeighted(int64(max(limit, 1)))
	var wg sync.WaitGroup
	for i, h := range hosts {
		if err := sem.Acquire(ctx, 1); err != nil {
			for j := i; j < len(hosts); j++ {
				notStarted(j, hosts[j])
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sem.Release(1)
			fn(i, h)
		}()
	}
	wg.Wait()
}
