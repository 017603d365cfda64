package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

// TestLimitsInDeploy: the step and memory limits hold while deploy(ctx)
// runs, not only while fleet.star loads.
func TestLimitsInDeploy(t *testing.T) {
	defer func(m, s uint64) { runtime.MaxMemory, runtime.MaxSteps = m, s }(runtime.MaxMemory, runtime.MaxSteps)
	tests := []struct {
		name          string
		steps, memory uint64
		deploy, want  string
	}{
		{"steps", 1_000_000, 1 << 30, "    while True:\n        pass\n", "the script did not finish within 1000000 steps"},
		{"memory", 1 << 40, 32 << 20, "    x = [0] * 4000000\n    while True:\n        pass\n", "the script uses more than 32 MiB of memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runtime.MaxSteps, runtime.MaxMemory = tt.steps, tt.memory
			file := filepath.Join(t.TempDir(), "fleet.star")
			if err := os.WriteFile(file, []byte("def deploy(ctx):\n"+tt.deploy), 0o644); err != nil {
				t.Fatal(err)
			}
			prog, err := runtime.Load(context.Background(), file, starlark.StringDict{})
			if err != nil {
				t.Fatal(err)
			}
			sel, err := prog.Select("")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err = prog.Deploy(ctx, sel, runtime.RunOptions{Executor: runtime.DryExecutor{}, Goal: "switch", Parallel: 1})
			var se *runtime.ScriptError
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.As(err, &se) {
				t.Fatalf("err = %v, want a script error with %q", err, tt.want)
			}
			if ctx.Err() != nil {
				t.Fatalf("the limit did not stop the deploy")
			}
		})
	}
}
