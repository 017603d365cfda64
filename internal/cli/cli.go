// Package cli is the fleet command line: flags in, a runtime call, an
// exit code out. cmd/fleet is its main; tests call Main in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fatih/color"
	"github.com/fleet-deploy/fleet/builtins"
	"github.com/fleet-deploy/fleet/internal/localnix"
	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
	"go.starlark.net/starlark"
	"golang.org/x/term"
)

// Exit codes.
const (
	exitOK          = 0
	exitHostFailed  = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// Main runs the CLI and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, abort := context.WithCancel(context.Background())
	defer abort()
	app := newApp(stdout, stderr)
	args = permute(app, args)
	// A deploy stops gently on the first interrupt (nothing new starts,
	// steps in flight finish) and aborts on the second; anything else
	// stops at once.
	gentle := len(args) > 1 && (args[1] == "run" || args[1] == "upload-keys" || args[1] == "rollback")
	stopping := make(chan struct{})
	app.Metadata = map[string]any{"stop": (<-chan struct{})(stopping)}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		for n := 1; ; n++ {
			select {
			case <-sigs:
			case <-ctx.Done():
				return
			}
			if n == 1 && gentle {
				close(stopping)
				fmt.Fprintln(stderr, "fleet: interrupted: letting the steps in flight finish, starting nothing new (interrupt again to abort now)")
				continue
			}
			abort()
			return
		}
	}()
	err := app.RunContext(ctx, args)
	return report(ctx, err, stderr)
}

// stopChan is closed by the first interrupt of a deploy.
func stopChan(c *cli.Context) <-chan struct{} {
	ch, _ := c.App.Metadata["stop"].(<-chan struct{})
	return ch
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "fleet",
		Usage:     "deploy NixOS machines from a Starlark file",
		UsageText: "fleet COMMAND [flags] [FILE]   (FILE defaults to ./fleet.star)",
		Description: `fleet evaluates fleet.star (inventory, host factory and, optionally, a
deploy(ctx) rollout strategy), builds every host's system with Nix, copies
it over SSH and activates it, in parallel.

Examples:
  fleet plan                           # what a deploy of ./fleet.star would do
  fleet plan --on envy,lenovo --json   # the same, for two hosts, as JSON
  fleet run --on @server -p 4          # deploy hosts tagged server, 4 at a time
  fleet hosts examples/homelab/fleet.star`,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		// Errors are printed by report, with the exit code they deserve.
		ExitErrHandler:       func(*cli.Context, error) {},
		EnableBashCompletion: true,
		Commands: []*cli.Command{
			planCommand(),
			runCommand(),
			buildCommand(),
			diffCommand(),
			hostsCommand(),
			checkCommand(),
			execCommand(),
			statusCommand(),
			historyCommand(),
			generationsCommand(),
			rollbackCommand(),
			exportCommand(),
			initCommand(),
			uploadKeysCommand(),
			doctorCommand(),
			completionCommand(),
		},
	}
}

// Flags shared by the commands that evaluate a fleet.star.
var (
	onFlag       = &cli.StringFlag{Name: "on", Usage: "select hosts: comma list of names, globs (rpi*) and @tags, OR-ed", Value: ""}
	goalFlag     = &cli.StringFlag{Name: "goal", Usage: "activation goal: switch, boot, test or dry-activate", Value: "switch", Action: checkFlag(runtime.CheckGoal)}
	parallelFlag = &cli.IntFlag{Name: "parallel", Aliases: []string{"p"}, Usage: "hosts worked on at once", Value: 10, Action: checkFlag(runtime.CheckParallel)}
	colorFlag    = &cli.StringFlag{Name: "color", Usage: "colour output: auto, always or never (NO_COLOR is honoured)", Value: "auto"}
	verboseFlag  = &cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "show more detail"}
	jsonFlag     = &cli.BoolFlag{Name: "json", Usage: "print JSON instead of text"}
)

// checkFlag checks a flag's value as it is parsed, so that a usage
// error comes before any output of a command (a run's "not run" table)
// and before a run is journaled.
func checkFlag[T any](check func(T) error) func(*cli.Context, T) error {
	return func(_ *cli.Context, v T) error { return check(v) }
}

func commonFlags(extra ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{onFlag, goalFlag, parallelFlag, colorFlag, verboseFlag}, extra...)
}

// fileArg is the fleet.star a command works on.
func fileArg(c *cli.Context) (string, error) {
	switch c.NArg() {
	case 0:
		return "fleet.star", nil
	case 1:
		return c.Args().First(), nil
	}
	return "", &runtime.UsageError{Msg: fmt.Sprintf("fleet %s: want at most one FILE, got %q", c.Command.Name, c.Args().Slice())}
}

// setup applies the colour flag and loads the program named by the
// command's FILE argument.
func setup(c *cli.Context) (*runtime.Program, error) {
	file, err := fileArg(c)
	if err != nil {
		return nil, err
	}
	return load(c, file)
}

