package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleet-deploy/fleet/internal/executor"
	"github.com/fleet-deploy/fleet/internal/journal"
	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

var (
	sshConfigFlag  = &cli.StringSliceFlag{Name: "ssh-config", Usage: "ssh_config `FILE` to use instead of ~/.ssh/config and /etc/ssh/ssh_config (repeatable)"}
	acceptNewFlag  = &cli.BoolFlag{Name: "accept-new-host-keys", Usage: "trust and record the key of a host seen for the first time (StrictHostKeyChecking accept-new); a changed key is always refused"}
	overrideFlag   = &cli.StringSliceFlag{Name: "override-input", Usage: "`NAME=FLAKE`: use FLAKE as input NAME of the flakes nixos_system() and colmena hives evaluate, like nix --override-input (repeatable)"}
	buildersFlag   = &cli.StringFlag{Name: "builders", Usage: "Nix remote builders, passed to Nix as --builders"}
	evalLimitFlag  = &cli.IntFlag{Name: "eval-limit", Usage: "at most `N` hosts per Nix evaluator process (several run at once, one per core); 0: as many as this machine's memory holds at ~1 GB each"}
	rebootFlag     = &cli.StringFlag{Name: "reboot", Usage: "after activating, the default strategy reboots: never, if-needed (the kernel, initrd or modules changed) or always", Value: "never", Action: checkFlag(runtime.CheckReboot)}
	logDirFlag     = &cli.StringFlag{Name: "log-dir", Usage: "keep one log file per host in `DIR` (HOST.log) with every event and log line of that host"}
	noWaitFlag     = &cli.BoolFlag{Name: "no-wait", Usage: "fail at once if another deploy holds the state directory or a host's lock, instead of waiting for it"}
	reactivateFlag = &cli.BoolFlag{Name: "reactivate", Usage: "switch hosts that already run the new system again (by default they are reported unchanged and left alone)"}
	substFlag      = &cli.BoolFlag{Name: "substitute-on-destination", Usage: "every host first fetches what its own substituters (its nix.conf) have of its closure; fleet pushes only the rest (host(substitute = True) does it for one host)"}
)

// applySubstitute marks every host of prog to substitute when the
// command has --substitute-on-destination: run and plan alike, so that
// the plan's pushes say "(substitute)" where the run's will.
func applySubstitute(c *cli.Context, prog *runtime.Program) {
	if c.Command == nil || !hasFlag(c, substFlag.Name) || !c.Bool(substFlag.Name) {
		return
	}
	for _, h := range prog.Hosts() {
		h.Substitute = true
	}
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "deploy: build, push and activate the selected hosts",
		ArgsUsage: "[FILE]",
		Description: `Evaluates fleet.star and runs its deploy(ctx) (or the default strategy:
build all, push all, activate all) for real: Nix builds on this machine,
closures go over one SSH connection per host, activation runs
switch-to-configuration on each host.

On a terminal, run shows one live line per host and a summary table;
elsewhere one timestamped line per event; --json prints the events of
docs/events.md. A failed step is shown with the last lines of its log.

Examples:
  fleet run --on envy,lenovo
  fleet run --goal boot --on @server -p 4
  fleet run --ssh-config lab.ssh_config --override-input nixpkgs=./mini-nixpkgs
  fleet run --json | jq 'select(.event == "step_end" and .result == "failed")'
  fleet run --log-dir logs/ -v
  fleet run --substitute-on-destination   # hosts fetch from their caches first
  fleet run --closures closures.json   # what fleet build --out wrote: no evaluation
  fleet run --skip-unreachable         # deploy the hosts that answer, list the others
  fleet run --goal boot --reboot=if-needed   # reboot where the kernel changed

One deploy at a time: a run holds its state directory (--state-dir) and,
while it activates, each host (/run/fleet/lock there). A second run waits
for them, saying "waiting for the deploy started at … by …", or with
--no-wait fails at once.

Before building, run dials every selected host once (all at once). A
host that does not answer stops the run there, naming it, with exit 1:
nothing is built and no host changes. With --skip-unreachable such hosts
are left out instead (a line each, "unreachable, skipped" in the
summary) and the others are deployed; the exit status is then that of
their deploy.`,
		Flags:  commonFlags(jsonFlag, sshConfigFlag, acceptNewFlag, askSudoFlag, overrideFlag, buildersFlag, evalLimitFlag, logDirFlag, stateDirFlag, closuresFlag, noWaitFlag, reactivateFlag, substFlag, skipUnreachableFlag, rebootFlag),
		Action: func(c *cli.Context) error { return deploy(c, "") },
	}
}

// uploadKeysCommand uploads keys only: the same run with
// @fleet//keys.star as its strategy.
func uploadKeysCommand() *cli.Command {
	return &cli.Command{
		Name:      "upload-keys",
		Usage:     "upload the selected hosts' keys, nothing else",
		ArgsUsage: "[FILE]",
		Description: `Uploads every secret(...) of the selected hosts (pre- and post-activation
alike) over SSH, as fleet run does, without building or activating.

Examples:
  fleet upload-keys --on @server`,
		Flags:  commonFlags(jsonFlag, sshConfigFlag, acceptNewFlag, askSudoFlag, logDirFlag, stateDirFlag),
		Action: func(c *cli.Context) error { return deploy(c, "@fleet//keys.star") },
	}
}

