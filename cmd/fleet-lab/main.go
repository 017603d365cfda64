// Command fleet-lab runs a lab of simulated NixOS hosts (real sshd + Nix
// store per host, see internal/lab) in a private network namespace, and
// optionally a command next to it:
//
//	fleet-lab [-n 4 | --hosts envy,lenovo,rpi4-a] [--alias 10.0.0.10=envy ...] [--dir D] [-- CMD ARGS...]
//
// With a command, the command runs inside the namespace with
// FLEET_LAB_SSH_CONFIG, FLEET_LAB_KNOWN_HOSTS, FLEET_LAB_KEY, FLEET_LAB_DIR and
// FLEET_LAB_HOSTS set and Nix configured by the project (internal/nixconf:
// NIX_CONF_DIR, whatever /etc/nix says), the lab is torn down when it exits, and fleet-lab
// exits with its code. Without one, fleet-lab prints the hosts and how to
// reach them, and runs until interrupted. It needs root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/nixconf"
	"github.com/fleet-deploy/fleet/internal/shell"
)

type aliasFlag map[string]string

func (a aliasFlag) String() string {
	var parts []string
	for k, v := range a {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (a aliasFlag) Set(s string) error {
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" || v == "" {
			return fmt.Errorf("want NAME=HOST, got %q", kv)
		}
		a[k] = v
	}
	return nil
}

type config struct {
	hosts   []string
	aliases map[string]string
	dir     string
	quiet   bool
	cmd     []string
}

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func parse(args []string, stderr io.Writer) (*config, int) {
	fs := flag.NewFlagSet("fleet-lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 4, "number of hosts (named host1..hostN), if --hosts is not given")
	hosts := fs.String("hosts", "", "comma-separated host `names`, e.g. envy,lenovo,rpi4-a")
	aliases := aliasFlag{}
	fs.Var(aliases, "alias", "extra `NAME=HOST` that reaches HOST in the ssh_config (repeatable), e.g. 10.0.0.10=envy")
	dir := fs.String("dir", "", "state `directory` (kept afterwards); default: a temporary one, removed on exit")
	quiet := fs.Bool("q", false, "with a command: do not print the lab summary")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: fleet-lab [-n 4 | --hosts envy,lenovo,rpi4-a] [--alias 10.0.0.10=envy ...] [--dir D] [-- CMD ARGS...]

Runs simulated NixOS hosts (one real sshd and Nix store per host, on
127.0.0.2, 127.0.0.3, ... port 22) in a private network namespace. With CMD,
runs it there with FLEET_LAB_SSH_CONFIG, FLEET_LAB_KNOWN_HOSTS, FLEET_LAB_KEY,
FLEET_LAB_DIR and FLEET_LAB_HOSTS set and exits with its code; without, prints
the hosts and waits for Ctrl-C. Needs root.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	c := &config{aliases: aliases, dir: *dir, quiet: *quiet, cmd: fs.Args()}
	if *hosts != "" {
		for _, h := range strings.Split(*hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				c.hosts = append(c.hosts, h)
			}
		}
	} else {
		if *n < 1 || *n > 253 {
			fmt.Fprintln(stderr, "fleet-lab: -n must be between 1 and 253")
			return nil, 2
		}
		for i := 1; i <= *n; i++ {
			c.hosts = append(c.hosts, fmt.Sprintf("host%d", i))
		}
	}
	if len(c.hosts) == 0 {
		fmt.Fprintln(stderr, "fleet-lab: no hosts")
		return nil, 2
	}
	return c, -1
}

func run(args []string, stderr io.Writer) int {
	c, code := parse(args, stderr)
	if c == nil {
		return code
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "fleet-lab: must run as root (it creates network and mount namespaces and starts sshd); try: sudo fleet-lab ...")
		return 1
	}
	if missing := lab.MissingPrograms(); len(missing) > 0 {
		fmt.Fprintf(stderr, "fleet-lab: missing programs: %s\n  install them with: apt-get install openssh-server openssh-client nix-bin sudo\n", strings.Join(missing, ", "))
		return 1
	}
	code, err := lab.RunInPrivateNetns(func() int { return inside(c, stderr) })
	if err != nil {
		fmt.Fprintf(stderr, "fleet-lab: cannot create a private network namespace: %v\n", err)
		return 1
	}
	return code
}

// inside runs in the private network namespace.
func inside(c *config, stderr io.Writer) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-started:
		}
	}()
	t0 := time.Now()
	l, err := lab.Start(ctx, lab.Options{Hosts: c.hosts, Dir: c.dir, Aliases: c.aliases})
	close(started)
	if err != nil {
		fmt.Fprintf(stderr, "fleet-lab: %v\n", err)
		return 1
	}
	defer func() {
		if err := l.Close(); err != nil {
			fmt.Fprintf(stderr, "fleet-lab: teardown: %v\n", err)
		}
	}()
	took := time.Since(t0).Round(time.Millisecond)

	if len(c.cmd) == 0 {
		summary(os.Stdout, l, took, true)
		s := <-sigs
		fmt.Fprintf(stderr, "\nfleet-lab: %v, stopping the lab\n", s)
		return 0
	}
	if !c.quiet {
		summary(stderr, l, took, false)
	}
	return runCmd(c.cmd, l, sigs, stderr)
}

func runCmd(args []string, l *lab.Lab, sigs chan os.Signal, stderr io.Writer) int {
	cmd := exec.Command(args[0], args[1:]...)
	// Without FLEET_LAB_NETNS, test binaries started by CMD (which call
	// labtest.Main) get network namespaces of their own and do not collide
	// with this lab's addresses.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLEET_LAB_") {
			env = append(env, kv)
		}
	}
	env = append(env, l.Env()...)
	// CMD's Nix reads the project's nix.conf, not the machine's.
	env, err := nixconf.Apply(env, filepath.Join(l.Dir, "nix-conf"))
	if err != nil {
		fmt.Fprintf(stderr, "fleet-lab: %v\n", err)
		return 1
	}
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "fleet-lab: %v\n", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return 127
		}
		return 126
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				// CMD is in our process group: a terminal's Ctrl-C reaches
				// it directly. Forward the rest.
				if s != syscall.SIGINT {
					cmd.Process.Signal(s)
				}
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	ps := cmd.ProcessState
	if ps == nil {
		fmt.Fprintf(stderr, "fleet-lab: %v\n", err)
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func summary(w io.Writer, l *lab.Lab, took time.Duration, interactive bool) {
	fmt.Fprintf(w, "fleet-lab: %d hosts up in %v (private network namespace of pid %d)\n", len(l.Hosts), took, os.Getpid())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, h := range l.Hosts {
		fmt.Fprintf(tw, "  %s\t%s:%d\t%s\n", h.Name, h.Addr, h.Port, h.Root)
	}
	tw.Flush()
	fmt.Fprintf(w, "  ssh_config:  %s\n  known_hosts: %s\n  key:         %s\n", l.SSHConfig, l.KnownHosts, l.ClientKey)
	if interactive {
		fmt.Fprintf(w, "\nThe hosts are reachable only inside the namespace. From another terminal:\n")
		fmt.Fprintf(w, "  nsenter -t %d -n ssh -F %s root@%s\n", os.Getpid(), l.SSHConfig, l.Hosts[0].Name)
		fmt.Fprintf(w, "  nsenter -t %d -n env", os.Getpid())
		for _, kv := range l.Env() {
			fmt.Fprintf(w, " %s", shell.Quote(kv))
		}
		fmt.Fprintf(w, " bash\nPress Ctrl-C to stop.\n")
	}
}
