package executor

import (
	"bufio"
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"

	fleet "github.com/fleet-deploy/fleet/runtime"
	"golang.org/x/sync/errgroup"
)

// Evaluating a NixOS configuration costs the evaluator about a gigabyte
// (NixOS/nix#8621), and one process evaluating many of them keeps all of
// that (NixOS/nix#15142): one nix-build for 500 hosts does not fit in a
// machine. So the executor evaluates in chunks of at most EvalLimit hosts
// per evaluator process, a few processes at a time, as colmena's chunked
// evaluator does. Results are merged back in program order.

// evalGiB is what one host's evaluation is assumed to cost.
const evalGiB = 1 << 30

// evalProcs is how many evaluator processes run at once: one per core.
func (e *Executor) evalProcs() int {
	if e.procs > 0 {
		return e.procs
	}
	return max(1, runtime.NumCPU())
}

// evalLimit is how many hosts one evaluator process gets: Options.EvalLimit,
// else what this machine's available memory holds with evalProcs processes
// running (at least 1).
func (e *Executor) evalLimit() int {
	if e.opts.EvalLimit > 0 {
		return e.opts.EvalLimit
	}
	avail := memAvailable()
	if avail <= 0 {
		return 8
	}
	return max(1, int(avail/evalGiB)/e.evalProcs())
}

// memAvailable is MemAvailable from /proc/meminfo in bytes, 0 if unknown.
func memAvailable() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// chunks splits hosts, in order, into runs of at most n.
func chunks(hosts []*fleet.Host, n int) [][]*fleet.Host {
	var out [][]*fleet.Host
	for len(hosts) > n {
		out = append(out, hosts[:n:n])
		hosts = hosts[n:]
	}
	if len(hosts) > 0 {
		out = append(out, hosts)
	}
	return out
}

// inChunks runs do on each chunk of hosts, evalProcs at a time, and
// returns each chunk's result in order with the chunks' errors joined
// in order.
func inChunks[T any](ctx context.Context, e *Executor, hosts []*fleet.Host, do func(context.Context, []*fleet.Host) (T, error)) ([]T, error) {
	cs := chunks(hosts, e.evalLimit())
	res, errs := make([]T, len(cs)), make([]error, len(cs))
	var g errgroup.Group
	g.SetLimit(e.evalProcs())
	for i, c := range cs {
		g.Go(func() error {
			res[i], errs[i] = do(ctx, c)
			return nil
		})
	}
	g.Wait()
	return res, errors.Join(errs...)
}
