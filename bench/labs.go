// The lab of the benchmarks (hosts h1..hN, started in chunks), how a
// benchmark empties its hosts before a measurement and how it checks
// afterwards that every host runs its closure.

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// labChunk is how many hosts one lab.Start boots at once. Fifty sshds
// booting together on a loaded 2-core machine miss lab.Start's banner
// deadline, so bigger labs are several labs of labChunk hosts (each on its
// own 127.0.K.0/24, all in this network namespace) behind one merged
// ssh_config.
const labChunk = 10

// labs is the lab of the benchmarks: hosts h1..hN.
type labs struct {
	parts     []*lab.Lab
	Hosts     []*lab.Host
	SSHConfig string // every part's ssh_config, concatenated
}

func startLabs(ctx context.Context, n int, dir string) (*labs, error) {
	ls := &labs{}
	names := hostNames(n)
	for i := 0; i < n; i += labChunk {
		chunk := names[i:min(i+labChunk, n)]
		var l *lab.Lab
		var err error
		for attempt := 1; attempt <= 3; attempt++ {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			l, err = lab.Start(sctx, lab.Options{Hosts: chunk, Dir: filepath.Join(dir, fmt.Sprintf("lab%d", i/labChunk))})
			cancel()
			if err == nil {
				break
			}
			logf("starting lab hosts %s..%s failed (attempt %d): %v", chunk[0], chunk[len(chunk)-1], attempt, firstLine(err.Error()))
		}
		if err != nil {
			ls.Close()
			return nil, err
		}
		ls.parts = append(ls.parts, l)
		ls.Hosts = append(ls.Hosts, l.Hosts...)
	}
	var cfgText []byte
	for _, l := range ls.parts {
		data, err := os.ReadFile(l.SSHConfig)
		if err != nil {
			ls.Close()
			return nil, err
		}
		cfgText = append(append(cfgText, data...), '\n')
	}
	ls.SSHConfig = filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(ls.SSHConfig, cfgText, 0o644); err != nil {
		ls.Close()
		return nil, err
	}
	return ls, nil
}

func (ls *labs) Host(name string) *lab.Host {
	for _, h := range ls.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

func (ls *labs) Close() {
	for _, l := range ls.parts {
		if err := l.Close(); err != nil {
			logf("lab teardown: %v", err)
		}
	}
}

// resetHosts empties the hosts' stores and removes their system links,
// profiles and activation state: every host is as fresh as a new lab
// host (its sshd and nix-daemon keep running).
func (b *bench) resetHosts(names []string) error {
	var g errgroup.Group
	for _, n := range names {
		h := b.lab.Host(n)
		g.Go(func() error { return resetHost(h) })
	}
	return g.Wait()
}

func resetHost(h *lab.Host) error {
	r := h.Root
	if err := removeContents(r+"/nix/store", nil); err != nil {
		return err
	}
	if err := removeContents(r+"/nix/var/nix", map[string]bool{"daemon-socket": true}); err != nil {
		return err
	}
	if err := removeContents(r+"/nix/var", map[string]bool{"nix": true}); err != nil {
		return err
	}
	for _, d := range []string{"profiles", "gcroots"} {
		if err := os.MkdirAll(r+"/nix/var/nix/"+d, 0o755); err != nil {
			return err
		}
	}
	for _, p := range []string{"current-system", "booted-system", "fleet"} {
		if err := os.RemoveAll(r + "/run/" + p); err != nil {
			return err
		}
	}
	return nil
}

func removeContents(dir string, keep map[string]bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if keep[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// verify checks that every host runs its closure.
func (b *bench) verify(names []string, closures map[string]string) error {
	var bad []string
	for _, n := range names {
		cur, err := b.lab.Host(n).CurrentSystem()
		if err != nil || cur == "" || cur != closures[n] {
			bad = append(bad, fmt.Sprintf("%s runs %q, want %q (%v)", n, cur, closures[n], err))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not deployed: %s", strings.Join(bad, "; "))
	}
	return nil
}
