package cli

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/fatih/color"
	"github.com/fleet-deploy/fleet/internal/executor"
	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command on many hosts in parallel",
		ArgsUsage: "[FILE] -- COMMAND [ARG...]",
		Description: `Runs COMMAND on every selected host over SSH, -p at a time, as the
target user. Output lines are prefixed with the host name; a summary of
exit codes ends the run. The words of COMMAND are passed as they are
(quoted for the remote shell by fleet): no shell syntax is interpreted
unless you ask for a shell, e.g. -- sh -c 'uptime; df -h /'.
Exit status: 0 when the command succeeded everywhere, 1 otherwise.

Examples:
  fleet exec --on @server -- systemctl is-active nginx
  fleet exec -p 50 --json -- uname -r`,
		Flags: []cli.Flag{onFlag, parallelFlag, colorFlag, verboseFlag, jsonFlag, sshConfigFlag, acceptNewFlag, askSudoFlag},
		Action: func(c *cli.Context) error {
			file, argv := splitExecArgs(c.Args().Slice())
			if len(argv) == 0 {
				return &runtime.UsageError{Msg: "fleet exec: no command; usage: fleet exec [--on SEL] [FILE] -- COMMAND [ARG...]"}
			}
			if len(file) > 1 {
				return &runtime.UsageError{Msg: fmt.Sprintf("fleet exec: want at most one FILE, got %q", file)}
			}
			path := "fleet.star"
			if len(file) == 1 {
				path = file[0]
			}
			t, err := reach(c, path)
			if err != nil {
				return err
			}
			ex := executor.New(t.opts)
			defer ex.Close()
			results := runExec(c, ex, t.sel.Selected, argv)
			return printExec(c.App.Writer, results, c.Bool("json"))
		},
	}
}

// splitExecArgs separates [FILE] from the command after "--" (which the
// flag parser drops when no FILE precedes it).
func splitExecArgs(args []string) (file, argv []string) {
	for i, a := range args {
		if a == "--" {
			return args[:i], args[i+1:]
		}
	}
	return nil, args
}

type execResult struct {
	Host     string `json:"host"`
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	Error    string `json:"error,omitempty"`
}

func runExec(c *cli.Context, ex *executor.Executor, hosts []*runtime.Host, argv []string) []execResult {
	width := 0
	for _, h := range hosts {
		width = max(width, ui.Width(ui.Sanitize(h.Name)))
	}
	var (
		mu      sync.Mutex
		results = make([]execResult, len(hosts))
	)
	live := !c.Bool("json")
	eachHost(c.Context, c.Int("parallel"), hosts, func(i int, h *runtime.Host) {
		var out, errb bytes.Buffer
		var stdout, stderr io.Writer = &out, &errb
		name := ui.Sanitize(h.Name)
		pad := strings.Repeat(" ", width-ui.Width(name))
		pout := &prefixWriter{w: c.App.Writer, mu: &mu, prefix: pad + name + " | "}
		perr := &prefixWriter{w: c.App.Writer, mu: &mu, prefix: pad + name + " ! "}
		if live {
			stdout, stderr = io.MultiWriter(&out, pout), io.MultiWriter(&errb, perr)
		}
		code, err := ex.Exec(c.Context, h, argv, stdout, stderr)
		pout.flush()
		perr.flush()
		r := execResult{Host: h.Name, ExitCode: code, Stdout: out.String(), Stderr: errb.String()}
		switch {
		case err != nil && c.Context.Err() != nil:
			r.ExitCode, r.Error = -1, errInterrupted
		case err != nil:
			r.ExitCode, r.Error = -1, err.Error()
		}
		results[i] = r
	}, func(i int, h *runtime.Host) {
		results[i] = execResult{Host: h.Name, ExitCode: -1, Error: errInterrupted}
	})
	return results
}

// errInterrupted is the error of a host whose command an interrupt
// stopped or never started: "interrupted", not "unreachable".
const errInterrupted = "interrupted"

func printExec(w io.Writer, results []execResult, asJSON bool) error {
	failed := 0
	for _, r := range results {
		if r.ExitCode != 0 {
			failed++
		}
	}
	if asJSON {
		if err := writeJSON(w, results); err != nil {
			return err
		}
	} else {
		byCode := map[string][]string{}
		for _, r := range results {
			key := fmt.Sprintf("exit %d", r.ExitCode)
			switch {
			case r.Error == errInterrupted:
				key = "interrupted" // not started, or stopped: not the host's fault
			case r.Error != "":
				key = "unreachable"
				for _, l := range ui.HostText(r.Host, color.RedString("error:")+" "+ui.Sanitize(r.Host)+": ", r.Error) {
					fmt.Fprintln(w, l)
				}
			}
			byCode[key] = append(byCode[key], ui.Sanitize(r.Host))
		}
		var keys []string
		for k := range byCode {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %s", k, strings.Join(byCode[k], ", ")))
		}
		fmt.Fprintf(w, "%d hosts; %s\n", len(results), strings.Join(parts, "; "))
	}
	if failed > 0 {
		return cli.Exit("", exitHostFailed)
	}
	return nil
}

// prefixWriter writes whole lines, each prefixed and sanitized, under a
// shared lock so hosts' lines never interleave mid-line, and no byte of
// a host's output reaches the terminal as a control.
type prefixWriter struct {
	w       io.Writer
	mu      *sync.Mutex
	prefix  string
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.mu.Lock()
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, ui.Sanitize(string(p.partial[:i])))
		p.mu.Unlock()
		p.partial = p.partial[i+1:]
	}
	return len(b), nil
}

func (p *prefixWriter) flush() {
	if len(p.partial) > 0 {
		p.mu.Lock()
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, ui.Sanitize(string(p.partial)))
		p.mu.Unlock()
		p.partial = nil
	}
}
