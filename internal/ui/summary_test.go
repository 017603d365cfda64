package ui_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
)

// TestSummaryOfUnfinishedRun: a run cut short (interrupted, or stopped
// by the script) does not call a host it never finished "ok": a host
// none of whose steps ran is "not started", one pushed but never
// activated "not activated". A run that ends as its script says keeps
// "ok" and "not run".
func TestSummaryOfUnfinishedRun(t *testing.T) {
	tests := []struct {
		name   string
		deploy string // the body of deploy(ctx)
		stopIn string // close Stop during this host's push
		want   string // host=result ..., then the run's result
	}{
		{"interrupted during b's push", `
    for h in ctx.hosts:
        c = nix_build([h])
        push(h, c[h.name])
        activate(h, c[h.name])
`, "b", "a=changed b=not activated c=not started: interrupted"},
		{"stopped by the script", `
    for h in ctx.hosts:
        c = nix_build([h])
        push(h, c[h.name])
        fail("stop after " + h.name)
`, "", "a=not activated b=not started c=not started: failed"},
		{"pushes only, to the end", `
    c = nix_build([ctx.hosts[0]])
    push(ctx.hosts[0], c[ctx.hosts[0].name])
`, "", "a=ok b=not run c=not run: ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }"), 0o644)
			file := filepath.Join(dir, "fleet.star")
			src := `for name in ["a", "b", "c"]:
    host(name = name, target_host = name + ".lan", attr = ".#nixosConfigurations." + name)

def deploy(ctx):` + tt.deploy
			if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			prog, err := runtime.Load(context.Background(), file, builtins.Universe())
			if err != nil {
				t.Fatal(err)
			}
			sel, err := prog.Select("")
			if err != nil {
				t.Fatal(err)
			}
			clk := newClock()
			var out bytes.Buffer
			r, err := ui.New(ui.Options{Out: &out, Mode: ui.Plain, Now: clk.Now, Goal: "switch", Parallel: 1}, sel)
			if err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			var once sync.Once
			ex := &fakeExec{clock: clk, during: func(host string) {
				if host == tt.stopIn {
					once.Do(func() { close(stop) })
				}
			}}
			_, err = prog.Deploy(context.Background(), sel, runtime.RunOptions{Executor: ex, Observer: r, Goal: "switch", Parallel: 1, Stop: stop})
			interrupted := errors.Is(err, context.Canceled)
			select {
			case <-stop:
				interrupted = true
			default:
			}
			sum := r.Finish(err, interrupted)
			var got []string
			for _, h := range sum.Hosts {
				got = append(got, h.Host+"="+h.Result)
			}
			if g := strings.Join(got, " ") + ": " + sum.Result; g != tt.want {
				t.Errorf("summary %s, want %s\n%s", g, tt.want, out.String())
			}
		})
	}
}
