package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
)

// Push copies the part of closure that h lacks: one round trip asks the
// host which paths are missing, then `nix-store --export` of those, in
// dependency order, streams into `nix-store --import` on the host over
// the host's one SSH connection. An interrupted import leaves no
// half-imported path: Nix registers a path only once it is complete.
func (e *Executor) Push(ctx context.Context, h *runtime.Host, closure string, progress runtime.ProgressFunc) (*runtime.PushResult, error) {
	if !isStorePath(closure) {
		return nil, &runtime.HostError{Host: h.Name, Step: "push", Err: fmt.Errorf("%q is not a /nix/store path", closure)}
	}
	m, err := e.machine(h)
	if err != nil {
		return nil, hostErr(h, "push", err)
	}
	res, err := m.push(ctx, closure, progress)
	return res, hostErr(h, "push", err)
}

func (m *machine) push(ctx context.Context, closure string, progress runtime.ProgressFunc) (*runtime.PushResult, error) {
	if m.h.BuildOnTarget {
		// Built there: nothing to copy, but make sure it is there.
		missing, err := m.missing(ctx, []string{closure})
		if err == nil && len(missing) > 0 {
			err = fmt.Errorf("%s is not in the host's store", closure)
		}
		return &runtime.PushResult{Paths: 1}, err
	}
	paths, err := closurePaths(ctx, closure)
	if err != nil {
		return nil, err
	}
	return m.copy(ctx, paths, progress)
}

// copy sends those of paths (a closure, dependencies first) that the
// machine lacks, telling progress (if any) the bytes sent.
func (m *machine) copy(ctx context.Context, paths []string, progress runtime.ProgressFunc) (*runtime.PushResult, error) {
	missing, err := m.missing(ctx, paths)
	if err != nil {
		return nil, fmt.Errorf("asking which paths are missing: %w", err)
	}
	res := &runtime.PushResult{Paths: len(paths), Missing: len(missing)}
	if len(missing) == 0 {
		return res, nil
	}
	res.Bytes, err = m.stream(ctx, missing, progress)
	return res, err
}

// missing returns, in order, the paths the machine's store lacks: one
// round trip.
func (m *machine) missing(ctx context.Context, paths []string) ([]string, error) {
	out, err := m.run(ctx, asRoot, nil, append([]string{"nix-store", "--check-validity", "--print-invalid"}, paths...)...)
	if err != nil {
		return nil, err
	}
	invalid := map[string]bool{}
	for _, p := range strings.Fields(out) {
		invalid[p] = true
	}
	var missing []string
	for _, p := range paths {
		if invalid[p] {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

// stream pipes a local export of paths into an import on the machine.
func (m *machine) stream(ctx context.Context, paths []string, progress runtime.ProgressFunc) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	exp := exec.CommandContext(ctx, "nix-store", append([]string{"--export"}, paths...)...)
	pr, pw := io.Pipe()
	var expErr bytes.Buffer
	exp.Stdout = pw
	exp.Stderr = &expErr
	if err := exp.Start(); err != nil {
		return 0, fmt.Errorf("nix-store --export: %w", err)
	}
	exported := make(chan error, 1)
	go func() {
		err := exp.Wait()
		if err != nil {
			err = fmt.Errorf("nix-store --export: %v: %s", err, strings.TrimSpace(expErr.String()))
		}
		pw.CloseWithError(err)
		exported <- err
	}()
	total := int64(0)
	if out, err := exec.CommandContext(ctx, "nix-store", append([]string{"--query", "--size"}, paths...)...).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			var n int64
			fmt.Sscan(f, &n)
			total += n
		}
	}
	cr := &countingReader{r: pr, report: func(n int64) { progress.Report(n, total, "bytes") }}
	_, err := m.run(ctx, asRoot, cr, "nix-store", "--import")
	pr.CloseWithError(errors.New("import ended"))
	cancel()
	if xerr := <-exported; err == nil && xerr != nil && ctx.Err() == nil {
		err = xerr
	}
	if err != nil {
		return cr.n.Load(), fmt.Errorf("nix-store --import: %w", err)
	}
	return cr.n.Load(), nil
}

// countingReader counts the bytes of a push and reports them at most
// ten times a second.
type countingReader struct {
	r      io.Reader
	n      atomic.Int64
	report func(int64)
	last   time.Time
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	total := c.n.Add(int64(n))
	if c.report != nil && (err != nil || time.Since(c.last) > 100*time.Millisecond) {
		c.last = time.Now()
		c.report(total)
	}
	return n, err
}

// isStorePath accepts /nix/store/<hash>-<name> and nothing else, so that
// no other string ever reaches a remote nix command as a closure.
func isStorePath(p string) bool {
	rest, ok := strings.CutPrefix(p, "/nix/store/")
	if !ok || len(rest) < 34 || rest[32] != '-' || strings.ContainsAny(rest, "/\x00\n") {
		return false
	}
	for _, r := range rest {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+-._?=", r)) {
			return false
		}
	}
	return true
}
