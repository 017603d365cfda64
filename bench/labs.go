package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

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
