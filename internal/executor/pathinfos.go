package executor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/fleet-deploy/fleet/internal/nixserve"
)

// pathInfos is the local store's metadata (references, NAR hash and size)
// of every path the run copies to hosts, asked of the local Nix once for
// all hosts: Build names the closures it built (want), and the first push
// queries them all together, with two processes:
//
//	nix-store --query --requisites ROOT...   the union of the closures
//	nix-store --dump-db PATH...               each path's registration
//
// --dump-db prints the same registration format in Nix 2.8 and today
// (Store::makeValidityRegistration), needs no experimental feature, and
// has what cmdAddToStoreNar needs; `nix path-info --json` has changed
// its output three times since 2.8 and warns without a --json-format
// that 2.8 does not know. A push of a closure nobody announced queries
// that closure alone, and adds it to what is known.
type pathInfos struct {
	mu      sync.Mutex // held during a query: the pushes that wait for it find their paths after
	pending []string   // announced roots not queried yet
	infos   map[string]*nixserve.PathInfo
	// nixStore runs the local nix-store; the tests replace it.
	nixStore func(ctx context.Context, args []string) ([]byte, error)
}

// want announces roots that pushes will ask for.
func (c *pathInfos) want(roots ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, roots...)
}

// of returns the closure of roots, dependencies first: the order in
// which a store accepts them.
func (c *pathInfos) of(ctx context.Context, roots ...string) ([]*nixserve.PathInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.infos == nil {
		c.infos = map[string]*nixserve.PathInfo{}
	}
	if c.nixStore == nil {
		c.nixStore = nixStore
	}
	var unknown []string
	for _, r := range roots {
		if c.infos[r] == nil {
			unknown = append(unknown, r)
		}
	}
	if len(unknown) > 0 {
		batch := slices.Clip(unknown)
		for _, r := range c.pending {
			if c.infos[r] == nil && !slices.Contains(unknown, r) {
				batch = append(batch, r)
			}
		}
		err := c.query(ctx, batch)
		if err != nil && len(batch) > len(unknown) {
			// One bad root must not fail the others' pushes: ask for
			// ours alone, and leave the rest to their own pushes.
			err = c.query(ctx, unknown)
		}
		if err != nil {
			return nil, err
		}
		c.pending = nil
	}
	return c.order(roots)
}

// query adds the metadata of the closures of roots.
func (c *pathInfos) query(ctx context.Context, roots []string) error {
	out, err := c.nixStore(ctx, append([]string{"--query", "--requisites"}, roots...))
	if err != nil {
		return err
	}
	var paths []string
	for _, p := range strings.Fields(string(out)) {
		if c.infos[p] == nil {
			paths = append(paths, p)
		}
	}
	for len(paths) > 0 {
		// Keep each command line well under ARG_MAX.
		n, size := 0, 0
		for n < len(paths) && size < 256<<10 {
			size += len(paths[n]) + 1
			n++
		}
		out, err := c.nixStore(ctx, append([]string{"--dump-db"}, paths[:n]...))
		if err != nil {
			return err
		}
		infos, err := parseRegistrations(out)
		if err != nil {
			return err
		}
		for _, info := range infos {
			c.infos[info.Path] = info
		}
		paths = paths[n:]
	}
	return nil
}

// order lists the closure of roots from what is known, each path after
// its references.
func (c *pathInfos) order(roots []string) ([]*nixserve.PathInfo, error) {
	var out []*nixserve.PathInfo
	seen := map[string]bool{}
	var visit func(p string) error
	visit = func(p string) error {
		if seen[p] {
			return nil
		}
		seen[p] = true
		info := c.infos[p]
		if info == nil {
			return fmt.Errorf("nix-store --dump-db did not list %s", p)
		}
		for _, r := range info.References {
			if r != p {
				if err := visit(r); err != nil {
					return err
				}
			}
		}
		out = append(out, info)
		return nil
	}
	for _, r := range roots {
		if err := visit(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// nixStore runs the local nix-store with args and returns its stdout.
func nixStore(ctx context.Context, args []string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "nix-store", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("nix-store %s: %s", args[0], strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("nix-store %s: %w", args[0], err)
	}
	return out, nil
}

// parseRegistrations reads `nix-store --dump-db` output: per path, lines
// of the path, its NAR hash (hex), NAR size, deriver (or empty), the
// number of references and the references.
func parseRegistrations(out []byte) ([]*nixserve.PathInfo, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return sc.Text(), true
	}
	var infos []*nixserve.PathInfo
	for {
		path, ok := line()
		if !ok {
			return infos, sc.Err()
		}
		hash, _ := line()
		size, _ := line()
		deriver, _ := line()
		count, ok := line()
		info := &nixserve.PathInfo{Path: path, NarHash: hash, Deriver: deriver}
		var err1, err2 error
		info.NarSize, err1 = strconv.ParseInt(size, 10, 64)
		n, err2 := strconv.Atoi(count)
		if !ok || !isStorePath(path) || len(hash) != 64 || err1 != nil || err2 != nil || n < 0 {
			return nil, fmt.Errorf("nix-store --dump-db: unexpected output at %q", path)
		}
		for range n {
			ref, ok := line()
			if !ok {
				return nil, fmt.Errorf("nix-store --dump-db: %s: references cut short", path)
			}
			info.References = append(info.References, ref)
		}
		infos = append(infos, info)
	}
}