// universe is fleet's builtins, colmena_hive reading hives with the
// command's --override-input (as its build evaluates them).
func universe(c *cli.Context) starlark.StringDict {
	u := builtins.Universe()
	if o, err := overrides(c); err == nil {
		builtins.WithOverrides(u, o)
	}
	return u
}

// load applies the colour flag and loads file.
func load(c *cli.Context, file string) (*runtime.Program, error) {
	if err := setColor(c.String("color"), c.App.Writer); err != nil {
		return nil, err
	}
	if _, err := os.Stat(file); err != nil {
		return nil, &runtime.UsageError{Msg: fmt.Sprintf("%s: no such file (fleet looks for ./fleet.star unless given a FILE)", file)}
	}
	prog, err := runtime.Load(c.Context, file, universe(c))
	if err != nil {
		return nil, err
	}
	resolveEndpoints(c, prog)
	applySubstitute(c, prog)
	yellow := color.New(color.FgYellow, color.Bold).SprintFunc()
	for _, w := range prog.Warnings() {
		fmt.Fprintf(c.App.ErrWriter, "%s %s\n", yellow("warning:"), w)
	}
	return prog, nil
}

func setColor(mode string, w io.Writer) error {
	switch mode {
	case "always":
		color.NoColor = false
	case "never":
		color.NoColor = true
	case "auto":
		f, ok := w.(*os.File)
		color.NoColor = os.Getenv("NO_COLOR") != "" || !ok || !term.IsTerminal(int(f.Fd())) || os.Getenv("TERM") == "dumb"
	default:
		return &runtime.UsageError{Msg: fmt.Sprintf("--color %q: must be auto, always or never", mode)}
	}
	return nil
}

// report prints err and maps it to an exit code: 1 when a host failed,
// 130 when interrupted, 2 for anything the user must fix first. An
// error may carry what a host sent (a command's output, a link's
// target): every line is sanitized, and the lines of a host's text
// after the first stand under its name (ui.HostError).
func report(ctx context.Context, err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	red := color.New(color.FgRed, color.Bold).SprintFunc()
	printLines := func(head string, lines []string) {
		fmt.Fprintf(stderr, "%s %s\n", head, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintln(stderr, l)
		}
	}
	var (
		se *runtime.ScriptError
		he *runtime.HostError
		hf *runtime.HostFailures
		ee cli.ExitCoder
	)
	if p, ok := localnix.As(err); ok {
		// This machine's Nix, before or instead of any host: what and how
		// to fix it, without Nix's wall of warnings.
		printLines(red("fleet:"), ui.SanitizeLines(p.What))
		printLines("  "+red("fix:"), ui.SanitizeLines(p.Fix))
		return exitUsage
	}
	switch {
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		// Before host failures: an aborted run exits 130 even when a
		// host's step ended in the abort ("activation still running").
		fmt.Fprintf(stderr, "%s interrupted\n", red("fleet:"))
		var hf *runtime.HostFailures
		if errors.As(err, &hf) {
			for _, he := range hf.Errs {
				printLines(red("error:"), ui.HostError(he))
			}
		}
		return exitInterrupted
	case errors.As(err, &hf):
		for _, he := range hf.Errs {
			printLines(red("error:"), ui.HostError(he))
		}
		return exitHostFailed
	case errors.As(err, &se):
		detail := se.Detail()
		if errors.As(err, &he) {
			// The host's part of the message, rendered safe in place.
			detail = strings.Replace(detail, he.Error(), strings.Join(ui.HostError(he), "\n"), 1)
		}
		printLines(red("error:"), ui.SanitizeLines(detail))
		var stop *runtime.Stop
		if he != nil || errors.As(err, &stop) {
			return exitHostFailed
		}
		return exitUsage
	case errors.As(err, &he):
		printLines(red("error:"), ui.HostError(he))
		return exitHostFailed
	case errors.As(err, &ee):
		if msg := strings.TrimSpace(err.Error()); msg != "" {
			printLines(red("fleet:"), ui.SanitizeLines(msg))
		}
		return ee.ExitCode()
	default:
		printLines(red("fleet:"), ui.SanitizeLines(err.Error()))
		return exitUsage
	}
}

// permute moves flags that follow the FILE argument in front of it, so
// that `fleet plan fleet.star --on envy` works as people type it.
// Everything after "--" is left alone.
func permute(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	var cmd *cli.Command
	for _, c := range app.Commands {
		if c.HasName(args[1]) {
			cmd = c
		}
	}
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, positional []string
	rest := args[2:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional = append(positional, rest[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(rest) {
				i++
				flags = append(flags, rest[i])
			}
			continue
		}
		positional = append(positional, a)
	}
	out := append([]string{args[0], args[1]}, flags...)
	return append(out, positional...)
}
