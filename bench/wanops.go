// What single operations cost in round trips at 50 ms RTT, on host h1
// through its delay proxy (wan.go): a new OpenSSH connection running
// `true` (each baseline step), a connection of fleet's SSH client
// (internal/remote.Dial), and a session on it. Run with wan10 / wan50;
// there is no baseline, the operations are compared with each other.

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/fleet-deploy/fleet/internal/remote"
)

// wanOp is one probed operation: round trips (as the proxy counts them)
// and wall time, means of k.
type wanOp struct {
	name        string
	k           int
	turns, wall float64
}

func (b *bench) wanOps(ctx context.Context, w *wan) error {
	const k = 3
	p := w.proxies[0]
	host := w.hosts[0].Name
	opts := remote.Options{ConfigFiles: []string{w.sshConfig}}
	ep, err := remote.Resolve(opts, remote.Target{Host: host, User: "root"})
	if err != nil {
		return err
	}
	ep.ServerAliveInterval = 0 // no keepalives in the count
	var conn *remote.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	ops := []struct {
		name string
		do   func() error
	}{
		{"new OpenSSH connection + `true` (each baseline step)", func() error {
			return command{argv: []string{"ssh", "-F", w.sshConfig, "root@" + host, "true"}}.run(ctx).failed()
		}},
		{"fleet's client: new connection (remote.Dial)", func() error {
			if conn != nil {
				conn.Close()
			}
			conn, err = remote.Dial(ctx, ep)
			return err
		}},
		{"fleet's client: session `true` on that connection", func() error {
			return conn.Run(ctx, remote.Cmd{Argv: []string{"true"}})
		}},
	}
	for _, o := range ops {
		r := wanOp{name: o.name, k: k}
		for i := 0; i < k; i++ {
			s0, t0 := p.Stats(), time.Now()
			if err := o.do(); err != nil {
				return fmt.Errorf("%s: %w", o.name, err)
			}
			r.wall += float64(time.Since(t0).Microseconds()) / 1e3 / k
			r.turns += float64(p.Stats().sub(s0).roundTrips) / k
		}
		logf("wan op %-55s %4.1f round trips, %6.1f ms", o.name, r.turns, r.wall)
		b.wanOpsResults = append(b.wanOpsResults, r)
	}
	return nil
}