// deploy runs fleet.star's deploy(ctx), or strategy's when set.
func deploy(c *cli.Context, strategy string) error {
	t, err := reach(c, "")
	if err != nil {
		return err
	}
	prog, sel, opts := t.prog, t.sel, t.opts
	given, err := givenClosures(c, deployable(sel.Selected))
	if err != nil {
		return err
	}
	if strategy == "" { // keys only (upload-keys) need no Nix
		// Given closures are not evaluated: the flakes need no lock.
		if err := preflight(c.Context, deployable(sel.Selected), opts.Overrides, given == nil); err != nil {
			return err
		}
	}
	if given != nil {
		if err := executor.Realise(c.Context, given); err != nil {
			return &runtime.UsageError{Msg: fmt.Sprintf("--closures %s: %v", c.String("closures"), err)}
		}
		opts.Closures = given
	}
	var obs *ui.Renderer // made once the selection is final
	if c.Bool("verbose") || c.String("log-dir") != "" {
		opts.Log = func(line string) { obs.NixLog(line) }
	}
	opts.NoWait, opts.Reactivate = c.Bool("no-wait"), c.Bool("reactivate")
	ex := executor.New(opts)
	defer ex.Close()
	unlock, err := journal.Lock(c.Context, stateDir(c), ex.Holder(), opts.NoWait, func(holder string) {
		fmt.Fprintf(c.App.ErrWriter, "fleet: waiting for the deploy %s to end (it holds the state directory %s)\n", holder, stateDir(c))
	})
	if err != nil {
		var le *journal.LockedError
		if errors.As(err, &le) {
			return cli.Exit(le.Error(), exitHostFailed)
		}
		return err
	}
	defer unlock()
	// This machine's checks came first (exit 2, no host touched); then
	// every host is dialled once before anything is built.
	if strategy == "" {
		if err := reachability(c, ex, sel); err != nil {
			// Nothing was built or touched: the output still ends with
			// its summary, the unreachable hosts failed.
			if obs, oerr := newRunOutput(c, sel); oerr == nil {
				obs.Finish(err, false)
			}
			return err
		}
	}
	obs, err = newRunOutput(c, sel)
	if err != nil {
		return err
	}
	key, err := journal.SecretKey(stateDir(c))
	if err != nil {
		return err
	}
	jw, err := journal.Open(stateDir(c), ex.RunID())
	if err != nil {
		return err
	}
	goal := c.String("goal")
	if goal == "" { // fleet rollback: its hosts switch
		goal = "switch"
	}
	_, err = prog.Deploy(c.Context, sel, runtime.RunOptions{
		Executor: ex, Observer: runtime.Fanout(obs, jw), Goal: goal, Parallel: c.Int("parallel"),
		Stop: stopChan(c), Strategy: strategy, SecretKey: key, Reboot: c.String("reboot"), Generation: c.Int("to"),
	})
	interrupted := c.Context.Err() != nil || errors.Is(err, context.Canceled)
	select {
	case <-stopChan(c):
		interrupted = true
	default:
	}
	jerr := jw.Close(err, interrupted)
	obs.Finish(err, interrupted)
	if err == nil {
		err = jerr
	}
	return err
}

func executorOptions(c *cli.Context) (executor.Options, error) {
	o := executor.Options{Builders: c.String("builders"), EvalLimit: c.Int("eval-limit")}
	if o.EvalLimit < 0 {
		return o, &runtime.UsageError{Msg: fmt.Sprintf("--eval-limit %d: must be 0 (from memory) or more", o.EvalLimit)}
	}
	pw, err := sudoPassword(c)
	if err != nil {
		return o, err
	}
	o.SSH.SudoPassword = pw
	if files := c.StringSlice("ssh-config"); len(files) > 0 {
		for _, f := range files {
			if _, err := os.Stat(f); err != nil {
				return o, &runtime.UsageError{Msg: fmt.Sprintf("--ssh-config %s: no such file", f)}
			}
		}
		o.SSH.ConfigFiles = files
	}
	if c.Bool("accept-new-host-keys") {
		o.SSH.StrictHostKeyChecking = "accept-new"
	}
	if o.Overrides, err = overrides(c); err != nil {
		return o, err
	}
	return o, nil
}

// overrides are the --override-input flags, NAME to flake; local
// directories made absolute.
func overrides(c *cli.Context) (map[string]string, error) {
	var m map[string]string
	for _, kv := range c.StringSlice("override-input") {
		name, ref, ok := strings.Cut(kv, "=")
		if !ok || name == "" || ref == "" {
			return nil, &runtime.UsageError{Msg: fmt.Sprintf("--override-input %q: want NAME=FLAKE", kv)}
		}
		if !strings.Contains(ref, ":") { // a local directory, as Nix reads it
			abs, err := filepath.Abs(ref)
			if err != nil {
				return nil, err
			}
			ref = abs
		}
		if m == nil {
			m = map[string]string{}
		}
		m[name] = ref
	}
	return m, nil
}
