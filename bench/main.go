// Command bench runs fleet's benchmarks (issues 9 and 15) on a lab of simulated
// NixOS hosts (internal/lab: one real sshd and one empty /nix store per
// host, in a private network namespace) and prints a table:
//
//	make bench                      # = make build && go run ./bench
//	go run ./bench -reps 5 -only fresh10,plan
//
// It needs root (it re-executes itself in a private network namespace with
// lab.RunInPrivateNetns and starts the lab with lab.Start), bin/fleet (make
// build), nix-bin, sshd, ssh and nix-copy-closure; ansible-playbook is used
// if installed. See bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/nixconf"
)

type config struct {
	reps         int    // repetitions of every measurement
	reps50       int    // repetitions of the N = 50 deploys
	repsWAN      int    // repetitions of the WAN deploys
	planReps     int    // repetitions of fleet plan
	only         string // comma list of benchmarks to run
	ansible      string // auto | off
	fleet        string // path of the fleet binary
	root         string // repository root
	work         string // scratch directory
	keep         bool   // keep the scratch directory
	markdown     bool   // also print the table as Markdown
	noProfile    bool
	ansible50    bool // Ansible at N = 50 too
	noopBaseline bool
}

var cfg config

func main() {
	flag.IntVar(&cfg.reps, "reps", 3, "repetitions of each measurement (at least 3)")
	flag.IntVar(&cfg.reps50, "reps50", 3, "repetitions of the N=50 fresh deploys (at least 3)")
	flag.IntVar(&cfg.repsWAN, "reps-wan", 3, "repetitions of the deploys at 50 ms RTT (wan10, wan50)")
	flag.IntVar(&cfg.planReps, "plan-reps", 5, "repetitions of fleet plan")
	flag.StringVar(&cfg.only, "only", "", "comma list of benchmarks to run: fresh10, fresh16, fresh50, wan10, wan50 (at 50 ms RTT), noop, subst (substitute on destination), large, plan, profile, ops (CPU cost of single operations on one host) (default: all)")
	flag.StringVar(&cfg.ansible, "ansible", "auto", "auto: compare with ansible-playbook when it is installed; off: never")
	flag.StringVar(&cfg.fleet, "fleet", "bin/fleet", "fleet binary (make build puts it in bin/fleet)")
	flag.StringVar(&cfg.work, "work", "", "scratch directory (default: a new one under $TMPDIR, removed afterwards)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the scratch directory (profiles, fleet.star files, logs)")
	flag.BoolVar(&cfg.markdown, "md", true, "also print the result table as Markdown")
	flag.BoolVar(&cfg.noProfile, "no-profile", false, "skip the pprof runs")
	flag.BoolVar(&cfg.ansible50, "ansible50", false, "also compare with Ansible at N=50 (~5 min per repetition here)")
	flag.BoolVar(&cfg.noopBaseline, "noop-baseline", true, "time the baseline script's no-op redeploy (the no-op target is a ratio to it); -noop-baseline=false skips it")
	flag.Parse()
	if cfg.reps < 3 || cfg.reps50 < 3 {
		fatalf("-reps and -reps50 must be at least 3")
	}
	if cfg.repsWAN < 1 {
		fatalf("-reps-wan must be at least 1")
	}
	if os.Geteuid() != 0 {
		fatalf("must run as root: the lab starts sshd in private network and mount namespaces (try: sudo make bench)")
	}
	if missing := lab.MissingPrograms(); len(missing) > 0 {
		fatalf("missing programs: %s (make deps)", strings.Join(missing, ", "))
	}
	root, err := repoRoot()
	if err != nil {
		fatalf("%v", err)
	}
	cfg.root = root
	if !filepath.IsAbs(cfg.fleet) {
		cfg.fleet = filepath.Join(root, cfg.fleet)
	}
	if _, err := os.Stat(cfg.fleet); err != nil {
		fatalf("%s: %v (run make build first)", cfg.fleet, err)
	}
	code, err := lab.RunInPrivateNetns(inside)
	if err != nil {
		fatalf("cannot enter a private network namespace: %v", err)
	}
	os.Exit(code)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

// logf prints progress on stderr, with the time since start.
var start = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(data), "module github.com/fleet-deploy/fleet") {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("not inside the fleet repository (no go.mod of github.com/fleet-deploy/fleet above %s)", dir)
		}
	}
}

func want(name string) bool {
	if cfg.only == "" {
		return true
	}
	for _, n := range strings.Split(cfg.only, ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

// inside runs in the private network namespace.
func inside() int {
	if cfg.work == "" {
		d, err := os.MkdirTemp("", "fleet-bench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		cfg.work = d
		if !cfg.keep {
			defer os.RemoveAll(d)
		}
	} else if err := os.MkdirAll(cfg.work, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	// Nix as the project writes it (internal/nixconf), whatever the
	// machine's /etc/nix says: no build users, sandbox or binary cache.
	if err := nixconf.Setenv(filepath.Join(cfg.work, "nix-conf")); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	b := &bench{machine: machineDetails()}
	if err := b.run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		b.report(os.Stdout)
		return 1
	}
	b.report(os.Stdout)
	return 0
}
